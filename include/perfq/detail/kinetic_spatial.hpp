/// @file
/// @brief The voxel update of the spatially regularised multi-delay fit
/// (KineticOptions::spatial), shared by the CPU (src/kinetic_spatial.cpp) and, later, the
/// CUDA backend: the maximum a posteriori fit of one voxel with a Gaussian prior on its flow
/// centred on the mean of its neighbours' (the conditional of a Laplacian Markov random
/// field), optionally the same on its ATT (combined with the ATT prior when there is one),
/// polished by Levenberg–Marquardt (kinetic_polish.hpp) from the voxel's current estimate.
#pragma once

#include <perfq/version.hpp>

#include <perfq/detail/kinetic_fit.hpp>
#include <perfq/detail/kinetic_polish.hpp>
#include <perfq/detail/kinetic_settings.hpp>
#include <perfq/detail/macros.hpp>

PERFQ_NAMESPACE_BEGIN
namespace detail {

/// The spatial priors of one voxel for one update: Gaussians on its flow (ml/g/s) and ATT (s)
/// given its neighbours. A precision of 0 means no such prior.
template <class Real>
struct SpatialVoxelPrior {
  Real flow_mean = 0;       ///< mean of the neighbours' flows, ml/g/s
  Real flow_precision = 0;  ///< φ_f × neighbour count, (ml/g/s)⁻²
  Real att_mean = 0;        ///< mean of the neighbours' ATTs, s
  Real att_precision = 0;   ///< φ_a × neighbour count, s⁻²
};

/// The update for N delays known at compile time (N = 0: s.delays) and P parameters (2:
/// flow and ATT; 3: with the arterial blood volume at the arrival `current.arterial_att`).
template <int N, int P, class Real>
PERFQ_HD inline KineticVoxelResult<Real> spatial_update_n(const KineticSettings<Real>& s,
                                                          const Real* y, int slice,
                                                          Real noise_scale,
                                                          const KineticVoxelResult<Real>& current,
                                                          const SpatialVoxelPrior<Real>& prior) {
  constexpr int kCapacity = delay_capacity<N>();
  const Real offset = s.slice_offset != nullptr ? s.slice_offset[slice] : Real(0);
  const Real noise = s.noise_variance * noise_scale;
  Real arterial[kCapacity], kinks[2 * kCapacity];
  PolishProblem<Real, P, N> problem(s, y, offset, current.arterial_att, noise, arterial, kinks);
  // The data term is the weighted RSS: a prior of precision π enters as σ² π (θ − mean)².
  problem.flow_prior_scale = noise * prior.flow_precision;
  problem.flow_prior_mean = prior.flow_mean;
  if (prior.att_precision > Real(0)) {
    // The product of the ATT prior (when on) and the spatial one: a Gaussian again.
    const Real own = s.prior ? Real(1) / (s.prior_sd * s.prior_sd) : Real(0);
    const Real precision = own + prior.att_precision;
    problem.att_prior_mean =
        (own * s.prior_mean + prior.att_precision * prior.att_mean) / precision;
    problem.prior_scale = noise * precision;
  }
  PolishState<Real, P> state;
  state.theta[0] = current.flow;
  state.theta[1] = current.att;
  if (P == 3) state.theta[P - 1] = current.abv;
  state.cost = problem.linearise(s, state.theta, state.A, state.g);
  for (int probes = 0;; ++probes) {
    while (state.it < s.max_iterations && !state.converged && polish_step(s, problem, state)) {
      ++state.it;
    }
    if (!kink_probe(s, problem, state, probes)) break;
  }
  KineticVoxelResult<Real> out = polish_result(s, problem, state);
  if (P == 2) out.arterial_att = current.arterial_att;
  return out;
}

/// One voxel's update: the maximum a posteriori fit with the ATT prior of `s` (when on) and
/// the spatial `prior`, from `current` (the voxel's estimate so far), with `arterial` the
/// arterial component kept (its arrival fixed). `y`, `slice`, `noise_scale` as in fit_voxel;
/// the standard errors are the posterior's (σ² the noise variance, the curvature of data and
/// priors).
template <class Real>
PERFQ_HD inline KineticVoxelResult<Real> spatial_update(const KineticSettings<Real>& s,
                                                        const Real* y, int slice, Real noise_scale,
                                                        const KineticVoxelResult<Real>& current,
                                                        bool arterial,
                                                        const SpatialVoxelPrior<Real>& prior) {
  return dispatch_delays(s.delays, [&](auto count) {
    constexpr int kN = decltype(count)::value;
    return arterial ? spatial_update_n<kN, 3>(s, y, slice, noise_scale, current, prior)
                    : spatial_update_n<kN, 2>(s, y, slice, noise_scale, current, prior);
  });
}

}  // namespace detail
PERFQ_NAMESPACE_END
