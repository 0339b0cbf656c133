// Single-delay quantification: argument checks, per-slice factors, and the two executors of
// detail::SingleDelayVoxel.
#include <perfq/cbf.hpp>
#include <perfq/errors.hpp>

#include <perfq/detail/single_delay.hpp>

#include "backend/single_delay.hpp"
#include "chunking.hpp"
#include "dispatch.hpp"
#include "parallel.hpp"
#include "protocol_checks.hpp"
#include "grid_checks.hpp"

#include <cfloat>
#include <cmath>
#include <sstream>
#include <vector>

PERFQ_NAMESPACE_BEGIN

const char* to_string(VoxelStatus status) noexcept {
  switch (status) {
    case VoxelStatus::Ok: return "ok";
    case VoxelStatus::OutsideMask: return "outside mask";
    case VoxelStatus::M0NotPositive: return "M0 not positive";
    case VoxelStatus::NonFiniteInput: return "non-finite input";
    case VoxelStatus::NonFiniteResult: return "non-finite result";
    case VoxelStatus::MaxIterations: return "iteration limit reached";
    case VoxelStatus::Singular: return "singular (not identifiable)";
    case VoxelStatus::AttAtBound: return "arrival time at a bound";
    case VoxelStatus::M0TooLow: return "M0 too low (far below the brain's)";
  }
  return "unknown";
}

double single_delay_factor(LabelingType type, double delay, double labeling_duration,
                           double bolus_cutoff, const ResolvedConstants& c) {
  const double lambda = c.blood_brain_partition;
  const double t1b = c.t1_blood;
  const double alpha = c.effective_labeling_efficiency;
  // 6000 converts ml/g/s to ml/100 g/min.
  double factor = 0.0;
  if (type == LabelingType::Pasl) {
    if (!(bolus_cutoff > 0.0)) {
      throw InvalidArgument("PASL quantification needs the bolus cut-off time TI1 "
                            "(BolusCutOffDelayTime) > 0");
    }
    factor = 6000.0 * lambda * std::exp(delay / t1b) / (2.0 * alpha * bolus_cutoff);
  } else {
    if (!(labeling_duration > 0.0)) {
      throw InvalidArgument("PCASL/CASL quantification needs a labeling duration > 0");
    }
    factor = 6000.0 * lambda * std::exp(delay / t1b) /
             (2.0 * alpha * t1b * (1.0 - std::exp(-labeling_duration / t1b)));
  }
  factor *= c.m0_scale;
  // CBF maps are single precision: a factor beyond float's range (a delay of minutes, or a
  // constant near 0) would make every voxel's CBF infinite.
  if (!(std::isfinite(factor) && factor <= static_cast<double>(FLT_MAX))) {
    // Name the input that made it so: a long delay (exp(delay / T1b) grows past float's range
    // beyond ~150 T1b), else a labeling time or a constant near 0.
    const double timing = type == LabelingType::Pasl ? bolus_cutoff : labeling_duration;
    std::ostringstream m;
    m << "the quantification factor is beyond single precision (" << factor << "): ";
    if (!(delay / t1b < 80.0)) {
      m << "the delay of " << delay
        << " s is far too long; delays are in seconds (a value in milliseconds?)";
    } else if (timing < kMinLabelingSeconds) {
      m << (type == LabelingType::Pasl ? "the bolus cut-off time TI1 (BolusCutOffDelayTime) of "
                                       : "the labeling duration (LabelingDuration) of ")
        << timing << " s is too short";
    } else {
      m << "the constants are implausible (labeling efficiency " << alpha << ", partition "
        << "coefficient " << lambda << ", T1 of blood " << t1b << " s, M0 scale " << c.m0_scale
        << ")";
    }
    throw InvalidArgument(m.str());
  }
  return factor;
}

namespace {

/// The one value of a timing list that must not vary (single-delay data).
double single_value(const std::vector<double>& values, const char* what) {
  if (values.empty()) return 0.0;
  for (double v : values) {
    if (std::abs(v - values.front()) > 1e-6) {
      throw InvalidArgument(std::string("single-delay quantification needs one ") + what +
                            "; the protocol has several distinct values (multi-delay data)");
    }
  }
  return values.front();
}

/// The CPU executor for one combination of inputs: slice runs with the slice's factor
/// hoisted, each run through the one per-voxel body (detail::single_delay_run).
template <bool HasMask, bool HasM0Image>
void run_cpu_variant(const detail::SingleDelayVoxel& v, const std::vector<float>& factors,
                     chunking::Range range, int threads) {
  cpu::parallel_for_slices(range.begin, range.end, v.slice_voxels, threads,
                           [&](std::size_t begin, std::size_t end, std::size_t z) {
                             detail::single_delay_run<HasMask, HasM0Image>(
                                 v.delta_m, v.m0, v.m0_value, v.mask, factors[z], v.cbf,
                                 v.status, begin, end);
                           });
}

/// The CPU run, in chunks of `max_chunk` voxels when one is forced (the same arithmetic per
/// voxel, so the same bits whatever the chunking).
void run_cpu(const detail::SingleDelayVoxel& voxel, const std::vector<float>& factors,
             std::size_t count, int threads, std::size_t max_chunk) {
  for (const chunking::Range range : chunking::plan(count, max_chunk)) {
    if (voxel.mask != nullptr) {
      voxel.m0 != nullptr ? run_cpu_variant<true, true>(voxel, factors, range, threads)
                          : run_cpu_variant<true, false>(voxel, factors, range, threads);
    } else {
      voxel.m0 != nullptr ? run_cpu_variant<false, true>(voxel, factors, range, threads)
                          : run_cpu_variant<false, false>(voxel, factors, range, threads);
    }
  }
}

}  // namespace

CbfMaps quantify_cbf(View<const float> delta_m, const M0Source& m0, const AslProtocol& protocol,
                     const Physiology& physiology, std::optional<View<const std::uint8_t>> mask,
                     const Execution& execution) {
  if (delta_m.empty()) throw InvalidArgument("the ΔM image is empty");
  if (delta_m.volumes != 1) {
    throw InvalidArgument("quantify_cbf takes one mean ΔM volume, got " +
                          std::to_string(delta_m.volumes));
  }
  const Geometry& g = delta_m.geometry;
  if (m0.image) {
    checks::one_volume_on_grid(*m0.image, g, "M0", "the ΔM image");
  } else if (!(std::isfinite(m0.value) && m0.value > 0.0)) {
    std::ostringstream m;
    m << "a single M0 value must be positive and finite, got " << m0.value;
    throw InvalidArgument(m.str());
  }
  if (mask) checks::one_volume_on_grid(*mask, g, "the mask", "the ΔM image");

  ResolvedConstants constants = resolve_constants(protocol, physiology);
  if (m0.fully_relaxed) constants.m0_scale = 1.0;  // no short-TR correction of a relaxed M0
  const double delay = single_value(protocol.post_labeling_delay, "post-labeling delay");
  if (protocol.post_labeling_delay.empty() || !std::isfinite(delay) || !(delay > 0.0)) {
    std::ostringstream m;
    m << "the post-labeling delay (PLD, or TI for PASL) must be > 0 s, got "
      << (protocol.post_labeling_delay.empty() ? std::string("none") : std::to_string(delay));
    throw InvalidArgument(m.str());
  }
  const double tau = single_value(protocol.labeling_duration, "labeling duration");
  const double ti1 = protocol.bolus_cutoff_delay.value_or(0.0);
  // Times are in seconds (BIDS); minutes are milliseconds given for seconds. A τ in ms would
  // not overflow but silently lower CBF by the factor 1 − e^(−τ/T1b).
  checks::times_in_seconds(protocol);
  // PASL: the bolus is cut off (TI1) before the readout (TI); otherwise TI1 is not the bolus
  // duration the formula needs (TI1 2.5 s for TI 1.8 s gives a third of the CBF).
  if (protocol.labeling_type == LabelingType::Pasl && ti1 >= delay) {
    std::ostringstream m;
    m << "the bolus cut-off time TI1 (" << ti1 << " s) must come before the inversion time TI ("
      << delay << " s)";
    throw InvalidArgument(m.str());
  }
  const std::size_t slices = g.dims[2];
  if (protocol.readout == Readout::TwoD && protocol.slice_timing.size() != slices) {
    throw InvalidArgument("a 2D readout needs one slice time per slice (" +
                          std::to_string(slices) + "), got " +
                          std::to_string(protocol.slice_timing.size()));
  }
  std::vector<float> factors(slices);
  for (std::size_t z = 0; z < slices; ++z) {
    const double offset = protocol.readout == Readout::TwoD ? protocol.slice_timing[z] : 0.0;
    factors[z] = static_cast<float>(
        single_delay_factor(protocol.labeling_type, delay + offset, tau, ti1, constants));
  }

  CbfMaps out;
  out.constants = constants;
  out.cbf = Volume<float>(g);
  out.status = Volume<std::uint8_t>(g);
  const Backend resolved = resolve_backend(execution);

  detail::SingleDelayVoxel voxel;
  voxel.delta_m = delta_m.data;
  voxel.m0 = m0.image ? m0.image->data : nullptr;
  voxel.m0_value = static_cast<float>(m0.value);
  voxel.mask = mask ? mask->data : nullptr;
  voxel.slice_factor = factors.data();
  voxel.slice_voxels = g.dims[0] * g.dims[1];
  voxel.cbf = out.cbf.data();
  voxel.status = out.status.data();
  const std::size_t count = g.voxel_count();

  const std::size_t max_chunk = chunking::forced_max_chunk(execution.max_chunk_voxels);
  out.backend = dispatch::run(
      resolved, execution,
      [&] {
        backend::cuda_single_delay(voxel, count, slices,
                                   {execution.device, execution.device_bytes_limit, max_chunk});
      },
      [&] { run_cpu(voxel, factors, count, execution.threads, max_chunk); });
  return out;
}

PERFQ_NAMESPACE_END
