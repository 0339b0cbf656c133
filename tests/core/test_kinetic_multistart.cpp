// The multi-start polishing of the multi-delay fit (KineticOptions::max_starts) against a
// brute-force reference written here: the polishing started from every point of a fine ATT
// grid, the lowest cost kept.
#include <perfq/kinetic.hpp>

#include <perfq/detail/kinetic_fit.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace {

using perfq::detail::KineticSettings;
using perfq::detail::KineticVoxelResult;

const std::vector<double> kShortDelays{0.25, 0.5, 0.75, 1.0, 1.25, 1.5};  // τ 1.4 s
const std::vector<double> kLongDelays{0.5, 1.0, 1.5, 2.0, 2.5};           // τ 1.8 s

/// PCASL settings for `delays` (labeling τ), Buxton T1app, ATT searched in [0, 3] s, with
/// their search tables in `basis` and `norm`.
KineticSettings<float> pcasl(const std::vector<double>& delays, double tau, double alpha,
                             double lambda, double t1b, double t1t, std::vector<float>& basis,
                             std::vector<float>& norm) {
  KineticSettings<float> s;
  s.delays = static_cast<int>(delays.size());
  s.alpha = static_cast<float>(alpha), s.lambda = static_cast<float>(lambda);
  s.t1_blood = static_cast<float>(t1b), s.t1_tissue = static_cast<float>(t1t);
  s.att_min = 0.0f, s.att_max = 3.0f;
  for (int k = 0; k < s.delays; ++k) {
    s.delay[k] = static_cast<float>(delays[k]);
    s.duration[k] = static_cast<float>(tau);
    s.weight[k] = 1.0f;
  }
  s.same_duration = true;
  basis.resize(std::size_t(s.grid) * s.delays), norm.resize(s.grid);
  perfq::detail::fill_basis(s, 1, basis.data(), norm.data());
  s.basis = basis.data(), s.basis_norm = norm.data();
  perfq::detail::mark_kink_free_bins(s, 1);
  return s;
}

/// Weighted residual sum of squares of (flow, ATT) on `y`: the cost the fit minimises.
double cost(const KineticSettings<float>& s, const float* y, double flow, double att) {
  double sum = 0.0;
  for (int k = 0; k < s.delays; ++k) {
    const double r = y[k] - perfq::detail::tissue_signal<float, float>(s, k, 0.0f, float(flow),
                                                                       float(flow), float(att));
    sum += s.weight[k] * r * r;
  }
  return sum;
}

/// The cost that the polishing minimises: the RSS, plus the ATT prior's term when on.
double posterior(const KineticSettings<float>& s, const KineticVoxelResult<float>& r) {
  const double d = r.att - s.prior_mean;
  return r.rss + (s.prior ? s.noise_variance / (s.prior_sd * s.prior_sd) * d * d : 0.0);
}

/// The reference: Levenberg–Marquardt from each of `starts` ATTs evenly over the range (the
/// flow at each solved on the search's basis function there), the lowest cost kept.
KineticVoxelResult<float> brute_force(const KineticSettings<float>& s, const float* y,
                                      int starts = 241) {
  KineticVoxelResult<float> best;
  double best_cost = INFINITY;
  for (int j = 0; j < starts; ++j) {
    const float att = s.att_min + (s.att_max - s.att_min) * j / (starts - 1);
    float gy = 0.0f, gg = 0.0f;
    for (int k = 0; k < s.delays; ++k) {
      const float g = perfq::detail::tissue_signal<float, float>(
          s, k, 0.0f, 1.0f, float(perfq::detail::kReferenceFlow), att);
      gy += s.weight[k] * g * y[k], gg += s.weight[k] * g * g;
    }
    const float start[2] = {gg > 0.0f ? gy / gg : 0.0f, att};
    const auto r = perfq::detail::polish<float, 2>(s, y, 0.0f, start, 0.0f, s.noise_variance);
    if (r.status == perfq::detail::kStatusNonFiniteResult) continue;
    if (posterior(s, r) < best_cost) best_cost = posterior(s, r), best = r;
  }
  return best;
}

TEST(KineticMultiStart, FindsTheLowerMinimumThatTheSingleStartMisses) {
  // Six PLDs 0.25–1.5 s, τ 1.4 s; ΔM/M0 of a CBF-63, ATT-0.6 s voxel with noise (SNR 10).
  // The grid's best point is 0.26 s, but the parabola through it and its neighbours moves the
  // start to 0.21 s, across the kink at ATT = PLD 0.25 s, and the polishing runs to the bound
  // (ATT 0, cost 0.9 % above the lowest). The lowest minimum, at 0.30 s, lies in another
  // region of the grid: its lowest point starts a second run.
  std::vector<float> basis, norm;
  KineticSettings<float> s = pcasl(kShortDelays, 1.4, 0.85, 0.9, 1.65, 1.3, basis, norm);
  const float y[6] = {0.013653f, 0.016591f, 0.0095359f, 0.0068979f, 0.0021705f, 0.0029699f};
  const KineticVoxelResult<float> reference = brute_force(s, y);
  s.starts = 1;
  const KineticVoxelResult<float> single = perfq::detail::fit_voxel(s, y, 0);
  s.starts = 3;
  const KineticVoxelResult<float> multi = perfq::detail::fit_voxel(s, y, 0);
  EXPECT_NEAR(reference.att, 0.3015, 0.002);
  EXPECT_GT(single.rss, 1.005f * reference.rss) << "single start: ATT " << single.att;
  EXPECT_GT(std::abs(single.att - reference.att), 0.25f);
  EXPECT_LE(multi.rss, reference.rss * (1.0f + 1e-5f));
  EXPECT_NEAR(multi.att, reference.att, 1e-3);
  EXPECT_NEAR(multi.flow, reference.flow, 1e-3 * reference.flow);
  EXPECT_EQ(multi.status, perfq::detail::kStatusOk);

  // A second voxel, CBF 73, ATT 1.4 s: the single start stops at 1.17 s (the parabola crossed
  // the kink at ATT = PLD 1.25 s), the lowest minimum is at 1.36 s.
  const float z[6] = {0.0051827f, 0.00061453f, 0.0051884f, 0.014217f, 0.0056157f, 0.008465f};
  const KineticVoxelResult<float> second = brute_force(s, z);
  s.starts = 1;
  const KineticVoxelResult<float> second_single = perfq::detail::fit_voxel(s, z, 0);
  s.starts = 3;
  const KineticVoxelResult<float> second_multi = perfq::detail::fit_voxel(s, z, 0);
  EXPECT_NEAR(second_single.att, 1.167, 0.002);
  EXPECT_NEAR(second_multi.att, second.att, 1e-3);
  EXPECT_NEAR(second.att, 1.36, 0.002);
  // With the ATT prior (mean 1.3 s, SD 1 s, noise SD 3.7e-3: SNR 2), the posterior cost is
  // compared: a CBF-30, ATT-1.16 s voxel whose single start stops at 1.40 s, 0.7 % above the
  // lowest posterior cost, which lies on the kink at 1.90 s (the bolus begins arriving at the
  // second delay's sample time, τ + PLD); the grid costs that split the regions include the
  // prior's term.
  s.prior = true, s.prior_mean = 1.3f, s.prior_sd = 1.0f, s.noise_variance = 1.4e-5f;
  const float w[6] = {0.0055247f, -0.0030284f, 0.0019332f, 0.0057228f, 0.0033545f, 0.0049476f};
  const KineticVoxelResult<float> prior_reference = brute_force(s, w);
  s.starts = 1;
  const KineticVoxelResult<float> prior_single = perfq::detail::fit_voxel(s, w, 0);
  s.starts = 3;
  const KineticVoxelResult<float> prior_multi = perfq::detail::fit_voxel(s, w, 0);
  EXPECT_GT(posterior(s, prior_single), posterior(s, prior_reference) * (1.0 + 1e-3));
  EXPECT_LE(posterior(s, prior_multi), posterior(s, prior_reference) * (1.0 + 1e-5));
  EXPECT_NEAR(prior_single.att, 1.398, 0.002);
  EXPECT_NEAR(prior_multi.att, prior_reference.att, 1e-3);
}

TEST(KineticMultiStart, NoisyImageEndsAtTheLowestCostNearlyEverywhere) {
  // 3,000 voxels, CBF 20–80, ATT 0.5–2.0 s, noise SD one fifth of the largest ΔM of a CBF-60,
  // ATT-1.2 s voxel (SNR 5), for two protocols: through fit_kinetic with one start and with the
  // default, each voxel's cost (of the CBF and ATT it reports) against the brute force. Measured
  // (perfq 2026-12): one start leaves 1.3 % (short) / 1.2 % (long) of the voxels more than 0.1 %
  // above the lowest cost; the default 3 starts 0.03 % / 0 %.
  constexpr int kVoxels = 3000;
  for (const bool short_delays : {true, false}) {
    const std::vector<double>& delays = short_delays ? kShortDelays : kLongDelays;
    const double tau = short_delays ? 1.4 : 1.8;
    const int n = static_cast<int>(delays.size());
    perfq::AslProtocol protocol;
    protocol.post_labeling_delay = delays;
    protocol.labeling_duration = {tau};
    perfq::Geometry g;
    g.dims = {kVoxels, 1, 1};
    perfq::Series<float> delta_m(g, n);
    // The fit's constants, from a first call (physiology defaults).
    perfq::Execution cpu;
    cpu.backend = perfq::Backend::Cpu;
    const perfq::ResolvedConstants c =
        perfq::fit_kinetic(delta_m, perfq::M0Source::from_value(1000.0), protocol, {}, {},
                           std::nullopt, cpu)
            .constants;
    std::vector<float> basis, norm;
    const KineticSettings<float> s =
        pcasl(delays, tau, c.effective_labeling_efficiency, c.blood_brain_partition, c.t1_blood,
              c.t1_tissue, basis, norm);
    float peak = 0.0f;
    for (int k = 0; k < n; ++k) {
      peak = std::max(peak,
                      perfq::detail::tissue_signal<float, float>(s, k, 0.0f, 0.01f, 0.01f, 1.2f));
    }
    std::mt19937 rng(short_delays ? 11u : 12u);
    std::uniform_real_distribution<float> cbf(20.0f, 80.0f), att(0.5f, 2.0f);
    std::normal_distribution<float> noise(0.0f, peak / 5.0f);
    std::vector<float> y(std::size_t(kVoxels) * n);
    for (int v = 0; v < kVoxels; ++v) {
      const float f = cbf(rng) / 6000.0f, a = att(rng);
      for (int k = 0; k < n; ++k) {
        y[v * n + k] = perfq::detail::tissue_signal<float, float>(s, k, 0.0f, f, f, a) + noise(rng);
        delta_m.at(v, 0, 0, k) = 1000.0f * y[v * n + k];
        y[v * n + k] = delta_m.at(v, 0, 0, k) / 1000.0f;  // what the fit sees
      }
    }
    auto above = [&](int starts) {
      perfq::KineticOptions options;
      options.max_starts = starts;
      const perfq::KineticFit fit = perfq::fit_kinetic(delta_m, perfq::M0Source::from_value(1000.0),
                                                       protocol, {}, options, std::nullopt, cpu);
      int count = 0;
      for (int v = 0; v < kVoxels; ++v) {
        const float* yv = y.data() + v * n;
        const double lowest = brute_force(s, yv, 121).rss;
        const double mine = cost(s, yv, fit.cbf[v] / 6000.0, fit.att[v]);
        count += mine > lowest * (1.0 + 1e-3) ? 1 : 0;
      }
      return count;
    };
    const int single = above(1), multi = above(perfq::KineticOptions{}.max_starts);
    EXPECT_GT(single, kVoxels / 200) << (short_delays ? "short" : "long") << " delays";
    EXPECT_LE(multi, kVoxels / 1000)
        << (short_delays ? "short" : "long") << " delays, single " << single;
  }
}

}  // namespace
