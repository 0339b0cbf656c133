/// @file
/// @brief The PCASL/CASL model of the fit with its derivatives (flow, ATT) written out by
/// hand: the fast path of the polishing, for every voxel without PASL or dispersion. The
/// general form is tissue_signal (kinetic_signal.hpp) differentiated by dual numbers; the test
/// Kinetic.HandDerivedPcaslGradientMatchesAutomaticDifferentiation (tests/core/test_kinetic.cpp)
/// checks that the two agree, value and derivatives, for every T1app variant.
#pragma once

#include <perfq/version.hpp>

#include <perfq/detail/kinetic_settings.hpp>
#include <perfq/detail/macros.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>

PERFQ_NAMESPACE_BEGIN
namespace detail {

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
/// e^x in double precision: the library's exp, host and device.
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
/// exponentials shared by all delays are computed once. Fills `m`, `d_flow` and `d_att`
/// [0..delays): separate arrays, so that the loop over delays vectorises. N > 0: the settings
/// have N delays, known at compile time (see fit_voxel), and the arrays hold
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

}  // namespace detail
PERFQ_NAMESPACE_END
