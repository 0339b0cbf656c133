// Bolus dispersion in the multi-delay model (gamma kernel): the library's closed form against
// an independent numerical convolution written here, its limits, its derivatives, and fits.
#include <perfq/errors.hpp>
#include <perfq/kinetic.hpp>

#include <perfq/detail/kinetic_fit.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <vector>

namespace {

constexpr double kLambda = 0.9, kT1b = 1.65, kT1t = 1.3;

/// Undispersed ΔM/M0 by Simpson integration of delivery × residue × decay (as in
/// test_kinetic.cpp): ΔM(t) = 2 α f/λ ∫_{Δt}^{min(t, Δt+τ)} c(u) e^(−(t−u)/T1app) du with
/// c(u) = e^(−Δt/T1b) (PCASL) or e^(−u/T1b) (PASL).
double undispersed(bool pasl, double t, double tau, double att, double f, double alpha,
                   double t1app, double t1b = kT1b, int steps = 200) {
  const double lo = att, hi = std::min(t, att + tau);
  if (hi <= lo) return 0.0;
  const double h = (hi - lo) / steps;
  double sum = 0.0;
  for (int k = 0; k <= steps; ++k) {
    const double u = lo + k * h;
    const double c = pasl ? std::exp(-u / t1b) : std::exp(-att / t1b);
    const double w = (k == 0 || k == steps) ? 1.0 : (k % 2 == 1 ? 4.0 : 2.0);
    sum += w * c * std::exp(-(t - u) / t1app);
  }
  return 2.0 * alpha * f / kLambda * sum * h / 3.0;
}

/// ∫ k(τd) ΔM(t; Δt + τd) dτd, k the gamma kernel (shape a = 1 + s p, rate s), by Simpson's
/// rule in w = τd^(1/4) (then k dτd = 4 s^a w^(4a−1) e^(−s w⁴)/Γ(a) dw, smooth at 0), split
/// where the integrand has a kink (τd = t − Δt − τ) and ending where it vanishes (τd = t − Δt).
double dispersed(bool pasl, double t, double tau, double att, double f, double alpha,
                 double t1app, double s, double p, int steps = 600, double t1b = kT1b) {
  const double a = 1.0 + s * p, u = t - att;
  if (u <= 0) return 0.0;
  const double norm = 4.0 * std::pow(s, a) / std::tgamma(a);
  auto piece = [&](double from, double to) {  // τd limits
    const double w0 = std::pow(from, 0.25), w1 = std::pow(to, 0.25), h = (w1 - w0) / steps;
    double sum = 0.0;
    for (int k = 0; k <= steps; ++k) {
      const double w = w0 + k * h, td = w * w * w * w;
      const double weight = (k == 0 || k == steps) ? 1.0 : (k % 2 == 1 ? 4.0 : 2.0);
      sum += weight * std::pow(w, 4.0 * a - 1.0) * std::exp(-s * td) *
             undispersed(pasl, t, tau, att + td, f, alpha, t1app, t1b);
    }
    return norm * sum * h / 3.0;
  };
  const double kink = u - tau;
  return kink > 0 ? piece(0.0, kink) + piece(kink, u) : piece(0.0, u);
}

/// Settings for direct model evaluations (T1app from `variant`).
template <class Real>
perfq::detail::KineticSettings<Real> settings(bool pasl, double tau, double plds_or_tis,
                                              int variant, double s, double p) {
  perfq::detail::KineticSettings<Real> st;
  st.delays = 1;
  st.pasl = pasl;
  st.variant = variant;
  st.alpha = Real(pasl ? 0.98 : 0.85);
  st.lambda = Real(kLambda);
  st.t1_blood = Real(kT1b);
  st.t1_tissue = Real(kT1t);
  st.delay[0] = Real(plds_or_tis);
  st.duration[0] = Real(tau);
  st.weight[0] = Real(1);
  st.dispersion = true;
  const double a = 1.0 + s * p;
  st.kernel.shape = Real(a);
  st.kernel.rate = Real(s);
  st.kernel.log_rate = Real(std::log(s));
  st.kernel.log_gamma = Real(std::lgamma(a));
  return st;
}

double t1app_of(int variant, double f) {
  using namespace perfq::detail;
  if (variant == kVariantWhitePaper) return kT1b;
  return 1.0 / (1.0 / kT1t + (variant == kVariantBuxton ? f : 0.01) / kLambda);
}

struct Kernel {
  double s, p;
};

TEST(Dispersion, ClosedFormMatchesNumericalConvolution) {
  // PCASL (τ 1.8 s) and PASL (TI1 0.8 s), Buxton and white-paper T1app (PASL white paper is
  // the R = 0 branch), BASIL's kernel and a broad and a sharp one; t/ATT over the range.
  double worst = 0, worst_float = 0;
  int compared = 0;
  for (bool pasl : {false, true}) {
    const double tau = pasl ? 0.8 : 1.8, alpha = pasl ? 0.98 : 0.85, f = 60.0 / 6000.0;
    for (int variant : {perfq::detail::kVariantBuxton, perfq::detail::kVariantWhitePaper}) {
      for (Kernel k : {Kernel{7.4, 0.1}, Kernel{2.0, 0.5}, Kernel{20.0, 0.05}, Kernel{3.0, 0.0}}) {
        double peak = 0;
        std::vector<double> values;
        for (double att : {0.0, 0.4, 0.9, 1.5, 2.3}) {
          for (double t : {0.3, 0.8, 1.3, 1.9, 2.4, 3.0, 3.7, 4.5}) {
            const double delay = pasl ? t : t - tau;  // PLD may be negative here: fine
            const double ref = dispersed(pasl, t, tau, att, f, alpha, t1app_of(variant, f), k.s, k.p);
            const auto st = settings<double>(pasl, tau, delay, variant, k.s, k.p);
            const double got = perfq::detail::tissue_signal<double, double>(st, 0, 0.0, f, f, att);
            const auto sf = settings<float>(pasl, tau, delay, variant, k.s, k.p);
            const float got_f = perfq::detail::tissue_signal<float, float>(
                sf, 0, 0.0f, float(f), float(f), float(att));
            peak = std::max(peak, std::abs(ref));
            values.push_back(ref);
            values.push_back(got);
            values.push_back(got_f);
          }
        }
        for (std::size_t i = 0; i < values.size(); i += 3) {
          const double ref = values[i], err = std::abs(values[i + 1] - ref);
          // 1e-4 relative, or of the peak where the signal is nearly 0 (before the arrival).
          EXPECT_LE(err, 1e-4 * std::max(std::abs(ref), 1e-2 * peak))
              << "pasl " << pasl << " variant " << variant << " s " << k.s << " p " << k.p
              << " point " << i / 3 << " ref " << ref << " got " << values[i + 1];
          if (std::abs(ref) > 1e-2 * peak) worst = std::max(worst, err / std::abs(ref));
          worst_float = std::max(worst_float, std::abs(values[i + 2] - ref) / peak);
          ++compared;
        }
      }
    }
  }
  // The fit runs in float: the same within a few 1e-6 of the peak.
  EXPECT_LT(worst_float, 2e-5);
  std::cout << "[ dispersion ] closed form vs numerical convolution: " << compared
            << " points, worst relative error " << worst << " (double), " << worst_float
            << " of the peak (float)\n";
}

TEST(Dispersion, NarrowKernelTendsToTheUndispersedSignal) {
  for (bool pasl : {false, true}) {
    const double tau = pasl ? 0.8 : 1.8;
    for (double att : {0.5, 1.2}) {
      for (double t : {0.9, 1.6, 2.2, 3.1, 4.0}) {
        const double delay = pasl ? t : t - tau;
        auto plain = settings<double>(pasl, tau, delay, 0, 1.0, 0.0);
        plain.dispersion = false;
        const double f = 0.01;
        const double ref = perfq::detail::tissue_signal<double, double>(plain, 0, 0.0, f, f, att);
        double previous = 1e9;
        for (double s : {10.0, 100.0, 1000.0, 1e4}) {
          const auto st = settings<double>(pasl, tau, delay, 0, s, 0.1 / s);  // s·p fixed
          const double got = perfq::detail::tissue_signal<double, double>(st, 0, 0.0, f, f, att);
          const double err = std::abs(got - ref);
          EXPECT_LE(err, previous * 1.0001 + 1e-15) << pasl << " " << att << " " << t << " " << s;
          previous = err;
        }
        EXPECT_LT(previous, 2e-4 * 0.02) << pasl << " " << att << " " << t;  // ΔM/M0 ~ 0.01
      }
    }
  }
}

TEST(Dispersion, SameTotalLabelWithoutRelaxation) {
  // With no T1 decay the tissue keeps every labelled spin: once the whole bolus has arrived,
  // dispersed and undispersed signals both equal 2 α f τ / λ.
  for (bool pasl : {false, true}) {
    const double tau = pasl ? 0.8 : 1.8, alpha = pasl ? 0.98 : 0.85, f = 0.01, att = 0.7;
    auto st = settings<double>(pasl, tau, 0.0, perfq::detail::kVariantWhitePaper, 2.0, 0.5);
    st.t1_blood = 1e8;
    const double t = att + tau + 12.0;  // the kernel's tail (shape 2, rate 2) is negligible
    st.delay[0] = pasl ? t : t - tau;
    const double total = 2.0 * alpha * f * tau / kLambda;
    const double got = perfq::detail::tissue_signal<double, double>(st, 0, 0.0, f, f, att);
    EXPECT_NEAR(got, total, 1e-6 * total) << pasl;
    st.dispersion = false;
    const double plain = perfq::detail::tissue_signal<double, double>(st, 0, 0.0, f, f, att);
    EXPECT_NEAR(plain, total, 1e-6 * total);
  }
}

TEST(Dispersion, DerivativesMatchFiniteDifferences) {
  using D = perfq::detail::Dual<double, 2>;
  for (bool pasl : {false, true}) {
    const double tau = pasl ? 0.8 : 1.8;
    for (int variant : {0, 1, 2}) {
      for (double t : {1.0, 2.1, 3.4}) {
        const auto st = settings<double>(pasl, tau, pasl ? t : t - tau, variant, 7.4, 0.1);
        for (double flow : {0.004, 0.012}) {
          for (double att : {0.2, 0.9, 1.7}) {
            const D m = perfq::detail::tissue_signal<double, D>(st, 0, 0.0, D::variable(flow, 0),
                                                                 D::variable(flow, 0),
                                                                 D::variable(att, 1));
            auto value = [&](double fl, double at) {
              return perfq::detail::tissue_signal<double, double>(st, 0, 0.0, fl, fl, at);
            };
            const double hf = 1e-6 * flow, ha = 1e-6;
            const double df = (value(flow + hf, att) - value(flow - hf, att)) / (2 * hf);
            const double da = (value(flow, att + ha) - value(flow, att - ha)) / (2 * ha);
            EXPECT_NEAR(m.v, value(flow, att), 1e-14);
            EXPECT_NEAR(m.d[0], df, 1e-6 * (std::abs(df) + 1e-3))
                << pasl << " " << variant << " " << t << " " << flow << " " << att;
            EXPECT_NEAR(m.d[1], da, 1e-6 * (std::abs(da) + 1e-4))
                << pasl << " " << variant << " " << t << " " << flow << " " << att;
          }
        }
      }
    }
  }
}

/// Noise-free dispersed data from the numerical convolution, one voxel per (CBF, ATT).
struct Data {
  perfq::Series<float> delta_m;
  perfq::AslProtocol protocol;
  std::vector<double> cbf, att;
};

Data make(bool pasl, const std::vector<double>& cbfs, const std::vector<double>& atts, double s,
          double p) {
  Data d;
  const std::vector<double> delays =
      pasl ? std::vector<double>{0.6, 1.1, 1.6, 2.1, 2.6, 3.1, 3.6, 4.1}
           : std::vector<double>{0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0};
  const double tau = pasl ? 0.8 : 1.8, alpha = pasl ? 0.98 : 0.85;
  d.protocol.labeling_type = pasl ? perfq::LabelingType::Pasl : perfq::LabelingType::Pcasl;
  d.protocol.post_labeling_delay = delays;
  if (pasl) {
    d.protocol.bolus_cutoff_delay = tau;
  } else {
    d.protocol.labeling_duration = {tau};
  }
  perfq::Geometry g;
  g.dims = {cbfs.size(), atts.size(), 1};
  d.delta_m = perfq::Series<float>(g, delays.size());
  for (std::size_t y = 0; y < atts.size(); ++y) {
    for (std::size_t x = 0; x < cbfs.size(); ++x) {
      const double f = cbfs[x] / 6000.0;
      for (std::size_t k = 0; k < delays.size(); ++k) {
        const double t = pasl ? delays[k] : tau + delays[k];
        d.delta_m.at(x, y, 0, k) = static_cast<float>(
            1000.0 * dispersed(pasl, t, tau, atts[y], f, alpha, t1app_of(0, f), s, p, 300));
      }
      d.cbf.push_back(cbfs[x]);
      d.att.push_back(atts[y]);
    }
  }
  return d;
}

perfq::Execution cpu() {
  perfq::Execution e;
  e.backend = perfq::Backend::Cpu;
  return e;
}

TEST(Dispersion, FitRecoversCbfAndAttAndIgnoringItBiasesThem) {
  for (bool pasl : {false, true}) {
    const std::vector<double> cbfs{20, 60, 90}, atts{0.6, 1.0, 1.5};
    const Data d = make(pasl, cbfs, atts, 7.4, 0.1);
    perfq::KineticOptions o;
    o.dispersion = perfq::Dispersion::Gamma;  // BASIL's defaults: s 7.4 /s, p 0.1 s
    const auto m0 = perfq::M0Source::from_value(1000.0);
    const auto fit = perfq::fit_kinetic(d.delta_m, m0, d.protocol, perfq::Physiology{}, o,
                                        std::nullopt, cpu());
    const auto plain = perfq::fit_kinetic(d.delta_m, m0, d.protocol, perfq::Physiology{}, {},
                                          std::nullopt, cpu());
    double cbf_bias = 0, att_bias = 0;
    for (std::size_t i = 0; i < d.cbf.size(); ++i) {
      EXPECT_EQ(fit.status[i], 0) << i;
      EXPECT_NEAR(fit.cbf[i], d.cbf[i], 0.01 * d.cbf[i]) << pasl << " voxel " << i;
      EXPECT_NEAR(fit.att[i], d.att[i], 0.01 * d.att[i]) << pasl << " voxel " << i;
      EXPECT_LT(fit.residual_rms[i], 1e-3);
      cbf_bias += (plain.cbf[i] - d.cbf[i]) / d.cbf[i] / d.cbf.size();
      att_bias += (plain.att[i] - d.att[i]) / d.cbf.size();
    }
    // Without dispersion the arrival absorbs the mean extra delay ((1 + s p)/s = 0.24 s).
    EXPECT_GT(att_bias, 0.1) << pasl;
    std::cout << "[ dispersion ] " << (pasl ? "PASL" : "PCASL")
              << " data dispersed (s 7.4/s, p 0.1 s) fitted without dispersion: mean CBF bias "
              << 100 * cbf_bias << " %, mean ATT bias " << att_bias << " s\n";
  }
}

TEST(Dispersion, OffByDefaultAndRefusesBadKernels) {
  EXPECT_EQ(perfq::KineticOptions{}.dispersion, perfq::Dispersion::None);
  EXPECT_EQ(perfq::parse_dispersion("gamma"), perfq::Dispersion::Gamma);
  EXPECT_STREQ(perfq::to_string(perfq::Dispersion::None), "none");
  EXPECT_THROW(perfq::parse_dispersion("gauss"), perfq::InvalidArgument);
  const Data d = make(false, {60}, {1.0}, 7.4, 0.1);
  for (auto [s, p] : {std::pair{0.0, 0.1}, {-1.0, 0.1}, {200.0, 0.01}, {7.4, -0.1},
                      {7.4, 6.0}, {5.0, 3.0}, {std::nan(""), 0.1}}) {
    perfq::KineticOptions o;
    o.dispersion = perfq::Dispersion::Gamma;
    o.dispersion_sharpness = s;
    o.dispersion_time_to_peak = p;
    EXPECT_THROW(perfq::fit_kinetic(d.delta_m, perfq::M0Source::from_value(1000.0), d.protocol,
                                    perfq::Physiology{}, o, std::nullopt, cpu()),
                 perfq::InvalidArgument)
        << s << " " << p;
  }
}

}  // namespace
