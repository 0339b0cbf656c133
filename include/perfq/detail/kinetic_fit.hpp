/// @file
/// @brief The per-voxel multi-delay fit (CBF and arrival time), shared by the CPU and CUDA
/// backends: a separable search over the arrival time with the flow solved exactly, then
/// Levenberg–Marquardt polishing with exact derivatives, then standard errors. This header
/// holds the entry point (fit_voxel) and includes the parts:
/// - kinetic_settings.hpp: the settings and the result of a fit;
/// - kinetic_signal.hpp: the model at the fit's delays (T1app variants, arterial component,
///   kinks);
/// - kinetic_pcasl_fast.hpp: the PCASL/CASL model with its derivatives written out by hand;
/// - kinetic_search.hpp: the search and the fit of one voxel for a delay count (fit_voxel_n);
/// - kinetic_polish.hpp: the Levenberg–Marquardt polishing and the standard errors;
/// - kinetic_tables.hpp: the search basis and kink table, filled by the host (src/).
#pragma once

#include <perfq/version.hpp>

#include <perfq/detail/kinetic_pcasl_fast.hpp>
#include <perfq/detail/kinetic_polish.hpp>
#include <perfq/detail/kinetic_search.hpp>
#include <perfq/detail/kinetic_settings.hpp>
#include <perfq/detail/kinetic_signal.hpp>
#include <perfq/detail/kinetic_tables.hpp>
#include <perfq/detail/macros.hpp>

PERFQ_NAMESPACE_BEGIN
namespace detail {

/// A delay count as a type, for dispatch_delays.
template <int N>
struct DelayCount {
  static constexpr int value = N;
};

/// Calls `f(DelayCount<N>{})` with N = `delays` for the usual delay counts, which have
/// compile-time fast paths (loops of a fixed trip count, per-delay arrays of N entries instead
/// of kMaxDelays), else with N = 0 (any count up to kMaxDelays). The
/// CPU backend dispatches per voxel (fit_voxel), the CUDA backend once per launch.
template <class F>
PERFQ_HD inline auto dispatch_delays(int delays, F&& f) {
  switch (delays) {
    case 4: return f(DelayCount<4>{});
    case 5: return f(DelayCount<5>{});
    case 6: return f(DelayCount<6>{});
    case 7: return f(DelayCount<7>{});
    case 8: return f(DelayCount<8>{});
    case 10: return f(DelayCount<10>{});
    case 12: return f(DelayCount<12>{});
    default: return f(DelayCount<0>{});
  }
}

/// Fits one voxel of slice `slice`. `y` holds ΔM/M0 per delay; the voxel's noise variance is
/// `s.noise_variance × noise_scale` (per-voxel scale, e.g. (M0 ref / M0 voxel)²). Every path
/// of dispatch_delays gives the same result.
template <class Real>
PERFQ_HD inline KineticVoxelResult<Real> fit_voxel(const KineticSettings<Real>& s, const Real* y,
                                                   int slice, Real noise_scale = Real(1)) {
  return dispatch_delays(s.delays, [&](auto count) {
    return fit_voxel_n<decltype(count)::value>(s, y, slice, noise_scale);
  });
}

}  // namespace detail
PERFQ_NAMESPACE_END
