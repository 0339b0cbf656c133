// SCORE and SCRUB (AveragingOptions::outliers) on a phantom series with known CBF, with
// control/label pairs corrupted as motion corrupts them.
#include <perfq/asl_series.hpp>
#include <perfq/cbf.hpp>
#include <perfq/errors.hpp>
#include <perfq/phantom.hpp>

#include <gtest/gtest.h>

#include "outliers.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace {

using perfq::OutlierRejection;

/// A single-delay phantom of 20 pairs, a pair's GM SNR 3 (a typical 2D PCASL pair).
perfq::Phantom phantom(std::uint64_t seed = 7) {
  perfq::PhantomOptions o;
  o.dims = {30, 36, 24};
  o.repeats = 20;
  o.snr = 3;
  o.seed = seed;
  return perfq::make_phantom(o);
}

/// The phantom's tissue classes as 0/1 maps, and the ΔM → CBF scale: the phantom's own
/// quantification of ΔM = 1 (the CBF of a ΔM image is linear in it).
struct Inputs {
  perfq::Volume<float> gm, wm, csf, scale;
  explicit Inputs(const perfq::Phantom& p)
      : gm(p.tissue.geometry()),
        wm(p.tissue.geometry()),
        csf(p.tissue.geometry()),
        scale(p.tissue.geometry()) {
    for (std::size_t i = 0; i < p.tissue.size(); ++i) {
      gm[i] = p.tissue[i] == perfq::kGreyMatter;
      wm[i] = p.tissue[i] == perfq::kWhiteMatter;
      csf[i] = p.tissue[i] == perfq::kCsf;
    }
    perfq::Volume<float> ones(p.tissue.geometry());
    for (std::size_t i = 0; i < ones.size(); ++i) ones[i] = 1.0f;
    const perfq::CbfMaps unit = perfq::quantify_cbf(
        ones.view(), perfq::M0Source::from_image(p.m0.view()), p.protocol, p.physiology);
    scale = unit.cbf;
  }
  perfq::AveragingOptions options(OutlierRejection method) const {
    perfq::AveragingOptions a;
    a.outliers = method;
    a.tissue.gm = gm.view();
    a.tissue.wm = wm.view();
    a.tissue.csf = csf.view();
    a.cbf_scale = scale.view();
    return a;
  }
};

perfq::PreparedAsl prepare(const perfq::Phantom& p, const perfq::Series<float>& asl,
                           const perfq::AveragingOptions& a) {
  return perfq::prepare_asl(asl.view(), p.context, p.protocol, a);
}

/// The white paper's CBF of a prepared series, with the phantom's M0 and constants.
perfq::Volume<float> cbf_of(const perfq::Phantom& p, const perfq::PreparedAsl& prepared) {
  return perfq::quantify_cbf(prepared.delta_m.view(), perfq::M0Source::from_image(p.m0.view()),
                             prepared.protocol, p.physiology)
      .cbf;
}

/// Root-mean-square error against the truth over the GM and WM voxels.
double rms_error(const perfq::Phantom& p, const perfq::Volume<float>& cbf) {
  double squares = 0.0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < cbf.size(); ++i) {
    if (p.brain[i] == 0) continue;
    const double d = cbf[i] - p.cbf[i];
    squares += d * d;
    ++count;
  }
  return std::sqrt(squares / static_cast<double>(count));
}

/// Mean over the GM voxels.
double gm_mean(const perfq::Phantom& p, const perfq::Volume<float>& map) {
  double sum = 0.0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < map.size(); ++i) {
    if (p.tissue[i] != perfq::kGreyMatter) continue;
    sum += map[i];
    ++count;
  }
  return sum / static_cast<double>(count);
}

/// The series with three pairs corrupted as motion corrupts them: pair 3's label image moved
/// by one voxel along y (the head moved between control and label), pair 11's label image
/// 3 % darker (a change of position in the receive field), and pair 16's control image
/// carrying a ghost (a ripple along x of 2 % of the image, as a through-plane movement
/// during the readout leaves it).
perfq::Series<float> corrupted(const perfq::Phantom& p) {
  perfq::Series<float> asl = p.asl;
  const auto& d = p.m0.geometry().dims;
  const std::size_t n = p.m0.size();
  auto volume = [&](std::size_t v) { return asl.data() + v * n; };
  const float* original_label = p.asl.data() + 7 * n;
  float* label = volume(7);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t y = (i / d[0]) % d[1];
    label[i] = y + 1 < d[1] ? original_label[i + d[0]] : original_label[i];
  }
  for (std::size_t i = 0; i < n; ++i) volume(23)[i] *= 0.97f;
  for (std::size_t i = 0; i < n; ++i) {
    const double x = static_cast<double>(i % d[0]);
    volume(32)[i] += static_cast<float>(0.02 * p.m0[i] * std::sin(0.7 * x));
  }
  return asl;
}

/// A naive reference of SCORE's first rule: the control volumes of the pairs whose mean GM
/// CBF lies more than 2.5 × 1.4826 × MAD from the median of the pairs' (Gaussian noise alone
/// puts a pair there with a probability of 1.2 %).
std::vector<std::size_t> extreme_gm_pairs(const perfq::Phantom& p, const perfq::Series<float>& asl,
                                          const Inputs& in) {
  const std::size_t n = p.m0.size(), pairs = asl.volumes() / 2;
  std::vector<double> means(pairs);
  for (std::size_t k = 0; k < pairs; ++k) {
    double sum = 0.0;
    std::size_t count = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (in.gm[i] != 1.0f) continue;
      sum += (asl.data()[2 * k * n + i] - asl.data()[(2 * k + 1) * n + i]) * in.scale[i];
      ++count;
    }
    means[k] = sum / static_cast<double>(count);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  };
  const double centre = median(means);
  std::vector<double> deviations;
  for (double m : means) deviations.push_back(std::abs(m - centre));
  const double sigma = 1.4826 * median(deviations);
  std::vector<std::size_t> controls;
  for (std::size_t k = 0; k < pairs; ++k) {
    if (deviations[k] > 2.5 * sigma) controls.push_back(2 * k);
  }
  return controls;
}

/// The union of two sorted lists, sorted.
std::vector<std::size_t> joined(std::vector<std::size_t> a, const std::vector<std::size_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  a.erase(std::unique(a.begin(), a.end()), a.end());
  return a;
}

std::vector<std::size_t> rejected_controls(const perfq::PreparedAsl& prepared) {
  std::vector<std::size_t> controls;
  for (const perfq::RepeatVolumes& r : prepared.rejected_volumes.at(0)) {
    controls.push_back(r.control);
  }
  return controls;
}

TEST(Outliers, ChiSquareQuantilesMatchClosedForms) {
  // Two degrees of freedom: an exponential of mean 2, quantile −2 ln(1 − p).
  for (double p : {0.1, 0.5, 0.9, 0.9999}) {
    EXPECT_NEAR(perfq::outliers::chi_square_quantile(2, p), -2.0 * std::log(1.0 - p), 1e-9);
  }
  // One degree of freedom: the square of the normal's two-sided quantile (z = 0.6744897502 at
  // 50 %, 3.8905918864 at 99.99 %).
  EXPECT_NEAR(perfq::outliers::chi_square_quantile(1, 0.5), 0.6744897502 * 0.6744897502, 1e-8);
  EXPECT_NEAR(perfq::outliers::chi_square_quantile(1, 0.9999), 3.8905918864 * 3.8905918864, 1e-6);
  // Many degrees of freedom: the median approaches dof (1 − 2/(9 dof))³ (Wilson–Hilferty).
  EXPECT_NEAR(perfq::outliers::chi_square_quantile(100, 0.5) / 99.334, 1.0, 1e-3);
}

TEST(Outliers, ScoreRejectsTheMotionCorruptedPairsAndRecoversCbf) {
  const perfq::Phantom p = phantom();
  const Inputs in(p);
  const perfq::Series<float> asl = corrupted(p);
  const perfq::PreparedAsl plain = prepare(p, asl, {});
  const perfq::PreparedAsl score = prepare(p, asl, in.options(OutlierRejection::Score));
  // The corrupted pairs (controls 6, 22, 32; labels 7, 23, 33) and no other but those the
  // first rule drops by chance (here pair 12, its GM mean 3.1 robust SDs off), with reasons.
  const std::vector<std::size_t> expected = joined({6, 22, 32}, extreme_gm_pairs(p, asl, in));
  EXPECT_EQ(expected, (std::vector<std::size_t>{6, 22, 24, 32}));
  EXPECT_EQ(rejected_controls(score), expected);
  for (const perfq::RepeatVolumes& r : score.rejected_volumes[0]) {
    ASSERT_TRUE(r.label.has_value());
    EXPECT_EQ(*r.label, r.control + 1);
    EXPECT_NE(r.reason.find("SCORE"), std::string::npos) << r.reason;
  }
  EXPECT_EQ(score.kept_volumes[0].size(), 16u);
  EXPECT_EQ(score.repeats, std::vector<std::size_t>{16});
  EXPECT_EQ(score.rejected, std::vector<std::size_t>{4});
  // CBF: the GM mean within 3 % of the truth's, and the error well below plain averaging's.
  const perfq::Volume<float> cbf = cbf_of(p, score), plain_cbf = cbf_of(p, plain);
  EXPECT_NEAR(gm_mean(p, cbf) / gm_mean(p, p.cbf), 1.0, 0.03);
  EXPECT_LT(rms_error(p, cbf), 0.5 * rms_error(p, plain_cbf));
  // The same as averaging the 16 pairs kept alone.
  std::vector<std::size_t> volumes;
  std::vector<perfq::VolumeType> context;
  for (std::size_t v = 0; v < p.context.size(); ++v) {
    if (std::find(expected.begin(), expected.end(), v - v % 2) != expected.end()) continue;
    volumes.push_back(v);
    context.push_back(p.context[v]);
  }
  const std::size_t n = p.m0.size();
  perfq::Series<float> clean(p.m0.geometry(), volumes.size());
  for (std::size_t k = 0; k < volumes.size(); ++k) {
    std::memcpy(clean.data() + k * n, p.asl.data() + volumes[k] * n, n * sizeof(float));
  }
  const perfq::PreparedAsl kept = perfq::prepare_asl(clean.view(), context, p.protocol);
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(score.delta_m[i], kept.delta_m[i]);
}

TEST(Outliers, CleanDataKeepsEveryPairAndTheSameCbf) {
  for (std::uint64_t seed : {1, 2, 3}) {
    SCOPED_TRACE(seed);
    const perfq::Phantom p = phantom(seed);
    const Inputs in(p);
    const perfq::PreparedAsl plain = prepare(p, p.asl, {});
    const perfq::PreparedAsl score = prepare(p, p.asl, in.options(OutlierRejection::Score));
    const perfq::PreparedAsl scrub = prepare(p, p.asl, in.options(OutlierRejection::Scrub));
    // These seeds put no pair's GM mean beyond the first rule's 2.5 robust SDs, and the
    // variance rule drops none.
    EXPECT_TRUE(extreme_gm_pairs(p, p.asl, in).empty());
    EXPECT_TRUE(score.rejected_volumes[0].empty()) << score.rejected_volumes[0][0].reason;
    EXPECT_TRUE(scrub.rejected_volumes[0].empty());
    EXPECT_EQ(score.kept_volumes[0].size(), 20u);
    const std::size_t n = p.m0.size();
    std::size_t differ = 0, tissue = 0;
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(score.delta_m[i], plain.delta_m[i]) << "voxel " << i;
      differ += scrub.delta_m[i] != plain.delta_m[i];
      tissue += p.tissue[i] != perfq::kBackground;
    }
    // SCRUB leaves every voxel of ordinary variance at the mean. With noise alone the voxels
    // beyond the 99.99th percentile of GM's variance are those whose CBF noise is larger than
    // GM's (WM: M0 1000 against 1200, 1.44 times the variance, ~2 % of them), barely moved.
    EXPECT_LE(differ, tissue / 100);
    const perfq::Volume<float> a = cbf_of(p, plain), b = cbf_of(p, scrub);
    EXPECT_NEAR(gm_mean(p, b) / gm_mean(p, a), 1.0, 1e-4);
    EXPECT_NEAR(rms_error(p, b) / rms_error(p, a), 1.0, 1e-3);
  }
}

TEST(Outliers, ScrubBeatsPlainAveragingWithOutliers) {
  const perfq::Phantom p = phantom();
  const Inputs in(p);
  perfq::Series<float> asl = corrupted(p);
  // And local spikes SCORE keeps: in four pairs, a few voxels of the control image jump by 5 %
  // of M0 (a vessel's pulsation, a small spike; ~15 times a pair's noise in GM).
  const std::size_t n = p.m0.size();
  std::size_t spiked = 0;
  std::vector<std::size_t> spikes;
  for (std::size_t i = 0; i < n; i += 97) {
    if (p.tissue[i] != perfq::kGreyMatter) continue;
    spikes.push_back(i);
    asl.data()[(2 * (spiked % 4) + 2 * 5) * n + i] += 0.05f * p.m0[i];
    ++spiked;
  }
  ASSERT_GT(spikes.size(), 20u);
  const perfq::PreparedAsl plain = prepare(p, asl, {});
  const perfq::PreparedAsl score = prepare(p, asl, in.options(OutlierRejection::Score));
  const perfq::PreparedAsl scrub = prepare(p, asl, in.options(OutlierRejection::Scrub));
  EXPECT_EQ(rejected_controls(scrub), rejected_controls(score));
  const perfq::Volume<float> plain_cbf = cbf_of(p, plain), score_cbf = cbf_of(p, score),
                             scrub_cbf = cbf_of(p, scrub);
  EXPECT_LT(rms_error(p, scrub_cbf), 0.5 * rms_error(p, plain_cbf));
  EXPECT_LE(rms_error(p, scrub_cbf), rms_error(p, score_cbf));
  // At the spikes, SCRUB's estimate is far closer to the truth than the mean of SCORE's pairs.
  double score_error = 0, scrub_error = 0;
  for (std::size_t i : spikes) {
    score_error += std::abs(score_cbf[i] - p.cbf[i]);
    scrub_error += std::abs(scrub_cbf[i] - p.cbf[i]);
  }
  EXPECT_LT(scrub_error, 0.5 * score_error);
  EXPECT_NE(scrub.notes.front().find("SCRUB"), std::string::npos);
}

TEST(Outliers, RobustMethodIsTheRobustFlag) {
  const perfq::Phantom p = phantom();
  const perfq::Series<float> asl = corrupted(p);
  perfq::AveragingOptions flag, method;
  flag.robust = true;
  method.outliers = OutlierRejection::Robust;
  const perfq::PreparedAsl a = prepare(p, asl, flag), b = prepare(p, asl, method);
  EXPECT_EQ(a.rejected, b.rejected);
  EXPECT_EQ(rejected_controls(a), rejected_controls(b));
  for (std::size_t i = 0; i < p.m0.size(); ++i) ASSERT_EQ(a.delta_m[i], b.delta_m[i]);
  for (const perfq::RepeatVolumes& r : a.rejected_volumes[0]) {
    EXPECT_NE(r.reason.find("robust"), std::string::npos);
  }
  EXPECT_EQ(perfq::parse_outlier_rejection("scrub"), OutlierRejection::Scrub);
  EXPECT_STREQ(perfq::to_string(OutlierRejection::Score), "score");
  EXPECT_THROW(perfq::parse_outlier_rejection("enable"), perfq::InvalidArgument);
}

/// The message of what `f` throws as E (empty when it throws nothing or something else).
template <class E, class F>
std::string message_of(const F& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (...) {
  }
  return {};
}

TEST(Outliers, RefusesWhatTheyCannotDo) {
  const perfq::Phantom p = phantom();
  const Inputs in(p);
  {  // Another rule at the same time.
    perfq::AveragingOptions a = in.options(OutlierRejection::Score);
    a.robust = true;
    EXPECT_NE(message_of<perfq::InvalidArgument>([&] { prepare(p, p.asl, a); }).find("robust"),
              std::string::npos);
  }
  {  // A tissue map missing.
    perfq::AveragingOptions a = in.options(OutlierRejection::Scrub);
    a.tissue.csf.reset();
    const std::string m = message_of<perfq::InvalidArgument>([&] { prepare(p, p.asl, a); });
    EXPECT_NE(m.find("missing: CSF"), std::string::npos) << m;
  }
  {  // A map on another grid.
    perfq::Geometry g = p.m0.geometry();
    g.dims = {10, 10, 10};
    perfq::Volume<float> small(g);
    perfq::AveragingOptions a = in.options(OutlierRejection::Score);
    a.tissue.wm = small.view();
    EXPECT_NE(message_of<perfq::InvalidArgument>([&] { prepare(p, p.asl, a); }).find("WM map"),
              std::string::npos);
  }
  {  // Several delays.
    perfq::PhantomOptions o;
    o.dims = {30, 36, 24};
    o.delays = {1.0, 2.0};
    o.repeats = 4;
    const perfq::Phantom multi = perfq::make_phantom(o);
    perfq::AveragingOptions a = in.options(OutlierRejection::Score);
    a.cbf_scale.reset();  // (a single delay's factor; ΔM as it is)
    try {
      prepare(multi, multi.asl, a);
      ADD_FAILURE() << "multi-delay accepted";
    } catch (const perfq::InputError& e) {
      EXPECT_EQ(e.field(), "PostLabelingDelay");
      EXPECT_NE(std::string(e.what()).find("single-delay"), std::string::npos);
    }
  }
  {  // Too few pairs.
    perfq::PhantomOptions o;
    o.dims = {30, 36, 24};
    o.repeats = 2;
    const perfq::Phantom two = perfq::make_phantom(o);
    const Inputs m(two);
    EXPECT_THROW(prepare(two, two.asl, m.options(OutlierRejection::Scrub)), perfq::InputError);
  }
  {  // No GM voxel among those examined (a mask outside the brain).
    perfq::Mask corner(p.m0.geometry());
    corner[0] = 1;
    perfq::AveragingOptions a = in.options(OutlierRejection::Score);
    a.mask = corner.view();
    EXPECT_NE(message_of<perfq::InvalidArgument>([&] { prepare(p, p.asl, a); }).find("no GM"),
              std::string::npos);
  }
}

}  // namespace
