// perfq.h: border zones (atlas, probabilities, timing), masks and maps, distance transforms,
// territories, components, periventricular caps, overlap.
#include "c_api/common.hpp"

using namespace perfq_c_api;  // the shared checks and conversions

extern "C" {

// ---- border zones -------------------------------------------------------------------------

perfq_status perfq_border_zones_from_territories(const std::int32_t* territories,
                                                 const std::size_t dims[3], const double spacing[3],
                                                 const uint8_t* brain, double width_mm,
                                                 const perfq_execution* execution,
                                                 perfq_border_zones** out) {
  return create_into("perfq_border_zones_from_territories", out, [&] {
    require_pointer(territories, "territories");
    require_positive(width_mm, "width_mm");
    const perfq::Geometry g = make_geometry(dims, spacing);
    return new perfq_border_zones{perfq::border_zones(
        view_of(territories, g), optional_view(brain, g), width_mm, execution_for(execution))};
  });
}

void perfq_border_zones_destroy(perfq_border_zones* zones) { delete zones; }

std::size_t perfq_border_zones_voxel_count(const perfq_border_zones* zones) {
  return read_handle(zones, __func__, 0,
                     [](const perfq_border_zones& x) { return x.value.mask.size(); });
}

const uint8_t* perfq_border_zones_mask(const perfq_border_zones* zones) {
  return read_handle(zones, __func__, nullptr,
                     [](const perfq_border_zones& x) { return x.value.mask.data(); });
}

const std::int32_t* perfq_border_zones_pairs(const perfq_border_zones* zones) {
  return read_handle(zones, __func__, nullptr,
                     [](const perfq_border_zones& x) { return x.value.pairs.data(); });
}

const std::int32_t* perfq_border_zones_territories(const perfq_border_zones* zones,
                                                   std::size_t* count) {
  return read_handle(zones, __func__, nullptr, [&](const perfq_border_zones& x) {
    if (count != nullptr) *count = x.value.territories.size();
    return x.value.territories.data();
  });
}

perfq_status perfq_border_zones_from_probabilities(
    const float* probabilities, std::size_t territory_count, const std::size_t dims[3],
    const double spacing[3], const uint8_t* brain, double threshold, const std::int32_t* labels,
    const perfq_execution* execution, perfq_border_zones** out) {
  return create_into("perfq_border_zones_from_probabilities", out, [&] {
    require_pointer(probabilities, "probabilities");
    require(territory_count >= 2, "territory_count", "at least two territories are needed");
    require_positive(threshold, "threshold");
    const perfq::Geometry g = make_geometry(dims, spacing, territory_count);
    std::vector<std::int32_t> label_list;
    if (labels != nullptr) label_list.assign(labels, labels + territory_count);
    return new perfq_border_zones{perfq::border_zones_from_probabilities(
        view_of(probabilities, g, territory_count), optional_view(brain, g), threshold,
        std::move(label_list), execution_for(execution))};
  });
}

// ---- masks and maps -----------------------------------------------------------------------

void perfq_mask_destroy(perfq_mask* mask) { delete mask; }

std::size_t perfq_mask_voxel_count(const perfq_mask* mask) {
  return read_handle(mask, __func__, 0, [](const perfq_mask& x) { return x.value.size(); });
}

const uint8_t* perfq_mask_data(const perfq_mask* mask) {
  return read_handle(mask, __func__, nullptr, [](const perfq_mask& x) { return x.value.data(); });
}

void perfq_map_destroy(perfq_map* map) { delete map; }

std::size_t perfq_map_voxel_count(const perfq_map* map) {
  return read_handle(map, __func__, 0, [](const perfq_map& x) { return x.value.size(); });
}

const float* perfq_map_data(const perfq_map* map) {
  return read_handle(map, __func__, nullptr, [](const perfq_map& x) { return x.value.data(); });
}

void perfq_label_image_destroy(perfq_label_image* image) { delete image; }

std::size_t perfq_label_image_voxel_count(const perfq_label_image* image) {
  return read_handle(image, __func__, 0, [](const perfq_label_image& x) { return x.value.size(); });
}

const std::int32_t* perfq_label_image_data(const perfq_label_image* image) {
  return read_handle(image, __func__, nullptr,
                     [](const perfq_label_image& x) { return x.value.data(); });
}

void perfq_double_map_destroy(perfq_double_map* map) { delete map; }

std::size_t perfq_double_map_voxel_count(const perfq_double_map* map) {
  return read_handle(map, __func__, 0, [](const perfq_double_map& x) { return x.value.size(); });
}

const double* perfq_double_map_data(const perfq_double_map* map) {
  return read_handle(map, __func__, nullptr,
                     [](const perfq_double_map& x) { return x.value.data(); });
}

// ---- distance transforms and dilation -----------------------------------------------------

perfq_status perfq_distance_map(const uint8_t* mask, const std::size_t dims[3],
                                const double spacing[3], int signed_distance, int use_spacing,
                                const perfq_execution* execution, perfq_map** out) {
  return create_into("perfq_distance_map", out, [&] {
    require_pointer(mask, "mask");
    const perfq::Geometry g = make_geometry(dims, spacing);
    perfq::DistanceOptions options;
    options.signed_distance = signed_distance != 0;
    options.use_spacing = use_spacing != 0;
    return new perfq_map{perfq::distance_map(view_of(mask, g), options, execution_for(execution))};
  });
}

perfq_status perfq_squared_distance_map(const uint8_t* mask, const std::size_t dims[3],
                                        const double spacing[3], int use_spacing,
                                        const perfq_execution* execution, perfq_double_map** out) {
  return create_into("perfq_squared_distance_map", out, [&] {
    require_pointer(mask, "mask");
    const perfq::Geometry g = make_geometry(dims, spacing);
    return new perfq_double_map{
        perfq::squared_distance_map(view_of(mask, g), use_spacing != 0, execution_for(execution))};
  });
}

perfq_status perfq_dilate(const uint8_t* mask, const std::size_t dims[3], const double spacing[3],
                          double radius_mm, const perfq_execution* execution, perfq_mask** out) {
  return create_into("perfq_dilate", out, [&] {
    require_pointer(mask, "mask");
    if (!(std::isfinite(radius_mm) && radius_mm >= 0.0)) {
      throw perfq::InvalidArgument("radius_mm: must be finite and not negative, got " +
                                   number_text(radius_mm));
    }
    const perfq::Geometry g = make_geometry(dims, spacing);
    return new perfq_mask{perfq::dilate(view_of(mask, g), radius_mm, execution_for(execution))};
  });
}

// ---- border zones from timing -------------------------------------------------------------

perfq_status perfq_timing_options_create(perfq_timing_options** out) {
  return create_into("perfq_timing_options_create", out, [] { return new perfq_timing_options{}; });
}

void perfq_timing_options_destroy(perfq_timing_options* options) { delete options; }

perfq_status perfq_timing_options_set_threshold(perfq_timing_options* options, double threshold) {
  return set_on("perfq_timing_options_set_threshold", options, [&](perfq::TimingOptions& o) {
    require_finite(threshold, "threshold");
    o.threshold = threshold;
    o.percentile.reset();
  });
}

perfq_status perfq_timing_options_set_percentile(perfq_timing_options* options, double percentile) {
  return set_on("perfq_timing_options_set_percentile", options, [&](perfq::TimingOptions& o) {
    if (!(percentile >= 0.0 && percentile <= 100.0)) {
      throw perfq::InvalidArgument("percentile: must be in [0, 100], got " +
                                   number_text(percentile));
    }
    o.percentile = percentile;
    o.threshold.reset();
  });
}

perfq_status perfq_timing_options_set_min_volume(perfq_timing_options* options,
                                                 double min_volume_ml) {
  return set_on("perfq_timing_options_set_min_volume", options, [&](perfq::TimingOptions& o) {
    if (!(std::isfinite(min_volume_ml) && min_volume_ml >= 0.0)) {
      throw perfq::InvalidArgument("min_volume_ml: must be finite and not negative, got " +
                                   number_text(min_volume_ml));
    }
    o.min_volume_ml = min_volume_ml;
  });
}

perfq_status perfq_timing_options_set_connectivity(perfq_timing_options* options,
                                                   perfq_connectivity connectivity) {
  return set_on("perfq_timing_options_set_connectivity", options,
                [&](perfq::TimingOptions& o) { o.connectivity = connectivity_from(connectivity); });
}

perfq_status perfq_timing_border_zones(const float* timing, const uint8_t* tissue,
                                       const std::size_t dims[3], const double spacing[3],
                                       const perfq_timing_options* options,
                                       const perfq_execution* execution,
                                       perfq_timing_summary* summary, perfq_mask** out) {
  return create_into("perfq_timing_border_zones", out, [&] {
    require_pointer(timing, "timing");
    require_pointer(tissue, "tissue");
    require_pointer(options, "options");
    const perfq::Geometry g = make_geometry(dims, spacing);
    perfq::TimingZones zones = perfq::timing_border_zones(view_of(timing, g), view_of(tissue, g),
                                                          options->value, execution_for(execution));
    auto* mask = new perfq_mask{std::move(zones.mask)};
    if (summary != nullptr) {
      summary->cut = zones.cut;
      summary->tissue_voxels = zones.tissue_voxels;
      summary->components_kept = zones.components_kept;
      summary->components_dropped = zones.components_dropped;
      summary->voxels_dropped = zones.voxels_dropped;
    }
    return mask;
  });
}

perfq_status perfq_local_cov(const float* cbf, const uint8_t* tissue, const std::size_t dims[3],
                             const double spacing[3], double radius_mm,
                             const perfq_execution* execution, perfq_map** out) {
  return create_into("perfq_local_cov", out, [&] {
    require_pointer(cbf, "cbf");
    require_pointer(tissue, "tissue");
    require_positive(radius_mm, "radius_mm");
    const perfq::Geometry g = make_geometry(dims, spacing);
    return new perfq_map{
        perfq::local_cov(view_of(cbf, g), view_of(tissue, g), radius_mm, execution_for(execution))};
  });
}

perfq_status perfq_smooth_m0(const float* m0, const uint8_t* region, const std::size_t dims[3],
                             const double spacing[3], double fwhm_mm, perfq_map** out) {
  return create_into("perfq_smooth_m0", out, [&] {
    require_pointer(m0, "m0");
    const perfq::Geometry g = make_geometry(dims, spacing);
    return new perfq_map{perfq::smooth_m0(view_of(m0, g), fwhm_mm, optional_view(region, g))};
  });
}

perfq_status perfq_reference_region_m0(const float* m0, const uint8_t* region,
                                       const std::size_t dims[3], perfq_reference_tissue tissue,
                                       double t1, double t2, double partition, double t2_blood,
                                       double echo_time, double repetition_time,
                                       perfq_reference_calibration* out) {
  const char* function = "perfq_reference_region_m0";
  if (out == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "out: null pointer");
  return guarded(function, [&] {
    require_pointer(m0, "m0");
    require_pointer(region, "region");
    perfq::ReferenceCalibrationOptions o;
    o.tissue = reference_tissue_from(tissue);
    // 0 keeps a default; a negative or non-finite value is refused by the library's checks.
    if (t1 != 0.0) o.t1 = t1;
    if (t2 != 0.0) o.t2 = t2;
    if (partition != 0.0) o.partition = partition;
    if (t2_blood != 0.0) o.t2_blood = t2_blood;
    o.echo_time = echo_time;
    o.repetition_time = repetition_time;
    const perfq::Geometry g = make_geometry(dims, nullptr);
    const perfq::ReferenceCalibration r =
        perfq::reference_region_m0(view_of(m0, g), view_of(region, g), o);
    out->voxels = r.voxels;
    out->region_mean = r.region_mean;
    out->m0_reference = r.m0_reference;
    out->m0_blood = r.m0_blood;
    out->t1 = r.constants.t1;
    out->t2 = r.constants.t2;
    out->partition = r.constants.partition;
    out->t2_blood = r.t2_blood;
    out->echo_time = r.echo_time;
    out->repetition_time = r.repetition_time;
  });
}

perfq_status perfq_combine_masks(const uint8_t* a, const uint8_t* b, const std::size_t dims[3],
                                 const double spacing[3], perfq_combination combination,
                                 perfq_mask** out) {
  return create_into("perfq_combine_masks", out, [&] {
    require_pointer(a, "a");
    require_pointer(b, "b");
    perfq::Combination how = perfq::Combination::Union;
    switch (combination) {
      case PERFQ_COMBINE_UNION:
        how = perfq::Combination::Union;
        break;
      case PERFQ_COMBINE_INTERSECTION:
        how = perfq::Combination::Intersection;
        break;
      default:
        throw perfq::InvalidArgument(
            "combination: " + std::to_string(static_cast<int>(combination)) +
            " is not a perfq_combination (0 union, 1 intersection)");
    }
    const perfq::Geometry g = make_geometry(dims, spacing);
    return new perfq_mask{perfq::combine_masks(view_of(a, g), view_of(b, g), how)};
  });
}

perfq_status perfq_split_internal_external(const uint8_t* zones, const uint8_t* white_matter,
                                           const uint8_t* grey_matter, const std::size_t dims[3],
                                           const double spacing[3], perfq_mask** internal,
                                           perfq_mask** external) {
  const char* function = "perfq_split_internal_external";
  if (internal == nullptr) {
    return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "internal: null pointer");
  }
  if (external == nullptr) {
    return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "external: null pointer");
  }
  *internal = nullptr;
  *external = nullptr;
  return guarded(function, [&] {
    require_pointer(zones, "zones");
    require_pointer(white_matter, "white_matter");
    const perfq::Geometry g = make_geometry(dims, spacing);
    perfq::SplitZones split = perfq::split_internal_external(
        view_of(zones, g), view_of(white_matter, g), optional_view(grey_matter, g));
    auto in = std::make_unique<perfq_mask>(perfq_mask{std::move(split.internal)});
    auto ex = std::make_unique<perfq_mask>(perfq_mask{std::move(split.external)});
    *internal = in.release();
    *external = ex.release();
  });
}

perfq_status perfq_threshold_map(const float* map, const std::size_t dims[3],
                                 const double spacing[3], double minimum, perfq_mask** out) {
  return create_into("perfq_threshold_map", out, [&] {
    require_pointer(map, "map");
    require_finite(minimum, "minimum");
    const perfq::Geometry g = make_geometry(dims, spacing);
    return new perfq_mask{perfq::threshold_map(view_of(map, g), minimum)};
  });
}

// ---- territories, components, periventricular caps, overlap -------------------------------

perfq_status perfq_group_territories(const std::int32_t* labels, const std::size_t dims[3],
                                     const double spacing[3], const std::int32_t* from,
                                     const std::int32_t* to, std::size_t count,
                                     perfq_label_image** out) {
  return create_into("perfq_group_territories", out, [&] {
    require_pointer(labels, "labels");
    require(count == 0 || from != nullptr, "from", "null pointer with a nonzero count");
    require(count == 0 || to != nullptr, "to", "null pointer with a nonzero count");
    perfq::TerritoryGroups groups;
    for (std::size_t k = 0; k < count; ++k) {
      const std::string at = "[" + std::to_string(k) + "]";
      if (to[k] < 0) {
        throw perfq::InvalidArgument("to" + at + ": the group of label " + std::to_string(from[k]) +
                                     " is negative (" + std::to_string(to[k]) + ")");
      }
      if (!groups.emplace(from[k], to[k]).second) {
        throw perfq::InvalidArgument("from" + at + ": label " + std::to_string(from[k]) +
                                     " is repeated");
      }
    }
    const perfq::Geometry g = make_geometry(dims, spacing);
    return new perfq_label_image{perfq::group_territories(view_of(labels, g), groups)};
  });
}

perfq_status perfq_drop_small_components(const uint8_t* mask, const std::size_t dims[3],
                                         const double spacing[3], double min_volume_ml,
                                         perfq_connectivity connectivity,
                                         perfq_component_summary* summary, perfq_mask** out) {
  return create_into("perfq_drop_small_components", out, [&] {
    require_pointer(mask, "mask");
    if (!(std::isfinite(min_volume_ml) && min_volume_ml >= 0.0)) {
      throw perfq::InvalidArgument("min_volume_ml: must be finite and not negative, got " +
                                   number_text(min_volume_ml));
    }
    const perfq::Connectivity how = connectivity_from(connectivity);
    const perfq::Geometry g = make_geometry(dims, spacing);
    perfq::CleanedMask cleaned = perfq::drop_small_components(view_of(mask, g), min_volume_ml, how);
    auto* kept = new perfq_mask{std::move(cleaned.mask)};
    if (summary != nullptr) {
      summary->components_kept = cleaned.kept;
      summary->components_dropped = cleaned.dropped;
      summary->voxels_dropped = cleaned.voxels_dropped;
    }
    return kept;
  });
}

perfq_status perfq_cap_options_create(perfq_cap_options** out) {
  return create_into("perfq_cap_options_create", out, [] { return new perfq_cap_options{}; });
}

void perfq_cap_options_destroy(perfq_cap_options* options) { delete options; }

perfq_status perfq_cap_options_set_distance(perfq_cap_options* options, double distance_mm) {
  return set_on("perfq_cap_options_set_distance", options, [&](perfq::CapOptions& o) {
    if (!(std::isfinite(distance_mm) && distance_mm >= 0.0)) {
      throw perfq::InvalidArgument("distance_mm: must be finite and not negative, got " +
                                   number_text(distance_mm));
    }
    o.distance_mm = distance_mm;
  });
}

perfq_status perfq_cap_options_set_horn_fraction(perfq_cap_options* options, double horn_fraction) {
  return set_on("perfq_cap_options_set_horn_fraction", options, [&](perfq::CapOptions& o) {
    if (!(horn_fraction > 0.0 && horn_fraction <= 0.5)) {
      throw perfq::InvalidArgument("horn_fraction: must be in (0, 0.5], got " +
                                   number_text(horn_fraction));
    }
    o.horn_fraction = horn_fraction;
  });
}

perfq_status perfq_periventricular_caps(const uint8_t* ventricles, const uint8_t* brain,
                                        const std::size_t dims[3], const double spacing[3],
                                        const perfq_cap_options* options,
                                        const perfq_execution* execution, perfq_mask** out) {
  return create_into("perfq_periventricular_caps", out, [&] {
    require_pointer(ventricles, "ventricles");
    const perfq::Geometry g = make_geometry(dims, spacing);
    return new perfq_mask{perfq::periventricular_caps(
        view_of(ventricles, g), optional_view(brain, g),
        options != nullptr ? options->value : perfq::CapOptions{}, execution_for(execution))};
  });
}

perfq_status perfq_dice(const uint8_t* a, const uint8_t* b, const std::size_t dims[3],
                        const double spacing[3], double* out) {
  const char* function = "perfq_dice";
  if (out == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "out: null pointer");
  return guarded(function, [&] {
    require_pointer(a, "a");
    require_pointer(b, "b");
    const perfq::Geometry g = make_geometry(dims, spacing);
    *out = perfq::dice(view_of(a, g), view_of(b, g));
  });
}

}  // extern "C"
