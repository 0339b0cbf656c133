// perfq.h: regional statistics, white matter and lesions, partial-volume correction.
#include "c_api/common.hpp"

using namespace perfq_c_api;  // the shared checks and conversions

extern "C" {

// ---- regional statistics ------------------------------------------------------------------

perfq_status perfq_region_stats(const float* map, const std::int32_t* labels,
                                const std::size_t dims[3], const double spacing[3],
                                const uint8_t* mask, const double* percentiles,
                                std::size_t percentile_count, const perfq_execution* execution,
                                perfq_region_table** out) {
  return create_into("perfq_region_stats", out, [&] {
    require_pointer(map, "map");
    require_pointer(labels, "labels");
    const perfq::Geometry g = make_geometry(dims, spacing);
    perfq::StatsOptions options;
    if (percentile_count > 0) {
      options.percentiles = copy_list(percentiles, percentile_count, "percentiles");
    } else {
      require(percentiles == nullptr, "percentiles",
              "a list with count 0 (pass NULL for the defaults 5, 25, 75, 95)");
    }
    options.mask = optional_view(mask, g);
    return new perfq_region_table{perfq::region_stats(view_of(map, g), view_of(labels, g), options,
                                                      execution_for(execution))};
  });
}

void perfq_region_table_destroy(perfq_region_table* table) { delete table; }

std::size_t perfq_region_table_size(const perfq_region_table* table) {
  return read_handle(table, __func__, 0,
                     [](const perfq_region_table& x) { return x.value.regions.size(); });
}

perfq_status perfq_region_table_find(const perfq_region_table* table, std::int32_t label,
                                     std::size_t* row) {
  const char* function = "perfq_region_table_find";
  if (table == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "table: null pointer");
  if (row == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "row: null pointer");
  const auto& regions = table->value.regions;
  for (std::size_t i = 0; i < regions.size(); ++i) {
    if (regions[i].label == label) {
      *row = i;
      return PERFQ_OK;
    }
  }
  return guarded(function, [&] {
    throw perfq::InvalidArgument("label: no region has label " + std::to_string(label));
  });
}

perfq_status perfq_region_table_stat(const perfq_region_table* table, std::size_t row,
                                     perfq_stat which, double* value) {
  const char* function = "perfq_region_table_stat";
  if (table == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "table: null pointer");
  if (value == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "value: null pointer");
  if (row >= table->value.regions.size()) {
    return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "row: out of range");
  }
  const perfq::RegionStats& r = table->value.regions[row];
  switch (which) {
    case PERFQ_STAT_LABEL:
      *value = r.label;
      return PERFQ_OK;
    case PERFQ_STAT_VOXELS:
      *value = static_cast<double>(r.voxels);
      return PERFQ_OK;
    case PERFQ_STAT_COUNT:
      *value = static_cast<double>(r.count);
      return PERFQ_OK;
    case PERFQ_STAT_NONFINITE:
      *value = static_cast<double>(r.nonfinite);
      return PERFQ_OK;
    case PERFQ_STAT_VOLUME_ML:
      *value = r.volume_ml;
      return PERFQ_OK;
    case PERFQ_STAT_MEAN:
      *value = r.mean;
      return PERFQ_OK;
    case PERFQ_STAT_SD:
      *value = r.sd;
      return PERFQ_OK;
    case PERFQ_STAT_MEDIAN:
      *value = r.median;
      return PERFQ_OK;
    case PERFQ_STAT_MIN:
      *value = r.min;
      return PERFQ_OK;
    case PERFQ_STAT_MAX:
      *value = r.max;
      return PERFQ_OK;
    case PERFQ_STAT_COV_DEFINED:
      *value = r.cov_defined ? 1.0 : 0.0;
      return PERFQ_OK;
    case PERFQ_STAT_COV:
      *value = r.cov;
      return PERFQ_OK;
    case PERFQ_STAT_SCOV:
      *value = r.scov;
      return PERFQ_OK;
    case PERFQ_STAT_WEIGHTED_DEFINED:
      *value = r.weighted.defined ? 1.0 : 0.0;
      return PERFQ_OK;
    case PERFQ_STAT_WEIGHTED_WEIGHT_SUM:
      *value = r.weighted.weight_sum;
      return PERFQ_OK;
    case PERFQ_STAT_WEIGHTED_VOLUME_ML:
      *value = r.weighted.volume_ml;
      return PERFQ_OK;
    case PERFQ_STAT_WEIGHTED_EFFECTIVE_COUNT:
      *value = r.weighted.effective_count;
      return PERFQ_OK;
    case PERFQ_STAT_WEIGHTED_MEAN:
      *value = r.weighted.mean;
      return PERFQ_OK;
    case PERFQ_STAT_WEIGHTED_SD:
      *value = r.weighted.sd;
      return PERFQ_OK;
    case PERFQ_STAT_CHANGE_DEFINED:
      *value = r.change.defined ? 1.0 : 0.0;
      return PERFQ_OK;
    case PERFQ_STAT_CHANGE_COUNT:
      *value = static_cast<double>(r.change.count);
      return PERFQ_OK;
    case PERFQ_STAT_CHANGE_BASELINE_MEAN:
      *value = r.change.baseline_mean;
      return PERFQ_OK;
    case PERFQ_STAT_CHANGE_FOLLOWUP_MEAN:
      *value = r.change.followup_mean;
      return PERFQ_OK;
    case PERFQ_STAT_CHANGE_MEAN:
      *value = r.change.mean;
      return PERFQ_OK;
    case PERFQ_STAT_CHANGE_SD:
      *value = r.change.sd;
      return PERFQ_OK;
    case PERFQ_STAT_CHANGE_PERCENT_DEFINED:
      *value = r.change.percent_defined ? 1.0 : 0.0;
      return PERFQ_OK;
    case PERFQ_STAT_CHANGE_PERCENT:
      *value = r.change.percent;
      return PERFQ_OK;
  }
  return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "which: not a perfq_stat");
}

std::size_t perfq_region_table_percentile_count(const perfq_region_table* table) {
  return read_handle(table, __func__, 0,
                     [](const perfq_region_table& x) { return x.value.percentiles.size(); });
}

perfq_status perfq_region_table_percentile(const perfq_region_table* table, std::size_t row,
                                           std::size_t k, double* value) {
  const char* function = "perfq_region_table_percentile";
  if (table == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "table: null pointer");
  if (value == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "value: null pointer");
  if (row >= table->value.regions.size()) {
    return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "row: out of range");
  }
  const perfq::RegionStats& r = table->value.regions[row];
  if (k >= r.percentiles.size()) {
    return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "k: out of range");
  }
  *value = r.percentiles[k];
  return PERFQ_OK;
}

int perfq_region_table_is_weighted(const perfq_region_table* table) {
  return read_handle(table, __func__, 0,
                     [](const perfq_region_table& x) { return x.value.weighted ? 1 : 0; });
}

int perfq_region_table_is_paired(const perfq_region_table* table) {
  return read_handle(table, __func__, 0,
                     [](const perfq_region_table& x) { return x.value.paired ? 1 : 0; });
}

double perfq_region_table_voxel_volume_ml(const perfq_region_table* table) {
  return read_handle(table, __func__, 0.0,
                     [](const perfq_region_table& x) { return x.value.voxel_volume_ml; });
}

perfq_status perfq_stats_options_create(perfq_stats_options** out) {
  return create_into("perfq_stats_options_create", out, [] { return new perfq_stats_options{}; });
}

void perfq_stats_options_destroy(perfq_stats_options* options) { delete options; }

perfq_status perfq_stats_options_set_percentiles(perfq_stats_options* options,
                                                 const double* percentiles, std::size_t count) {
  return set_on("perfq_stats_options_set_percentiles", options, [&](perfq::StatsOptions& o) {
    o.percentiles = copy_list(percentiles, count, "percentiles");
  });
}

perfq_status perfq_stats_options_set_labels(perfq_stats_options* options,
                                            const std::int32_t* labels, std::size_t count) {
  return set_on("perfq_stats_options_set_labels", options, [&](perfq::StatsOptions& o) {
    require(count == 0 || labels != nullptr, "labels", "null pointer with a nonzero count");
    o.labels.assign(labels, labels + count);
  });
}

perfq_status perfq_stats_options_set_include_background(perfq_stats_options* options, int include) {
  return set_on("perfq_stats_options_set_include_background", options,
                [&](perfq::StatsOptions& o) { o.include_background = include != 0; });
}

perfq_status perfq_region_stats_with_options(const float* map, const std::int32_t* labels,
                                             const std::size_t dims[3], const double spacing[3],
                                             const uint8_t* mask, const float* weights,
                                             const float* baseline,
                                             const perfq_stats_options* options,
                                             const perfq_execution* execution,
                                             perfq_region_table** out) {
  return create_into("perfq_region_stats_with_options", out, [&] {
    require_pointer(map, "map");
    require_pointer(labels, "labels");
    const perfq::Geometry g = make_geometry(dims, spacing);
    perfq::StatsOptions o = options != nullptr ? options->value : perfq::StatsOptions{};
    o.mask = optional_view(mask, g);
    o.weights = optional_view(weights, g);
    o.baseline = optional_view(baseline, g);
    return new perfq_region_table{
        perfq::region_stats(view_of(map, g), view_of(labels, g), o, execution_for(execution))};
  });
}

perfq_status perfq_region_stats_in_mask(const float* map, const uint8_t* region,
                                        const std::size_t dims[3], const double spacing[3],
                                        const float* weights, const float* baseline,
                                        const perfq_stats_options* options,
                                        const perfq_execution* execution,
                                        perfq_region_table** out) {
  return create_into("perfq_region_stats_in_mask", out, [&] {
    require_pointer(map, "map");
    require_pointer(region, "region");
    const perfq::Geometry g = make_geometry(dims, spacing);
    perfq::StatsOptions o = options != nullptr ? options->value : perfq::StatsOptions{};
    o.weights = optional_view(weights, g);
    o.baseline = optional_view(baseline, g);
    return new perfq_region_table{
        perfq::region_stats(view_of(map, g), view_of(region, g), o, execution_for(execution))};
  });
}

// ---- white matter and lesions -------------------------------------------------------------

perfq_status perfq_normal_appearing_white_matter(const uint8_t* white_matter,
                                                 const uint8_t* lesions, const std::size_t dims[3],
                                                 const double spacing[3], double dilation_mm,
                                                 const perfq_execution* execution,
                                                 perfq_mask** out) {
  return create_into("perfq_normal_appearing_white_matter", out, [&] {
    require_pointer(white_matter, "white_matter");
    require_pointer(lesions, "lesions");
    if (!(std::isfinite(dilation_mm) && dilation_mm >= 0.0)) {
      throw perfq::InvalidArgument("dilation_mm: must be finite and not negative, got " +
                                   number_text(dilation_mm));
    }
    const perfq::Geometry g = make_geometry(dims, spacing);
    return new perfq_mask{perfq::normal_appearing_white_matter(
        view_of(white_matter, g), view_of(lesions, g), dilation_mm, execution_for(execution))};
  });
}

perfq_status perfq_lesion_watershed_enrichment(const uint8_t* lesions, const uint8_t* watershed,
                                               const uint8_t* white_matter,
                                               const std::size_t dims[3], const double spacing[3],
                                               perfq_lesion_enrichment* out) {
  const char* function = "perfq_lesion_watershed_enrichment";
  if (out == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "out: null pointer");
  return guarded(function, [&] {
    require_pointer(lesions, "lesions");
    require_pointer(watershed, "watershed");
    require_pointer(white_matter, "white_matter");
    const perfq::Geometry g = make_geometry(dims, spacing);
    const perfq::LesionEnrichment e = perfq::lesion_watershed_enrichment(
        view_of(lesions, g), view_of(watershed, g), view_of(white_matter, g));
    out->lesion_voxels = e.lesion_voxels;
    out->lesion_in_watershed = e.lesion_in_watershed;
    out->wm_voxels = e.wm_voxels;
    out->watershed_in_wm = e.watershed_in_wm;
    out->lesion_volume_ml = e.lesion_volume_ml;
    out->lesion_in_watershed_ml = e.lesion_in_watershed_ml;
    out->lesion_fraction = e.lesion_fraction;
    out->watershed_fraction = e.watershed_fraction;
    out->enrichment_defined = e.enrichment_defined ? 1 : 0;
    out->enrichment = e.enrichment;
  });
}

// ---- partial-volume correction ------------------------------------------------------------

perfq_status perfq_pvc_options_create(perfq_pvc_options** out) {
  return create_into("perfq_pvc_options_create", out, [] { return new perfq_pvc_options{}; });
}

void perfq_pvc_options_destroy(perfq_pvc_options* options) { delete options; }

perfq_status perfq_pvc_options_set_kernel(perfq_pvc_options* options, int kernel_xy, int kernel_z) {
  return set_on("perfq_pvc_options_set_kernel", options, [&](perfq::PvcOptions& o) {
    require(kernel_xy > 0 && kernel_xy % 2 == 1, "kernel_xy", "must be odd and positive");
    require(kernel_z > 0 && kernel_z % 2 == 1, "kernel_z", "must be odd and positive");
    o.kernel_xy = kernel_xy;
    o.kernel_z = kernel_z;
  });
}

perfq_status perfq_pvc_options_set_min_fraction(perfq_pvc_options* options, double min_fraction) {
  return set_on("perfq_pvc_options_set_min_fraction", options, [&](perfq::PvcOptions& o) {
    if (!(min_fraction > 0.0 && min_fraction <= 1.0)) {
      throw perfq::InvalidArgument("min_fraction: must be in (0, 1], got " +
                                   number_text(min_fraction));
    }
    o.min_fraction = min_fraction;
  });
}

perfq_status perfq_partial_volume_correct(const float* cbf, const float* gm, const float* wm,
                                          const std::size_t dims[3], const double spacing[3],
                                          const uint8_t* usable, const perfq_pvc_options* options,
                                          const perfq_execution* execution, perfq_pvc_maps** out) {
  return create_into("perfq_partial_volume_correct", out, [&] {
    require_pointer(cbf, "cbf");
    require_pointer(gm, "gm");
    require_pointer(wm, "wm");
    const perfq::Geometry g = make_geometry(dims, spacing);
    const perfq::PvcOptions o = options != nullptr ? options->value : perfq::PvcOptions{};
    return new perfq_pvc_maps{
        perfq::partial_volume_correct(view_of(cbf, g), view_of(gm, g), view_of(wm, g),
                                      optional_view(usable, g), o, execution_for(execution))};
  });
}

void perfq_pvc_maps_destroy(perfq_pvc_maps* maps) { delete maps; }

std::size_t perfq_pvc_maps_voxel_count(const perfq_pvc_maps* maps) {
  return read_handle(maps, __func__, 0,
                     [](const perfq_pvc_maps& x) { return x.value.cbf_gm.size(); });
}

const float* perfq_pvc_maps_cbf_gm(const perfq_pvc_maps* maps) {
  return read_handle(maps, __func__, nullptr,
                     [](const perfq_pvc_maps& x) { return x.value.cbf_gm.data(); });
}

const float* perfq_pvc_maps_cbf_wm(const perfq_pvc_maps* maps) {
  return read_handle(maps, __func__, nullptr,
                     [](const perfq_pvc_maps& x) { return x.value.cbf_wm.data(); });
}

const uint8_t* perfq_pvc_maps_valid(const perfq_pvc_maps* maps) {
  return read_handle(maps, __func__, nullptr,
                     [](const perfq_pvc_maps& x) { return x.value.valid.data(); });
}

}  // extern "C"
