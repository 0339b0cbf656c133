/// @file
/// @brief The settings and the result of the per-voxel multi-delay fit (detail::fit_voxel),
/// shared by the CPU and CUDA backends: the timing, the model's options, the search grid
/// with its precomputed tables, the polishing's limits, and what one voxel's fit returns.
#pragma once

#include <perfq/version.hpp>

#include <perfq/detail/kinetic.hpp>
#include <perfq/detail/macros.hpp>
#include <perfq/detail/status.hpp>

#include <cstdint>

PERFQ_NAMESPACE_BEGIN
namespace detail {

constexpr int kMaxDelays = 64;  ///< most distinct delays one fit takes

/// Length of the per-delay arrays of a fit whose delay count N is known at compile time (the
/// fast paths of fit_voxel), or kMaxDelays when it is not (N = 0: the count is s.delays). On
/// the host N rounds up to whole SIMD vectors of four: pcasl_model then computes the padding
/// lanes too (from the zeros of KineticSettings beyond its delays; never read) instead of a
/// narrower vector path for the remainder. On the device, one thread per voxel, N.
template <int N>
PERFQ_HD constexpr int delay_capacity() {
  static_assert(N >= 0 && N <= kMaxDelays && kMaxDelays % 4 == 0, "delay count out of range");
#if defined(__CUDA_ARCH__)
  return N > 0 ? N : kMaxDelays;
#else
  return N > 0 ? (N + 3) / 4 * 4 : kMaxDelays;
#endif
}

/// Which apparent tissue T1 the model uses (perfq::KineticVariant).
enum : int { kVariantBuxton = 0, kVariantBuxtonFixedFlow = 1, kVariantWhitePaper = 2 };

/// The polishing looks beyond a kink of the model when it converges this close to one (s).
constexpr double kKinkProbeReach = 1e-3;
/// Bins of the ATT range in KineticSettings::kink_free.
constexpr int kKinkBins = 256;

/// Everything a fit needs besides the voxel's data: copied by value to the device.
template <class Real>
struct KineticSettings {
  int delays = 0;
  bool pasl = false;
  int variant = kVariantBuxton;
  Real alpha = 0, lambda = 0, t1_blood = 0, t1_tissue = 0;
  Real fixed_flow = Real(0.01);  ///< ml/g/s, for kVariantBuxtonFixedFlow
  Real att_min = 0, att_max = 0;
  int grid = 24;                ///< arrival times tried before refinement (≤ kMaxGrid)
  int max_iterations = 20;      ///< Levenberg–Marquardt iterations
  int starts = 3;               ///< polishing runs at most (≤ kMaxStarts; 1: a single start)
  Real tolerance = Real(1e-6);  ///< relative cost decrease that ends the polishing
  bool arterial = false;        ///< add the macrovascular component (aBV, arterial ATT)
  /// Disperse the tissue arrival with `kernel` (the arterial component stays a box).
  bool dispersion = false;
  GammaKernel<Real> kernel;
  bool prior = false;  ///< Gaussian prior on the arrival time (MAP)
  Real prior_mean = 0, prior_sd = 1;
  /// With `prior` and `arterial`: Gaussian prior on the arterial arrival (the search's).
  Real arterial_prior_mean = 0, arterial_prior_sd = 1;
  Real noise_variance = 0;  ///< σ² of one unit-weight observation (ΔM/M0)², × noise_scale
  // Zero beyond `delays`: the padding lanes of pcasl_model (delay_capacity) read them.
  Real delay[kMaxDelays] = {};     ///< PLD (PCASL/CASL) or TI (PASL), s
  Real duration[kMaxDelays] = {};  ///< τ (PCASL/CASL) or TI1 (PASL), s
  bool same_duration = false;      ///< every duration[k] equal (lets the fit share e^(τ/T1app))
  Real weight[kMaxDelays] = {};    ///< repeats averaged (inverse relative variance)
  /// Unit-flow tissue signal on the search grid, shared by every voxel of a slice:
  /// basis[(slice * delays + k) * grid + j] at ATT att_min + j·step, T1app at the reference
  /// flow (grid points contiguous, so that the search runs over several at once);
  /// basis_norm[slice * grid + j] = Σ_k weight[k] basis². Filled by fill_basis().
  const Real* basis = nullptr;
  const Real* basis_norm = nullptr;
  const Real* slice_offset = nullptr;  ///< per slice (2D readouts); nullptr: all 0
  /// One bit per bin of [att_min, att_max] (kKinkBins of them), set where no kink of the
  /// model (of any slice) comes within kKinkProbeReach of the bin and no plateau meets it
  /// (mark_kink_free_bins): there the polishing need not look beyond a kink. Filled by
  /// mark_kink_free_bins(); all clear (look everywhere) before.
  std::uint32_t kink_free[kKinkBins / 32] = {};
  Real kink_bin_scale = 0;  ///< kKinkBins / (att_max − att_min), once filled
};

/// Most polishing runs of one fit (KineticSettings::starts): the first from the search's best
/// grid point, the others from the lowest points of other regions of the grid (fit_voxel_n).
constexpr int kMaxStarts = 8;
/// A further start is tried only where its grid cost is at most this factor times the cost
/// of the solution so far (RSS, plus the prior's term).
constexpr double kMultiStartCostFactor = 1.1;
/// A further start replaces the solution so far only with a cost lower by more than this
/// (relative): polishings that end in the same minimum tie within rounding, and the first
/// one is kept, on the CPU and the GPU alike.
constexpr double kMultiStartTie = 1e-5;
constexpr int kMaxGrid = 1000;  ///< most arrival times the search tries (KineticSettings::grid)
constexpr double kReferenceFlow = 0.01;  ///< ml/g/s: T1app of the search basis (Buxton)

/// Result of one voxel's fit.
template <class Real>
struct KineticVoxelResult {
  Real flow = 0, att = 0;           ///< ml/g/s, s
  Real flow_se = 0, att_se = 0;     ///< standard errors
  Real abv = 0, abv_se = 0;         ///< arterial blood volume fraction and its standard error
  Real arterial_att = 0;            ///< arterial arrival time (s), on the search grid
  Real rss = 0;                     ///< weighted residual sum of squares (ΔM/M0)²
  int iterations = 0;               ///< Levenberg–Marquardt iterations taken
  std::uint8_t status = kStatusOk;  ///< the voxel's status code (status.hpp)
};

}  // namespace detail
PERFQ_NAMESPACE_END
