/// @file
/// @brief The kinetic model at the delays of a fit (KineticSettings): the tissue signal with
/// its apparent-T1 variants, the macrovascular (arterial) component, and the kinks of the
/// model. tissue_signal is the general form, for any number type (dual numbers give its exact
/// derivatives); kinetic_pcasl_fast.hpp writes out its PCASL/CASL case by hand.
#pragma once

#include <perfq/version.hpp>

#include <perfq/detail/dual.hpp>
#include <perfq/detail/kinetic.hpp>
#include <perfq/detail/kinetic_settings.hpp>
#include <perfq/detail/macros.hpp>

#include <cmath>

PERFQ_NAMESPACE_BEGIN
namespace detail {

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

/// The kinks of delay k for a slice time `offset`: the ATTs at which the model's slope jumps.
/// With t the sample time and u = t − ATT, kinks[0] = t is the ATT at which the bolus begins
/// arriving just at the sample time (u = 0), kinks[1] = t − τ the one at which it has just
/// finished arriving (u = τ). With dispersion the model is smooth (the fit uses none).
template <class Real>
PERFQ_HD inline void kinks_of(const KineticSettings<Real>& s, int k, Real offset, Real* kinks) {
  kinks[0] = s.pasl ? s.delay[k] + offset : s.duration[k] + s.delay[k] + offset;
  kinks[1] = kinks[0] - s.duration[k];
}

}  // namespace detail
PERFQ_NAMESPACE_END
