/// @file
/// @brief Buxton general kinetic model of the ASL difference signal, in the form fabber
/// (BASIL) uses, shared by host and device code. See DESIGN.md §3.
#pragma once

#include <perfq/detail/macros.hpp>

#include <cmath>

namespace perfq {
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

}  // namespace detail
}  // namespace perfq
