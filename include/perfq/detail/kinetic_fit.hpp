/// @file
/// @brief The per-voxel multi-delay fit (CBF and arrival time), shared by the CPU and CUDA
/// backends: a separable search over the arrival time with the flow solved exactly, then
/// Levenberg–Marquardt polishing with exact (automatic) derivatives, then standard errors.
#pragma once

#include <perfq/detail/dual.hpp>
#include <perfq/detail/kinetic.hpp>
#include <perfq/detail/macros.hpp>
#include <perfq/detail/single_delay.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace perfq {
namespace detail {

constexpr int kMaxDelays = 64;  ///< most distinct delays one fit takes

/// Status codes beyond those of single_delay.hpp (same numbering as perfq::VoxelStatus).
enum : std::uint8_t { kStatusMaxIterations = 5, kStatusSingular = 6, kStatusAtBound = 7 };

/// Which apparent tissue T1 the model uses (perfq::KineticVariant).
enum : int { kVariantBuxton = 0, kVariantBuxtonFixedFlow = 1, kVariantWhitePaper = 2 };

/// Everything a fit needs besides the voxel's data: copied by value to the device.
template <class Real>
struct KineticSettings {
  int delays = 0;
  bool pasl = false;
  int variant = kVariantBuxton;
  Real alpha = 0, lambda = 0, t1_blood = 0, t1_tissue = 0;
  Real fixed_flow = Real(0.01);  ///< ml/g/s, for kVariantBuxtonFixedFlow
  Real att_min = 0, att_max = 0;
  int grid = 24;            ///< arrival times tried before refinement (≤ kMaxGrid)
  int max_iterations = 20;  ///< Levenberg–Marquardt iterations
  Real tolerance = Real(1e-6);  ///< relative cost decrease that ends the polishing
  bool prior = false;       ///< Gaussian prior on the arrival time (MAP)
  Real prior_mean = 0, prior_sd = 1;
  Real noise_variance = 0;  ///< σ² of one unit-weight observation (ΔM/M0)², for the prior/SE
  Real delay[kMaxDelays];     ///< PLD (PCASL/CASL) or TI (PASL), s
  Real duration[kMaxDelays];  ///< τ (PCASL/CASL) or TI1 (PASL), s
  Real weight[kMaxDelays];    ///< repeats averaged (inverse relative variance)
  /// Unit-flow tissue signal on the search grid, shared by every voxel of a slice:
  /// basis[(slice * grid + j) * delays + k] at ATT att_min + j·step, T1app at the reference
  /// flow; basis_norm[slice * grid + j] = Σ_k weight[k] basis². Filled by fill_basis().
  const Real* basis = nullptr;
  const Real* basis_norm = nullptr;
  const Real* slice_offset = nullptr;  ///< per slice (2D readouts); nullptr: all 0
};

constexpr int kMaxGrid = 1000;
constexpr double kReferenceFlow = 0.01;  ///< ml/g/s: T1app of the search basis (Buxton)

/// Tissue ΔM/M0 at delay k: amplitude `flow`, apparent T1 from `t1_flow` (ml/g/s).
template <class Real, class P>
PERFQ_HD inline P tissue_signal(const KineticSettings<Real>& s, int k, Real offset, P flow,
                                P t1_flow, P att) {
  KineticInputs<P> in;
  const Real t = s.pasl ? s.delay[k] + offset : s.duration[k] + s.delay[k] + offset;
  in.t = P(t);
  in.tau = P(s.duration[k]);
  in.att = att;
  in.f = flow;
  in.alpha = P(s.alpha);
  in.m0b = P(Real(1) / s.lambda);
  in.t1_blood = P(s.t1_blood);
  if (s.variant == kVariantWhitePaper) {
    in.t1_app = P(s.t1_blood);
  } else {
    // 1/T1app = 1/T1 tissue + f/λ; negative flow (noise) must not shorten T1app.
    P f = s.variant == kVariantBuxtonFixedFlow ? P(s.fixed_flow) : t1_flow;
    if (value_of(f) < Real(0)) f = P(Real(0));
    in.t1_app = P(Real(1)) / (P(Real(1) / s.t1_tissue) + f / P(s.lambda));
  }
  return s.pasl ? pasl_signal(in) : pcasl_signal(in);
}

/// Value and derivatives (flow, ATT) of the model at one delay.
template <class Real>
struct ModelPoint {
  Real m, d_flow, d_att;
};

/// PCASL/CASL model and its exact derivatives at every delay, written out by hand so that the
/// exponentials shared by all delays are computed once (the dual-number form of
/// tissue_signal is the reference; the tests compare the two). Fills `out[0..delays)`.
template <class Real>
PERFQ_HD inline void pcasl_points(const KineticSettings<Real>& s, Real offset, Real flow, Real att,
                                  ModelPoint<Real>* out) {
  using std::exp;
  // r = 1/T1app and its derivative with respect to flow.
  Real r = Real(1) / s.t1_blood, dr = 0;
  if (s.variant == kVariantBuxtonFixedFlow) {
    r = Real(1) / s.t1_tissue + s.fixed_flow / s.lambda;
  } else if (s.variant == kVariantBuxton) {
    r = Real(1) / s.t1_tissue + (flow > Real(0) ? flow / s.lambda : Real(0));
    dr = flow > Real(0) ? Real(1) / s.lambda : Real(0);
  }
  // Amplitude 2 α M0b f T1app (M0b = 1/λ) with the arrival decay e^(−Δt/T1b).
  const Real c = Real(2) * s.alpha / s.lambda;
  const Real decay = exp(-att / s.t1_blood);
  const Real amp = c * flow / r * decay;
  const Real damp_flow = (c / r - c * flow / (r * r) * dr) * decay;
  const Real damp_att = -amp / s.t1_blood;
  for (int k = 0; k < s.delays; ++k) {
    const Real t = s.duration[k] + s.delay[k] + offset, tau = s.duration[k];
    ModelPoint<Real> p{0, 0, 0};
    if (t >= att && t < att + tau) {  // bolus arriving
      const Real u = t - att, e = exp(-u * r), shape = Real(1) - e;
      p.m = amp * shape;
      p.d_flow = damp_flow * shape + amp * u * e * dr;
      p.d_att = damp_att * shape - amp * r * e;
    } else if (t >= att + tau) {  // bolus delivered, decaying
      const Real v = t - tau - att, e = exp(-v * r), et = exp(-tau * r);
      const Real shape = e * (Real(1) - et);
      p.m = amp * shape;
      p.d_flow = damp_flow * shape + amp * (-v * e * (Real(1) - et) + e * tau * et) * dr;
      p.d_att = damp_att * shape + amp * r * shape;
    }
    out[k] = p;
  }
}

/// ATT of search grid point j.
template <class Real>
PERFQ_HD inline Real grid_att(const KineticSettings<Real>& s, int j) {
  return s.att_min + (s.att_max - s.att_min) * Real(j) / Real(s.grid - 1);
}

/// Fills the search basis for `slices` slices (host code; see KineticSettings::basis).
template <class Real>
inline void fill_basis(const KineticSettings<Real>& s, int slices, Real* basis, Real* norm) {
  for (int z = 0; z < slices; ++z) {
    const Real offset = s.slice_offset != nullptr ? s.slice_offset[z] : Real(0);
    for (int j = 0; j < s.grid; ++j) {
      Real gg = 0;
      for (int k = 0; k < s.delays; ++k) {
        const Real g = tissue_signal<Real, Real>(s, k, offset, Real(1), Real(kReferenceFlow),
                                                 grid_att(s, j));
        basis[(z * s.grid + j) * s.delays + k] = g;
        gg += s.weight[k] * g * g;
      }
      norm[z * s.grid + j] = gg;
    }
  }
}

/// Result of one voxel's fit.
template <class Real>
struct KineticVoxelResult {
  Real flow = 0, att = 0;        ///< ml/g/s, s
  Real flow_se = 0, att_se = 0;  ///< standard errors
  Real rss = 0;                  ///< weighted residual sum of squares (ΔM/M0)²
  int iterations = 0;
  std::uint8_t status = kStatusOk;
};

/// Fits one voxel of slice `slice`. `y` holds ΔM/M0 per delay.
template <class Real>
PERFQ_HD inline KineticVoxelResult<Real> fit_voxel(const KineticSettings<Real>& s, const Real* y,
                                                   int slice) {
  KineticVoxelResult<Real> out;
  const int n = s.delays;
  const Real offset = s.slice_offset != nullptr ? s.slice_offset[slice] : Real(0);
  Real yy = 0;
  for (int k = 0; k < n; ++k) yy += s.weight[k] * y[k] * y[k];
  const Real prior_scale = s.prior ? s.noise_variance / (s.prior_sd * s.prior_sd) : Real(0);

  // 1. Separable search: at each grid ATT the best flow is a weighted projection on the
  // precomputed basis, and the cost what is left; then a parabola through the best grid
  // point and its neighbours refines the ATT.
  const Real* basis = s.basis + static_cast<std::size_t>(slice) * s.grid * n;
  const Real* norm = s.basis_norm + static_cast<std::size_t>(slice) * s.grid;
  Real costs[3] = {0, 0, 0};
  int best = 0;
  Real best_cost = 0;
  auto grid_cost = [&](int j) {
    Real gy = 0;
    const Real* g = basis + j * n;
    for (int k = 0; k < n; ++k) gy += s.weight[k] * g[k] * y[k];
    const Real d = grid_att(s, j) - s.prior_mean;
    return (norm[j] > Real(0) ? yy - gy * gy / norm[j] : yy) + prior_scale * d * d;
  };
  for (int j = 0; j < s.grid; ++j) {
    const Real cost = grid_cost(j);
    if (j == 0 || cost < best_cost) best_cost = cost, best = j;
  }
  const int centre = best == 0 ? 1 : (best == s.grid - 1 ? s.grid - 2 : best);
  for (int i = 0; i < 3; ++i) costs[i] = grid_cost(centre - 1 + i);
  const Real step = (s.att_max - s.att_min) / Real(s.grid - 1);
  const Real curvature = costs[0] - Real(2) * costs[1] + costs[2];
  Real att0 = grid_att(s, best);
  if (curvature > Real(0)) {
    Real shift = Real(0.5) * (costs[0] - costs[2]) / curvature;  // in steps from the centre
    shift = shift < Real(-1) ? Real(-1) : (shift > Real(1) ? Real(1) : shift);
    att0 = grid_att(s, centre) + shift * step;
  }
  // Exact flow at the refined ATT, T1app at the reference flow as in the basis.
  Real flow0 = 0;
  {
    Real gy = 0, gg = 0;
    ModelPoint<Real> points[kMaxDelays];
    if (!s.pasl) pcasl_points(s, offset, Real(kReferenceFlow), att0, points);
    for (int k = 0; k < n; ++k) {
      const Real g = s.pasl ? tissue_signal<Real, Real>(s, k, offset, Real(1),
                                                        Real(kReferenceFlow), att0)
                            : points[k].m / Real(kReferenceFlow);
      gy += s.weight[k] * g * y[k];
      gg += s.weight[k] * g * g;
    }
    flow0 = gg > Real(0) ? gy / gg : Real(0);
  }

  // 2. Levenberg–Marquardt on (flow, att) with exact derivatives; att kept in its bounds.
  using D = Dual<Real, 2>;
  Real theta[2] = {flow0, att0};
  // Normal equations A δ = g, cost; at θ. Data term scaled by 1/σ² only relative to the prior.
  auto linearise = [&](const Real* th, Real A[3], Real g[2]) {
    A[0] = A[1] = A[2] = g[0] = g[1] = 0;
    Real cost = 0;
    ModelPoint<Real> points[kMaxDelays];
    if (s.pasl) {
      const D f = D::variable(th[0], 0), att = D::variable(th[1], 1);
      for (int k = 0; k < n; ++k) {
        const D m = tissue_signal<Real, D>(s, k, offset, f, f, att);
        points[k] = ModelPoint<Real>{m.v, m.d[0], m.d[1]};
      }
    } else {
      pcasl_points(s, offset, th[0], th[1], points);
    }
    for (int k = 0; k < n; ++k) {
      const ModelPoint<Real>& m = points[k];
      const Real r = y[k] - m.m, w = s.weight[k];
      cost += w * r * r;
      A[0] += w * m.d_flow * m.d_flow;
      A[1] += w * m.d_flow * m.d_att;
      A[2] += w * m.d_att * m.d_att;
      g[0] += w * m.d_flow * r;
      g[1] += w * m.d_att * r;
    }
    if (s.prior) {
      const Real d = th[1] - s.prior_mean;
      cost += prior_scale * d * d;
      A[2] += prior_scale;
      g[1] -= prior_scale * d;
    }
    return cost;
  };
  Real A[3], g[2];
  Real cost = linearise(theta, A, g);
  Real mu = Real(1e-3);
  bool converged = false;
  int it = 0;
  for (; it < s.max_iterations && !converged; ++it) {
    bool improved = false;
    for (int attempt = 0; attempt < 8 && !improved; ++attempt) {
      const Real a0 = A[0] * (Real(1) + mu), a2 = A[2] * (Real(1) + mu), a1 = A[1];
      const Real det = a0 * a2 - a1 * a1;
      if (!(det > Real(0))) {
        mu *= Real(10);
        continue;
      }
      Real next[2] = {theta[0] + (a2 * g[0] - a1 * g[1]) / det,
                      theta[1] + (a0 * g[1] - a1 * g[0]) / det};
      next[1] = next[1] < s.att_min ? s.att_min : (next[1] > s.att_max ? s.att_max : next[1]);
      Real A2[3], g2[2];
      const Real c2 = linearise(next, A2, g2);
      if (c2 <= cost) {
        const Real decrease = cost - c2;
        theta[0] = next[0], theta[1] = next[1];
        for (int i = 0; i < 3; ++i) A[i] = A2[i];
        g[0] = g2[0], g[1] = g2[1];
        converged = decrease <= s.tolerance * (cost + Real(1e-30));
        cost = c2;
        mu = mu * Real(0.3) > Real(1e-7) ? mu * Real(0.3) : Real(1e-7);
        improved = true;
      } else {
        mu *= Real(10);
      }
    }
    if (!improved) converged = true;  // no descent direction left: a minimum in float
  }

  // 3. Standard errors from the curvature at the solution.
  out.flow = theta[0];
  out.att = theta[1];
  out.iterations = it;
  const Real rss = cost - (s.prior ? prior_scale * (theta[1] - s.prior_mean) *
                                         (theta[1] - s.prior_mean)
                                   : Real(0));
  out.rss = rss;
  Real sigma2 = n > 2 ? rss / Real(n - 2) : s.noise_variance;
  if (s.prior && s.noise_variance > Real(0)) sigma2 = s.noise_variance;
  const Real det = A[0] * A[2] - A[1] * A[1];
  if (!(det > Real(1e-30) * (A[0] * A[2] + Real(1e-30)))) {
    out.status = kStatusSingular;
  } else {
    out.flow_se = std::sqrt(sigma2 * A[2] / det);
    out.att_se = std::sqrt(sigma2 * A[0] / det);
    const Real edge = Real(1e-4) * (s.att_max - s.att_min);
    if (theta[1] <= s.att_min + edge || theta[1] >= s.att_max - edge) {
      out.status = kStatusAtBound;
    } else if (!converged) {
      out.status = kStatusMaxIterations;
    }
  }
  if (!(is_finite(out.flow) && is_finite(out.att) && is_finite(out.flow_se) &&
        is_finite(out.att_se))) {
    out = KineticVoxelResult<Real>{};
    out.status = kStatusNonFiniteResult;
  }
  return out;
}

}  // namespace detail
}  // namespace perfq
