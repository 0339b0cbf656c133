// Version, geometry, execution (backend choice) and protocol/physiology handling.
#include <perfq/errors.hpp>
#include <perfq/execution.hpp>
#include <perfq/image.hpp>
#include <perfq/protocol.hpp>
#include <perfq/version.hpp>

#include "backend/device.hpp"
#include "protocol_checks.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

PERFQ_NAMESPACE_BEGIN

const char* version() noexcept { return PERFQ_VERSION_STRING; }

// ---- geometry -------------------------------------------------------------------------

bool Geometry::same_grid(const Geometry& other, double tolerance) const noexcept {
  if (dims != other.dims) return false;
  for (int a = 0; a < 3; ++a) {
    const double scale = std::max(std::abs(spacing[a]), std::abs(other.spacing[a]));
    if (std::abs(spacing[a] - other.spacing[a]) > tolerance * std::max(scale, 1.0)) return false;
    if (std::abs(origin[a] - other.origin[a]) > tolerance * std::max(scale, 1.0)) return false;
  }
  for (int i = 0; i < 9; ++i) {
    if (std::abs(direction[i] - other.direction[i]) > tolerance) return false;
  }
  return true;
}

// ---- execution ------------------------------------------------------------------------

bool cuda_compiled() noexcept {
#ifdef PERFQ_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() noexcept {
  try {
    return backend::cuda_device_count(nullptr);
  } catch (...) {
    return 0;
  }
}

bool cuda_available() noexcept { return cuda_device_count() > 0; }

std::vector<std::string> cuda_device_names() { return backend::cuda_device_names(); }

std::string cuda_unavailable_reason() {
  std::string reason;
  return backend::cuda_device_count(&reason) > 0 ? std::string() : reason;
}

Backend resolve_backend(const Execution& execution) {
  switch (execution.backend) {
    case Backend::Cpu:
      return Backend::Cpu;
    case Backend::Auto:
      return cuda_available() ? Backend::Cuda : Backend::Cpu;
    case Backend::Cuda: {
      std::string reason;
      const int count = backend::cuda_device_count(&reason);
      if (count == 0) throw BackendError("the CUDA backend was requested but " + reason);
      if (execution.device < 0 || execution.device >= count) {
        throw BackendError("CUDA device " + std::to_string(execution.device) +
                           " requested but only " + std::to_string(count) + " present");
      }
      return Backend::Cuda;
    }
  }
  throw InvalidArgument("unknown backend");
}

const char* to_string(Backend backend) noexcept {
  switch (backend) {
    case Backend::Auto:
      return "auto";
    case Backend::Cpu:
      return "cpu";
    case Backend::Cuda:
      return "cuda";
  }
  return "unknown";
}

Backend parse_backend(const std::string& text) {
  if (text == "auto") return Backend::Auto;
  if (text == "cpu") return Backend::Cpu;
  if (text == "cuda") return Backend::Cuda;
  throw InvalidArgument("unknown backend '" + text + "' (expected auto, cpu or cuda)");
}

// ---- protocol and physiology ----------------------------------------------------------

namespace {

double pick(const std::vector<double>& values, std::size_t v, double fallback) {
  if (values.empty()) return fallback;
  return values.size() == 1 ? values.front() : values.at(v);
}

void check_range(double value, double low, double high, bool low_open, const char* name) {
  const bool ok = std::isfinite(value) && (low_open ? value > low : value >= low) && value <= high;
  if (!ok) {
    std::ostringstream m;
    m << name << " = " << value << " is outside " << (low_open ? "(" : "[") << low << ", " << high
      << "]";
    throw InvalidArgument(m.str());
  }
}

}  // namespace

double AslProtocol::pld_of(std::size_t v) const { return pick(post_labeling_delay, v, 0.0); }
double AslProtocol::duration_of(std::size_t v) const { return pick(labeling_duration, v, 0.0); }

Physiology Physiology::at_field(double tesla) {
  Physiology p;
  p.t1_blood = tesla < 2.25 ? 1.35 : 1.65;
  return p;
}

double blood_t1_from_hematocrit(double hematocrit) {
  if (hematocrit > 1.0 && hematocrit <= 100.0) {
    std::ostringstream m;
    m << "haematocrit " << hematocrit << ": expected a fraction of 1 (e.g. 0.42), not a "
      << "percentage; give " << hematocrit / 100.0;
    throw InvalidArgument(m.str());
  }
  if (!(hematocrit >= kMinHematocrit && hematocrit <= kMaxHematocrit)) {
    std::ostringstream m;
    m << "haematocrit " << hematocrit << ": expected a fraction in [" << kMinHematocrit << ", "
      << kMaxHematocrit << "]";
    throw InvalidArgument(m.str());
  }
  // Lu et al. 2004 (MRM 52:679), arterial blood at 3 T: R1 = 0.52 Hct + 0.38 s^-1.
  return 1.0 / (0.52 * hematocrit + 0.38);
}

ResolvedConstants resolve_constants(const AslProtocol& protocol, const Physiology& physiology) {
  ResolvedConstants c;
  c.blood_brain_partition = physiology.blood_brain_partition;
  c.t1_blood = physiology.t1_blood;
  c.t1_tissue = physiology.t1_tissue;
  check_range(c.blood_brain_partition, 0.0, 2.0, true, "blood-brain partition coefficient");
  check_range(c.t1_blood, 0.0, 10.0, true, "T1 of blood (s)");
  check_range(c.t1_tissue, 0.0, 10.0, true, "T1 of tissue (s)");

  if (physiology.labeling_efficiency) {
    c.labeling_efficiency = *physiology.labeling_efficiency;
    c.labeling_efficiency_source = "override";
  } else if (protocol.labeling_efficiency) {
    c.labeling_efficiency = *protocol.labeling_efficiency;
    c.labeling_efficiency_source = "sidecar";
  } else {
    switch (protocol.labeling_type) {
      case LabelingType::Pcasl:
        c.labeling_efficiency = physiology.labeling_efficiency_pcasl;
        break;
      case LabelingType::Pasl:
        c.labeling_efficiency = physiology.labeling_efficiency_pasl;
        break;
      case LabelingType::Casl:
        c.labeling_efficiency = physiology.labeling_efficiency_casl;
        break;
    }
    c.labeling_efficiency_source = "default";
  }
  check_range(c.labeling_efficiency, 0.0, 1.0, true, "labeling efficiency");

  const BackgroundSuppression& bs = protocol.background_suppression;
  if (bs.enabled && bs.pulses_unknown && !bs.efficiency) {
    throw InvalidArgument(
        "background suppression is on but its number of pulses is unknown (BIDS "
        "BackgroundSuppressionNumberPulses): each pulse lowers the labeling efficiency; state "
        "the pulses or the total efficiency");
  }
  if (bs.efficiency) {
    c.background_suppression_factor = *bs.efficiency;
    c.background_suppression_source = "sidecar";
  } else if (bs.enabled && bs.pulses > 0) {
    check_range(physiology.background_suppression_pulse_efficiency, 0.0, 1.0, true,
                "background-suppression pulse efficiency");
    c.background_suppression_factor =
        std::pow(physiology.background_suppression_pulse_efficiency, bs.pulses);
    c.background_suppression_source = "pulses";
  } else {
    c.background_suppression_factor = 1.0;
    c.background_suppression_source = "none";
  }
  check_range(c.background_suppression_factor, 0.0, 1.0, true, "background-suppression efficiency");
  c.effective_labeling_efficiency = c.labeling_efficiency * c.background_suppression_factor;

  // Short-TR M0: the M0 image did not fully recover; scale it back (white paper). A TR in
  // milliseconds would skip the correction without a word.
  if (protocol.m0_repetition_time &&
      !(std::isfinite(*protocol.m0_repetition_time) && *protocol.m0_repetition_time >= 0.0 &&
        *protocol.m0_repetition_time <= kMaxTimingSeconds)) {
    std::ostringstream m;
    m << "the M0 repetition time must be in [0, " << kMaxTimingSeconds
      << "] s (times are in seconds, not milliseconds), got " << *protocol.m0_repetition_time;
    throw InvalidArgument(m.str());
  }
  c.m0_scale = 1.0;
  if (protocol.m0_repetition_time && *protocol.m0_repetition_time > 0.0 &&
      *protocol.m0_repetition_time < 5.0) {
    c.m0_scale = 1.0 - std::exp(-*protocol.m0_repetition_time / c.t1_tissue);
  }
  return c;
}

namespace {

/// The error for a time beyond kMaxTimingSeconds (left unchecked, a PLD of 1800 "s" made every
/// voxel's CBF overflow, a labeling duration of 1800 every fit fail, and an M0 repetition time
/// of 4600 skip the short-TR correction — each with exit status 0).
[[noreturn]] void throw_not_seconds(const std::string& source, const char* field, double value) {
  throw InputError(source, field, checks::not_seconds(value));
}

/// The error for a labeling time below kMinLabelingSeconds.
[[noreturn]] void throw_too_short(const std::string& source, const char* field, double value) {
  std::ostringstream m;
  m << "value " << value << " s is too short for a labeling (at least " << kMinLabelingSeconds
    << " s); BIDS gives times in seconds";
  throw InputError(source, field, m.str());
}

}  // namespace

namespace checks {

void times_in_seconds(const AslProtocol& p) {
  auto check = [](double value, const char* what) {
    if (value > kMaxTimingSeconds) {
      std::ostringstream m;
      m << "the " << what << " is " << value << " s, beyond any ASL timing (at most "
        << kMaxTimingSeconds << " s): times are in seconds, not milliseconds";
      throw InvalidArgument(m.str());
    }
  };
  for (const double v : p.post_labeling_delay) check(v, "post-labeling delay (PLD or TI)");
  for (const double v : p.labeling_duration) check(v, "labeling duration");
  if (p.bolus_cutoff_delay) check(*p.bolus_cutoff_delay, "bolus cut-off time TI1");
  if (p.readout == Readout::TwoD) {
    for (const double t : p.slice_timing) {
      if (!(std::isfinite(t) && t >= 0.0)) {
        std::ostringstream m;
        m << "slice times must be finite and >= 0 s, got " << t;
        throw InvalidArgument(m.str());
      }
      check(t, "slice time");
    }
  }
}

}  // namespace checks

void validate_protocol(const AslProtocol& p, std::size_t volumes, std::size_t slices,
                       const std::string& source) {
  auto list_ok = [&](const std::vector<double>& values, const char* field, bool required) {
    if (values.empty()) {
      if (required) throw InputError(source, field, "required, not found");
      return;
    }
    if (values.size() != 1 && values.size() != volumes) {
      throw InputError(source, field,
                       "has " + std::to_string(values.size()) +
                           " values; expected 1 or one per "
                           "volume (" +
                           std::to_string(volumes) + ")");
    }
    for (double v : values) {
      if (!std::isfinite(v) || v < 0.0) {
        throw InputError(source, field, "values must be finite and >= 0 seconds");
      }
      if (v > kMaxTimingSeconds) throw_not_seconds(source, field, v);
    }
  };
  list_ok(p.post_labeling_delay, "PostLabelingDelay", true);
  const bool continuous = p.labeling_type != LabelingType::Pasl;
  list_ok(p.labeling_duration, "LabelingDuration", continuous);
  // A labeling of under a millisecond labels no blood: the quantification factor, which
  // divides by it, would leave single precision.
  for (double v : p.labeling_duration) {
    if (v > 0.0 && v < kMinLabelingSeconds) throw_too_short(source, "LabelingDuration", v);
  }
  if (p.bolus_cutoff_delay && *p.bolus_cutoff_delay > 0.0 &&
      *p.bolus_cutoff_delay < kMinLabelingSeconds) {
    throw_too_short(source, "BolusCutOffDelayTime", *p.bolus_cutoff_delay);
  }
  // Zero durations mark m0scan volumes in BIDS; prepare_asl requires positive ones per pair.
  if (p.bolus_cutoff_delay &&
      !(std::isfinite(*p.bolus_cutoff_delay) && *p.bolus_cutoff_delay > 0)) {
    throw InputError(source, "BolusCutOffDelayTime", "must be a positive number of seconds");
  }
  if (p.bolus_cutoff_delay && *p.bolus_cutoff_delay > kMaxTimingSeconds) {
    throw_not_seconds(source, "BolusCutOffDelayTime", *p.bolus_cutoff_delay);
  }
  // QUIPSS II / Q2TIPS: the saturation at TI1 cuts the bolus before the readout at TI. A TI1
  // at or after every TI describes no cut-off (the single-delay formula, which divides by TI1,
  // then gave a plausible-looking but wrong map with exit status 0).
  if (p.labeling_type == LabelingType::Pasl && p.bolus_cutoff_delay &&
      !p.post_labeling_delay.empty()) {
    const double longest =
        *std::max_element(p.post_labeling_delay.begin(), p.post_labeling_delay.end());
    if (longest > 0.0 && *p.bolus_cutoff_delay >= longest) {
      std::ostringstream m;
      m << "TI1 = " << *p.bolus_cutoff_delay << " s is not before the inversion time "
        << "(PostLabelingDelay, TI = " << longest
        << " s): the bolus cut-off must come before the readout";
      throw InputError(source, "BolusCutOffDelayTime", m.str());
    }
  }
  // Each slice of a 2D readout has its own delay: without SliceTiming the quantification
  // cannot run (it used to fail later with a message naming neither file nor field).
  if (p.readout == Readout::TwoD && p.slice_timing.empty()) {
    throw InputError(source, "SliceTiming",
                     "required for a 2D (multi-slice) readout (MRAcquisitionType 2D): one time per "
                     "slice (" +
                         std::to_string(slices) + "), not found");
  }
  if (p.readout == Readout::TwoD && p.slice_timing.size() != slices) {
    throw InputError(source, "SliceTiming",
                     "has " + std::to_string(p.slice_timing.size()) +
                         " values; expected one per "
                         "slice (" +
                         std::to_string(slices) + ")");
  }
  for (double t : p.slice_timing) {
    if (!std::isfinite(t) || t < 0.0) {
      throw InputError(source, "SliceTiming", "values must be finite and >= 0 seconds");
    }
    if (t > kMaxTimingSeconds) throw_not_seconds(source, "SliceTiming", t);
  }
  if (p.m0_type == M0Type::Estimate && !(p.m0_estimate && *p.m0_estimate > 0.0)) {
    throw InputError(source, "M0Estimate", "M0Type is Estimate: a positive M0Estimate is required");
  }
  if (p.m0_repetition_time && !(*p.m0_repetition_time > 0.0)) {
    throw InputError(source, "RepetitionTimePreparation", "must be positive");
  }
  if (p.m0_repetition_time && *p.m0_repetition_time > kMaxTimingSeconds) {
    throw_not_seconds(source, "RepetitionTimePreparation", *p.m0_repetition_time);
  }
}

const char* to_string(LabelingType type) noexcept {
  switch (type) {
    case LabelingType::Pcasl:
      return "PCASL";
    case LabelingType::Pasl:
      return "PASL";
    case LabelingType::Casl:
      return "CASL";
  }
  return "unknown";
}

const char* to_string(M0Type type) noexcept {
  switch (type) {
    case M0Type::Separate:
      return "Separate";
    case M0Type::Included:
      return "Included";
    case M0Type::Estimate:
      return "Estimate";
    case M0Type::Absent:
      return "Absent";
  }
  return "unknown";
}

PERFQ_NAMESPACE_END
