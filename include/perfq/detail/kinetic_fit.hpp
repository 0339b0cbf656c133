/// @file
/// @brief The per-voxel multi-delay fit (CBF and arrival time), shared by the CPU and CUDA
/// backends: a separable search over the arrival time with the flow solved exactly, then
/// Levenberg–Marquardt polishing with exact (automatic) derivatives, then standard errors.
#pragma once

#include <perfq/version.hpp>

#include <perfq/detail/dual.hpp>
#include <perfq/detail/kinetic.hpp>
#include <perfq/detail/macros.hpp>
#include <perfq/detail/single_delay.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

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
  int grid = 24;            ///< arrival times tried before refinement (≤ kMaxGrid)
  int max_iterations = 20;  ///< Levenberg–Marquardt iterations
  Real tolerance = Real(1e-6);  ///< relative cost decrease that ends the polishing
  bool arterial = false;    ///< add the macrovascular component (aBV, arterial ATT)
  /// Disperse the tissue arrival with `kernel` (the arterial component stays a box).
  bool dispersion = false;
  GammaKernel<Real> kernel;
  bool prior = false;       ///< Gaussian prior on the arrival time (MAP)
  Real prior_mean = 0, prior_sd = 1;
  /// With `prior` and `arterial`: Gaussian prior on the arterial arrival (the search's).
  Real arterial_prior_mean = 0, arterial_prior_sd = 1;
  Real noise_variance = 0;  ///< σ² of one unit-weight observation (ΔM/M0)², × noise_scale
  // Zero beyond `delays`: the padding lanes of pcasl_model (delay_capacity) read them.
  Real delay[kMaxDelays] = {};     ///< PLD (PCASL/CASL) or TI (PASL), s
  Real duration[kMaxDelays] = {};  ///< τ (PCASL/CASL) or TI1 (PASL), s
  bool same_duration = false;  ///< every duration[k] equal (lets the fit share e^(τ/T1app))
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
  if (s.dispersion) {
    return s.pasl ? pasl_signal_dispersed(in, s.kernel) : pcasl_signal_dispersed(in, s.kernel);
  }
  return s.pasl ? pasl_signal(in) : pcasl_signal(in);
}

/// e^x for the PCASL fast path. Host float: Cephes' expf polynomial (within 2 ulp), inline and
/// branch-free so that the loop over delays vectorises (a libm call per delay does not);
/// x is clamped to [−87, 88]. Device code and double precision use the library's exp.
PERFQ_HD inline float exp_vectorisable(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  x = x > -87.0f ? x : -87.0f;
  x = x < 88.0f ? x : 88.0f;
  // x = n ln 2 + z, |z| ≤ ln 2 / 2 (n rounded to nearest by the 1.5·2²³ shift).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float z = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * z + 1.3981999507e-3f;
  p = p * z + 8.3334519073e-3f;
  p = p * z + 4.1665795894e-2f;
  p = p * z + 1.6666665459e-1f;
  p = p * z + 5.0000001201e-1f;
  p = p * z * z + z + 1.0f;
  const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;  // 2^n, n in [−126, 127]
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
#endif
}
PERFQ_HD inline double exp_vectorisable(double x) {
  using std::exp;
  return exp(x);
}

/// Value and derivatives (flow, ATT) of the model at one delay.
template <class Real>
struct ModelPoint {
  Real m, d_flow, d_att;
};

/// The factors of pcasl_model that depend on the settings alone: computed once per fit, so that
/// the model evaluations need one division (T1app) instead of four.
template <class Real>
struct PcaslConstants {
  Real inv_lambda, inv_t1b, inv_t1_tissue;
  Real c;  ///< 2 α M0b (M0b = 1/λ)
  PERFQ_HD explicit PcaslConstants(const KineticSettings<Real>& s)
      : inv_lambda(Real(1) / s.lambda),
        inv_t1b(Real(1) / s.t1_blood),
        inv_t1_tissue(Real(1) / s.t1_tissue),
        c(Real(2) * s.alpha * inv_lambda) {}
};

/// PCASL/CASL model and its exact derivatives at every delay, written out by hand so that the
/// exponentials shared by all delays are computed once (the dual-number form of
/// tissue_signal is the reference; the tests compare the two). Fills `m`, `d_flow` and
/// `d_att` [0..delays): separate arrays, so that the loop over delays vectorises. N > 0: the
/// settings have N delays, known at compile time (see fit_voxel), and the arrays hold
/// delay_capacity<N>() values, all written (the padding lanes hold no model value).
/// `constants`: PcaslConstants(s).
template <class Real, int N = 0>
PERFQ_HD inline void pcasl_model(const KineticSettings<Real>& s,
                                 const PcaslConstants<Real>& constants, Real offset, Real flow,
                                 Real att, Real* PERFQ_RESTRICT m, Real* PERFQ_RESTRICT d_flow,
                                 Real* PERFQ_RESTRICT d_att) {
  const int n = N > 0 ? delay_capacity<N>() : s.delays;
  // r = 1/T1app and its derivative with respect to flow.
  const Real inv_lambda = constants.inv_lambda, inv_t1b = constants.inv_t1b;
  Real r = inv_t1b, dr = 0;
  if (s.variant == kVariantBuxtonFixedFlow) {
    r = constants.inv_t1_tissue + s.fixed_flow * inv_lambda;
  } else if (s.variant == kVariantBuxton) {
    r = constants.inv_t1_tissue + (flow > Real(0) ? flow * inv_lambda : Real(0));
    dr = flow > Real(0) ? inv_lambda : Real(0);
  }
  // Amplitude 2 α M0b f T1app (M0b = 1/λ) with the arrival decay e^(−Δt/T1b).
  const Real c = constants.c, inv_r = Real(1) / r;
  const Real decay = exp_vectorisable(-att * inv_t1b);
  const Real amp = c * flow * inv_r * decay;
  const Real damp_flow = c * inv_r * (Real(1) - flow * inv_r * dr) * decay;
  const Real damp_att = -amp * inv_t1b;
  // e^(τr) per delay; once when all delays share one labelling duration (the usual case).
  Real grow[delay_capacity<N>()];
  if (s.same_duration) {
    const Real shared = exp_vectorisable(s.duration[0] * r);
    for (int k = 0; k < n; ++k) grow[k] = shared;
  } else {
    PERFQ_SIMD
    for (int k = 0; k < n; ++k) grow[k] = exp_vectorisable(s.duration[k] * r);
  }
  // With u = t − Δt the shape is e^(−(u−τ)r) − e^(−ur), the first term capped at 1 while the
  // bolus arrives (u < τ), 0 before it (u < 0). Branch-free, so that the loop vectorises.
  PERFQ_SIMD
  for (int k = 0; k < n; ++k) {
    const Real tau = s.duration[k], u = tau + s.delay[k] + offset - att;
    const bool arrived = u >= Real(0), passed = u >= tau;
    const Real late = exp_vectorisable(-(arrived ? u : Real(0)) * r);  // e^(−ur)
    const Real early = passed ? late * grow[k] : Real(0);  // e^(−(u−τ)r)
    const Real v = passed ? u - tau : Real(0);
    const Real shape = (passed ? early : Real(1)) - late;
    m[k] = arrived ? amp * shape : Real(0);
    d_flow[k] = arrived ? damp_flow * shape + amp * (u * late - v * early) * dr : Real(0);
    d_att[k] = arrived ? damp_att * shape + amp * r * (early - late) : Real(0);
  }
}

/// The same, computing PcaslConstants itself.
template <class Real>
PERFQ_HD inline void pcasl_model(const KineticSettings<Real>& s, Real offset, Real flow, Real att,
                                 Real* PERFQ_RESTRICT m, Real* PERFQ_RESTRICT d_flow,
                                 Real* PERFQ_RESTRICT d_att) {
  pcasl_model(s, PcaslConstants<Real>(s), offset, flow, att, m, d_flow, d_att);
}

/// The same as one ModelPoint per delay: fills `out[0..delays)`.
template <class Real>
PERFQ_HD inline void pcasl_points(const KineticSettings<Real>& s, Real offset, Real flow, Real att,
                                  ModelPoint<Real>* out) {
  Real m[kMaxDelays], d_flow[kMaxDelays], d_att[kMaxDelays];
  pcasl_model(s, offset, flow, att, m, d_flow, d_att);
  for (int k = 0; k < s.delays; ++k) out[k] = ModelPoint<Real>{m[k], d_flow[k], d_att[k]};
}

/// Macrovascular ΔM/M0 per unit arterial blood volume at delay k: labelled blood still in
/// arteries, no exchange, present while the bolus passes (arrival `att`, duration τ).
template <class Real>
PERFQ_HD inline Real arterial_signal(const KineticSettings<Real>& s, int k, Real offset, Real att) {
  using std::exp;
  const Real t = s.pasl ? s.delay[k] + offset : s.duration[k] + s.delay[k] + offset;
  if (t < att || t >= att + s.duration[k]) return Real(0);
  // PCASL: decayed during transit; PASL: decayed since the inversion.
  return Real(2) * s.alpha / s.lambda * exp(-(s.pasl ? t : att) / s.t1_blood);
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
        basis[(z * s.delays + k) * s.grid + j] = g;
        gg += s.weight[k] * g * g;
      }
      norm[z * s.grid + j] = gg;
    }
  }
}

/// The kinks of delay k: the ATTs at which its bolus ends (u = τ) and begins (u = 0)
/// arriving, for a slice time `offset` (none with dispersion: the model is smooth).
template <class Real>
PERFQ_HD inline void kinks_of(const KineticSettings<Real>& s, int k, Real offset, Real* kinks) {
  kinks[0] = s.pasl ? s.delay[k] + offset : s.duration[k] + s.delay[k] + offset;
  kinks[1] = kinks[0] - s.duration[k];
}

/// Fills KineticSettings::kink_free for `slices` slices (host code; after att_min, att_max,
/// the timing and slice_offset are set). A bin is not free when a kink lies within reach of
/// it, or when it meets a plateau: the ATTs at which one delay's bolus alone has arrived
/// (from the second latest sample time to the latest).
template <class Real>
inline void mark_kink_free_bins(KineticSettings<Real>& s, int slices) {
  for (std::uint32_t& word : s.kink_free) word = 0;
  const double range = double(s.att_max) - double(s.att_min);
  s.kink_bin_scale = Real(kKinkBins / range);
  // Twice the reach: a voxel's bin index is rounded in Real.
  const double width = range / kKinkBins, reach = 2 * kKinkProbeReach;
  for (int b = 0; b < kKinkBins; ++b) {
    const double lo = s.att_min + b * width - reach, hi = s.att_min + (b + 1) * width + reach;
    bool free = true;
    for (int z = 0; z < slices && !s.dispersion; ++z) {
      const Real offset = s.slice_offset != nullptr ? s.slice_offset[z] : Real(0);
      Real latest = 0, second = 0;  // sample times (arrival kinks)
      for (int k = 0; k < s.delays; ++k) {
        Real kinks[2];
        kinks_of(s, k, offset, kinks);
        for (const Real kink : kinks) free = free && !(kink >= lo && kink <= hi);
        if (k == 0 || kinks[0] > latest) {
          second = k == 0 ? kinks[0] : latest, latest = kinks[0];
        } else if (k == 1 || kinks[0] > second) {
          second = kinks[0];
        }
      }
      free = free && !(second <= hi && latest >= lo);
    }
    if (free) s.kink_free[b / 32] |= std::uint32_t(1) << (b % 32);
  }
}

/// Result of one voxel's fit.
template <class Real>
struct KineticVoxelResult {
  Real flow = 0, att = 0;        ///< ml/g/s, s
  Real flow_se = 0, att_se = 0;  ///< standard errors
  Real abv = 0, abv_se = 0;      ///< arterial blood volume fraction and its standard error
  Real arterial_att = 0;         ///< arterial arrival time (s), on the search grid
  Real rss = 0;                  ///< weighted residual sum of squares (ΔM/M0)²
  int iterations = 0;
  std::uint8_t status = kStatusOk;
};

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

/// The fit with P parameters: (flow, ATT), plus the arterial blood volume when P = 3 (its
/// arrival time then fixed at `arterial_att`, found by the search). N: as in pcasl_model.
template <class Real, int P, int N = 0>
PERFQ_HD inline KineticVoxelResult<Real> polish(const KineticSettings<Real>& s, const Real* y,
                                                Real offset, const Real (&start)[P],
                                                Real arterial_att, Real noise_variance) {
  using D = Dual<Real, 2>;
  constexpr int kCapacity = delay_capacity<N>();
  const int n = N > 0 ? N : s.delays;
  const Real prior_scale = s.prior ? noise_variance / (s.prior_sd * s.prior_sd) : Real(0);
  const PcaslConstants<Real> constants(s);
  Real arterial[kCapacity];
  if (P == 3) {
    for (int k = 0; k < n; ++k) arterial[k] = arterial_signal(s, k, offset, arterial_att);
  }
  // Normal equations A δ = g and the cost at θ (the prior adds a residual on ATT).
  auto linearise = [&](const Real (&th)[P], Real (&A)[P][P], Real (&g)[P]) {
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
    if (s.prior) {
      const Real d = th[1] - s.prior_mean;
      cost += prior_scale * d * d;
      A[1][1] += prior_scale;
      g[1] -= prior_scale * d;
    }
    return cost;
  };

  // Kinks: the ATTs at which a delay's bolus begins (u = 0) or ends (u = τ) arriving. The
  // model's slope jumps there, so the cost often has its minimum on one, where Levenberg–
  // Marquardt steps overshoot again and again. Steps stop at the first kink they cross; at
  // a kink (or ATT bound) a rejected step is retried shorter, twice, then with the ATT held.
  // ATT within its range, and not before the arteries fill (P = 3).
  const Real lowest = P == 3 && arterial_att > s.att_min ? arterial_att : s.att_min;
  Real kinks[2 * kCapacity];
  const int kink_count = s.dispersion ? 0 : 2 * n;
  for (int k = 0; k < kink_count / 2; ++k) kinks_of(s, k, offset, kinks + 2 * k);
  constexpr Real kKinkMargin = Real(1e-5);  // s
  constexpr int kMaxKinkProbes = 2;  // looks beyond a kink (below), at most
  // Whether a kink lies inside the ATT bounds by more than the margin (a probe can start
  // beyond it).
  auto inside = [&](Real K) { return K - kKinkMargin > lowest && K + kKinkMargin < s.att_max; };
  auto at_kink = [&](Real a) {
    bool on = a <= lowest || a >= s.att_max;
    for (int k = 0; k < kink_count; ++k) {
      on = on || (a - kinks[k] <= Real(2) * kKinkMargin && kinks[k] - a <= Real(2) * kKinkMargin);
    }
    return on;
  };

  Real theta[P], A[P][P], g[P];
  for (int i = 0; i < P; ++i) theta[i] = start[i];
  Real cost = linearise(theta, A, g);
  Real mu = Real(1e-3);
  bool converged = false;
  // pinned: the minimum sits on a kink (steps cross it one way, then back), ATT held there.
  bool pinned = false, beside_kink = false;
  Real kink_passed = 0;  // the kink the last accepted step stopped just past
  Real last_move = 0;    // ATT change of the last accepted step
  // The solution so far, before a probe beyond a kink (below).
  Real kept_theta[P], kept_A[P][P], kept_cost = 0;
  Real probed_kink = 0;
  bool kept_converged = false, probed = false;
  int it = 0;
  for (int probes = 0;; ++probes) {
    for (; it < s.max_iterations && !converged; ++it) {
      bool improved = false, hold = pinned;  // hold: ATT fixed for the rest of this iteration
      Real shrink = 1;                      // of the step, rejected at a kink
      for (int attempt = 0; attempt < 8 && !improved; ++attempt) {
        Real damped[P][P], rhs[P], step[P];
        for (int i = 0; i < P; ++i) {
          for (int j = 0; j < P; ++j) damped[i][j] = A[i][j];
          damped[i][i] = A[i][i] * (Real(1) + mu);
          rhs[i] = g[i];
        }
        if (hold) {  // the same system without the ATT: its row and column become the identity's
          for (int i = 0; i < P; ++i) damped[1][i] = damped[i][1] = Real(0);
          damped[1][1] = Real(1), rhs[1] = Real(0);
        }
        if (!solve_spd<Real, P>(damped, rhs, step)) {
          mu *= Real(10);
          continue;
        }
        // The quadratic model predicts the decrease 2 g·δ − δᵀAδ = δ·(g + μ diag(A) δ): when
        // even that is below the tolerance the fit has converged, without evaluating the step
        // (only for a nearly Gauss–Newton step: heavy damping shrinks any step).
        Real predicted = 0;
        for (int i = 0; i < P; ++i) predicted += step[i] * (rhs[i] + mu * A[i][i] * step[i]);
        if (mu <= Real(0.01) && predicted <= s.tolerance * (cost + Real(1e-30))) {
          converged = true;
          break;
        }
        Real next[P];
        for (int i = 0; i < P; ++i) next[i] = theta[i] + shrink * step[i];
        next[1] = next[1] < lowest ? lowest : (next[1] > s.att_max ? s.att_max : next[1]);
        const Real from = theta[1], to = next[1];
        Real stop = to;  // the kink crossed first
        for (int k = 0; k < kink_count; ++k) {
          const Real K = kinks[k];
          if ((from < K && K < stop) || (stop < K && K < from)) stop = K;
        }
        if (!hold && beside_kink && stop == kink_passed) {  // back across it: a V at the kink
          pinned = hold = true;
          continue;
        }
        if (stop != to) {  // just past the kink, so that the slope is the one of the side entered
          const Real past = stop + (to > from ? kKinkMargin : -kKinkMargin);
          const Real fraction = (past - from) / (to - from);
          for (int i = 0; i < P; ++i) next[i] = theta[i] + fraction * shrink * step[i];
          next[1] = past;
        }
        Real A2[P][P], g2[P];
        const Real c2 = linearise(next, A2, g2);
        if (c2 <= cost) {
          const Real decrease = cost - c2;
          last_move = next[1] - theta[1];
          for (int i = 0; i < P; ++i) {
            theta[i] = next[i];
            g[i] = g2[i];
            for (int j = 0; j < P; ++j) A[i][j] = A2[i][j];
          }
          converged = decrease <= s.tolerance * (cost + Real(1e-30));
          cost = c2;
          mu = mu * Real(0.3) > Real(1e-7) ? mu * Real(0.3) : Real(1e-7);
          improved = true;
          beside_kink = stop != to, kink_passed = stop;
        } else if (!hold && at_kink(theta[1])) {  // shorter steps off the kink, then none
          if (shrink > Real(0.1)) {
            shrink *= Real(0.25);
          } else {
            hold = true, shrink = 1;
          }
        } else {
          mu *= Real(10);
        }
      }
      if (converged && !improved) break;  // converged before this iteration's evaluation
      if (!improved) converged = true;  // no descent direction left: a minimum in float
    }
    // Keep the lower of this solution and the one before the probe.
    bool reverted = false;
    if (probed && !(cost < kept_cost)) {
      for (int i = 0; i < P; ++i) {
        theta[i] = kept_theta[i];
        for (int j = 0; j < P; ++j) A[i][j] = kept_A[i][j];
      }
      cost = kept_cost, converged = kept_converged, reverted = true;
    }
    // Two ways to stop short of the minimum at a kink, each rare in the usual fit:
    // - converged next to a kink without having seen the kink's other side (it neither crossed
    //   the kink last nor was pinned on it): one side's smooth extension can have its minimum
    //   on the kink, or a hair beyond it, while the cost keeps falling on the other side. So it
    //   is with the white-paper T1app and contiguous sub-boli (time-encoded PCASL): where one
    //   sub-bolus ends arriving the next begins, and either side fits every delay but one
    //   exactly at the kink;
    // - converged on a plateau: an ATT at which one delay's bolus alone has arrived, so that
    //   flow and ATT trade off freely (their derivatives are collinear). The search lands on
    //   one when the true minimum lies beyond a kink in a basin narrower than its step, e.g.
    //   an ATT just before the first-labelled sub-bolus arrives.
    // Then polish again from just beyond the kink (from a plateau: the nearest kink below,
    // then the nearest above) and keep the lower cost.
    // Whether a kink or a plateau may be within reach, from the table of bins (rarely so).
    const Real bin_position = (theta[1] - s.att_min) * s.kink_bin_scale;
    const unsigned bin =
        bin_position > Real(0)
            ? (bin_position < Real(kKinkBins - 1) ? unsigned(bin_position) : kKinkBins - 1u)
            : 0u;
    if ((s.kink_free[bin / 32u] >> (bin % 32u)) & 1u) break;
    if (!converged || probes == kMaxKinkProbes || it >= s.max_iterations) break;
    int arrived = 0;
    for (int k = 0; k < kink_count; k += 2) arrived += theta[1] < kinks[k] ? 1 : 0;
    const bool plateau = arrived == 1;
    int target = -1;
    if (plateau) {
      Real below_gap = s.att_max - s.att_min, above_gap = below_gap;
      int below_kink = -1, above_kink = -1;
      for (int k = 0; k < kink_count; ++k) {
        const Real K = kinks[k];
        if (!inside(K) || (probed && K == probed_kink)) continue;
        if (K < theta[1] && theta[1] - K < below_gap) below_gap = theta[1] - K, below_kink = k;
        if (K > theta[1] && K - theta[1] < above_gap) above_gap = K - theta[1], above_kink = k;
      }
      target = below_kink >= 0 ? below_kink : above_kink;
    } else {
      if (reverted || pinned) break;
      Real distance = Real(kKinkProbeReach);
      for (int k = 0; k < kink_count; ++k) {
        const Real d = theta[1] > kinks[k] ? theta[1] - kinks[k] : kinks[k] - theta[1];
        if (d <= distance && inside(kinks[k])) distance = d, target = k;
      }
      // Not when it crossed that kink last (both sides seen) or was polished from beyond it.
      if (target >= 0 && ((beside_kink && kink_passed == kinks[target]) ||
                           (probed && kinks[target] == probed_kink))) {
        break;
      }
    }
    if (target < 0) break;
    const Real K = kinks[target];
    // Beyond it, away from the side the solution lies on (or came from, when on the kink).
    const bool below = theta[1] > K || (theta[1] == K && last_move < Real(0));
    for (int i = 0; i < P; ++i) {
      kept_theta[i] = theta[i];
      for (int j = 0; j < P; ++j) kept_A[i][j] = A[i][j];
    }
    kept_cost = cost, kept_converged = converged, probed = true, probed_kink = K;
    theta[1] = below ? K - kKinkMargin : K + kKinkMargin;
    cost = linearise(theta, A, g);
    mu = Real(1e-3);
    converged = pinned = false;
    // A step straight back across the kink means a V on it: pinned there, the kept one wins.
    beside_kink = true, kink_passed = K, last_move = theta[1] - kept_theta[1];
  }

  // Standard errors from the curvature at the solution: σ² times the diagonal of A⁻¹.
  KineticVoxelResult<Real> out;
  out.flow = theta[0];
  out.att = theta[1];
  if (P == 3) out.abv = theta[P - 1], out.arterial_att = arterial_att;
  out.iterations = it;
  const Real d = theta[1] - s.prior_mean;
  out.rss = cost - (s.prior ? prior_scale * d * d : Real(0));
  Real sigma2 = n > P ? out.rss / Real(n - P) : noise_variance;
  if (s.prior && noise_variance > Real(0)) sigma2 = noise_variance;
  // One Cholesky factor A = L Lᵀ gives diag(A⁻¹)_i = Σ_k (L⁻¹)_ki².
  Real se[P];
  Real scale = 0;
  for (int i = 0; i < P; ++i) scale = A[i][i] > scale ? A[i][i] : scale;
  // A near-zero pivot (relative to the largest curvature) means not identifiable.
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
  if (singular) {
    out.status = kStatusSingular;
  } else {
    out.flow_se = se[0];
    out.att_se = se[1];
    if (P == 3) out.abv_se = se[P - 1];
    const Real edge = Real(1e-4) * (s.att_max - s.att_min);
    if (theta[1] <= s.att_min + edge || theta[1] >= s.att_max - edge) {
      out.status = kStatusAtBound;
    } else if (!converged) {
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

/// fit_voxel (below) for N delays, known at compile time (N = 0: s.delays, at run time).
template <int N, class Real>
PERFQ_HD inline KineticVoxelResult<Real> fit_voxel_n(const KineticSettings<Real>& s, const Real* y,
                                                     int slice, Real noise_scale) {
  constexpr int kCapacity = delay_capacity<N>();
  const int n = N > 0 ? N : s.delays;
  const Real offset = s.slice_offset != nullptr ? s.slice_offset[slice] : Real(0);
  Real yy = 0, wy[kCapacity];
  for (int k = 0; k < n; ++k) wy[k] = s.weight[k] * y[k], yy += wy[k] * y[k];
  const Real noise_variance = s.noise_variance * noise_scale;
  const Real prior_scale = s.prior ? noise_variance / (s.prior_sd * s.prior_sd) : Real(0);
  const Real* basis = s.basis + static_cast<std::size_t>(slice) * s.grid * n;
  const Real* norm = s.basis_norm + static_cast<std::size_t>(slice) * s.grid;

  // 1. Separable search: at each grid ATT the amplitudes are a weighted linear least-squares
  // solution on the precomputed basis, and the cost what is left.
  // Tissue only: cost(j) = yy − gy²/gg. With the arterial component, every arterial arrival
  // i ≤ j (its signal is a box in time: the cost is flat between sample times, so a grid
  // finds it) with a 2×2 solve for (flow, aBV).
  bool with_arterial = false;  // grid_cost includes the arterial basis below
  Real arterial[kCapacity], aa = 0, ay = 0;
  auto set_arterial = [&](int i) {
    aa = ay = 0;
    for (int k = 0; k < n; ++k) {
      arterial[k] = arterial_signal(s, k, offset, grid_att(s, i));
      aa += s.weight[k] * arterial[k] * arterial[k];
      ay += s.weight[k] * arterial[k] * y[k];
    }
    return aa > Real(0);  // false: the box misses every sample
  };
  auto grid_cost = [&](int j, Real* flow = nullptr) {
    Real gy = 0, ga = 0;
    const Real* g = basis + j;
    for (int k = 0; k < n; ++k) gy += wy[k] * g[k * s.grid];
    const Real amplitude = norm[j] > Real(0) ? gy / norm[j] : Real(0);
    if (flow != nullptr) *flow = amplitude;
    Real cost = yy - amplitude * gy;
    if (with_arterial) {
      for (int k = 0; k < n; ++k) ga += s.weight[k] * g[k * s.grid] * arterial[k];
      const Real det = norm[j] * aa - ga * ga;
      if (det > Real(1e-12) * norm[j] * aa) {
        const Real f = (aa * gy - ga * ay) / det, b = (norm[j] * ay - ga * gy) / det;
        cost = yy - f * gy - b * ay;
      }
    }
    const Real d = grid_att(s, j) - s.prior_mean;
    return cost + prior_scale * d * d;
  };
  // A parabola through grid point `best` and its neighbours refines the ATT; the amplitudes
  // at the refined ATT start the polishing (T1app at the reference flow, as in the basis).
  // Tissue only, the flow amplitude of the three grid points is interpolated alike.
  // `known`: the costs and flows around an interior `best`, kept by the search (or nullptr).
  auto finish = [&](int best, int arterial_index, const Real (*known)[3]) {
    const int centre = best == 0 ? 1 : (best == s.grid - 1 ? s.grid - 2 : best);
    Real costs[3], flows[3];
    for (int i = 0; i < 3; ++i) {
      if (known != nullptr) {
        costs[i] = known[0][i], flows[i] = known[1][i];
      } else {
        costs[i] = grid_cost(centre - 1 + i, &flows[i]);
      }
    }
    const Real step = (s.att_max - s.att_min) / Real(s.grid - 1);
    const Real curvature = costs[0] - Real(2) * costs[1] + costs[2];
    Real att0 = grid_att(s, best);
    Real flow0 = flows[best - centre + 1];
    if (curvature > Real(0)) {
      Real shift = Real(0.5) * (costs[0] - costs[2]) / curvature;  // in steps from the centre
      shift = shift < Real(-1) ? Real(-1) : (shift > Real(1) ? Real(1) : shift);
      att0 = grid_att(s, centre) + shift * step;
      flow0 = flows[1] + Real(0.5) * shift * (flows[2] - flows[0]) +
              Real(0.5) * shift * shift * (flows[0] - Real(2) * flows[1] + flows[2]);
    }
    if (!with_arterial) {
      const Real start[2] = {flow0, att0};
      return polish<Real, 2, N>(s, y, offset, start, Real(0), noise_variance);
    }
    Real gy = 0, gg = 0, ga = 0;
    Real model[kCapacity], d_flow[kCapacity], d_att[kCapacity];
    const bool generic = s.pasl || s.dispersion;
    if (!generic) {
      pcasl_model<Real, N>(s, PcaslConstants<Real>(s), offset, Real(kReferenceFlow), att0, model,
                           d_flow, d_att);
    }
    for (int k = 0; k < n; ++k) {
      const Real g = generic ? tissue_signal<Real, Real>(s, k, offset, Real(1),
                                                        Real(kReferenceFlow), att0)
                            : model[k] / Real(kReferenceFlow);
      gy += s.weight[k] * g * y[k];
      gg += s.weight[k] * g * g;
      ga += s.weight[k] * g * arterial[k];
    }
    const Real det = gg * aa - ga * ga;
    Real start[3] = {gg > Real(0) ? gy / gg : Real(0), att0, Real(0)};
    if (det > Real(1e-12) * gg * aa) {
      start[0] = (aa * gy - ga * ay) / det;
      start[2] = (gg * ay - ga * gy) / det;
    }
    return polish<Real, 3, N>(s, y, offset, start, grid_att(s, arterial_index), noise_variance);
  };

  // Tissue only: grid_cost over blocks of grid points at once (the basis holds each delay's
  // grid points contiguously), the first lowest cost wins. `count` grid points from j0; with
  // count = kBlock (a constant) the host compiler vectorises over the block, hence the
  // division by a norm made nonzero rather than a branch around it.
  constexpr int kBlock = 8;
  auto search_block = [&](int j0, int count, Real(&flows)[kBlock], Real(&costs)[kBlock]) {
    Real gy[kBlock] = {};
    for (int k = 0; k < n; ++k) {
      const Real* g = basis + k * s.grid + j0;
      const Real w = wy[k];
      PERFQ_SIMD
      for (int i = 0; i < count; ++i) gy[i] += w * g[i];
    }
    PERFQ_SIMD
    for (int i = 0; i < count; ++i) {
      const Real gg = norm[j0 + i];
      const bool positive = gg > Real(0);
      const Real quotient = gy[i] / (positive ? gg : Real(1));
      flows[i] = positive ? quotient : Real(0);
      costs[i] = yy - flows[i] * gy[i];
    }
  };
  int best = 0;
  Real best_cost = 0;
  Real around[2][3] = {}, previous[2] = {};  // costs and flows at best − 1, best, best + 1
  bool want_next = false;
  for (int j0 = 0; j0 < s.grid; j0 += kBlock) {
    const int m = s.grid - j0 < kBlock ? s.grid - j0 : kBlock;
    Real flows[kBlock], costs[kBlock];
    if (m == kBlock) {
      search_block(j0, kBlock, flows, costs);
    } else {
      search_block(j0, m, flows, costs);
    }
    if (s.prior) {
      for (int i = 0; i < m; ++i) {
        const Real d = grid_att(s, j0 + i) - s.prior_mean;
        costs[i] += prior_scale * d * d;
      }
    }
    // The block's first cost below the best so far, if any (no branch per grid point).
    int lowest = -1;
    Real lowest_cost = best_cost;
    for (int i = 0; i < m; ++i) {
      const bool lower = j0 + i == 0 || costs[i] < lowest_cost;
      lowest_cost = lower ? costs[i] : lowest_cost;
      lowest = lower ? i : lowest;
    }
    // Keeps the neighbours' cost and flow for finish().
    if (want_next) around[0][2] = costs[0], around[1][2] = flows[0], want_next = false;
    if (lowest >= 0) {
      best = j0 + lowest, best_cost = lowest_cost;
      around[0][0] = lowest > 0 ? costs[lowest - 1] : previous[0];
      around[1][0] = lowest > 0 ? flows[lowest - 1] : previous[1];
      around[0][1] = costs[lowest], around[1][1] = flows[lowest];
      if (lowest + 1 < m) {
        around[0][2] = costs[lowest + 1], around[1][2] = flows[lowest + 1];
      } else {
        want_next = true;
      }
    }
    previous[0] = costs[m - 1], previous[1] = flows[m - 1];
  }
  const bool interior = best > 0 && best < s.grid - 1;
  const KineticVoxelResult<Real> tissue = finish(best, -1, interior ? around : nullptr);
  if (!s.arterial) return tissue;

  // With the arterial component: every arterial arrival i and tissue ATT j ≥ i. The box
  // signal leaves the cost flat between sample times (aBV trades off against e^(−Δt_a/T1b)):
  // without a prior rounding decides between the arrivals of a flat stretch, with one the
  // arrival nearest the prior mean wins.
  const Real arterial_prior_scale =
      s.prior ? noise_variance / (s.arterial_prior_sd * s.arterial_prior_sd) : Real(0);
  int best_arterial = -1;
  for (int i = 0; i < s.grid; ++i) {
    with_arterial = set_arterial(i);
    if (!with_arterial) continue;
    const Real da = grid_att(s, i) - s.arterial_prior_mean;
    const Real arterial_penalty = arterial_prior_scale * da * da;
    for (int j = i; j < s.grid; ++j) {  // the arteries fill before the tissue
      const Real cost = grid_cost(j) + arterial_penalty;
      if (best_arterial < 0 || cost < best_cost) best_cost = cost, best = j, best_arterial = i;
    }
  }
  if (best_arterial < 0) return tissue;  // no arterial arrival reaches a sample
  with_arterial = set_arterial(best_arterial);
  const KineticVoxelResult<Real> both = finish(best, best_arterial, nullptr);
  // Keep the arterial component only when it explains the data clearly better: the Bayesian
  // information criterion, charging its two extra parameters (aBV and its arrival).
  using std::log;
  const Real gain = Real(n) * log(tissue.rss / both.rss);
  if (both.status != kStatusNonFiniteResult && gain > Real(2) * log(Real(n))) return both;
  return tissue;
}

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
