// perfq.h: the per-thread message, status names and version, execution settings, protocol
// and physiology (with the compile-time check that perfq.h's status codes are perfq's).
#include "c_api/common.hpp"

using namespace perfq_c_api;  // the shared checks and conversions

// ---- one numbering of the per-voxel status codes -------------------------------------------

static_assert(PERFQ_VOXEL_OK == static_cast<int>(perfq::VoxelStatus::Ok), "status codes");
static_assert(PERFQ_VOXEL_OUTSIDE_MASK == static_cast<int>(perfq::VoxelStatus::OutsideMask),
              "status codes");
static_assert(PERFQ_VOXEL_M0_NOT_POSITIVE == static_cast<int>(perfq::VoxelStatus::M0NotPositive),
              "status codes");
static_assert(PERFQ_VOXEL_NONFINITE_INPUT == static_cast<int>(perfq::VoxelStatus::NonFiniteInput),
              "status codes");
static_assert(PERFQ_VOXEL_NONFINITE_RESULT == static_cast<int>(perfq::VoxelStatus::NonFiniteResult),
              "status codes");
static_assert(PERFQ_VOXEL_MAX_ITERATIONS == static_cast<int>(perfq::VoxelStatus::MaxIterations),
              "status codes");
static_assert(PERFQ_VOXEL_SINGULAR == static_cast<int>(perfq::VoxelStatus::Singular),
              "status codes");
static_assert(PERFQ_VOXEL_ATT_AT_BOUND == static_cast<int>(perfq::VoxelStatus::AttAtBound),
              "status codes");
static_assert(PERFQ_VOXEL_M0_TOO_LOW == static_cast<int>(perfq::VoxelStatus::M0TooLow),
              "status codes");
static_assert(PERFQ_VOXEL_M0_TOO_LOW + 1 == perfq::detail::kStatusCount, "status codes");

namespace {

thread_local std::string t_last_error;

}  // namespace

// ---- status, errors and version ---------------------------------------------------------

void perfq_c_api::set_last_error(const char* function, const char* message) noexcept {
  try {
    t_last_error = function;
    t_last_error += ": ";
    t_last_error += message;
  } catch (...) {
    t_last_error.clear();
  }
}

extern "C" {

const char* perfq_last_error(void) { return t_last_error.c_str(); }

const char* perfq_status_string(perfq_status status) {
  switch (status) {
    case PERFQ_OK:
      return "ok";
    case PERFQ_ERROR_INVALID_ARGUMENT:
      return "invalid argument";
    case PERFQ_ERROR_INPUT:
      return "input error";
    case PERFQ_ERROR_BACKEND:
      return "backend error";
    case PERFQ_ERROR_OUT_OF_MEMORY:
      return "out of memory";
    case PERFQ_ERROR_INTERNAL:
      return "internal error";
    case PERFQ_ERROR_IO:
      return "i/o error";
  }
  return "unknown status";
}

const char* perfq_version(void) { return perfq::version(); }

int perfq_c_api_version(void) { return PERFQ_C_API_VERSION; }

// ---- execution ----------------------------------------------------------------------------

perfq_status perfq_execution_create(perfq_execution** out) {
  return create_into("perfq_execution_create", out, [] { return new perfq_execution{}; });
}

void perfq_execution_destroy(perfq_execution* execution) { delete execution; }

perfq_status perfq_execution_set_backend(perfq_execution* execution, const char* backend) {
  return set_on("perfq_execution_set_backend", execution, [&](perfq::Execution& e) {
    require_pointer(backend, "backend");
    try {
      e.backend = perfq::parse_backend(backend);
    } catch (const perfq::InvalidArgument& error) {
      throw perfq::InvalidArgument(std::string("backend: ") + error.what());
    }
  });
}

perfq_status perfq_execution_set_threads(perfq_execution* execution, int threads) {
  return set_on("perfq_execution_set_threads", execution, [&](perfq::Execution& e) {
    require(threads >= 0, "threads", "must be 0 (every core) or positive");
    e.threads = threads;
  });
}

perfq_status perfq_execution_set_device(perfq_execution* execution, int device) {
  return set_on("perfq_execution_set_device", execution, [&](perfq::Execution& e) {
    require(device >= 0, "device", "must not be negative");
    e.device = device;
  });
}

perfq_status perfq_execution_set_device_bytes_limit(perfq_execution* execution, std::size_t bytes) {
  return set_on("perfq_execution_set_device_bytes_limit", execution,
                [&](perfq::Execution& e) { e.device_bytes_limit = bytes; });
}

perfq_status perfq_execution_set_max_chunk_voxels(perfq_execution* execution, std::size_t voxels) {
  return set_on("perfq_execution_set_max_chunk_voxels", execution,
                [&](perfq::Execution& e) { e.max_chunk_voxels = voxels; });
}

int perfq_cuda_available(void) { return perfq::cuda_available() ? 1 : 0; }

int perfq_cuda_compiled(void) { return perfq::cuda_compiled() ? 1 : 0; }

int perfq_cuda_device_count(void) { return perfq::cuda_device_count(); }

const char* perfq_cuda_device_name(int device) {
  const char* function = "perfq_cuda_device_name";
  thread_local std::string t_name;
  try {
    std::vector<std::string> names = perfq::cuda_device_names();
    if (device < 0 || static_cast<std::size_t>(device) >= names.size()) {
      set_last_error(function,
                     ("device: " + std::to_string(device) + " is not a usable CUDA device (" +
                      std::to_string(names.size()) + " found)")
                         .c_str());
      return nullptr;
    }
    t_name = std::move(names[static_cast<std::size_t>(device)]);
    return t_name.c_str();
  } catch (const std::exception& e) {
    set_last_error(function, e.what());
  } catch (...) {
    set_last_error(function, "unknown exception");
  }
  return nullptr;
}

const char* perfq_cuda_unavailable_reason(void) {
  thread_local std::string t_reason;
  try {
    t_reason = perfq::cuda_unavailable_reason();
    return t_reason.c_str();
  } catch (...) {
    set_last_error("perfq_cuda_unavailable_reason", "out of memory");
    return "the reason could not be determined (out of memory)";
  }
}

// ---- protocol -----------------------------------------------------------------------------

perfq_status perfq_protocol_create(perfq_protocol** out) {
  return create_into("perfq_protocol_create", out, [] { return new perfq_protocol{}; });
}

void perfq_protocol_destroy(perfq_protocol* protocol) { delete protocol; }

perfq_status perfq_protocol_set_labeling(perfq_protocol* protocol, perfq_labeling_type type) {
  return set_on("perfq_protocol_set_labeling", protocol,
                [&](perfq::AslProtocol& p) { p.labeling_type = labeling_from(type); });
}

perfq_status perfq_protocol_set_delays(perfq_protocol* protocol, const double* delays,
                                       std::size_t count) {
  return set_on("perfq_protocol_set_delays", protocol, [&](perfq::AslProtocol& p) {
    require(count > 0, "delays", "at least one delay is needed");
    std::vector<double> values = copy_list(delays, count, "delays");
    for (std::size_t i = 0; i < count; ++i) {
      if (!(std::isfinite(values[i]) && values[i] >= 0.0)) {
        throw perfq::InvalidArgument("delays[" + std::to_string(i) +
                                     "]: must be finite and not negative, got " +
                                     number_text(values[i]));
      }
    }
    p.post_labeling_delay = std::move(values);
  });
}

perfq_status perfq_protocol_set_labeling_durations(perfq_protocol* protocol,
                                                   const double* durations, std::size_t count) {
  return set_on("perfq_protocol_set_labeling_durations", protocol, [&](perfq::AslProtocol& p) {
    require(count > 0, "durations", "at least one labeling duration is needed");
    std::vector<double> values = copy_list(durations, count, "durations");
    for (std::size_t i = 0; i < count; ++i) {
      require_positive(values[i], ("durations[" + std::to_string(i) + "]").c_str());
    }
    p.labeling_duration = std::move(values);
  });
}

perfq_status perfq_protocol_set_bolus_cutoff(perfq_protocol* protocol, double ti1) {
  return set_on("perfq_protocol_set_bolus_cutoff", protocol, [&](perfq::AslProtocol& p) {
    require_positive(ti1, "ti1");
    p.bolus_cutoff_delay = ti1;
  });
}

perfq_status perfq_protocol_set_slice_timing(perfq_protocol* protocol, const double* slice_times,
                                             std::size_t count) {
  return set_on("perfq_protocol_set_slice_timing", protocol, [&](perfq::AslProtocol& p) {
    std::vector<double> values = copy_list(slice_times, count, "slice_times");
    for (std::size_t i = 0; i < count; ++i) {
      if (!(std::isfinite(values[i]) && values[i] >= 0.0)) {
        throw perfq::InvalidArgument("slice_times[" + std::to_string(i) +
                                     "]: must be finite and not negative, got " +
                                     number_text(values[i]));
      }
    }
    p.readout = count > 0 ? perfq::Readout::TwoD : perfq::Readout::ThreeD;
    p.slice_timing = std::move(values);
  });
}

perfq_status perfq_protocol_set_labeling_efficiency(perfq_protocol* protocol, double efficiency) {
  return set_on("perfq_protocol_set_labeling_efficiency", protocol, [&](perfq::AslProtocol& p) {
    if (!(efficiency > 0.0 && efficiency <= 1.0)) {
      throw perfq::InvalidArgument("efficiency: must be in (0, 1], got " + number_text(efficiency));
    }
    p.labeling_efficiency = efficiency;
  });
}

perfq_status perfq_protocol_set_background_suppression(perfq_protocol* protocol, int pulses,
                                                       double efficiency) {
  return set_on("perfq_protocol_set_background_suppression", protocol, [&](perfq::AslProtocol& p) {
    require(pulses >= 0, "pulses", "must not be negative");
    if (!(efficiency == 0.0 || (efficiency > 0.0 && efficiency <= 1.0))) {
      throw perfq::InvalidArgument("efficiency: must be 0 (from the pulses) or in (0, 1], got " +
                                   number_text(efficiency));
    }
    perfq::BackgroundSuppression bs;
    bs.enabled = pulses > 0 || efficiency > 0.0;
    bs.pulses = pulses;
    if (efficiency > 0.0) bs.efficiency = efficiency;
    p.background_suppression = bs;
  });
}

perfq_status perfq_protocol_set_m0_repetition_time(perfq_protocol* protocol,
                                                   double repetition_time) {
  return set_on("perfq_protocol_set_m0_repetition_time", protocol, [&](perfq::AslProtocol& p) {
    if (!(std::isfinite(repetition_time) && repetition_time >= 0.0)) {
      throw perfq::InvalidArgument("repetition_time: must be finite and not negative, got " +
                                   number_text(repetition_time));
    }
    if (repetition_time > 0.0) {
      p.m0_repetition_time = repetition_time;
    } else {
      p.m0_repetition_time.reset();
    }
  });
}

perfq_status perfq_protocol_set_field_strength(perfq_protocol* protocol, double tesla) {
  return set_on("perfq_protocol_set_field_strength", protocol, [&](perfq::AslProtocol& p) {
    require_positive(tesla, "tesla");
    p.magnetic_field_strength = tesla;
  });
}

perfq_status perfq_protocol_set_m0(perfq_protocol* protocol, perfq_m0_type type, double estimate) {
  return set_on("perfq_protocol_set_m0", protocol, [&](perfq::AslProtocol& p) {
    const perfq::M0Type t = m0_type_from(type);
    if (t == perfq::M0Type::Estimate) {
      require_positive(estimate, "estimate");
    } else if (estimate != 0.0) {
      throw perfq::InvalidArgument("estimate: only M0Type Estimate takes a value; give 0, got " +
                                   number_text(estimate));
    }
    p.m0_type = t;
    p.m0_estimate = t == perfq::M0Type::Estimate ? std::optional<double>(estimate) : std::nullopt;
  });
}

// ---- physiology ---------------------------------------------------------------------------

perfq_status perfq_physiology_create(double tesla, perfq_physiology** out) {
  return create_into("perfq_physiology_create", out, [&] {
    require_positive(tesla, "tesla");
    return new perfq_physiology{perfq::Physiology::at_field(tesla)};
  });
}

void perfq_physiology_destroy(perfq_physiology* physiology) { delete physiology; }

perfq_status perfq_physiology_set_partition_coefficient(perfq_physiology* physiology,
                                                        double lambda) {
  return set_on("perfq_physiology_set_partition_coefficient", physiology,
                [&](perfq::Physiology& p) {
                  require_finite(lambda, "lambda");
                  p.blood_brain_partition = lambda;
                });
}

perfq_status perfq_physiology_set_t1_blood(perfq_physiology* physiology, double t1) {
  return set_on("perfq_physiology_set_t1_blood", physiology, [&](perfq::Physiology& p) {
    require_finite(t1, "t1");
    p.t1_blood = t1;
  });
}

perfq_status perfq_physiology_set_t1_tissue(perfq_physiology* physiology, double t1) {
  return set_on("perfq_physiology_set_t1_tissue", physiology, [&](perfq::Physiology& p) {
    require_finite(t1, "t1");
    p.t1_tissue = t1;
  });
}

perfq_status perfq_physiology_set_labeling_efficiency(perfq_physiology* physiology, double alpha) {
  return set_on("perfq_physiology_set_labeling_efficiency", physiology, [&](perfq::Physiology& p) {
    require_finite(alpha, "alpha");
    p.labeling_efficiency = alpha;
  });
}

perfq_status perfq_physiology_set_bs_pulse_efficiency(perfq_physiology* physiology,
                                                      double efficiency) {
  return set_on("perfq_physiology_set_bs_pulse_efficiency", physiology, [&](perfq::Physiology& p) {
    require_finite(efficiency, "efficiency");
    p.background_suppression_pulse_efficiency = efficiency;
  });
}

perfq_status perfq_resolve_constants(const perfq_protocol* protocol,
                                     const perfq_physiology* physiology, perfq_constants* out) {
  const char* function = "perfq_resolve_constants";
  if (out == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "out: null pointer");
  return guarded(function, [&] {
    require_pointer(protocol, "protocol");
    const perfq::AslProtocol& p = protocol->value;
    copy_constants(perfq::resolve_constants(p, physiology_for(physiology, p)), out);
  });
}

perfq_status perfq_validate_protocol(const perfq_protocol* protocol, std::size_t volumes,
                                     std::size_t slices, const char* source) {
  return guarded("perfq_validate_protocol", [&] {
    require_pointer(protocol, "protocol");
    require(volumes > 0, "volumes", "must be at least 1");
    require(slices > 0, "slices", "must be at least 1");
    perfq::validate_protocol(protocol->value, volumes, slices,
                             source != nullptr ? std::string(source) : std::string());
  });
}

}  // extern "C"
