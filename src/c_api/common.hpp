// Internal to perfq's C ABI (src/c_api/*.cpp): the handles wrapping the C++ values, and the
// argument checks and conversions every entry point shares (they name the argument at fault).
#pragma once

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

namespace perfq_c_api {

/// Throws InvalidArgument with "<what>: <problem>" unless `ok`.
inline void require(bool ok, const char* what, const char* problem) {
  if (!ok) throw perfq::InvalidArgument(std::string(what) + ": " + problem);
}

template <class T>
void require_pointer(const T* pointer, const char* what) {
  require(pointer != nullptr, what, "null pointer");
}

inline std::string number_text(double value) {
  std::ostringstream s;
  s << value;
  return s.str();
}

inline void require_positive(double value, const char* what) {
  if (!(std::isfinite(value) && value > 0.0)) {
    throw perfq::InvalidArgument(std::string(what) + ": must be positive and finite, got " +
                                 number_text(value));
  }
}

inline void require_finite(double value, const char* what) {
  if (!std::isfinite(value)) {
    throw perfq::InvalidArgument(std::string(what) + ": must be finite, got " + number_text(value));
  }
}

/// A grid from the C arrays; checks that the sizes are positive and that `volumes` volumes
/// of it can be addressed.
inline perfq::Geometry make_geometry(const std::size_t* dims, const double* spacing,
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

inline perfq::M0Source m0_source(const float* m0, double m0_value, const perfq::Geometry& g) {
  if (m0 != nullptr) return perfq::M0Source::from_image(view_of(m0, g));
  if (!(std::isfinite(m0_value) && m0_value > 0.0)) {
    throw perfq::InvalidArgument("m0_value: must be positive and finite when m0 is NULL, got " +
                                 number_text(m0_value));
  }
  return perfq::M0Source::from_value(m0_value);
}

inline perfq::Physiology physiology_for(const perfq_physiology* physiology,
                                        const perfq::AslProtocol& protocol) {
  if (physiology != nullptr) return physiology->value;
  return perfq::Physiology::at_field(protocol.magnetic_field_strength);
}

inline std::vector<double> copy_list(const double* values, std::size_t count, const char* what) {
  require(count == 0 || values != nullptr, what, "null pointer with a nonzero count");
  return std::vector<double>(values, values + count);
}

inline void copy_constants(const perfq::ResolvedConstants& c, perfq_constants* out) {
  out->blood_brain_partition = c.blood_brain_partition;
  out->t1_blood = c.t1_blood;
  out->t1_tissue = c.t1_tissue;
  out->labeling_efficiency = c.labeling_efficiency;
  out->background_suppression_factor = c.background_suppression_factor;
  out->effective_labeling_efficiency = c.effective_labeling_efficiency;
  out->m0_scale = c.m0_scale;
}

/// The C++ labeling type of a C value (anything else is rejected, naming the argument `type`).
inline perfq::LabelingType labeling_from(perfq_labeling_type type) {
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
inline perfq::M0Type m0_type_from(perfq_m0_type type) {
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
inline perfq::ReferenceTissue reference_tissue_from(perfq_reference_tissue tissue) {
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
inline perfq::ResolvedConstants constants_from(const perfq_constants* c) {
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
inline perfq::Connectivity connectivity_from(perfq_connectivity connectivity) {
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
inline std::vector<perfq::VolumeType> volume_types(const std::int32_t* context,
                                                   std::size_t volumes) {
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
inline perfq::TimeEncodedMatrixType matrix_type_from(const char* text) {
  require_pointer(text, "matrix_type");
  try {
    return perfq::parse_time_encoded_matrix_type(text);
  } catch (const perfq::InvalidArgument& error) {
    throw perfq::InvalidArgument(std::string("matrix_type: ") + error.what());
  }
}

/// The generated matrix of `type` and `size`; an unsupported size is named as the argument.
inline perfq::EncodingMatrix generated_matrix(perfq::TimeEncodedMatrixType type, std::size_t size) {
  try {
    return perfq::encoding_matrix(type, size);
  } catch (const perfq::InvalidArgument& error) {
    throw perfq::InvalidArgument(std::string("size: ") + error.what());
  }
}

/// The sub-bolus durations of a C call: `count` values, each positive and finite; `expected`
/// of them when nonzero.
inline std::vector<double> sub_bolus_durations(const double* durations, std::size_t count,
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
inline perfq_time_encoding* new_time_encoding(perfq::TimeEncoding encoding) {
  auto handle = std::make_unique<perfq_time_encoding>();
  handle->matrix.assign(encoding.matrix.entries.begin(), encoding.matrix.entries.end());
  handle->value = std::move(encoding);
  return handle.release();
}

/// An encoding of `matrix` with C-checked timing (make_time_encoding then has nothing to refuse).
inline perfq_time_encoding* time_encoding_of(perfq::EncodingMatrix matrix, const double* durations,
                                             std::size_t count, double final_pld,
                                             std::string source) {
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

}  // namespace perfq_c_api
