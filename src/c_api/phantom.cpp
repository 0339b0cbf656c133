// perfq.h: the synthetic phantom.
#include "c_api/common.hpp"

using namespace perfq_c_api;  // the shared checks and conversions

extern "C" {

// ---- phantom ------------------------------------------------------------------------------

perfq_status perfq_phantom_options_create(perfq_phantom_options** out) {
  return create_into("perfq_phantom_options_create", out,
                     [] { return new perfq_phantom_options{}; });
}

void perfq_phantom_options_destroy(perfq_phantom_options* options) { delete options; }

perfq_status perfq_phantom_options_set_delays(perfq_phantom_options* options, const double* delays,
                                              std::size_t count, std::size_t repeats) {
  return set_on("perfq_phantom_options_set_delays", options, [&](perfq::PhantomOptions& o) {
    require(count > 0, "delays", "at least one delay is needed");
    require(repeats > 0, "repeats", "must be at least 1");
    std::vector<double> values = copy_list(delays, count, "delays");
    for (std::size_t i = 0; i < count; ++i) {
      require_positive(values[i], ("delays[" + std::to_string(i) + "]").c_str());
    }
    o.delays = std::move(values);
    o.repeats = repeats;
  });
}

perfq_status perfq_phantom_options_set_grid(perfq_phantom_options* options,
                                            const std::size_t dims[3], double voxel_mm) {
  return set_on("perfq_phantom_options_set_grid", options, [&](perfq::PhantomOptions& o) {
    require_pointer(dims, "dims");
    for (int a = 0; a < 3; ++a) {
      if (dims[a] < 16 || dims[a] > 4096) {
        throw perfq::InvalidArgument("dims[" + std::to_string(a) + "]: must be 16 … 4096, got " +
                                     std::to_string(dims[a]));
      }
    }
    require_positive(voxel_mm, "voxel_mm");
    o.dims = {dims[0], dims[1], dims[2]};
    o.voxel_mm = voxel_mm;
  });
}

perfq_status perfq_phantom_options_set_noise(perfq_phantom_options* options, double snr,
                                             uint64_t seed) {
  return set_on("perfq_phantom_options_set_noise", options, [&](perfq::PhantomOptions& o) {
    if (!(std::isfinite(snr) && snr >= 0.0)) {
      throw perfq::InvalidArgument("snr: must be finite and not negative, got " + number_text(snr));
    }
    o.snr = snr;
    o.seed = seed;
  });
}

perfq_status perfq_phantom_options_set_labeling(perfq_phantom_options* options, int pasl,
                                                double duration) {
  return set_on("perfq_phantom_options_set_labeling", options, [&](perfq::PhantomOptions& o) {
    require_positive(duration, "duration");
    o.pasl = pasl != 0;
    if (o.pasl) {
      o.bolus_cutoff = duration;
    } else {
      o.labeling_duration = duration;
    }
  });
}

perfq_status perfq_phantom_options_set_lesions(perfq_phantom_options* options,
                                               std::size_t lesions) {
  return set_on("perfq_phantom_options_set_lesions", options,
                [&](perfq::PhantomOptions& o) { o.lesions = lesions; });
}

perfq_status perfq_phantom_options_set_time_encoded(perfq_phantom_options* options,
                                                    std::size_t size, const char* matrix_type,
                                                    const double* durations, std::size_t count) {
  return set_on("perfq_phantom_options_set_time_encoded", options, [&](perfq::PhantomOptions& o) {
    if (size == 0) {
      o.time_encoded = 0;
      o.time_encoded_type = perfq::TimeEncodedMatrixType::Hadamard;
      o.sub_bolus_durations.clear();
      return;
    }
    const perfq::TimeEncodedMatrixType type = matrix_type != nullptr
                                                  ? matrix_type_from(matrix_type)
                                                  : perfq::TimeEncodedMatrixType::Hadamard;
    const perfq::EncodingMatrix matrix = generated_matrix(type, size);
    std::vector<double> values =
        sub_bolus_durations(durations, count, count == 0 ? 0 : matrix.sub_boli());
    o.time_encoded = size;
    o.time_encoded_type = type;
    o.sub_bolus_durations = std::move(values);
  });
}

perfq_status perfq_phantom_create(const perfq_phantom_options* options, perfq_phantom** out) {
  return create_into("perfq_phantom_create", out, [&] {
    const perfq::PhantomOptions o = options != nullptr ? options->value : perfq::PhantomOptions{};
    auto* phantom = new perfq_phantom{perfq::make_phantom(o), {}};
    try {
      phantom->context.reserve(phantom->value.context.size());
      for (perfq::VolumeType t : phantom->value.context) {
        switch (t) {
          case perfq::VolumeType::Control:
            phantom->context.push_back(PERFQ_VOLUME_CONTROL);
            break;
          case perfq::VolumeType::Label:
            phantom->context.push_back(PERFQ_VOLUME_LABEL);
            break;
          case perfq::VolumeType::M0Scan:
            phantom->context.push_back(PERFQ_VOLUME_M0SCAN);
            break;
          case perfq::VolumeType::DeltaM:
            phantom->context.push_back(PERFQ_VOLUME_DELTAM);
            break;
          case perfq::VolumeType::Cbf:
            phantom->context.push_back(PERFQ_VOLUME_CBF);
            break;
          case perfq::VolumeType::NoRf:
            phantom->context.push_back(PERFQ_VOLUME_NORF);
            break;
        }
      }
    } catch (...) {
      delete phantom;
      throw;
    }
    return phantom;
  });
}

void perfq_phantom_destroy(perfq_phantom* phantom) { delete phantom; }

perfq_status perfq_phantom_geometry(const perfq_phantom* phantom, std::size_t dims[3],
                                    double spacing[3]) {
  const char* function = "perfq_phantom_geometry";
  if (phantom == nullptr) {
    return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "phantom: null pointer");
  }
  if (dims == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "dims: null pointer");
  const perfq::Geometry& g = phantom->value.m0.geometry();
  for (int a = 0; a < 3; ++a) {
    dims[a] = g.dims[a];
    if (spacing != nullptr) spacing[a] = g.spacing[a];
  }
  return PERFQ_OK;
}

const float* perfq_phantom_series(const perfq_phantom* phantom, std::size_t* volumes) {
  return read_handle(phantom, __func__, nullptr, [&](const perfq_phantom& x) {
    if (volumes != nullptr) *volumes = x.value.asl.volumes();
    return x.value.asl.data();
  });
}

const std::int32_t* perfq_phantom_context(const perfq_phantom* phantom) {
  return read_handle(phantom, __func__, nullptr,
                     [](const perfq_phantom& x) { return x.context.data(); });
}

perfq_status perfq_phantom_protocol(const perfq_phantom* phantom, perfq_protocol** out) {
  return create_into("perfq_phantom_protocol", out, [&] {
    require_pointer(phantom, "phantom");
    return new perfq_protocol{phantom->value.protocol};
  });
}

const float* perfq_phantom_map_data(const perfq_phantom* phantom, perfq_phantom_map which) {
  const char* function = __func__;
  return read_handle(phantom, function, nullptr, [&](const perfq_phantom& x) -> const float* {
    const perfq::Phantom& p = x.value;
    switch (which) {
      case PERFQ_PHANTOM_M0:
        return p.m0.data();
      case PERFQ_PHANTOM_CBF:
        return p.cbf.data();
      case PERFQ_PHANTOM_ATT:
        return p.att.data();
      case PERFQ_PHANTOM_BORDER_DISTANCE:
        return p.border_distance.data();
    }
    set_last_error(function, "which: not a perfq_phantom_map");
    return nullptr;
  });
}

const uint8_t* perfq_phantom_mask_data(const perfq_phantom* phantom, perfq_phantom_mask which) {
  const char* function = __func__;
  return read_handle(phantom, function, nullptr, [&](const perfq_phantom& x) -> const uint8_t* {
    const perfq::Phantom& p = x.value;
    switch (which) {
      case PERFQ_PHANTOM_TISSUE:
        return p.tissue.data();
      case PERFQ_PHANTOM_BRAIN:
        return p.brain.data();
      case PERFQ_PHANTOM_BORDER_ZONE:
        return p.border_zone.data();
      case PERFQ_PHANTOM_VENTRICLES:
        return p.ventricles.data();
      case PERFQ_PHANTOM_LESIONS:
        return p.lesions.data();
    }
    set_last_error(function, "which: not a perfq_phantom_mask");
    return nullptr;
  });
}

const std::int32_t* perfq_phantom_territories(const perfq_phantom* phantom) {
  return read_handle(phantom, __func__, nullptr,
                     [](const perfq_phantom& x) { return x.value.territories.data(); });
}

perfq_status perfq_phantom_time_encoding(const perfq_phantom* phantom, perfq_time_encoding** out) {
  return create_into("perfq_phantom_time_encoding", out, [&] {
    require_pointer(phantom, "phantom");
    require(phantom->value.time_encoding.has_value(), "phantom",
            "not time-encoded (see perfq_phantom_options_set_time_encoded)");
    return new_time_encoding(*phantom->value.time_encoding);
  });
}

}  // extern "C"
