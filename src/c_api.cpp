// The C ABI (include/perfq/perfq.h): handles wrapping the C++ values, argument checks that
// name the argument at fault, and one guard per entry point that turns every exception into
// a status and a per-thread message. No arithmetic of its own: results are the C++ API's.
#include <perfq/perfq.h>

#include <perfq/asl_series.hpp>
#include <perfq/calibration.hpp>
#include <perfq/cbf.hpp>
#include <perfq/distance.hpp>
#include <perfq/errors.hpp>
#include <perfq/execution.hpp>
#include <perfq/kinetic.hpp>
#include <perfq/phantom.hpp>
#include <perfq/protocol.hpp>
#include <perfq/pvc.hpp>
#include <perfq/stats.hpp>
#include <perfq/time_encoded.hpp>
#include <perfq/version.hpp>
#include <perfq/watershed.hpp>

#include "c_api_internal.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

// ---- one numbering of the per-voxel status codes -------------------------------------------

static_assert(PERFQ_VOXEL_OK == static_cast<int>(perfq::VoxelStatus::Ok), "status codes");
static_assert(PERFQ_VOXEL_OUTSIDE_MASK == static_cast<int>(perfq::VoxelStatus::OutsideMask),
              "status codes");
static_assert(PERFQ_VOXEL_M0_NOT_POSITIVE == static_cast<int>(perfq::VoxelStatus::M0NotPositive),
              "status codes");
static_assert(PERFQ_VOXEL_NONFINITE_INPUT == static_cast<int>(perfq::VoxelStatus::NonFiniteInput),
              "status codes");
static_assert(PERFQ_VOXEL_NONFINITE_RESULT ==
                  static_cast<int>(perfq::VoxelStatus::NonFiniteResult),
              "status codes");
static_assert(PERFQ_VOXEL_MAX_ITERATIONS == static_cast<int>(perfq::VoxelStatus::MaxIterations),
              "status codes");
static_assert(PERFQ_VOXEL_SINGULAR == static_cast<int>(perfq::VoxelStatus::Singular),
              "status codes");
static_assert(PERFQ_VOXEL_ATT_AT_BOUND == static_cast<int>(perfq::VoxelStatus::AttAtBound),
              "status codes");
static_assert(PERFQ_VOXEL_ATT_AT_BOUND + 1 == perfq::detail::kStatusCount, "status codes");

// ---- handles: the C++ values behind the opaque C types ---------------------------------

struct perfq_protocol {
  perfq::AslProtocol value;
};
struct perfq_physiology {
  perfq::Physiology value;
};
struct perfq_prepared {
  perfq::PreparedAsl value;
};
struct perfq_cbf_maps {
  perfq::CbfMaps value;
};
struct perfq_kinetic_options {
  perfq::KineticOptions value;
};
struct perfq_kinetic_fit {
  perfq::KineticFit value;
};
struct perfq_border_zones {
  perfq::BorderZones value;
};
struct perfq_region_table {
  perfq::RegionTable value;
};
struct perfq_mask {
  perfq::Mask value;
};
struct perfq_map {
  perfq::Volume<float> value;
};
struct perfq_label_image {
  perfq::Volume<std::int32_t> value;
};
struct perfq_double_map {
  perfq::Volume<double> value;
};
struct perfq_time_encoding {
  perfq::TimeEncoding value;
  std::vector<std::int32_t> matrix;  // value.matrix.entries as int32_t, for the C accessor
};
struct perfq_timing_options {
  perfq::TimingOptions value;
};
struct perfq_stats_options {
  perfq::StatsOptions value;
};
struct perfq_cap_options {
  perfq::CapOptions value;
};
struct perfq_pvc_options {
  perfq::PvcOptions value;
};
struct perfq_pvc_maps {
  perfq::PvcMaps value;
};
struct perfq_phantom_options {
  perfq::PhantomOptions value;
};
struct perfq_phantom {
  perfq::Phantom value;
  std::vector<std::int32_t> context;  // value.context as perfq_volume_type codes
};

namespace {

thread_local std::string t_last_error;

using perfq_c_api::execution_for;
using perfq_c_api::fail;
using perfq_c_api::guarded;
using perfq_c_api::set_last_error;

/// Throws InvalidArgument with "<what>: <problem>" unless `ok`.
void require(bool ok, const char* what, const char* problem) {
  if (!ok) throw perfq::InvalidArgument(std::string(what) + ": " + problem);
}

template <class T>
void require_pointer(const T* pointer, const char* what) {
  require(pointer != nullptr, what, "null pointer");
}

/// Accessors return a pointer: NULL (with the message set) for a NULL handle.
template <class Handle>
bool accessor_ok(const Handle* handle, const char* function) noexcept {
  if (handle != nullptr) return true;
  set_last_error(function, "handle: null pointer");
  return false;
}

std::string number_text(double value) {
  std::ostringstream s;
  s << value;
  return s.str();
}

void require_positive(double value, const char* what) {
  if (!(std::isfinite(value) && value > 0.0)) {
    throw perfq::InvalidArgument(std::string(what) + ": must be positive and finite, got " +
                                 number_text(value));
  }
}

void require_finite(double value, const char* what) {
  if (!std::isfinite(value)) {
    throw perfq::InvalidArgument(std::string(what) + ": must be finite, got " + number_text(value));
  }
}

/// A grid from the C arrays; checks that the sizes are positive and that `volumes` volumes
/// of it can be addressed.
perfq::Geometry make_geometry(const std::size_t* dims, const double* spacing,
                              std::size_t volumes = 1) {
  require_pointer(dims, "dims");
  perfq::Geometry g;
  std::size_t total = volumes;
  for (int a = 0; a < 3; ++a) {
    if (dims[a] == 0) {
      throw perfq::InvalidArgument("dims[" + std::to_string(a) + "]: must be at least 1");
    }
    if (total > std::numeric_limits<std::size_t>::max() / sizeof(double) / dims[a]) {
      throw perfq::InvalidArgument("dims: the image is too large to address");
    }
    total *= dims[a];
    g.dims[a] = dims[a];
  }
  if (spacing != nullptr) {
    for (int a = 0; a < 3; ++a) {
      require_positive(spacing[a], ("spacing[" + std::to_string(a) + "]").c_str());
      g.spacing[a] = spacing[a];
    }
  }
  return g;
}

template <class T>
perfq::View<const T> view_of(const T* data, const perfq::Geometry& g, std::size_t volumes = 1) {
  return perfq::View<const T>{data, g, volumes};
}

template <class T>
std::optional<perfq::View<const T>> optional_view(const T* data, const perfq::Geometry& g) {
  if (data == nullptr) return std::nullopt;
  return view_of(data, g);
}

perfq::M0Source m0_source(const float* m0, double m0_value, const perfq::Geometry& g) {
  if (m0 != nullptr) return perfq::M0Source::from_image(view_of(m0, g));
  if (!(std::isfinite(m0_value) && m0_value > 0.0)) {
    throw perfq::InvalidArgument("m0_value: must be positive and finite when m0 is NULL, got " +
                                 number_text(m0_value));
  }
  return perfq::M0Source::from_value(m0_value);
}

perfq::Physiology physiology_for(const perfq_physiology* physiology,
                                 const perfq::AslProtocol& protocol) {
  if (physiology != nullptr) return physiology->value;
  return perfq::Physiology::at_field(protocol.magnetic_field_strength);
}

std::vector<double> copy_list(const double* values, std::size_t count, const char* what) {
  require(count == 0 || values != nullptr, what, "null pointer with a nonzero count");
  return std::vector<double>(values, values + count);
}

void copy_constants(const perfq::ResolvedConstants& c, perfq_constants* out) {
  out->blood_brain_partition = c.blood_brain_partition;
  out->t1_blood = c.t1_blood;
  out->t1_tissue = c.t1_tissue;
  out->labeling_efficiency = c.labeling_efficiency;
  out->background_suppression_factor = c.background_suppression_factor;
  out->effective_labeling_efficiency = c.effective_labeling_efficiency;
  out->m0_scale = c.m0_scale;
}

/// The C++ labeling type of a C value (anything else is rejected, naming the argument `type`).
perfq::LabelingType labeling_from(perfq_labeling_type type) {
  switch (type) {
    case PERFQ_LABELING_PCASL:
      return perfq::LabelingType::Pcasl;
    case PERFQ_LABELING_PASL:
      return perfq::LabelingType::Pasl;
    case PERFQ_LABELING_CASL:
      return perfq::LabelingType::Casl;
  }
  throw perfq::InvalidArgument("type: " + std::to_string(static_cast<int>(type)) +
                               " is not a perfq_labeling_type (0 PCASL, 1 PASL, 2 CASL)");
}

/// The C++ M0 type of a C value (anything else is rejected, naming the argument `type`).
perfq::M0Type m0_type_from(perfq_m0_type type) {
  switch (type) {
    case PERFQ_M0_SEPARATE:
      return perfq::M0Type::Separate;
    case PERFQ_M0_INCLUDED:
      return perfq::M0Type::Included;
    case PERFQ_M0_ESTIMATE:
      return perfq::M0Type::Estimate;
    case PERFQ_M0_ABSENT:
      return perfq::M0Type::Absent;
  }
  throw perfq::InvalidArgument("type: " + std::to_string(static_cast<int>(type)) +
                               " is not a perfq_m0_type (0 Separate, 1 Included, 2 Estimate, "
                               "3 Absent)");
}

/// The C++ reference tissue of a C value (anything else is rejected, naming `tissue`).
perfq::ReferenceTissue reference_tissue_from(perfq_reference_tissue tissue) {
  switch (tissue) {
    case PERFQ_REFERENCE_CSF:
      return perfq::ReferenceTissue::Csf;
    case PERFQ_REFERENCE_WM:
      return perfq::ReferenceTissue::WhiteMatter;
    case PERFQ_REFERENCE_GM:
      return perfq::ReferenceTissue::GreyMatter;
  }
  throw perfq::InvalidArgument("tissue: " + std::to_string(static_cast<int>(tissue)) +
                               " is not a perfq_reference_tissue (0 CSF, 1 WM, 2 GM)");
}

/// The C++ constants of a C struct, for the computations that take them: the values they
/// use must be positive and finite (they divide or scale the result).
perfq::ResolvedConstants constants_from(const perfq_constants* c) {
  require_pointer(c, "constants");
  require_positive(c->blood_brain_partition, "constants->blood_brain_partition");
  require_positive(c->t1_blood, "constants->t1_blood");
  require_positive(c->effective_labeling_efficiency, "constants->effective_labeling_efficiency");
  require_positive(c->m0_scale, "constants->m0_scale");
  perfq::ResolvedConstants r;
  r.blood_brain_partition = c->blood_brain_partition;
  r.t1_blood = c->t1_blood;
  r.t1_tissue = c->t1_tissue;
  r.labeling_efficiency = c->labeling_efficiency;
  r.background_suppression_factor = c->background_suppression_factor;
  r.effective_labeling_efficiency = c->effective_labeling_efficiency;
  r.m0_scale = c->m0_scale;
  return r;
}

/// The C++ connectivity of a C value (6 or 26; anything else is rejected, naming the argument).
perfq::Connectivity connectivity_from(perfq_connectivity connectivity) {
  switch (connectivity) {
    case PERFQ_CONNECTIVITY_6:
      return perfq::Connectivity::Faces6;
    case PERFQ_CONNECTIVITY_26:
      return perfq::Connectivity::Full26;
  }
  throw perfq::InvalidArgument("connectivity: " + std::to_string(static_cast<int>(connectivity)) +
                               " is not a perfq_connectivity (6 or 26)");
}

/// Creates a handle for `out`: sets *out to NULL first, so that a failure leaves no
/// dangling value, then to the new handle.
template <class Handle, class Make>
perfq_status create_into(const char* function, Handle** out, Make&& make) noexcept {
  if (out == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "out: null pointer");
  *out = nullptr;
  return guarded(function, [&] { *out = make(); });
}

/// The C++ volume types of `volumes` perfq_volume_type codes (anything else is rejected,
/// naming the entry).
std::vector<perfq::VolumeType> volume_types(const std::int32_t* context, std::size_t volumes) {
  require_pointer(context, "context");
  std::vector<perfq::VolumeType> types(volumes);
  for (std::size_t v = 0; v < volumes; ++v) {
    switch (context[v]) {
      case PERFQ_VOLUME_CONTROL:
        types[v] = perfq::VolumeType::Control;
        break;
      case PERFQ_VOLUME_LABEL:
        types[v] = perfq::VolumeType::Label;
        break;
      case PERFQ_VOLUME_M0SCAN:
        types[v] = perfq::VolumeType::M0Scan;
        break;
      case PERFQ_VOLUME_DELTAM:
        types[v] = perfq::VolumeType::DeltaM;
        break;
      case PERFQ_VOLUME_CBF:
        types[v] = perfq::VolumeType::Cbf;
        break;
      case PERFQ_VOLUME_NORF:
        types[v] = perfq::VolumeType::NoRf;
        break;
      default:
        throw perfq::InvalidArgument("context[" + std::to_string(v) +
                                     "]: " + std::to_string(context[v]) +
                                     " is not a perfq_volume_type (0 … 5)");
    }
  }
  return types;
}

/// The matrix type named by `text` ("Hadamard", "natural", "Walsh"), the argument named.
perfq::TimeEncodedMatrixType matrix_type_from(const char* text) {
  require_pointer(text, "matrix_type");
  try {
    return perfq::parse_time_encoded_matrix_type(text);
  } catch (const perfq::InvalidArgument& error) {
    throw perfq::InvalidArgument(std::string("matrix_type: ") + error.what());
  }
}

/// The generated matrix of `type` and `size`; an unsupported size is named as the argument.
perfq::EncodingMatrix generated_matrix(perfq::TimeEncodedMatrixType type, std::size_t size) {
  try {
    return perfq::encoding_matrix(type, size);
  } catch (const perfq::InvalidArgument& error) {
    throw perfq::InvalidArgument(std::string("size: ") + error.what());
  }
}

/// The sub-bolus durations of a C call: `count` values, each positive and finite; `expected`
/// of them when nonzero.
std::vector<double> sub_bolus_durations(const double* durations, std::size_t count,
                                        std::size_t expected) {
  if (expected != 0 && count != expected) {
    throw perfq::InvalidArgument("count: " + std::to_string(count) +
                                 " durations; the encoding has " + std::to_string(expected) +
                                 " sub-boli (one duration each)");
  }
  std::vector<double> values = copy_list(durations, count, "durations");
  for (std::size_t k = 0; k < count; ++k) {
    require_positive(values[k], ("durations[" + std::to_string(k) + "]").c_str());
  }
  return values;
}

/// A time-encoding handle: the encoding with its timing, and the int32 copy of its matrix.
perfq_time_encoding* new_time_encoding(perfq::TimeEncoding encoding) {
  auto handle = std::make_unique<perfq_time_encoding>();
  handle->matrix.assign(encoding.matrix.entries.begin(), encoding.matrix.entries.end());
  handle->value = std::move(encoding);
  return handle.release();
}

/// An encoding of `matrix` with C-checked timing (make_time_encoding then has nothing to refuse).
perfq_time_encoding* time_encoding_of(perfq::EncodingMatrix matrix, const double* durations,
                                      std::size_t count, double final_pld, std::string source) {
  const std::vector<double> values = sub_bolus_durations(durations, count, matrix.sub_boli());
  require_positive(final_pld, "final_pld");
  perfq::TimeEncoding e = perfq::make_time_encoding(std::move(matrix), values, final_pld);
  e.matrix_source = std::move(source);
  return new_time_encoding(std::move(e));
}

/// Runs a setter on a non-NULL handle.
template <class Handle, class Set>
perfq_status set_on(const char* function, Handle* handle, Set&& set) noexcept {
  if (handle == nullptr) {
    return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "handle: null pointer");
  }
  return guarded(function, [&] { set(handle->value); });
}

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

perfq_status perfq_protocol_set_m0(perfq_protocol* protocol, perfq_m0_type type,
                                   double estimate) {
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
  if (!accessor_ok(prepared, "perfq_prepared_delta_m")) return nullptr;
  if (volumes != nullptr) *volumes = prepared->value.delta_m.volumes();
  return prepared->value.delta_m.data();
}

const double* perfq_prepared_delays(const perfq_prepared* prepared) {
  if (!accessor_ok(prepared, "perfq_prepared_delays")) return nullptr;
  return prepared->value.post_labeling_delay.data();
}

const double* perfq_prepared_labeling_durations(const perfq_prepared* prepared) {
  if (!accessor_ok(prepared, "perfq_prepared_labeling_durations")) return nullptr;
  return prepared->value.labeling_duration.data();
}

const std::size_t* perfq_prepared_repeats(const perfq_prepared* prepared) {
  if (!accessor_ok(prepared, "perfq_prepared_repeats")) return nullptr;
  return prepared->value.repeats.data();
}

const float* perfq_prepared_m0(const perfq_prepared* prepared) {
  if (!accessor_ok(prepared, "perfq_prepared_m0")) return nullptr;
  return prepared->value.m0 ? prepared->value.m0->data() : nullptr;
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
    const perfq::DeltaMSign r = perfq::check_delta_m_sign(view_of(delta_m, g, volumes),
                                                          optional_view(m0, g),
                                                          optional_view(mask, g));
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
  if (!accessor_ok(encoding, "perfq_time_encoding_cycles")) return 0;
  return encoding->value.matrix.cycles;
}

std::size_t perfq_time_encoding_sub_boli(const perfq_time_encoding* encoding) {
  if (!accessor_ok(encoding, "perfq_time_encoding_sub_boli")) return 0;
  return encoding->value.matrix.sub_boli();
}

const std::int32_t* perfq_time_encoding_matrix(const perfq_time_encoding* encoding) {
  if (!accessor_ok(encoding, "perfq_time_encoding_matrix")) return nullptr;
  return encoding->matrix.data();
}

const double* perfq_time_encoding_sub_bolus_durations(const perfq_time_encoding* encoding) {
  if (!accessor_ok(encoding, "perfq_time_encoding_sub_bolus_durations")) return nullptr;
  return encoding->value.sub_bolus_duration.data();
}

const double* perfq_time_encoding_sub_bolus_delays(const perfq_time_encoding* encoding) {
  if (!accessor_ok(encoding, "perfq_time_encoding_sub_bolus_delays")) return nullptr;
  return encoding->value.sub_bolus_pld.data();
}

const char* perfq_time_encoding_source(const perfq_time_encoding* encoding) {
  if (!accessor_ok(encoding, "perfq_time_encoding_source")) return "";
  return encoding->value.matrix_source.c_str();
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
  if (!accessor_ok(maps, "perfq_cbf_maps_voxel_count")) return 0;
  return maps->value.cbf.size();
}

const float* perfq_cbf_maps_cbf(const perfq_cbf_maps* maps) {
  if (!accessor_ok(maps, "perfq_cbf_maps_cbf")) return nullptr;
  return maps->value.cbf.data();
}

const uint8_t* perfq_cbf_maps_status(const perfq_cbf_maps* maps) {
  if (!accessor_ok(maps, "perfq_cbf_maps_status")) return nullptr;
  return maps->value.status.data();
}

perfq_status perfq_cbf_maps_constants(const perfq_cbf_maps* maps, perfq_constants* out) {
  const char* function = "perfq_cbf_maps_constants";
  if (maps == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "maps: null pointer");
  if (out == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "out: null pointer");
  copy_constants(maps->value.constants, out);
  return PERFQ_OK;
}

const char* perfq_cbf_maps_backend(const perfq_cbf_maps* maps) {
  if (!accessor_ok(maps, "perfq_cbf_maps_backend")) return "";
  return perfq::to_string(maps->value.backend);
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
  if (!accessor_ok(fit, "perfq_kinetic_fit_voxel_count")) return 0;
  return fit->value.cbf.size();
}

const float* perfq_kinetic_fit_map(const perfq_kinetic_fit* fit, perfq_kinetic_map which) {
  const char* function = "perfq_kinetic_fit_map";
  if (!accessor_ok(fit, function)) return nullptr;
  const perfq::KineticFit& f = fit->value;
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
}

const uint8_t* perfq_kinetic_fit_status(const perfq_kinetic_fit* fit) {
  if (!accessor_ok(fit, "perfq_kinetic_fit_status")) return nullptr;
  return fit->value.status.data();
}

const uint8_t* perfq_kinetic_fit_iterations(const perfq_kinetic_fit* fit) {
  if (!accessor_ok(fit, "perfq_kinetic_fit_iterations")) return nullptr;
  return fit->value.iterations.data();
}

perfq_status perfq_kinetic_fit_constants(const perfq_kinetic_fit* fit, perfq_constants* out) {
  const char* function = "perfq_kinetic_fit_constants";
  if (fit == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "fit: null pointer");
  if (out == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "out: null pointer");
  copy_constants(fit->value.constants, out);
  return PERFQ_OK;
}

const char* perfq_kinetic_fit_backend(const perfq_kinetic_fit* fit) {
  if (!accessor_ok(fit, "perfq_kinetic_fit_backend")) return "";
  return perfq::to_string(fit->value.backend);
}

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
  if (!accessor_ok(zones, "perfq_border_zones_voxel_count")) return 0;
  return zones->value.mask.size();
}

const uint8_t* perfq_border_zones_mask(const perfq_border_zones* zones) {
  if (!accessor_ok(zones, "perfq_border_zones_mask")) return nullptr;
  return zones->value.mask.data();
}

const std::int32_t* perfq_border_zones_pairs(const perfq_border_zones* zones) {
  if (!accessor_ok(zones, "perfq_border_zones_pairs")) return nullptr;
  return zones->value.pairs.data();
}

const std::int32_t* perfq_border_zones_territories(const perfq_border_zones* zones,
                                                   std::size_t* count) {
  if (!accessor_ok(zones, "perfq_border_zones_territories")) return nullptr;
  if (count != nullptr) *count = zones->value.territories.size();
  return zones->value.territories.data();
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
  if (!accessor_ok(mask, "perfq_mask_voxel_count")) return 0;
  return mask->value.size();
}

const uint8_t* perfq_mask_data(const perfq_mask* mask) {
  if (!accessor_ok(mask, "perfq_mask_data")) return nullptr;
  return mask->value.data();
}

void perfq_map_destroy(perfq_map* map) { delete map; }

std::size_t perfq_map_voxel_count(const perfq_map* map) {
  if (!accessor_ok(map, "perfq_map_voxel_count")) return 0;
  return map->value.size();
}

const float* perfq_map_data(const perfq_map* map) {
  if (!accessor_ok(map, "perfq_map_data")) return nullptr;
  return map->value.data();
}

void perfq_label_image_destroy(perfq_label_image* image) { delete image; }

std::size_t perfq_label_image_voxel_count(const perfq_label_image* image) {
  if (!accessor_ok(image, "perfq_label_image_voxel_count")) return 0;
  return image->value.size();
}

const std::int32_t* perfq_label_image_data(const perfq_label_image* image) {
  if (!accessor_ok(image, "perfq_label_image_data")) return nullptr;
  return image->value.data();
}

void perfq_double_map_destroy(perfq_double_map* map) { delete map; }

std::size_t perfq_double_map_voxel_count(const perfq_double_map* map) {
  if (!accessor_ok(map, "perfq_double_map_voxel_count")) return 0;
  return map->value.size();
}

const double* perfq_double_map_data(const perfq_double_map* map) {
  if (!accessor_ok(map, "perfq_double_map_data")) return nullptr;
  return map->value.data();
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
  if (!accessor_ok(table, "perfq_region_table_size")) return 0;
  return table->value.regions.size();
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
  if (!accessor_ok(table, "perfq_region_table_percentile_count")) return 0;
  return table->value.percentiles.size();
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
  if (!accessor_ok(table, "perfq_region_table_is_weighted")) return 0;
  return table->value.weighted ? 1 : 0;
}

int perfq_region_table_is_paired(const perfq_region_table* table) {
  if (!accessor_ok(table, "perfq_region_table_is_paired")) return 0;
  return table->value.paired ? 1 : 0;
}

double perfq_region_table_voxel_volume_ml(const perfq_region_table* table) {
  if (!accessor_ok(table, "perfq_region_table_voxel_volume_ml")) return 0.0;
  return table->value.voxel_volume_ml;
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
  if (!accessor_ok(maps, "perfq_pvc_maps_voxel_count")) return 0;
  return maps->value.cbf_gm.size();
}

const float* perfq_pvc_maps_cbf_gm(const perfq_pvc_maps* maps) {
  if (!accessor_ok(maps, "perfq_pvc_maps_cbf_gm")) return nullptr;
  return maps->value.cbf_gm.data();
}

const float* perfq_pvc_maps_cbf_wm(const perfq_pvc_maps* maps) {
  if (!accessor_ok(maps, "perfq_pvc_maps_cbf_wm")) return nullptr;
  return maps->value.cbf_wm.data();
}

const uint8_t* perfq_pvc_maps_valid(const perfq_pvc_maps* maps) {
  if (!accessor_ok(maps, "perfq_pvc_maps_valid")) return nullptr;
  return maps->value.valid.data();
}

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
  if (!accessor_ok(phantom, "perfq_phantom_series")) return nullptr;
  if (volumes != nullptr) *volumes = phantom->value.asl.volumes();
  return phantom->value.asl.data();
}

const std::int32_t* perfq_phantom_context(const perfq_phantom* phantom) {
  if (!accessor_ok(phantom, "perfq_phantom_context")) return nullptr;
  return phantom->context.data();
}

perfq_status perfq_phantom_protocol(const perfq_phantom* phantom, perfq_protocol** out) {
  return create_into("perfq_phantom_protocol", out, [&] {
    require_pointer(phantom, "phantom");
    return new perfq_protocol{phantom->value.protocol};
  });
}

const float* perfq_phantom_map_data(const perfq_phantom* phantom, perfq_phantom_map which) {
  const char* function = "perfq_phantom_map_data";
  if (!accessor_ok(phantom, function)) return nullptr;
  const perfq::Phantom& p = phantom->value;
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
}

const uint8_t* perfq_phantom_mask_data(const perfq_phantom* phantom, perfq_phantom_mask which) {
  const char* function = "perfq_phantom_mask_data";
  if (!accessor_ok(phantom, function)) return nullptr;
  const perfq::Phantom& p = phantom->value;
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
}

const std::int32_t* perfq_phantom_territories(const perfq_phantom* phantom) {
  if (!accessor_ok(phantom, "perfq_phantom_territories")) return nullptr;
  return phantom->value.territories.data();
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
