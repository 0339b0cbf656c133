// perfq.h: preparation (pairing), time-encoded PCASL, single-delay and multi-delay quantification.
#include "c_api/common.hpp"

using namespace perfq_c_api;  // the shared checks and conversions

extern "C" {

// ---- preparation --------------------------------------------------------------------------

perfq_status perfq_prepare_asl(const float* series, std::size_t volumes, const std::size_t dims[3],
                               const double spacing[3], const std::int32_t* context,
                               const perfq_protocol* protocol, int robust, const uint8_t* mask,
                               perfq_prepared** out) {
  return create_into("perfq_prepare_asl", out, [&] {
    require_pointer(series, "series");
    require(volumes > 0, "volumes", "must be at least 1");
    require_pointer(context, "context");
    require_pointer(protocol, "protocol");
    const perfq::Geometry g = make_geometry(dims, spacing, volumes);
    const std::vector<perfq::VolumeType> types = volume_types(context, volumes);
    perfq::AveragingOptions averaging;
    averaging.robust = robust != 0;
    averaging.mask = optional_view(mask, g);
    return new perfq_prepared{
        perfq::prepare_asl(view_of(series, g, volumes), types, protocol->value, averaging)};
  });
}

void perfq_prepared_destroy(perfq_prepared* prepared) { delete prepared; }

const float* perfq_prepared_delta_m(const perfq_prepared* prepared, std::size_t* volumes) {
  return read_handle(prepared, __func__, nullptr, [&](const perfq_prepared& x) {
    if (volumes != nullptr) *volumes = x.value.delta_m.volumes();
    return x.value.delta_m.data();
  });
}

const double* perfq_prepared_delays(const perfq_prepared* prepared) {
  return read_handle(prepared, __func__, nullptr,
                     [](const perfq_prepared& x) { return x.value.post_labeling_delay.data(); });
}

const double* perfq_prepared_labeling_durations(const perfq_prepared* prepared) {
  return read_handle(prepared, __func__, nullptr,
                     [](const perfq_prepared& x) { return x.value.labeling_duration.data(); });
}

const std::size_t* perfq_prepared_repeats(const perfq_prepared* prepared) {
  return read_handle(prepared, __func__, nullptr,
                     [](const perfq_prepared& x) { return x.value.repeats.data(); });
}

const float* perfq_prepared_m0(const perfq_prepared* prepared) {
  return read_handle(prepared, __func__, nullptr, [](const perfq_prepared& x) {
    return x.value.m0 ? x.value.m0->data() : nullptr;
  });
}

perfq_status perfq_check_delta_m_sign(const float* delta_m, std::size_t volumes,
                                      const std::size_t dims[3], const float* m0,
                                      const uint8_t* mask, perfq_delta_m_sign* out) {
  const char* function = "perfq_check_delta_m_sign";
  if (out == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "out: null pointer");
  return guarded(function, [&] {
    require_pointer(delta_m, "delta_m");
    require(volumes > 0, "volumes", "must be at least 1");
    const perfq::Geometry g = make_geometry(dims, nullptr);
    const perfq::DeltaMSign r = perfq::check_delta_m_sign(
        view_of(delta_m, g, volumes), optional_view(m0, g), optional_view(mask, g));
    out->voxels = r.voxels;
    out->negative = r.negative;
    out->negative_fraction = r.negative_fraction;
    out->inverted = r.inverted ? 1 : 0;
  });
}

// ---- time-encoded PCASL -------------------------------------------------------------------

perfq_status perfq_time_encoding_create(const char* matrix_type, std::size_t size,
                                        const double* durations, std::size_t count,
                                        double final_pld, perfq_time_encoding** out) {
  return create_into("perfq_time_encoding_create", out, [&] {
    const perfq::TimeEncodedMatrixType type = matrix_type_from(matrix_type);
    return time_encoding_of(
        generated_matrix(type, size), durations, count, final_pld,
        std::string(perfq::to_string(type)) + " " + std::to_string(size) + " (generated)");
  });
}

perfq_status perfq_time_encoding_from_matrix(const std::int32_t* entries, std::size_t rows,
                                             std::size_t columns, const double* durations,
                                             std::size_t count, double final_pld,
                                             perfq_time_encoding** out) {
  return create_into("perfq_time_encoding_from_matrix", out, [&] {
    require_pointer(entries, "entries");
    require(rows >= 2 && rows <= 64, "rows", "must be 2 … 64 (encoding cycles)");
    require(columns + 1 == rows || columns == rows, "columns",
            "must be rows − 1 (one per sub-bolus), or rows with an all +1 first column");
    std::vector<std::vector<double>> list(rows);
    for (std::size_t i = 0; i < rows; ++i) {
      list[i].assign(entries + i * columns, entries + (i + 1) * columns);
    }
    return time_encoding_of(perfq::encoding_matrix_from_rows(list), durations, count, final_pld,
                            "TimeEncodedMatrix (given)");
  });
}

void perfq_time_encoding_destroy(perfq_time_encoding* encoding) { delete encoding; }

std::size_t perfq_time_encoding_cycles(const perfq_time_encoding* encoding) {
  return read_handle(encoding, __func__, 0,
                     [](const perfq_time_encoding& x) { return x.value.matrix.cycles; });
}

std::size_t perfq_time_encoding_sub_boli(const perfq_time_encoding* encoding) {
  return read_handle(encoding, __func__, 0,
                     [](const perfq_time_encoding& x) { return x.value.matrix.sub_boli(); });
}

const std::int32_t* perfq_time_encoding_matrix(const perfq_time_encoding* encoding) {
  return read_handle(encoding, __func__, nullptr,
                     [](const perfq_time_encoding& x) { return x.matrix.data(); });
}

const double* perfq_time_encoding_sub_bolus_durations(const perfq_time_encoding* encoding) {
  return read_handle(encoding, __func__, nullptr, [](const perfq_time_encoding& x) {
    return x.value.sub_bolus_duration.data();
  });
}

const double* perfq_time_encoding_sub_bolus_delays(const perfq_time_encoding* encoding) {
  return read_handle(encoding, __func__, nullptr,
                     [](const perfq_time_encoding& x) { return x.value.sub_bolus_pld.data(); });
}

const char* perfq_time_encoding_source(const perfq_time_encoding* encoding) {
  return read_handle(encoding, __func__, "",
                     [](const perfq_time_encoding& x) { return x.value.matrix_source.c_str(); });
}

perfq_status perfq_decode_time_encoded(const float* encoded, std::size_t volumes,
                                       const std::size_t dims[3], const double spacing[3],
                                       const perfq_time_encoding* encoding, perfq_prepared** out) {
  return create_into("perfq_decode_time_encoded", out, [&] {
    require_pointer(encoded, "encoded");
    require_pointer(encoding, "encoding");
    const perfq::TimeEncoding& e = encoding->value;
    const std::size_t n = e.matrix.cycles, k = e.matrix.sub_boli();
    if (volumes == 0 || volumes % n != 0) {
      throw perfq::InvalidArgument("volumes: " + std::to_string(volumes) +
                                   " is not a positive multiple of the " + std::to_string(n) +
                                   " encoding cycles");
    }
    const perfq::Geometry g = make_geometry(dims, spacing, volumes);
    perfq::PreparedAsl p;
    p.delta_m = perfq::decode_time_encoded(view_of(encoded, g, volumes), e.matrix);
    const std::size_t total = p.delta_m.volumes();
    p.post_labeling_delay.resize(total);
    p.labeling_duration.resize(total);
    for (std::size_t v = 0; v < total; ++v) {
      p.post_labeling_delay[v] = e.sub_bolus_pld[v % k];
      p.labeling_duration[v] = e.sub_bolus_duration[v % k];
    }
    p.repeats.assign(total, 1);
    p.rejected.assign(total, 0);
    return new perfq_prepared{std::move(p)};
  });
}

perfq_status perfq_prepare_time_encoded(const float* series, std::size_t volumes,
                                        const std::size_t dims[3], const double spacing[3],
                                        const std::int32_t* context, const perfq_protocol* protocol,
                                        const perfq_time_encoding* encoding, int robust,
                                        const uint8_t* mask, perfq_prepared** out) {
  return create_into("perfq_prepare_time_encoded", out, [&] {
    require_pointer(series, "series");
    require(volumes > 0, "volumes", "must be at least 1");
    require_pointer(context, "context");
    require_pointer(protocol, "protocol");
    require_pointer(encoding, "encoding");
    const perfq::Geometry g = make_geometry(dims, spacing, volumes);
    const std::vector<perfq::VolumeType> types = volume_types(context, volumes);
    perfq::AveragingOptions averaging;
    averaging.robust = robust != 0;
    averaging.mask = optional_view(mask, g);
    return new perfq_prepared{perfq::prepare_time_encoded(
        view_of(series, g, volumes), types, protocol->value, encoding->value, averaging)};
  });
}

// ---- single delay -------------------------------------------------------------------------

perfq_status perfq_quantify_cbf(const float* delta_m, const std::size_t dims[3],
                                const double spacing[3], const float* m0, double m0_value,
                                const uint8_t* mask, const perfq_protocol* protocol,
                                const perfq_physiology* physiology,
                                const perfq_execution* execution, perfq_cbf_maps** out) {
  return create_into("perfq_quantify_cbf", out, [&] {
    require_pointer(delta_m, "delta_m");
    require_pointer(protocol, "protocol");
    const perfq::Geometry g = make_geometry(dims, spacing);
    const perfq::M0Source source = m0_source(m0, m0_value, g);
    const perfq::AslProtocol& p = protocol->value;
    return new perfq_cbf_maps{
        perfq::quantify_cbf(view_of(delta_m, g), source, p, physiology_for(physiology, p),
                            optional_view(mask, g), execution_for(execution))};
  });
}

void perfq_cbf_maps_destroy(perfq_cbf_maps* maps) { delete maps; }

std::size_t perfq_cbf_maps_voxel_count(const perfq_cbf_maps* maps) {
  return read_handle(maps, __func__, 0, [](const perfq_cbf_maps& x) { return x.value.cbf.size(); });
}

const float* perfq_cbf_maps_cbf(const perfq_cbf_maps* maps) {
  return read_handle(maps, __func__, nullptr,
                     [](const perfq_cbf_maps& x) { return x.value.cbf.data(); });
}

const uint8_t* perfq_cbf_maps_status(const perfq_cbf_maps* maps) {
  return read_handle(maps, __func__, nullptr,
                     [](const perfq_cbf_maps& x) { return x.value.status.data(); });
}

perfq_status perfq_cbf_maps_constants(const perfq_cbf_maps* maps, perfq_constants* out) {
  const char* function = "perfq_cbf_maps_constants";
  if (maps == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "maps: null pointer");
  if (out == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "out: null pointer");
  copy_constants(maps->value.constants, out);
  return PERFQ_OK;
}

const char* perfq_cbf_maps_backend(const perfq_cbf_maps* maps) {
  return read_handle(maps, __func__, "",
                     [](const perfq_cbf_maps& x) { return perfq::to_string(x.value.backend); });
}

perfq_status perfq_single_delay_factor(perfq_labeling_type type, double delay,
                                       double labeling_duration, double bolus_cutoff,
                                       const perfq_constants* constants, double* out) {
  const char* function = "perfq_single_delay_factor";
  if (out == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "out: null pointer");
  return guarded(function, [&] {
    const perfq::LabelingType labeling = labeling_from(type);
    if (!(std::isfinite(delay) && delay >= 0.0)) {
      throw perfq::InvalidArgument("delay: must be finite and not negative, got " +
                                   number_text(delay));
    }
    if (labeling == perfq::LabelingType::Pasl) {
      require_positive(bolus_cutoff, "bolus_cutoff");
    } else {
      require_positive(labeling_duration, "labeling_duration");
    }
    *out = perfq::single_delay_factor(labeling, delay, labeling_duration, bolus_cutoff,
                                      constants_from(constants));
  });
}

// ---- multi delay --------------------------------------------------------------------------

perfq_status perfq_kinetic_options_create(perfq_kinetic_options** out) {
  return create_into("perfq_kinetic_options_create", out,
                     [] { return new perfq_kinetic_options{}; });
}

void perfq_kinetic_options_destroy(perfq_kinetic_options* options) { delete options; }

perfq_status perfq_kinetic_options_set_model(perfq_kinetic_options* options, const char* model) {
  return set_on("perfq_kinetic_options_set_model", options, [&](perfq::KineticOptions& o) {
    require_pointer(model, "model");
    try {
      o.variant = perfq::parse_kinetic_variant(model);
    } catch (const perfq::InvalidArgument& error) {
      throw perfq::InvalidArgument(std::string("model: ") + error.what());
    }
  });
}

perfq_status perfq_kinetic_options_set_fixed_flow(perfq_kinetic_options* options, double flow) {
  return set_on("perfq_kinetic_options_set_fixed_flow", options, [&](perfq::KineticOptions& o) {
    require_finite(flow, "flow");
    o.fixed_flow = flow;
  });
}

perfq_status perfq_kinetic_options_set_att_range(perfq_kinetic_options* options, double att_min,
                                                 double att_max) {
  return set_on("perfq_kinetic_options_set_att_range", options, [&](perfq::KineticOptions& o) {
    require_finite(att_min, "att_min");
    require_finite(att_max, "att_max");
    o.att_min = att_min;
    o.att_max = att_max;
  });
}

perfq_status perfq_kinetic_options_set_solver(perfq_kinetic_options* options, int grid_points,
                                              int max_iterations, double tolerance) {
  return set_on("perfq_kinetic_options_set_solver", options, [&](perfq::KineticOptions& o) {
    require_finite(tolerance, "tolerance");
    o.grid_points = grid_points;
    o.max_iterations = max_iterations;
    o.tolerance = tolerance;
  });
}

perfq_status perfq_kinetic_options_set_max_starts(perfq_kinetic_options* options, int max_starts) {
  return set_on("perfq_kinetic_options_set_max_starts", options,
                [&](perfq::KineticOptions& o) { o.max_starts = max_starts; });
}

perfq_status perfq_kinetic_options_set_att_prior(perfq_kinetic_options* options, int enabled,
                                                 double sd) {
  return set_on("perfq_kinetic_options_set_att_prior", options, [&](perfq::KineticOptions& o) {
    require_finite(sd, "sd");
    o.att_prior = enabled != 0;
    o.att_prior_sd = sd;
  });
}

perfq_status perfq_kinetic_options_set_att_prior_mean(perfq_kinetic_options* options, double mean) {
  return set_on("perfq_kinetic_options_set_att_prior_mean", options, [&](perfq::KineticOptions& o) {
    require_finite(mean, "mean");
    o.att_prior_mean = mean;
  });
}

perfq_status perfq_kinetic_options_set_prior_noise(perfq_kinetic_options* options,
                                                   const char* noise) {
  return set_on("perfq_kinetic_options_set_prior_noise", options, [&](perfq::KineticOptions& o) {
    require_pointer(noise, "noise");
    try {
      o.prior_noise = perfq::parse_prior_noise(noise);
    } catch (const perfq::InvalidArgument& error) {
      throw perfq::InvalidArgument(std::string("noise: ") + error.what());
    }
  });
}

perfq_status perfq_kinetic_options_set_arterial_att_prior(perfq_kinetic_options* options,
                                                          double mean, double sd) {
  return set_on("perfq_kinetic_options_set_arterial_att_prior", options,
                [&](perfq::KineticOptions& o) {
                  require_finite(mean, "mean");
                  require_positive(sd, "sd");
                  o.arterial_att_prior_mean = mean;
                  o.arterial_att_prior_sd = sd;
                });
}

perfq_status perfq_kinetic_options_set_arterial(perfq_kinetic_options* options, int enabled) {
  return set_on("perfq_kinetic_options_set_arterial", options,
                [&](perfq::KineticOptions& o) { o.arterial = enabled != 0; });
}

perfq_status perfq_kinetic_options_set_spatial(perfq_kinetic_options* options, int enabled,
                                               int on_att, int max_iterations, double tolerance) {
  return set_on("perfq_kinetic_options_set_spatial", options, [&](perfq::KineticOptions& o) {
    if (on_att != 0 && enabled == 0) {
      throw perfq::InvalidArgument("on_att: the prior on ATT goes with the prior on CBF");
    }
    if (max_iterations < 1 || max_iterations > 1000) {
      throw perfq::InvalidArgument("max_iterations: expected 1 to 1000, got " +
                                   std::to_string(max_iterations));
    }
    if (!(tolerance > 0.0 && tolerance < 1.0)) {
      throw perfq::InvalidArgument("tolerance: expected a value in (0, 1)");
    }
    o.spatial = enabled != 0;
    o.spatial_att = on_att != 0;
    o.spatial_max_iterations = max_iterations;
    o.spatial_tolerance = tolerance;
  });
}

perfq_status perfq_kinetic_options_set_dispersion(perfq_kinetic_options* options,
                                                  const char* kernel, double sharpness,
                                                  double time_to_peak) {
  return set_on("perfq_kinetic_options_set_dispersion", options, [&](perfq::KineticOptions& o) {
    require_pointer(kernel, "kernel");
    perfq::Dispersion dispersion = perfq::Dispersion::None;
    try {
      dispersion = perfq::parse_dispersion(kernel);
    } catch (const perfq::InvalidArgument& error) {
      throw perfq::InvalidArgument(std::string("kernel: ") + error.what());
    }
    if (dispersion == perfq::Dispersion::Gamma) {
      require_finite(sharpness, "sharpness");
      require_finite(time_to_peak, "time_to_peak");
      if (!(sharpness > 0.0 && sharpness <= 100.0)) {
        throw perfq::InvalidArgument("sharpness must be in (0, 100] 1/s");
      }
      if (!(time_to_peak >= 0.0 && time_to_peak <= 5.0 && sharpness * time_to_peak <= 10.0)) {
        throw perfq::InvalidArgument(
            "time_to_peak must be in [0, 5] s with sharpness × "
            "time_to_peak <= 10");
      }
      o.dispersion_sharpness = sharpness;
      o.dispersion_time_to_peak = time_to_peak;
    }
    o.dispersion = dispersion;
  });
}

perfq_status perfq_kinetic_options_set_weights(perfq_kinetic_options* options,
                                               const double* weights, std::size_t count) {
  return set_on("perfq_kinetic_options_set_weights", options, [&](perfq::KineticOptions& o) {
    o.weights = copy_list(weights, count, "weights");
  });
}

perfq_status perfq_fit_kinetic(const float* delta_m, std::size_t volumes, const std::size_t dims[3],
                               const double spacing[3], const float* m0, double m0_value,
                               const uint8_t* mask, const perfq_protocol* protocol,
                               const perfq_physiology* physiology,
                               const perfq_kinetic_options* options,
                               const perfq_execution* execution, perfq_kinetic_fit** out) {
  return create_into("perfq_fit_kinetic", out, [&] {
    require_pointer(delta_m, "delta_m");
    require(volumes > 0, "volumes", "must be at least 1");
    require_pointer(protocol, "protocol");
    const perfq::Geometry g = make_geometry(dims, spacing, volumes);
    const perfq::M0Source source = m0_source(m0, m0_value, g);
    const perfq::AslProtocol& p = protocol->value;
    const perfq::KineticOptions o = options != nullptr ? options->value : perfq::KineticOptions{};
    return new perfq_kinetic_fit{
        perfq::fit_kinetic(view_of(delta_m, g, volumes), source, p, physiology_for(physiology, p),
                           o, optional_view(mask, g), execution_for(execution))};
  });
}

void perfq_kinetic_fit_destroy(perfq_kinetic_fit* fit) { delete fit; }

std::size_t perfq_kinetic_fit_voxel_count(const perfq_kinetic_fit* fit) {
  return read_handle(fit, __func__, 0,
                     [](const perfq_kinetic_fit& x) { return x.value.cbf.size(); });
}

const float* perfq_kinetic_fit_map(const perfq_kinetic_fit* fit, perfq_kinetic_map which) {
  const char* function = __func__;
  return read_handle(fit, function, nullptr, [&](const perfq_kinetic_fit& x) -> const float* {
    const perfq::KineticFit& f = x.value;
    const perfq::Volume<float>* map = nullptr;
    switch (which) {
      case PERFQ_KINETIC_CBF:
        map = &f.cbf;
        break;
      case PERFQ_KINETIC_ATT:
        map = &f.att;
        break;
      case PERFQ_KINETIC_CBF_SE:
        map = &f.cbf_se;
        break;
      case PERFQ_KINETIC_ATT_SE:
        map = &f.att_se;
        break;
      case PERFQ_KINETIC_RESIDUAL_RMS:
        map = &f.residual_rms;
        break;
      case PERFQ_KINETIC_ABV:
        map = &f.abv;
        break;
      case PERFQ_KINETIC_ABV_SE:
        map = &f.abv_se;
        break;
      case PERFQ_KINETIC_ARTERIAL_ATT:
        map = &f.arterial_att;
        break;
    }
    if (map == nullptr) {
      set_last_error(function, "which: not a perfq_kinetic_map");
      return nullptr;
    }
    if (map->size() == 0) {
      set_last_error(function, "which: this map exists only for fits with the arterial component");
      return nullptr;
    }
    return map->data();
  });
}

const uint8_t* perfq_kinetic_fit_status(const perfq_kinetic_fit* fit) {
  return read_handle(fit, __func__, nullptr,
                     [](const perfq_kinetic_fit& x) { return x.value.status.data(); });
}

const uint8_t* perfq_kinetic_fit_iterations(const perfq_kinetic_fit* fit) {
  return read_handle(fit, __func__, nullptr,
                     [](const perfq_kinetic_fit& x) { return x.value.iterations.data(); });
}

perfq_status perfq_kinetic_fit_constants(const perfq_kinetic_fit* fit, perfq_constants* out) {
  const char* function = "perfq_kinetic_fit_constants";
  if (fit == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "fit: null pointer");
  if (out == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "out: null pointer");
  copy_constants(fit->value.constants, out);
  return PERFQ_OK;
}

const char* perfq_kinetic_fit_backend(const perfq_kinetic_fit* fit) {
  return read_handle(fit, __func__, "",
                     [](const perfq_kinetic_fit& x) { return perfq::to_string(x.value.backend); });
}

perfq_status perfq_kinetic_fit_spatial(const perfq_kinetic_fit* fit, double* precision_cbf,
                                       double* precision_att, int* iterations, int* converged) {
  const char* function = "perfq_kinetic_fit_spatial";
  if (fit == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "fit: null pointer");
  const perfq::KineticFit& f = fit->value;
  if (precision_cbf != nullptr) *precision_cbf = f.spatial_precision_cbf;
  if (precision_att != nullptr) *precision_att = f.spatial_precision_att;
  if (iterations != nullptr) *iterations = f.spatial_iterations;
  if (converged != nullptr) *converged = f.spatial_converged ? 1 : 0;
  return PERFQ_OK;
}

}  // extern "C"
