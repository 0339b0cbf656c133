/// @file
/// @brief Buxton general kinetic model of the ASL difference signal, in the form fabber
/// (BASIL) uses, shared by host and device code. See docs/physics.md.
#pragma once

#include <perfq/version.hpp>

#include <perfq/detail/dual.hpp>
#include <perfq/detail/macros.hpp>

#include <cmath>

PERFQ_NAMESPACE_BEGIN
namespace detail {

/// Parameters of one evaluation. Times in seconds, flow f in ml/g/s, M0b = M0/λ.
template <class T>
struct KineticInputs {
  T t;           ///< PCASL/CASL: τ + PLD; PASL: TI (time since labeling began)
  T tau;         ///< bolus duration (PCASL τ; PASL TI1 with QUIPSS II, else long)
  T att;         ///< arterial transit time Δt
  T f;           ///< flow, ml/g/s
  T alpha;       ///< effective labeling efficiency
  T m0b;         ///< M0 of arterial blood (M0 / λ)
  T t1_blood;    ///< s
  T t1_app;      ///< s; apparent tissue T1. Equal to t1_blood for the white-paper variant
};

/// (e^(R b) − e^(R a)) / R, continuous through R = 0.
template <class T>
PERFQ_HD inline T exp_difference_over_rate(T rate, T a, T b) {
  using std::exp;
  using std::expm1;
  const T x = rate * (b - a);
  if (x == T(0)) return b - a;
  return exp(rate * a) * expm1(x) / rate;
}

/// PCASL/CASL ΔM at time t (continuous labeling of duration τ).
template <class T>
PERFQ_HD inline T pcasl_signal(const KineticInputs<T>& in) {
  using std::exp;
  if (in.t < in.att) return T(0);
  const T amplitude = T(2) * in.alpha * in.m0b * in.f * in.t1_app * exp(-in.att / in.t1_blood);
  if (in.t < in.att + in.tau) return amplitude * (T(1) - exp(-(in.t - in.att) / in.t1_app));
  return amplitude * exp(-(in.t - in.tau - in.att) / in.t1_app) *
         (T(1) - exp(-in.tau / in.t1_app));
}

/// PASL ΔM at inversion time t with bolus duration τ (TI1 under QUIPSS II).
template <class T>
PERFQ_HD inline T pasl_signal(const KineticInputs<T>& in) {
  using std::exp;
  if (in.t < in.att) return T(0);
  const T rate = T(1) / in.t1_app - T(1) / in.t1_blood;
  const T scale = in.alpha * in.m0b * in.f * T(2) * exp(-in.t / in.t1_app);
  const T end = in.t < in.att + in.tau ? in.t : in.att + in.tau;
  return scale * exp_difference_over_rate(rate, in.att, end);
}

/// Gamma dispersion kernel of the extra arrival delay τd ≥ 0 (Chappell et al. 2010, MRM
/// 63:1357; fabber's "gamma" AIF): k(τd) = s^a τd^(a−1) e^(−s τd) / Γ(a) with a = 1 + s·p,
/// sharpness s (1/s) and time to peak p (s). Normalised: ∫ k = 1.
template <class Real>
struct GammaKernel {
  Real shape = 1;      ///< a = 1 + s p
  Real rate = 1;       ///< s, 1/s
  Real log_rate = 0;   ///< ln s
  Real log_gamma = 0;  ///< ln Γ(a)
};

/// ∫_0^X k_a(τ) e^(−c τ) dτ for the gamma kernel of shape `a` (ln Γ(a) = `log_gamma`) and
/// rate s: the regularised incomplete gamma function, by its series below a + 1 and its
/// continued fraction above (q = s + c > 0), or by a series of positive terms (q ≤ 0).
template <class Real>
PERFQ_HD inline Real gamma_window(Real a, Real log_gamma, Real s, Real log_s, Real c, Real x_max) {
  using std::exp;
  using std::fabs;
  using std::log;
  if (!(x_max > Real(0))) return Real(0);
  const Real eps = sizeof(Real) <= 4 ? Real(1e-7) : Real(1e-15);
  constexpr int kTerms = 1000;
  const Real q = s + c;
  const Real log_x_max = log(x_max);
  if (q > Real(0) && q * x_max >= a + Real(1)) {
    // Q(a, x) = e^(−x) x^a / Γ(a) · CF (modified Lentz); the window is (s/q)^a (1 − Q).
    const Real x = q * x_max, tiny = Real(1e-30);
    Real b = x + Real(1) - a, cf = Real(1) / tiny, d = Real(1) / b, h = d;
    for (int i = 1; i < kTerms; ++i) {
      const Real an = -Real(i) * (Real(i) - a);
      b += Real(2);
      d = an * d + b;
      if (fabs(d) < tiny) d = tiny;
      cf = b + an / cf;
      if (fabs(cf) < tiny) cf = tiny;
      d = Real(1) / d;
      const Real delta = d * cf;
      h *= delta;
      if (fabs(delta - Real(1)) < eps) break;
    }
    const Real upper = exp(a * log(x) - x - log_gamma) * h;
    return exp(a * (log_s - log(q))) * (Real(1) - upper);
  }
  // Series: s^a X^a e^(−qX)/Γ(a) Σ (qX)^n / (a (a+1)…(a+n)) for q > 0; for q ≤ 0 the
  // integrand grows and s^a X^a/Γ(a) Σ (−qX)^n / (n! (a+n)) has only positive terms.
  const Real front = exp(a * (log_s + log_x_max) - log_gamma);
  if (q > Real(0)) {
    const Real x = q * x_max;
    Real term = Real(1) / a, sum = term;
    for (int n = 1; n < kTerms && term > sum * eps; ++n) {
      term *= x / (a + Real(n));
      sum += term;
    }
    return front * exp(-x) * sum;
  }
  const Real y = -q * x_max;
  Real power = Real(1), sum = Real(1) / a;
  for (int n = 1; n < kTerms; ++n) {
    power *= y / Real(n);
    const Real add = power / (a + Real(n));
    sum += add;
    if (add <= sum * eps) break;
  }
  return front * sum;
}

/// ∫_0^X k(τ) e^(−c τ) dτ for the dispersion kernel, plain numbers.
template <class Real>
PERFQ_HD inline Real kernel_window(const GammaKernel<Real>& k, Real c, Real x_max) {
  return gamma_window(k.shape, k.log_gamma, k.rate, k.log_rate, c, x_max);
}

/// The same with exact derivatives: ∂/∂X = k(X) e^(−cX); ∂/∂c = −∫ τ k(τ) e^(−cτ) dτ =
/// −(a/s) × the window of the kernel of shape a + 1.
template <class Real, int N>
PERFQ_HD inline Dual<Real, N> kernel_window(const GammaKernel<Real>& k, const Dual<Real, N>& c,
                                            const Dual<Real, N>& x_max) {
  using std::exp;
  using std::log;
  Dual<Real, N> out(kernel_window(k, c.v, x_max.v));
  if (!(x_max.v > Real(0))) return out;
  const Real a = k.shape;
  const Real d_x = exp(a * k.log_rate - k.log_gamma + (a - Real(1)) * log(x_max.v) -
                       (k.rate + c.v) * x_max.v);
  const Real d_c = -a / k.rate *
                   gamma_window(a + Real(1), k.log_gamma + log(a), k.rate, k.log_rate, c.v,
                                x_max.v);
  for (int i = 0; i < N; ++i) out.d[i] = d_x * x_max.d[i] + d_c * c.d[i];
  return out;
}

/// PCASL/CASL ΔM with the arrival dispersed by the gamma kernel: ∫ k(τd) ΔM(t; Δt + τd) dτd
/// in closed form (each branch of pcasl_signal is exponential in τd). With u = t − Δt,
/// H(X) = ∫_0^X k(τd) e^(−τd/T1b) (1 − e^(−(X−τd)/T1app)) dτd, ΔM = A (H(u) − H(u − τ)),
/// A = 2 α M0b f T1app e^(−Δt/T1b) and H(X ≤ 0) = 0. The extra delay also decays with T1b.
template <class T, class Real>
PERFQ_HD inline T pcasl_signal_dispersed(const KineticInputs<T>& in, const GammaKernel<Real>& k) {
  using std::exp;
  const T u = in.t - in.att;
  if (!(T(Real(0)) < u)) return T(Real(0));
  const T r = T(Real(1)) / in.t1_app, b = T(Real(1)) / in.t1_blood;
  const T amplitude =
      T(Real(2)) * in.alpha * in.m0b * in.f * in.t1_app * exp(-in.att / in.t1_blood);
  auto h = [&](const T& x) {
    return kernel_window(k, b, x) - exp(-r * x) * kernel_window(k, b - r, x);
  };
  T shape = h(u);
  const T late = u - in.tau;  // extra delays below this: the whole bolus has arrived
  if (T(Real(0)) < late) shape = shape - h(late);
  return amplitude * shape;
}

/// PASL ΔM with the arrival dispersed by the gamma kernel, in closed form. With R = 1/T1app −
/// 1/T1b, u = t − Δt and J(X) = ∫_0^X k(τd) (e^(R X) − e^(R τd))/R dτd (R = 0: X − τd),
/// ΔM = α M0b f 2 e^(−t/T1app) e^(R Δt) (J(u) − e^(R τ) J(u − τ)), J(X ≤ 0) = 0.
template <class T, class Real>
PERFQ_HD inline T pasl_signal_dispersed(const KineticInputs<T>& in, const GammaKernel<Real>& k) {
  using std::exp;
  const T u = in.t - in.att;
  if (!(T(Real(0)) < u)) return T(Real(0));
  const T rate = T(Real(1)) / in.t1_app - T(Real(1)) / in.t1_blood;
  const T zero(Real(0));
  GammaKernel<Real> next = k;  // shape a + 1: ∫_0^X τ k(τ) dτ = (a/s) × its window
  next.shape = k.shape + Real(1);
  next.log_gamma = k.log_gamma + std::log(k.shape);
  auto j = [&](const T& x) {
    if (value_of(rate) == Real(0)) {  // white-paper variant: T1app = T1b
      return x * kernel_window(k, zero, x) - T(k.shape / k.rate) * kernel_window(next, zero, x);
    }
    return (exp(rate * x) * kernel_window(k, zero, x) - kernel_window(k, -rate, x)) / rate;
  };
  T shape = j(u);
  const T late = u - in.tau;
  if (T(Real(0)) < late) shape = shape - exp(rate * in.tau) * j(late);
  const T scale = in.alpha * in.m0b * in.f * T(Real(2)) * exp(-in.t / in.t1_app);
  return scale * exp(rate * in.att) * shape;
}

}  // namespace detail
PERFQ_NAMESPACE_END
