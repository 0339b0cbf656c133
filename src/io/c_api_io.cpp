// The C ABI of perfq::io (include/perfq/perfq_io.h): handles over the pipeline's request and
// maps, with perfq.h's conventions (src/c_api_internal.hpp). No arithmetic of its own.
#include <perfq/perfq_io.h>
#include <perfq/errors.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/io/registration.hpp>
#include <perfq/io/resample.hpp>
#include <perfq/io/transform.hpp>

#include <algorithm>

#include "c_api_internal.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

struct perfq_series_request {
  perfq::io::SeriesRequest value;
};
struct perfq_series_maps {
  perfq::io::SeriesMaps value;
};
struct perfq_transform {
  perfq::io::Transform value;
};
struct perfq_rigid_registration {
  perfq::io::RegistrationResult value;
};

namespace {

using perfq_c_api::execution_for;
using perfq_c_api::guarded;
using perfq_c_api::read_handle;
using perfq_c_api::set_last_error;

void require_pointer(const void* pointer, const char* what) {
  if (pointer == nullptr) throw perfq::InvalidArgument(std::string(what) + ": null pointer");
}

const perfq::Volume<float>* map_of(const perfq::io::SeriesMaps& m, perfq_series_map which) {
  auto optional = [](const std::optional<perfq::Volume<float>>& v) { return v ? &*v : nullptr; };
  switch (which) {
    case PERFQ_SERIES_CBF:
      return &m.cbf;
    case PERFQ_SERIES_ATT:
      return optional(m.att);
    case PERFQ_SERIES_CBF_SE:
      return optional(m.cbf_se);
    case PERFQ_SERIES_ATT_SE:
      return optional(m.att_se);
    case PERFQ_SERIES_ABV:
      return optional(m.abv);
    case PERFQ_SERIES_ABV_SE:
      return optional(m.abv_se);
    case PERFQ_SERIES_ARTERIAL_ATT:
      return optional(m.arterial_att);
    case PERFQ_SERIES_CBF_GM:
      return optional(m.cbf_grey);
    case PERFQ_SERIES_CBF_WM:
      return optional(m.cbf_white);
    case PERFQ_SERIES_SCANNER_CBF:
      return optional(m.scanner_cbf);
  }
  return nullptr;
}

perfq::Geometry geometry_of(const perfq_grid* grid, const char* what) {
  require_pointer(grid, what);
  perfq::Geometry g;
  for (int a = 0; a < 3; ++a) {
    g.dims[a] = grid->dims[a];
    g.spacing[a] = grid->spacing[a];
    g.origin[a] = grid->origin[a];
  }
  for (int k = 0; k < 9; ++k) g.direction[k] = grid->direction[k];
  return g;
}

perfq::io::Transform transform_of(const perfq_transform* t) {
  return t != nullptr ? t->value : perfq::io::Transform();
}

perfq::io::ResampleOptions resample_options(size_t footprint, const perfq_execution* execution) {
  perfq::io::ResampleOptions o;
  o.footprint = footprint;
  o.threads = perfq_c_api::execution_for(execution).threads;
  return o;
}

/// Stores `value` as a new handle in *out (which the caller checked).
perfq_status new_transform(const char* function, perfq_transform** out,
                           const std::function<perfq::io::Transform()>& make) {
  if (out == nullptr) {
    return perfq_c_api::fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "out: null pointer");
  }
  *out = nullptr;
  return guarded(function, [&] { *out = new perfq_transform{make()}; });
}

}  // namespace

extern "C" {

perfq_status perfq_series_request_create(perfq_series_request** out) {
  if (out == nullptr) {
    return perfq_c_api::fail(PERFQ_ERROR_INVALID_ARGUMENT, "perfq_series_request_create",
                             "out: null pointer");
  }
  *out = nullptr;
  return guarded("perfq_series_request_create", [&] { *out = new perfq_series_request{}; });
}

void perfq_series_request_destroy(perfq_series_request* request) { delete request; }

perfq_status perfq_series_request_set(perfq_series_request* request, const char* option,
                                      const char* value) {
  return guarded("perfq_series_request_set", [&] {
    require_pointer(request, "request");
    require_pointer(option, "option");
    perfq::io::set_series_option(request->value, option, value != nullptr ? value : "");
  });
}

perfq_status perfq_quantify_series(const char* asl_path, const perfq_series_request* request,
                                   const perfq_execution* execution, perfq_series_maps** out) {
  if (out == nullptr) {
    return perfq_c_api::fail(PERFQ_ERROR_INVALID_ARGUMENT, "perfq_quantify_series",
                             "out: null pointer");
  }
  *out = nullptr;
  return guarded("perfq_quantify_series", [&] {
    require_pointer(asl_path, "asl_path");
    perfq::io::SeriesRequest r = request != nullptr ? request->value : perfq::io::SeriesRequest{};
    r.execution = execution_for(execution);
    auto maps = std::make_unique<perfq_series_maps>();
    maps->value = perfq::io::quantify_series(asl_path, r);
    *out = maps.release();
  });
}

void perfq_series_maps_destroy(perfq_series_maps* maps) { delete maps; }

perfq_status perfq_series_maps_grid(const perfq_series_maps* maps, size_t dims[3],
                                    double spacing[3]) {
  return guarded("perfq_series_maps_grid", [&] {
    require_pointer(maps, "maps");
    require_pointer(dims, "dims");
    const perfq::Geometry& g = maps->value.cbf.geometry();
    for (int a = 0; a < 3; ++a) {
      dims[a] = g.dims[a];
      if (spacing != nullptr) spacing[a] = g.spacing[a];
    }
  });
}

const float* perfq_series_maps_map(const perfq_series_maps* maps, perfq_series_map which) {
  const char* function = __func__;
  return read_handle(maps, function, nullptr, [&](const perfq_series_maps& x) -> const float* {
    const perfq::Volume<float>* map = map_of(x.value, which);
    if (map == nullptr) {
      set_last_error(
          function,
          ("which: this series has no map " + std::to_string(static_cast<int>(which))).c_str());
      return nullptr;
    }
    return map->values().data();
  });
}

const uint8_t* perfq_series_maps_status(const perfq_series_maps* maps) {
  return read_handle(maps, __func__, nullptr,
                     [](const perfq_series_maps& x) { return x.value.status.values().data(); });
}

size_t perfq_series_maps_delays(const perfq_series_maps* maps) {
  return read_handle(maps, __func__, 0, [](const perfq_series_maps& x) { return x.value.delays; });
}

const char* perfq_series_maps_provenance(const perfq_series_maps* maps) {
  return read_handle(maps, __func__, nullptr,
                     [](const perfq_series_maps& x) { return x.value.provenance_json.c_str(); });
}

const char* perfq_series_maps_quality_table(const perfq_series_maps* maps) {
  return read_handle(maps, __func__, nullptr,
                     [](const perfq_series_maps& x) { return x.value.quality_tsv.c_str(); });
}

const char* perfq_series_maps_quality_sidecar(const perfq_series_maps* maps) {
  return read_handle(maps, __func__, nullptr,
                     [](const perfq_series_maps& x) { return x.value.quality_json.c_str(); });
}

size_t perfq_series_maps_warning_count(const perfq_series_maps* maps) {
  return read_handle(maps, __func__, 0,
                     [](const perfq_series_maps& x) { return x.value.warnings.size(); });
}

const char* perfq_series_maps_warning(const perfq_series_maps* maps, size_t k) {
  const char* function = __func__;
  return read_handle(maps, function, nullptr, [&](const perfq_series_maps& x) -> const char* {
    if (k >= x.value.warnings.size()) {
      set_last_error(function,
                     ("k: " + std::to_string(k) + " is not below the number of warnings (" +
                      std::to_string(x.value.warnings.size()) + ")")
                         .c_str());
      return nullptr;
    }
    return x.value.warnings[k].c_str();
  });
}

perfq_status perfq_series_maps_write(const perfq_series_maps* maps, const char* out_dir) {
  return guarded("perfq_series_maps_write", [&] {
    require_pointer(maps, "maps");
    require_pointer(out_dir, "out_dir");
    perfq::io::write_series_outputs(maps->value, out_dir, /*overwrite=*/true);
  });
}

perfq_status perfq_series_maps_write_uncompressed(const perfq_series_maps* maps,
                                                  const char* out_dir) {
  return guarded("perfq_series_maps_write_uncompressed", [&] {
    require_pointer(maps, "maps");
    require_pointer(out_dir, "out_dir");
    perfq::io::SeriesOutputOptions options;
    options.compressed = false;
    perfq::io::write_series_outputs(maps->value, out_dir, /*overwrite=*/true, options);
  });
}

perfq_status perfq_transform_read(const char* path, perfq_transform** out) {
  return new_transform("perfq_transform_read", out, [&] {
    require_pointer(path, "path");
    return perfq::io::read_transform(path);
  });
}

perfq_status perfq_transform_affine(const double matrix[9], const double offset[3],
                                    perfq_transform** out) {
  return new_transform("perfq_transform_affine", out, [&] {
    require_pointer(matrix, "matrix");
    require_pointer(offset, "offset");
    std::array<double, 9> m{};
    std::array<double, 3> b{};
    std::copy(matrix, matrix + 9, m.begin());
    std::copy(offset, offset + 3, b.begin());
    return perfq::io::Transform::affine(m, b);
  });
}

void perfq_transform_destroy(perfq_transform* transform) { delete transform; }

perfq_status perfq_transform_map(const perfq_transform* transform, const double* points,
                                 size_t count, double* out) {
  return guarded("perfq_transform_map", [&] {
    if (count == 0) return;
    require_pointer(points, "points");
    require_pointer(out, "out");
    const perfq::io::Transform t = transform_of(transform);
    for (size_t i = 0; i < count; ++i) {
      const std::array<double, 3> q = t.map({points[3 * i], points[3 * i + 1], points[3 * i + 2]});
      std::copy(q.begin(), q.end(), out + 3 * i);
    }
  });
}

int perfq_transform_is_linear(const perfq_transform* transform) {
  return read_handle(transform, "perfq_transform_is_linear", 0,
                     [](const perfq_transform& t) { return t.value.linear() ? 1 : 0; });
}

perfq_status perfq_transform_matrix(const perfq_transform* transform, double out[16]) {
  return guarded("perfq_transform_matrix", [&] {
    require_pointer(transform, "transform");
    require_pointer(out, "out");
    const std::array<double, 16> m = transform->value.matrix();
    std::copy(m.begin(), m.end(), out);
  });
}

perfq_status perfq_transform_inverse(const perfq_transform* transform, perfq_transform** out) {
  return new_transform("perfq_transform_inverse", out, [&] {
    require_pointer(transform, "transform");
    return transform->value.inverse();
  });
}

perfq_status perfq_transform_compose(const perfq_transform* const* steps, size_t count,
                                     perfq_transform** out) {
  return new_transform("perfq_transform_compose", out, [&] {
    if (count > 0) require_pointer(steps, "steps");
    std::vector<perfq::io::Transform> list;
    for (size_t i = 0; i < count; ++i) {
      require_pointer(steps[i], "steps[i]");
      list.push_back(steps[i]->value);
    }
    return perfq::io::compose(list);
  });
}

perfq_status perfq_resample(const float* image, size_t volumes, const perfq_grid* source,
                            const perfq_grid* target, const perfq_transform* transform,
                            perfq_interpolation interpolation, size_t footprint, float outside,
                            const perfq_execution* execution, float* out) {
  return guarded("perfq_resample", [&] {
    require_pointer(image, "image");
    require_pointer(out, "out");
    if (volumes == 0) throw perfq::InvalidArgument("volumes: at least 1");
    if (interpolation != PERFQ_INTERPOLATION_LINEAR &&
        interpolation != PERFQ_INTERPOLATION_NEAREST) {
      throw perfq::InvalidArgument("interpolation: unknown value");
    }
    perfq::io::ResampleOptions o = resample_options(footprint, execution);
    o.interpolation = interpolation == PERFQ_INTERPOLATION_NEAREST
                          ? perfq::io::Interpolation::Nearest
                          : perfq::io::Interpolation::Linear;
    o.outside = outside;
    const perfq::Image<float> r =
        perfq::io::resample(perfq::View<const float>{image, geometry_of(source, "source"), volumes},
                            geometry_of(target, "target"), transform_of(transform), o);
    std::copy(r.values().begin(), r.values().end(), out);
  });
}

perfq_status perfq_resample_labels(const int32_t* labels, const perfq_grid* source,
                                   const perfq_grid* target, const perfq_transform* transform,
                                   perfq_label_rule rule, size_t footprint,
                                   const perfq_execution* execution, int32_t* out) {
  return guarded("perfq_resample_labels", [&] {
    require_pointer(labels, "labels");
    require_pointer(out, "out");
    if (rule != PERFQ_LABEL_MAJORITY && rule != PERFQ_LABEL_NEAREST) {
      throw perfq::InvalidArgument("rule: unknown value");
    }
    const perfq::Image<std::int32_t> r = perfq::io::resample_labels(
        perfq::View<const std::int32_t>{labels, geometry_of(source, "source"), 1},
        geometry_of(target, "target"), transform_of(transform),
        rule == PERFQ_LABEL_NEAREST ? perfq::io::LabelRule::Nearest
                                    : perfq::io::LabelRule::Majority,
        resample_options(footprint, execution));
    std::copy(r.values().begin(), r.values().end(), out);
  });
}

perfq_status perfq_resample_mask(const uint8_t* mask, const perfq_grid* source,
                                 const perfq_grid* target, const perfq_transform* transform,
                                 double min_fraction, size_t footprint,
                                 const perfq_execution* execution, uint8_t* out) {
  return guarded("perfq_resample_mask", [&] {
    require_pointer(mask, "mask");
    require_pointer(out, "out");
    const perfq::Mask r = perfq::io::resample_mask(
        perfq::View<const std::uint8_t>{mask, geometry_of(source, "source"), 1},
        geometry_of(target, "target"), transform_of(transform), min_fraction,
        resample_options(footprint, execution));
    std::copy(r.values().begin(), r.values().end(), out);
  });
}

perfq_status perfq_register_rigid(const float* moving, const perfq_grid* moving_grid,
                                  const float* fixed, const perfq_grid* fixed_grid,
                                  const uint8_t* moving_mask, const uint8_t* fixed_mask,
                                  int threads, perfq_rigid_registration** out) {
  return guarded("perfq_register_rigid", [&] {
    require_pointer(out, "out");
    *out = nullptr;
    require_pointer(moving, "moving");
    require_pointer(fixed, "fixed");
    const perfq::Geometry mg = geometry_of(moving_grid, "moving_grid");
    const perfq::Geometry fg = geometry_of(fixed_grid, "fixed_grid");
    std::optional<perfq::Mask> mm;
    std::optional<perfq::Mask> fm;
    perfq::io::RegistrationOptions options;
    options.threads = threads;
    if (moving_mask != nullptr) {
      mm.emplace(mg, 1, std::vector<std::uint8_t>(moving_mask, moving_mask + mg.voxel_count()));
      options.moving_mask = &*mm;
    }
    if (fixed_mask != nullptr) {
      fm.emplace(fg, 1, std::vector<std::uint8_t>(fixed_mask, fixed_mask + fg.voxel_count()));
      options.fixed_mask = &*fm;
    }
    auto result = std::make_unique<perfq_rigid_registration>();
    result->value = perfq::io::register_rigid(perfq::View<const float>{moving, mg, 1},
                                              perfq::View<const float>{fixed, fg, 1}, options);
    *out = result.release();
  });
}

void perfq_rigid_registration_destroy(perfq_rigid_registration* result) { delete result; }

perfq_status perfq_rigid_registration_parameters(const perfq_rigid_registration* result,
                                                 double angles[3], double translation[3],
                                                 double center[3], double* initial_metric,
                                                 double* final_metric) {
  return guarded("perfq_rigid_registration_parameters", [&] {
    require_pointer(result, "result");
    const perfq::io::RegistrationResult& r = result->value;
    if (angles != nullptr) std::copy(r.angles.begin(), r.angles.end(), angles);
    if (translation != nullptr) std::copy(r.translation.begin(), r.translation.end(), translation);
    if (center != nullptr) std::copy(r.center.begin(), r.center.end(), center);
    if (initial_metric != nullptr) *initial_metric = r.initial_metric;
    if (final_metric != nullptr) *final_metric = r.final_metric;
  });
}

perfq_status perfq_rigid_registration_write(const perfq_rigid_registration* result,
                                            const char* path) {
  return guarded("perfq_rigid_registration_write", [&] {
    require_pointer(result, "result");
    require_pointer(path, "path");
    perfq::io::write_transform(path, result->value.transform);
  });
}

perfq_status perfq_rigid_registration_transform(const perfq_rigid_registration* result,
                                                perfq_transform** out) {
  return new_transform("perfq_rigid_registration_transform", out, [&] {
    require_pointer(result, "result");
    return result->value.transform;
  });
}

}  // extern "C"
