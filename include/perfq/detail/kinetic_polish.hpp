/// @file
/// @brief The polishing of the multi-delay fit (polish): Levenberg–Marquardt on flow and ATT
/// (and the arterial blood volume) from the search's start, with exact derivatives (written
/// out for PCASL/CASL, dual numbers for PASL and dispersion); steps that stop at the model's
/// kinks; a second run from beyond a kink where the first may have stopped short of the
/// minimum; then the standard errors at the solution.
#pragma once

#include <perfq/version.hpp>

#include <perfq/detail/dual.hpp>
#include <perfq/detail/kinetic_pcasl_fast.hpp>
#include <perfq/detail/kinetic_settings.hpp>
#include <perfq/detail/kinetic_signal.hpp>
#include <perfq/detail/macros.hpp>
#include <perfq/detail/single_delay.hpp>
#include <perfq/detail/status.hpp>

#include <cmath>

PERFQ_NAMESPACE_BEGIN
namespace detail {

/// Solves the symmetric positive-definite P×P system M x = r (Cholesky, P ≤ 3). Returns
/// false when M is not positive definite.
template <class Real, int P>
PERFQ_HD inline bool solve_spd(const Real (&M)[P][P], const Real (&r)[P], Real (&x)[P]) {
  if (P == 2) {  // Cramer's rule: positive definite iff both leading minors are positive
    const Real det = M[0][0] * M[1][1] - M[1][0] * M[1][0];
    if (!(M[0][0] > Real(0)) || !(det > Real(0))) return false;
    const Real inv = Real(1) / det;
    x[0] = (M[1][1] * r[0] - M[1][0] * r[P - 1]) * inv;
    x[P - 1] = (M[0][0] * r[P - 1] - M[1][0] * r[0]) * inv;
    return true;
  }
  Real L[P][P] = {};
  for (int i = 0; i < P; ++i) {
    for (int j = 0; j <= i; ++j) {
      Real sum = M[i][j];
      for (int k = 0; k < j; ++k) sum -= L[i][k] * L[j][k];
      if (i == j) {
        if (!(sum > Real(0))) return false;
        L[i][i] = std::sqrt(sum);
      } else {
        L[i][j] = sum / L[j][j];
      }
    }
  }
  Real z[P];
  for (int i = 0; i < P; ++i) {
    Real sum = r[i];
    for (int k = 0; k < i; ++k) sum -= L[i][k] * z[k];
    z[i] = sum / L[i][i];
  }
  for (int i = P - 1; i >= 0; --i) {
    Real sum = z[i];
    for (int k = i + 1; k < P; ++k) sum -= L[k][i] * x[k];
    x[i] = sum / L[i][i];
  }
  return true;
}

/// How far past a kink (s) a step that crosses it stops, and a probe beyond it starts.
constexpr double kKinkMargin = 1e-5;
/// Runs of the polishing from beyond a kink (kink_probe), at most, after the first.
constexpr int kMaxKinkProbes = 2;

/// What the polishing of one voxel holds fixed besides the settings: the data, the arterial
/// component's signal and the model's kinks. P: the parameters, (flow, ATT), plus the
/// arterial blood volume when P = 3 (its arrival time fixed at `arterial_att`); N: as in
/// pcasl_model. The settings are passed alongside and the per-delay arrays live in the
/// caller (polish), both outside this object: in device code it then stays in registers,
/// and the kernel's settings stay where the kernel received them.
template <class Real, int P, int N>
struct PolishProblem {
  static constexpr int kCapacity = delay_capacity<N>();  ///< length of the per-delay arrays

  const Real* y;        ///< ΔM/M0 per delay
  Real offset;          ///< the slice's time offset (s)
  Real arterial_att;    ///< the arterial component's arrival (P = 3)
  Real noise_variance;  ///< σ² of a unit-weight observation (prior, errors)
  Real prior_scale;     ///< weight of the ATT prior's residual (0: no prior)
  /// Mean of the ATT prior: the settings' prior mean, or (spatial fit, kinetic_spatial.hpp)
  /// the mean of its product with the spatial prior.
  Real att_prior_mean;
  /// Weight of a Gaussian prior's residual on the flow (spatial fit: σ² × its precision;
  /// 0: none) and its mean (ml/g/s). Set after construction.
  Real flow_prior_scale = 0, flow_prior_mean = 0;
  PcaslConstants<Real> constants;  ///< for pcasl_model
  /// Lowest ATT: its range's start, and not before the arteries fill (P = 3).
  Real lowest;
  const Real* arterial;  ///< arterial signal per unit aBV at each delay (P = 3)
  /// The kinks of the model: kinks_of for each delay, in pairs (none with dispersion). Its
  /// slope jumps there, so the cost often has its minimum on one, where Levenberg–Marquardt
  /// steps overshoot again and again. Steps stop at the first kink they cross; at a kink (or
  /// ATT bound) a rejected step is retried shorter, twice, then with the ATT held.
  const Real* kinks;

  /// Entries of `kinks`. Computed where used, from the settings and N, so that with N > 0
  /// the loops over the kinks have one of two trip counts known to the compiler.
  PERFQ_HD static int kink_count(const KineticSettings<Real>& s) {
    return s.dispersion ? 0 : 2 * (N > 0 ? N : s.delays);
  }

  /// Fills `arterial_storage` (kCapacity values, P = 3) and `kink_storage` (2 kCapacity) for
  /// `arterial` and `kinks`.
  PERFQ_HD PolishProblem(const KineticSettings<Real>& s, const Real* data, Real slice_offset,
                         Real arterial_arrival, Real noise, Real* arterial_storage,
                         Real* kink_storage)
      : y(data),
        offset(slice_offset),
        arterial_att(arterial_arrival),
        noise_variance(noise),
        prior_scale(s.prior ? noise / (s.prior_sd * s.prior_sd) : Real(0)),
        att_prior_mean(s.prior_mean),
        constants(s),
        lowest(P == 3 && arterial_arrival > s.att_min ? arterial_arrival : s.att_min),
        arterial(arterial_storage),
        kinks(kink_storage) {
    const int n = N > 0 ? N : s.delays;
    if (P == 3) {
      for (int k = 0; k < n; ++k) {
        arterial_storage[k] = arterial_signal(s, k, slice_offset, arterial_arrival);
      }
    }
    for (int k = 0; k < kink_count(s) / 2; ++k) kinks_of(s, k, slice_offset, kink_storage + 2 * k);
  }

  /// Whether kink K lies inside the ATT bounds by more than the margin (a probe can start
  /// beyond it).
  PERFQ_HD bool inside(const KineticSettings<Real>& s, Real K) const {
    return K - Real(kKinkMargin) > lowest && K + Real(kKinkMargin) < s.att_max;
  }

  /// Whether ATT `a` is on a kink or an ATT bound.
  PERFQ_HD bool at_kink(const KineticSettings<Real>& s, Real a) const {
    bool on = a <= lowest || a >= s.att_max;
    const int count = kink_count(s);
    for (int k = 0; k < count; ++k) {
      on = on || (a - kinks[k] <= Real(2) * Real(kKinkMargin) &&
                  kinks[k] - a <= Real(2) * Real(kKinkMargin));
    }
    return on;
  }

  /// The normal equations A δ = g at θ; returns the cost there (the prior adds a residual on
  /// ATT).
  PERFQ_HD Real linearise(const KineticSettings<Real>& s, const Real (&th)[P], Real (&A)[P][P],
                          Real (&g)[P]) const {
    using D = Dual<Real, 2>;
    // A constant expression when N > 0: the loops over the delays get a fixed trip count.
    const int n = N > 0 ? N : s.delays;
    for (int i = 0; i < P; ++i) {
      g[i] = 0;
      for (int j = 0; j < P; ++j) A[i][j] = 0;
    }
    Real cost = 0;
    Real model[kCapacity], d_flow[kCapacity], d_att[kCapacity];
    if (s.pasl || s.dispersion) {  // the generic model, differentiated automatically
      const D f = D::variable(th[0], 0), att = D::variable(th[1], 1);
      for (int k = 0; k < n; ++k) {
        const D m = tissue_signal<Real, D>(s, k, offset, f, f, att);
        model[k] = m.v, d_flow[k] = m.d[0], d_att[k] = m.d[1];
      }
    } else {
      pcasl_model<Real, N>(s, constants, offset, th[0], th[1], model, d_flow, d_att);
    }
    // Each delay's terms of the sums first (a loop over the delays that vectorises), then the
    // sums, each over the delays in order.
    constexpr int kTerms = 1 + P + P * (P + 1) / 2;  // cost, g, lower triangle of A
    Real terms[kTerms][kCapacity];
    PERFQ_SIMD
    for (int k = 0; k < n; ++k) {
      Real J[P];
      J[0] = d_flow[k];
      J[1] = d_att[k];
      Real m = model[k];
      if (P == 3) {
        J[P - 1] = arterial[k];
        m += th[P - 1] * arterial[k];
      }
      const Real r = y[k] - m, w = s.weight[k];
      terms[0][k] = w * r * r;
      for (int i = 0, t = 1 + P; i < P; ++i) {
        terms[1 + i][k] = w * J[i] * r;
        for (int j = 0; j <= i; ++j) terms[t++][k] = w * J[i] * J[j];
      }
    }
    for (int k = 0; k < n; ++k) {
      cost += terms[0][k];
      for (int i = 0, t = 1 + P; i < P; ++i) {
        g[i] += terms[1 + i][k];
        for (int j = 0; j <= i; ++j) A[i][j] += terms[t++][k];
      }
    }
    for (int i = 0; i < P; ++i) {
      for (int j = i + 1; j < P; ++j) A[i][j] = A[j][i];
    }
    if (s.prior || prior_scale > Real(0)) {
      const Real d = th[1] - att_prior_mean;
      cost += prior_scale * d * d;
      A[1][1] += prior_scale;
      g[1] -= prior_scale * d;
    }
    if (flow_prior_scale > Real(0)) {
      const Real d = th[0] - flow_prior_mean;
      cost += flow_prior_scale * d * d;
      A[0][0] += flow_prior_scale;
      g[0] -= flow_prior_scale * d;
    }
    return cost;
  }

  /// The priors' share of the cost at θ (0 without priors).
  PERFQ_HD Real prior_cost(const KineticSettings<Real>& s, const Real (&th)[P]) const {
    Real cost = 0;
    if (s.prior || prior_scale > Real(0)) {
      const Real d = th[1] - att_prior_mean;
      cost += prior_scale * d * d;
    }
    if (flow_prior_scale > Real(0)) {
      const Real d = th[0] - flow_prior_mean;
      cost += flow_prior_scale * d * d;
    }
    return cost;
  }
};

/// Where the polishing of one voxel stands: the solution so far with its normal equations,
/// the damping, how it met the kinks, and the solution kept from before a probe beyond a kink.
template <class Real, int P>
struct PolishState {
  Real theta[P], A[P][P], g[P];  ///< parameters, normal equations A δ = g there
  Real cost = 0;                 ///< at theta: weighted RSS, plus the prior's term
  Real mu = Real(1e-3);          ///< Levenberg–Marquardt damping
  bool converged = false;        ///< decrease below the tolerance, or no descent left
  /// The minimum sits on a kink (steps cross it one way, then back): ATT held there.
  bool pinned = false;
  bool beside_kink = false;  ///< the last accepted step stopped just past a kink
  Real kink_passed = 0;      ///< that kink
  Real last_move = 0;        ///< ATT change of the last accepted step
  /// The solution before a probe beyond a kink (kink_probe).
  Real kept_theta[P], kept_A[P][P], kept_cost = 0;
  Real probed_kink = 0;  ///< the kink the last probe started beyond
  bool kept_converged = false, probed = false;
  int it = 0;  ///< iterations so far
};

/// One Levenberg–Marquardt iteration: up to eight tries of a damped step, each stopped just
/// past the first kink it crosses. Returns false when the fit converged before evaluating a
/// step (the quadratic model predicts too small a decrease), an iteration that does not count.
template <class Real, int P, int N>
PERFQ_HD inline bool polish_step(const KineticSettings<Real>& s,
                                 const PolishProblem<Real, P, N>& pr, PolishState<Real, P>& st) {
  const int kink_count = pr.kink_count(s);
  bool improved = false, hold = st.pinned;  // hold: ATT fixed for the rest of this iteration
  Real shrink = 1;                          // of the step, rejected at a kink
  for (int attempt = 0; attempt < 8 && !improved; ++attempt) {
    Real damped[P][P], rhs[P], step[P];
    for (int i = 0; i < P; ++i) {
      for (int j = 0; j < P; ++j) damped[i][j] = st.A[i][j];
      damped[i][i] = st.A[i][i] * (Real(1) + st.mu);
      rhs[i] = st.g[i];
    }
    if (hold) {  // the same system without the ATT: its row and column become the identity's
      for (int i = 0; i < P; ++i) damped[1][i] = damped[i][1] = Real(0);
      damped[1][1] = Real(1), rhs[1] = Real(0);
    }
    if (!solve_spd<Real, P>(damped, rhs, step)) {
      st.mu *= Real(10);
      continue;
    }
    // The quadratic model predicts the decrease 2 g·δ − δᵀAδ = δ·(g + μ diag(A) δ): when
    // even that is below the tolerance the fit has converged, without evaluating the step
    // (only for a nearly Gauss–Newton step: heavy damping shrinks any step).
    Real predicted = 0;
    for (int i = 0; i < P; ++i) predicted += step[i] * (rhs[i] + st.mu * st.A[i][i] * step[i]);
    if (st.mu <= Real(0.01) && predicted <= s.tolerance * (st.cost + Real(1e-30))) {
      st.converged = true;
      break;
    }
    Real next[P];
    for (int i = 0; i < P; ++i) next[i] = st.theta[i] + shrink * step[i];
    next[1] = next[1] < pr.lowest ? pr.lowest : (next[1] > s.att_max ? s.att_max : next[1]);
    const Real from = st.theta[1], to = next[1];
    Real stop = to;  // the kink crossed first
    for (int k = 0; k < kink_count; ++k) {
      const Real K = pr.kinks[k];
      if ((from < K && K < stop) || (stop < K && K < from)) stop = K;
    }
    if (!hold && st.beside_kink && stop == st.kink_passed) {  // back across it: a V at the kink
      st.pinned = hold = true;
      continue;
    }
    if (stop != to) {  // just past the kink, so that the slope is the one of the side entered
      const Real past = stop + (to > from ? Real(kKinkMargin) : -Real(kKinkMargin));
      const Real fraction = (past - from) / (to - from);
      for (int i = 0; i < P; ++i) next[i] = st.theta[i] + fraction * shrink * step[i];
      next[1] = past;
    }
    Real A2[P][P], g2[P];
    const Real c2 = pr.linearise(s, next, A2, g2);
    if (c2 <= st.cost) {
      const Real decrease = st.cost - c2;
      st.last_move = next[1] - st.theta[1];
      for (int i = 0; i < P; ++i) {
        st.theta[i] = next[i];
        st.g[i] = g2[i];
        for (int j = 0; j < P; ++j) st.A[i][j] = A2[i][j];
      }
      st.converged = decrease <= s.tolerance * (st.cost + Real(1e-30));
      st.cost = c2;
      st.mu = st.mu * Real(0.3) > Real(1e-7) ? st.mu * Real(0.3) : Real(1e-7);
      improved = true;
      st.beside_kink = stop != to, st.kink_passed = stop;
    } else if (!hold && pr.at_kink(s, st.theta[1])) {  // shorter steps off the kink, then none
      if (shrink > Real(0.1)) {
        shrink *= Real(0.25);
      } else {
        hold = true, shrink = 1;
      }
    } else {
      st.mu *= Real(10);
    }
  }
  if (st.converged && !improved) return false;  // converged before this iteration's evaluation
  if (!improved) st.converged = true;           // no descent direction left: a minimum in float
  return true;
}

/// After a run of polish_step: keeps the lower of its solution and the one before the last
/// probe, then decides whether to polish again from just beyond a kink. Two ways to stop short
/// of the minimum at a kink, each rare in the usual fit:
/// - converged next to a kink without having seen the kink's other side (it neither crossed
///   the kink last nor was pinned on it): one side's smooth extension can have its minimum on
///   the kink, or a hair beyond it, while the cost keeps falling on the other side. So it is
///   with the white-paper T1app and contiguous sub-boli (time-encoded PCASL): where one
///   sub-bolus ends arriving the next begins, and either side fits every delay but one exactly
///   at the kink;
/// - converged on a plateau: an ATT at which one delay's bolus alone has arrived, so that flow
///   and ATT trade off freely (their derivatives are collinear). The search lands on one when
///   the true minimum lies beyond a kink in a basin narrower than its step, e.g. an ATT just
///   before the first-labelled sub-bolus arrives.
/// Then the next run starts from just beyond the kink (from a plateau: the nearest kink below,
/// then the nearest above). `probes`: the probes made so far. Returns true when it has set up
/// such a run in `st`, false when the polishing is done.
template <class Real, int P, int N>
PERFQ_HD inline bool kink_probe(const KineticSettings<Real>& s, const PolishProblem<Real, P, N>& pr,
                                PolishState<Real, P>& st, int probes) {
  const int kink_count = pr.kink_count(s);
  // Keep the lower of this solution and the one before the probe.
  bool reverted = false;
  if (st.probed && !(st.cost < st.kept_cost)) {
    for (int i = 0; i < P; ++i) {
      st.theta[i] = st.kept_theta[i];
      for (int j = 0; j < P; ++j) st.A[i][j] = st.kept_A[i][j];
    }
    st.cost = st.kept_cost, st.converged = st.kept_converged, reverted = true;
  }
  // Whether a kink or a plateau may be within reach, from the table of bins (rarely so).
  const Real bin_position = (st.theta[1] - s.att_min) * s.kink_bin_scale;
  const unsigned bin =
      bin_position > Real(0)
          ? (bin_position < Real(kKinkBins - 1) ? unsigned(bin_position) : kKinkBins - 1u)
          : 0u;
  if ((s.kink_free[bin / 32u] >> (bin % 32u)) & 1u) return false;
  if (!st.converged || probes == kMaxKinkProbes || st.it >= s.max_iterations) return false;
  int arrived = 0;
  for (int k = 0; k < kink_count; k += 2) arrived += st.theta[1] < pr.kinks[k] ? 1 : 0;
  const bool plateau = arrived == 1;
  int target = -1;
  if (plateau) {
    Real below_gap = s.att_max - s.att_min, above_gap = below_gap;
    int below_kink = -1, above_kink = -1;
    for (int k = 0; k < kink_count; ++k) {
      const Real K = pr.kinks[k];
      if (!pr.inside(s, K) || (st.probed && K == st.probed_kink)) continue;
      if (K < st.theta[1] && st.theta[1] - K < below_gap) {
        below_gap = st.theta[1] - K, below_kink = k;
      }
      if (K > st.theta[1] && K - st.theta[1] < above_gap) {
        above_gap = K - st.theta[1], above_kink = k;
      }
    }
    target = below_kink >= 0 ? below_kink : above_kink;
  } else {
    if (reverted || st.pinned) return false;
    Real distance = Real(kKinkProbeReach);
    for (int k = 0; k < kink_count; ++k) {
      const Real d =
          st.theta[1] > pr.kinks[k] ? st.theta[1] - pr.kinks[k] : pr.kinks[k] - st.theta[1];
      if (d <= distance && pr.inside(s, pr.kinks[k])) distance = d, target = k;
    }
    // Not when it crossed that kink last (both sides seen) or was polished from beyond it.
    if (target >= 0 && ((st.beside_kink && st.kink_passed == pr.kinks[target]) ||
                        (st.probed && pr.kinks[target] == st.probed_kink))) {
      return false;
    }
  }
  if (target < 0) return false;
  const Real K = pr.kinks[target];
  // Beyond it, away from the side the solution lies on (or came from, when on the kink).
  const bool below = st.theta[1] > K || (st.theta[1] == K && st.last_move < Real(0));
  for (int i = 0; i < P; ++i) {
    st.kept_theta[i] = st.theta[i];
    for (int j = 0; j < P; ++j) st.kept_A[i][j] = st.A[i][j];
  }
  st.kept_cost = st.cost, st.kept_converged = st.converged, st.probed = true;
  st.probed_kink = K;
  st.theta[1] = below ? K - Real(kKinkMargin) : K + Real(kKinkMargin);
  st.cost = pr.linearise(s, st.theta, st.A, st.g);
  st.mu = Real(1e-3);
  st.converged = st.pinned = false;
  // A step straight back across the kink means a V on it: pinned there, the kept one wins.
  st.beside_kink = true, st.kink_passed = K, st.last_move = st.theta[1] - st.kept_theta[1];
  return true;
}

/// Standard errors from the curvature A at the solution: se_i² = σ² (A⁻¹)_ii, through one
/// Cholesky factor A = L Lᵀ (diag(A⁻¹)_i = Σ_k (L⁻¹)_ki²). Returns false, `se` unset, when A
/// is singular: not positive definite, or a pivot near zero relative to the largest
/// curvature (a parameter the data do not identify).
template <class Real, int P>
PERFQ_HD inline bool standard_errors(const Real (&A)[P][P], Real sigma2, Real (&se)[P]) {
  Real scale = 0;
  for (int i = 0; i < P; ++i) scale = A[i][i] > scale ? A[i][i] : scale;
  bool singular = false;
  for (int i = 0; i < P; ++i) singular = singular || !(A[i][i] > Real(1e-12) * scale);
  Real L[P][P] = {};
  for (int i = 0; i < P && !singular; ++i) {
    for (int j = 0; j <= i; ++j) {
      Real sum = A[i][j];
      for (int k = 0; k < j; ++k) sum -= L[i][k] * L[j][k];
      if (i == j) {
        singular = !(sum > Real(0));
        L[i][i] = singular ? Real(1) : std::sqrt(sum);
      } else {
        L[i][j] = sum / L[j][j];
      }
    }
  }
  if (!singular) {
    Real inv[P][P] = {};  // L⁻¹, lower triangular
    for (int j = 0; j < P; ++j) {
      inv[j][j] = Real(1) / L[j][j];
      for (int i = j + 1; i < P; ++i) {
        Real sum = 0;
        for (int k = j; k < i; ++k) sum -= L[i][k] * inv[k][j];
        inv[i][j] = sum / L[i][i];
      }
    }
    for (int i = 0; i < P; ++i) {
      Real diag = 0;
      for (int k = i; k < P; ++k) diag += inv[k][i] * inv[k][i];
      se[i] = std::sqrt(sigma2 * diag);
    }
  }
  return !singular;
}

/// The voxel's result from the polished solution: parameters, residual sum of squares,
/// standard errors and status. σ² is RSS/(n − P); the noise variance instead with a prior
/// (when positive) or with no more delays than parameters. A singular fit (status 6) keeps
/// the flow's conditional standard error, `sqrt(σ² / A₀₀)`, the others 0.
template <class Real, int P, int N>
PERFQ_HD inline KineticVoxelResult<Real> polish_result(const KineticSettings<Real>& s,
                                                       const PolishProblem<Real, P, N>& pr,
                                                       const PolishState<Real, P>& st) {
  const int n = N > 0 ? N : s.delays;
  KineticVoxelResult<Real> out;
  out.flow = st.theta[0];
  out.att = st.theta[1];
  if (P == 3) out.abv = st.theta[P - 1], out.arterial_att = pr.arterial_att;
  out.iterations = st.it;
  out.rss = st.cost - pr.prior_cost(s, st.theta);
  Real sigma2 = n > P ? out.rss / Real(n - P) : pr.noise_variance;
  const bool posterior = s.prior || pr.prior_scale > Real(0) || pr.flow_prior_scale > Real(0);
  if (posterior && pr.noise_variance > Real(0)) sigma2 = pr.noise_variance;
  Real se[P];
  if (!standard_errors<Real, P>(st.A, sigma2, se)) {
    out.status = kStatusSingular;
    // The ATT (and aBV) not identifiable, the flow often is (e.g. every delay after the whole
    // bolus has arrived, with T1app = T1b): its standard error conditional on the others held
    // at their values, from the one-parameter Fisher information σ² / Σ w (∂S/∂f)² = σ² / A₀₀.
    // 0 when the flow's own curvature is nil too (no signal).
    Real scale = 0;
    for (int i = 0; i < P; ++i) scale = st.A[i][i] > scale ? st.A[i][i] : scale;
    if (st.A[0][0] > Real(1e-12) * scale && sigma2 >= Real(0)) {
      out.flow_se = std::sqrt(sigma2 / st.A[0][0]);
    }
  } else {
    out.flow_se = se[0];
    out.att_se = se[1];
    if (P == 3) out.abv_se = se[P - 1];
    const Real edge = Real(1e-4) * (s.att_max - s.att_min);
    if (st.theta[1] <= s.att_min + edge || st.theta[1] >= s.att_max - edge) {
      out.status = kStatusAtBound;
    } else if (!st.converged) {
      out.status = kStatusMaxIterations;
    }
  }
  if (!(is_finite(out.flow) && is_finite(out.att) && is_finite(out.flow_se) &&
        is_finite(out.att_se) && is_finite(out.abv) && is_finite(out.abv_se))) {
    out = KineticVoxelResult<Real>{};
    out.status = kStatusNonFiniteResult;
  }
  return out;
}

/// The fit with P parameters: (flow, ATT), plus the arterial blood volume when P = 3 (its
/// arrival time then fixed at `arterial_att`, found by the search), from `start`. Runs of
/// Levenberg–Marquardt iterations (polish_step) until converged or s.max_iterations, each
/// followed by kink_probe, which may start another run from beyond a kink; then the
/// standard errors. N: as in pcasl_model.
template <class Real, int P, int N = 0>
PERFQ_HD inline KineticVoxelResult<Real> polish(const KineticSettings<Real>& s, const Real* y,
                                                Real offset, const Real (&start)[P],
                                                Real arterial_att, Real noise_variance) {
  constexpr int kCapacity = delay_capacity<N>();
  Real arterial[kCapacity], kinks[2 * kCapacity];
  const PolishProblem<Real, P, N> problem(s, y, offset, arterial_att, noise_variance, arterial,
                                          kinks);
  PolishState<Real, P> state;
  for (int i = 0; i < P; ++i) state.theta[i] = start[i];
  state.cost = problem.linearise(s, state.theta, state.A, state.g);
  for (int probes = 0;; ++probes) {
    while (state.it < s.max_iterations && !state.converged && polish_step(s, problem, state)) {
      ++state.it;
    }
    if (!kink_probe(s, problem, state, probes)) break;
  }
  return polish_result(s, problem, state);
}

}  // namespace detail
PERFQ_NAMESPACE_END
