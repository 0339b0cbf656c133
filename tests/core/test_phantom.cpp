// The kinetic model against an independent numerical convolution, and the phantom end to end
// through pairing and single-delay quantification.
#include <perfq/asl_series.hpp>
#include <perfq/cbf.hpp>
#include <perfq/errors.hpp>
#include <perfq/phantom.hpp>

#include <perfq/detail/kinetic.hpp>

#include <gtest/gtest.h>

#include <cmath>

namespace {

using perfq::detail::KineticInputs;

/// Buxton's model written as the convolution it comes from:
/// ΔM(t) = 2 α M0b f ∫ c(u) e^(−(t−u)/T1app) du over the arrival window, with the delivery
/// function c(u) = e^(−Δt/T1b) for PCASL, e^(−u/T1b) for PASL. Simpson's rule, 20000 steps.
double reference_signal(const KineticInputs<double>& in, bool pasl) {
  const double start = in.att;
  const double end = std::min(in.t, in.att + in.tau);
  if (end <= start) return 0.0;
  const int steps = 20000;
  const double h = (end - start) / steps;
  auto integrand = [&](double u) {
    const double c = pasl ? std::exp(-u / in.t1_blood) : std::exp(-in.att / in.t1_blood);
    return c * std::exp(-(in.t - u) / in.t1_app);
  };
  double sum = integrand(start) + integrand(end);
  for (int k = 1; k < steps; ++k) sum += integrand(start + k * h) * (k % 2 == 1 ? 4.0 : 2.0);
  return 2.0 * in.alpha * in.m0b * in.f * sum * h / 3.0;
}

KineticInputs<double> inputs(double t, double att, double t1_app) {
  KineticInputs<double> in{};
  in.t = t;
  in.tau = 1.8;
  in.att = att;
  in.f = 60.0 / 6000.0;
  in.alpha = 0.85;
  in.m0b = 1000.0 / 0.9;
  in.t1_blood = 1.65;
  in.t1_app = t1_app;
  return in;
}

TEST(KineticModel, PcaslMatchesNumericalConvolution) {
  for (double t1_app : {1.65, 1.2}) {          // white-paper variant, and a T1app < T1b
    for (double att : {0.5, 1.3, 2.5}) {
      for (double t : {0.3, 1.0, 2.0, 3.1, 4.5}) {
        const auto in = inputs(t, att, t1_app);
        const double expected = reference_signal(in, false);
        EXPECT_NEAR(perfq::detail::pcasl_signal(in), expected, 1e-9 + 1e-8 * std::abs(expected))
            << "t=" << t << " att=" << att << " T1app=" << t1_app;
      }
    }
  }
}

TEST(KineticModel, PaslMatchesNumericalConvolutionAndItsLimit) {
  for (double t1_app : {1.65, 1.2, 1.6499999}) {  // R = 0, R > 0, R ≈ 0
    for (double att : {0.4, 1.0}) {
      for (double t : {0.2, 0.9, 1.5, 2.5}) {
        auto in = inputs(t, att, t1_app);
        in.tau = 0.8;
        in.alpha = 0.98;
        const double expected = reference_signal(in, true);
        EXPECT_NEAR(perfq::detail::pasl_signal(in), expected, 1e-9 + 1e-8 * std::abs(expected))
            << "t=" << t << " att=" << att << " T1app=" << t1_app;
      }
    }
  }
}

TEST(KineticModel, WhitePaperVariantAfterBolusGivesTheWhitePaperSignal) {
  // With T1app = T1b and t ≥ Δt + τ: ΔM = 2 α M0b f T1b e^(−PLD/T1b) (1 − e^(−τ/T1b)).
  const auto in = inputs(1.8 + 1.8, 1.2, 1.65);
  const double expected =
      2 * 0.85 * (1000 / 0.9) * 0.01 * 1.65 * std::exp(-1.8 / 1.65) * (1 - std::exp(-1.8 / 1.65));
  EXPECT_NEAR(perfq::detail::pcasl_signal(in), expected, 1e-12 * expected);
}

perfq::Execution cpu() {
  perfq::Execution e;
  e.backend = perfq::Backend::Cpu;
  return e;
}

/// Quantifies a phantom through prepare_asl + quantify_cbf and returns the worst relative
/// error against the truth over brain voxels.
double worst_relative_error(const perfq::Phantom& p) {
  const auto prepared = perfq::prepare_asl(p.asl, p.context, p.protocol);
  const perfq::AslProtocol& single = prepared.protocol;
  const auto maps = perfq::quantify_cbf(prepared.delta_m, perfq::M0Source::from_image(p.m0),
                                        single, p.physiology, p.brain.view(), cpu());
  double worst = 0.0;
  for (std::size_t i = 0; i < p.cbf.size(); ++i) {
    if (!p.brain[i]) continue;
    EXPECT_EQ(maps.status[i], 0);
    worst = std::max(worst, std::abs(double(maps.cbf[i]) - p.cbf[i]) / p.cbf[i]);
  }
  return worst;
}

TEST(Phantom, HasTissuesTerritoriesAndWatershedTiming) {
  const auto p = perfq::make_phantom();
  std::size_t counts[4] = {0, 0, 0, 0}, territory[4] = {0, 0, 0, 0};
  double att_border = 0, att_core = 0, cbf_border = 0, cbf_core = 0;
  std::size_t n_border = 0, n_core = 0;
  for (std::size_t i = 0; i < p.tissue.size(); ++i) {
    ++counts[p.tissue[i]];
    ++territory[p.territories[i]];
    if (p.tissue[i] != perfq::kGreyMatter) continue;
    if (p.border_distance[i] < 3.0f) {
      att_border += p.att[i], cbf_border += p.cbf[i], ++n_border;
    } else if (p.border_distance[i] > 25.0f) {
      att_core += p.att[i], cbf_core += p.cbf[i], ++n_core;
    }
  }
  for (int t = 1; t <= 3; ++t) {
    EXPECT_GT(counts[t], 1000u) << "tissue " << t;
    EXPECT_GT(territory[t], 1000u) << "territory " << t;
  }
  ASSERT_GT(n_border, 50u);
  ASSERT_GT(n_core, 50u);
  // Watershed: later arrival and lower flow at the borders.
  EXPECT_GT(att_border / n_border, att_core / n_core + 0.4);
  EXPECT_LT(cbf_border / n_border, 0.8 * cbf_core / n_core);
  EXPECT_EQ(p.asl.volumes(), 8u);
  EXPECT_EQ(p.context.size(), 8u);
}

TEST(Phantom, NoiseFreePcaslIsRecoveredBySingleDelayQuantification) {
  EXPECT_LT(worst_relative_error(perfq::make_phantom()), 1e-4);
}

TEST(Phantom, NoiseFreePaslIsRecoveredBySingleDelayQuantification) {
  perfq::PhantomOptions o;
  o.pasl = true;
  o.delays = {2.5};  // TI ≥ ATT + TI1 everywhere
  o.dims = {40, 48, 36};
  EXPECT_LT(worst_relative_error(perfq::make_phantom(o)), 1e-4);
}

TEST(Phantom, NoiseHasTheRequestedSnr) {
  perfq::PhantomOptions o;
  o.snr = 5.0;
  o.repeats = 1;
  const auto p = perfq::make_phantom(o);
  const auto clean = perfq::make_phantom([] {
    perfq::PhantomOptions c;
    c.repeats = 1;
    return c;
  }());
  const std::size_t n = p.m0.size();
  double signal = 0, noise2 = 0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (p.tissue[i] != perfq::kGreyMatter) continue;
    const double dm = p.asl[i] - p.asl[n + i];
    const double dm_clean = clean.asl[i] - clean.asl[n + i];
    signal += dm_clean;
    noise2 += (dm - dm_clean) * (dm - dm_clean);
    ++count;
  }
  const double snr = (signal / count) / std::sqrt(noise2 / count);
  EXPECT_NEAR(snr, 5.0, 0.25);
}

TEST(Phantom, RefusesBadOptions) {
  perfq::PhantomOptions o;
  o.delays = {};
  EXPECT_THROW(perfq::make_phantom(o), perfq::InvalidArgument);
  o.delays = {-1.0};
  EXPECT_THROW(perfq::make_phantom(o), perfq::InvalidArgument);
  o = {};
  o.dims = {8, 64, 64};
  EXPECT_THROW(perfq::make_phantom(o), perfq::InvalidArgument);
  o = {};
  o.snr = -1;
  EXPECT_THROW(perfq::make_phantom(o), perfq::InvalidArgument);
}

}  // namespace
