// Regional statistics: hand-computed examples, a naive reference on random images, weights,
// non-finite values, paired change, NAWM and lesion enrichment, thread-count determinism,
// refusals, and CPU-vs-GPU parity (skipped without a device).
#include <perfq/errors.hpp>
#include <perfq/execution.hpp>
#include <perfq/stats.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <vector>

namespace {

using perfq::Geometry;
using perfq::Volume;

Geometry grid(std::size_t nx, std::size_t ny, std::size_t nz,
              std::array<double, 3> spacing = {1.0, 1.0, 1.0}) {
  Geometry g;
  g.dims = {nx, ny, nz};
  g.spacing = spacing;
  return g;
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

perfq::Execution cpu(int threads = 0) {
  perfq::Execution e;
  e.backend = perfq::Backend::Cpu;
  e.threads = threads;
  return e;
}

/// Every floating-point field of a row, for finiteness and bitwise comparisons.
std::vector<double> fields(const perfq::RegionStats& r) {
  std::vector<double> f{r.volume_ml,
                        r.mean,
                        r.sd,
                        r.median,
                        r.min,
                        r.max,
                        r.cov,
                        r.scov,
                        r.weighted.weight_sum,
                        r.weighted.volume_ml,
                        r.weighted.effective_count,
                        r.weighted.mean,
                        r.weighted.sd,
                        r.change.baseline_mean,
                        r.change.followup_mean,
                        r.change.mean,
                        r.change.sd,
                        r.change.percent};
  f.insert(f.end(), r.percentiles.begin(), r.percentiles.end());
  return f;
}

// ---- hand-computed ------------------------------------------------------------------------

TEST(StatsRegion, HandComputedTwoByTwoByTwo) {
  // Region 1: 1 2 3 4; region 2: 10 20 60; one background voxel (label 0) that must not count.
  const Geometry g = grid(2, 2, 2, {2.0, 2.0, 2.5});  // 10 mm³ = 0.01 ml per voxel
  Volume<float> map(g, 1, std::vector<float>{1, 2, 3, 4, 10, 20, 60, 100});
  Volume<std::int32_t> labels(g, 1, std::vector<std::int32_t>{1, 1, 1, 1, 2, 2, 2, 0});
  const perfq::RegionTable t = perfq::region_stats(map, labels, {}, cpu());
  ASSERT_EQ(t.regions.size(), 2u);
  EXPECT_EQ(t.backend, perfq::Backend::Cpu);
  EXPECT_DOUBLE_EQ(t.voxel_volume_ml, 0.01);
  EXPECT_EQ(t.percentiles, (std::vector<double>{5, 25, 75, 95}));

  const perfq::RegionStats& a = t.regions[0];
  EXPECT_EQ(a.label, 1);
  EXPECT_EQ(a.voxels, 4u);
  EXPECT_EQ(a.count, 4u);
  EXPECT_EQ(a.nonfinite, 0u);
  EXPECT_DOUBLE_EQ(a.volume_ml, 0.04);
  EXPECT_DOUBLE_EQ(a.mean, 2.5);
  EXPECT_DOUBLE_EQ(a.sd, std::sqrt(5.0 / 3.0));  // Σ(x − 2.5)² = 5, n − 1 = 3
  EXPECT_DOUBLE_EQ(a.median, 2.5);
  EXPECT_DOUBLE_EQ(a.min, 1.0);
  EXPECT_DOUBLE_EQ(a.max, 4.0);
  // h = 3p/100: 0.15, 0.75, 2.25, 2.85.
  ASSERT_EQ(a.percentiles.size(), 4u);
  EXPECT_DOUBLE_EQ(a.percentiles[0], 1.15);
  EXPECT_DOUBLE_EQ(a.percentiles[1], 1.75);
  EXPECT_DOUBLE_EQ(a.percentiles[2], 3.25);
  EXPECT_DOUBLE_EQ(a.percentiles[3], 3.85);
  EXPECT_TRUE(a.cov_defined);
  EXPECT_DOUBLE_EQ(a.cov, std::sqrt(5.0 / 3.0) / 2.5);
  EXPECT_DOUBLE_EQ(a.scov, 100.0 * std::sqrt(5.0 / 3.0) / 2.5);
  EXPECT_FALSE(a.weighted.defined);
  EXPECT_FALSE(a.change.defined);

  const perfq::RegionStats& b = t.regions[1];
  EXPECT_EQ(b.label, 2);
  EXPECT_EQ(b.count, 3u);
  EXPECT_DOUBLE_EQ(b.mean, 30.0);
  EXPECT_DOUBLE_EQ(b.sd, std::sqrt(700.0));  // (400 + 100 + 900) / 2
  EXPECT_DOUBLE_EQ(b.median, 20.0);
  // h = 2p/100: 0.1, 0.5, 1.5, 1.9.
  EXPECT_DOUBLE_EQ(b.percentiles[0], 11.0);
  EXPECT_DOUBLE_EQ(b.percentiles[1], 15.0);
  EXPECT_DOUBLE_EQ(b.percentiles[2], 40.0);
  EXPECT_DOUBLE_EQ(b.percentiles[3], 56.0);
  EXPECT_DOUBLE_EQ(b.scov, 100.0 * std::sqrt(700.0) / 30.0);
  EXPECT_EQ(t.find(2), &t.regions[1]);
  EXPECT_EQ(t.find(0), nullptr);
}

TEST(StatsRegion, OneVoxelRegionHasZeroSdAndEveryPercentileEqualToIt) {
  const Geometry g = grid(3, 1, 1);
  Volume<float> map(g, 1, std::vector<float>{7, -2, 5});
  Volume<std::int32_t> labels(g, 1, std::vector<std::int32_t>{4, 9, 9});
  perfq::StatsOptions o;
  o.percentiles = {0, 50, 100};
  const auto t = perfq::region_stats(map, labels, o, cpu());
  const perfq::RegionStats& r = *t.find(4);
  EXPECT_EQ(r.count, 1u);
  EXPECT_EQ(r.sd, 0.0);
  EXPECT_EQ(r.median, 7.0);
  EXPECT_EQ(r.percentiles, (std::vector<double>{7, 7, 7}));
  const perfq::RegionStats& s = *t.find(9);  // −2, 5: median 1.5, p0 = min, p100 = max
  EXPECT_DOUBLE_EQ(s.median, 1.5);
  EXPECT_EQ(s.percentiles, (std::vector<double>{-2, 1.5, 5}));
}

// ---- naive reference on random images ------------------------------------------------------

struct Reference {
  std::size_t voxels = 0, count = 0;
  double mean = 0, sd = 0, median = 0, min = 0, max = 0;
  std::vector<double> percentiles;
};

/// Direct computation: every finite value of the label, long double sums, std::sort for the
/// percentiles (numpy's linear rule) and std::nth_element for the median.
std::map<std::int32_t, Reference> reference(const Volume<float>& map,
                                            const Volume<std::int32_t>& labels,
                                            const std::vector<double>& percentiles) {
  std::map<std::int32_t, std::vector<float>> values;
  std::map<std::int32_t, Reference> out;
  for (std::size_t i = 0; i < map.size(); ++i) {
    if (labels[i] == 0) continue;
    ++out[labels[i]].voxels;
    if (std::isfinite(map[i])) values[labels[i]].push_back(map[i]);
  }
  for (auto& [label, v] : values) {
    Reference& r = out[label];
    r.count = v.size();
    long double sum = 0;
    for (float x : v) sum += x;
    r.mean = static_cast<double>(sum / v.size());
    long double squares = 0;
    for (float x : v) squares += (x - sum / v.size()) * (x - sum / v.size());
    r.sd = v.size() > 1 ? std::sqrt(static_cast<double>(squares / (v.size() - 1))) : 0.0;
    std::vector<float> m = v;
    const std::size_t half = m.size() / 2;
    std::nth_element(m.begin(), m.begin() + half, m.end());
    const double upper = m[half];
    if (m.size() % 2 == 1) {
      r.median = upper;
    } else {
      std::nth_element(m.begin(), m.begin() + half - 1, m.end());
      r.median = 0.5 * (static_cast<double>(m[half - 1]) + upper);
    }
    std::sort(v.begin(), v.end());
    r.min = v.front();
    r.max = v.back();
    for (double p : percentiles) {
      const double h = (v.size() - 1) * p / 100.0;
      const std::size_t lo = static_cast<std::size_t>(std::floor(h));
      const std::size_t hi = std::min(lo + 1, v.size() - 1);
      r.percentiles.push_back(v[lo] + (h - lo) * (static_cast<double>(v[hi]) - v[lo]));
    }
  }
  return out;
}

struct RandomCase {
  Volume<float> map, weights, baseline;
  Volume<std::int32_t> labels;
};

RandomCase random_case(std::array<std::size_t, 3> dims, unsigned seed) {
  const Geometry g = grid(dims[0], dims[1], dims[2], {1.5, 2.0, 3.0});
  std::mt19937 rng(seed);
  std::normal_distribution<float> cbf(50.0f, 15.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  const std::int32_t palette[] = {0, 0, 1, 2, 2, 2, 3, -7, 1000000};
  std::uniform_int_distribution<int> pick(0, 8);
  RandomCase c{Volume<float>(g), Volume<float>(g), Volume<float>(g), Volume<std::int32_t>(g)};
  for (std::size_t i = 0; i < c.map.size(); ++i) {
    c.labels[i] = palette[pick(rng)];
    const float u = unit(rng);
    c.map[i] = u < 0.02f ? kNaN : u < 0.03f ? -kInf : u < 0.04f ? 0.0f : cbf(rng);
    c.weights[i] = unit(rng) < 0.1f ? 0.0f : unit(rng);
    c.baseline[i] = unit(rng) < 0.03f ? kNaN : c.map[i] * 0.9f + cbf(rng) * 0.1f;
  }
  return c;
}

TEST(StatsRegion, MatchesANaiveReferenceOnRandomImages) {
  for (unsigned seed : {1u, 2u, 3u}) {
    const RandomCase c = random_case({23, 19, 17}, seed);
    perfq::StatsOptions o;
    o.percentiles = {0.0, 2.5, 10.0, 33.3, 50.0, 90.0, 99.9, 100.0};
    const auto t = perfq::region_stats(c.map, c.labels, o, cpu());
    const auto expected = reference(c.map, c.labels, o.percentiles);
    ASSERT_EQ(t.regions.size(), expected.size());
    std::size_t k = 0;
    for (const auto& [label, e] : expected) {  // ascending labels, as the table
      const perfq::RegionStats& r = t.regions[k++];
      SCOPED_TRACE("seed " + std::to_string(seed) + " label " + std::to_string(label));
      ASSERT_EQ(r.label, label);
      EXPECT_EQ(r.voxels, e.voxels);
      EXPECT_EQ(r.count, e.count);
      EXPECT_EQ(r.nonfinite, e.voxels - e.count);
      EXPECT_NEAR(r.mean, e.mean, 1e-12 * std::abs(e.mean));
      EXPECT_NEAR(r.sd, e.sd, 1e-10 * e.sd);
      EXPECT_DOUBLE_EQ(r.median, e.median);
      EXPECT_EQ(r.min, e.min);
      EXPECT_EQ(r.max, e.max);
      ASSERT_EQ(r.percentiles.size(), e.percentiles.size());
      for (std::size_t q = 0; q < e.percentiles.size(); ++q) {
        EXPECT_DOUBLE_EQ(r.percentiles[q], e.percentiles[q]) << "p" << o.percentiles[q];
      }
      EXPECT_DOUBLE_EQ(r.volume_ml, e.voxels * 1.5 * 2.0 * 3.0 / 1000.0);
      EXPECT_DOUBLE_EQ(r.scov, 100.0 * r.sd / r.mean);
    }
  }
}

// ---- weights ------------------------------------------------------------------------------

TEST(StatsRegion, PartialVolumeWeightsHandComputed) {
  const Geometry g = grid(5, 1, 1, {2.0, 2.0, 2.0});  // 0.008 ml per voxel
  Volume<float> map(g, 1, std::vector<float>{1, 2, 3, 4, kNaN});
  Volume<float> weights(g, 1, std::vector<float>{1.0f, 0.5f, 0.5f, 0.0f, 0.9f});
  Volume<std::int32_t> labels(g, 1, std::vector<std::int32_t>{1, 1, 1, 1, 1});
  perfq::StatsOptions o;
  o.weights = weights.view();
  const auto t = perfq::region_stats(map, labels, o, cpu());
  EXPECT_TRUE(t.weighted);
  const perfq::WeightedStats& w = t.regions[0].weighted;
  ASSERT_TRUE(w.defined);
  // The NaN voxel is left out: Σw = 2, Σwx = 3.5, Σw² = 1.5, Σw(x − 1.75)² = 1.375.
  EXPECT_DOUBLE_EQ(w.weight_sum, 2.0);
  EXPECT_DOUBLE_EQ(w.volume_ml, 0.016);
  EXPECT_DOUBLE_EQ(w.effective_count, 4.0 / 1.5);
  EXPECT_DOUBLE_EQ(w.mean, 1.75);
  EXPECT_DOUBLE_EQ(w.sd, std::sqrt(1.375 / (2.0 - 1.5 / 2.0)));
  EXPECT_DOUBLE_EQ(t.regions[0].mean, 2.5);  // unweighted statistics are unchanged

  // Equal weights give the unweighted mean and sample SD; one weighted voxel gives SD 0.
  for (auto& v : weights.values()) v = 0.3f;
  const auto equal = perfq::region_stats(map, labels, o, cpu());
  EXPECT_DOUBLE_EQ(equal.regions[0].weighted.mean, equal.regions[0].mean);
  EXPECT_NEAR(equal.regions[0].weighted.sd, equal.regions[0].sd, 1e-12);
  weights.values() = {0, 0, 0.7f, 0, 1};
  const auto single = perfq::region_stats(map, labels, o, cpu());
  EXPECT_DOUBLE_EQ(single.regions[0].weighted.mean, 3.0);
  EXPECT_EQ(single.regions[0].weighted.sd, 0.0);
  weights.values() = {0, 0, 0, 0, 1};  // the only weight sits on the NaN voxel
  const auto none = perfq::region_stats(map, labels, o, cpu());
  EXPECT_FALSE(none.regions[0].weighted.defined);
  EXPECT_EQ(none.regions[0].weighted.mean, 0.0);
}

TEST(StatsRegion, WeightsOutsideZeroOneAreRefusedWhereTheyCount) {
  const Geometry g = grid(4, 1, 1);
  Volume<float> map(g, 1, std::vector<float>{1, 2, 3, kNaN});
  Volume<std::int32_t> labels(g, 1, std::vector<std::int32_t>{1, 1, 0, 1});
  // Invalid weights on background or on a non-finite map value do not matter.
  Volume<float> weights(g, 1, std::vector<float>{0.5f, 1.0f, kNaN, 7.0f});
  perfq::StatsOptions o;
  o.weights = weights.view();
  EXPECT_NO_THROW(perfq::region_stats(map, labels, o, cpu()));
  for (float bad : {1.5f, -0.1f, kNaN}) {
    weights[1] = bad;
    EXPECT_THROW(perfq::region_stats(map, labels, o, cpu()), perfq::InvalidArgument) << bad;
  }
}

// ---- non-finite values --------------------------------------------------------------------

TEST(StatsRegion, NonFiniteValuesAreCountedAndLeftOut) {
  const Geometry g = grid(6, 1, 1);
  Volume<float> map(g, 1, std::vector<float>{1, kNaN, 3, kInf, kNaN, -kInf});
  Volume<std::int32_t> labels(g, 1, std::vector<std::int32_t>{1, 1, 1, 1, 2, 2});
  perfq::StatsOptions o;
  o.labels = {1, 2, 5};  // 5 is absent from the image
  const auto t = perfq::region_stats(map, labels, o, cpu());
  ASSERT_EQ(t.regions.size(), 3u);
  const perfq::RegionStats& a = t.regions[0];
  EXPECT_EQ(a.voxels, 4u);
  EXPECT_EQ(a.count, 2u);
  EXPECT_EQ(a.nonfinite, 2u);
  EXPECT_DOUBLE_EQ(a.mean, 2.0);
  EXPECT_DOUBLE_EQ(a.median, 2.0);
  EXPECT_DOUBLE_EQ(a.volume_ml, 0.004);  // the labelled size, non-finite voxels included
  for (const perfq::RegionStats* r : {&t.regions[1], &t.regions[2]}) {
    EXPECT_FALSE(r->has_values());
    EXPECT_FALSE(r->cov_defined);
    for (double f : fields(*r)) EXPECT_TRUE(std::isfinite(f));
    EXPECT_EQ(r->mean, 0.0);
    EXPECT_EQ(r->percentiles, (std::vector<double>(4, 0.0)));
  }
  EXPECT_EQ(t.regions[1].nonfinite, 2u);
  EXPECT_EQ(t.regions[2].label, 5);
  EXPECT_EQ(t.regions[2].voxels, 0u);
}

TEST(StatsRegion, ZeroMeanLeavesCovUndefinedNotNaN) {
  const Geometry g = grid(2, 1, 1);
  Volume<float> map(g, 1, std::vector<float>{-1, 1});
  Volume<std::int32_t> labels(g, 1, std::vector<std::int32_t>{3, 3});
  const auto t = perfq::region_stats(map, labels, {}, cpu());
  EXPECT_TRUE(t.regions[0].has_values());
  EXPECT_FALSE(t.regions[0].cov_defined);
  EXPECT_EQ(t.regions[0].cov, 0.0);
  EXPECT_EQ(t.regions[0].scov, 0.0);
}

TEST(StatsRegion, NaNOnlyMapIsRefused) {
  const Geometry g = grid(3, 1, 1);
  Volume<float> map(g, 1, std::vector<float>{kNaN, kNaN, 5});
  Volume<std::int32_t> labels(g, 1, std::vector<std::int32_t>{1, 2, 0});
  EXPECT_THROW(perfq::region_stats(map, labels, {}, cpu()), perfq::InvalidArgument);
}

// ---- options and refusals -----------------------------------------------------------------

TEST(StatsRegion, MaskBackgroundAndRequestedOrder) {
  const Geometry g = grid(4, 1, 1);
  Volume<float> map(g, 1, std::vector<float>{1, 2, 3, 4});
  Volume<std::int32_t> labels(g, 1, std::vector<std::int32_t>{0, 2, 2, 1});
  perfq::Mask mask(g, 1, std::vector<std::uint8_t>{1, 1, 0, 1});
  perfq::StatsOptions o;
  o.mask = mask.view();
  auto t = perfq::region_stats(map, labels, o, cpu());
  ASSERT_EQ(t.regions.size(), 2u);
  EXPECT_EQ(t.regions[1].label, 2);
  EXPECT_EQ(t.regions[1].voxels, 1u);  // the masked-out voxel is not counted anywhere
  EXPECT_DOUBLE_EQ(t.regions[1].mean, 2.0);
  o.include_background = true;
  t = perfq::region_stats(map, labels, o, cpu());
  ASSERT_EQ(t.regions.size(), 3u);
  EXPECT_EQ(t.regions[0].label, 0);
  EXPECT_DOUBLE_EQ(t.regions[0].mean, 1.0);
  o.labels = {2, 1};  // reported in the order asked for
  t = perfq::region_stats(map, labels, o, cpu());
  ASSERT_EQ(t.regions.size(), 2u);
  EXPECT_EQ(t.regions[0].label, 2);
  EXPECT_EQ(t.regions[1].label, 1);

  // The mask overload: one region, label 1.
  const auto m = perfq::region_stats(map, mask.view(), {}, cpu());
  ASSERT_EQ(m.regions.size(), 1u);
  EXPECT_EQ(m.regions[0].label, 1);
  EXPECT_EQ(m.regions[0].count, 3u);
  EXPECT_DOUBLE_EQ(m.regions[0].mean, 7.0 / 3.0);
}

TEST(StatsRegion, VoxelsAreLeftOutByTheirStatusAndCountedPerRegion) {
  // Seven voxels: region 1 = {10 (status 0), 20 (7: kept), 0 (6: singular fit, left out)},
  // region 2 = {0 (1: outside the mask of the fit), 3 (0), 5 (5: iteration limit)}, region 3
  // = {0 (8: M0 too low)}. By hand, default exclusions (1-6, 8):
  //   region 1: 10, 20 -> mean 15, SD sqrt((25 + 25) / 1) = 7.0711, median 15, excluded 1
  //   region 2: 3      -> mean 3, SD 0, excluded 2
  //   region 3: none   -> no values, excluded 1
  const Geometry g = grid(7, 1, 1, {2.0, 1.0, 1.0});
  Volume<float> map(g);
  Volume<std::int32_t> labels(g);
  Volume<std::uint8_t> status(g);
  const float values[] = {10, 20, 0, 0, 3, 5, 0};
  const std::int32_t regions[] = {1, 1, 1, 2, 2, 2, 3};
  const std::uint8_t codes[] = {0, 7, 6, 1, 0, 5, 8};
  for (std::size_t i = 0; i < 7; ++i) {
    map[i] = values[i];
    labels[i] = regions[i];
    status[i] = codes[i];
  }
  perfq::StatsOptions o;
  o.percentiles = {};
  o.status = status.view();
  const auto t = perfq::region_stats(map, labels.view(), o, cpu());
  EXPECT_TRUE(t.status_filtered);
  EXPECT_EQ(t.excluded_statuses, (std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6, 8}));
  ASSERT_EQ(t.regions.size(), 3u);
  const perfq::RegionStats& r1 = t.regions[0];
  EXPECT_EQ(r1.voxels, 3u);
  EXPECT_EQ(r1.count, 2u);
  EXPECT_EQ(r1.excluded, 1u);
  EXPECT_EQ(r1.nonfinite, 0u);
  EXPECT_DOUBLE_EQ(r1.volume_ml, 3 * 0.002);
  EXPECT_DOUBLE_EQ(r1.mean, 15.0);
  EXPECT_NEAR(r1.sd, std::sqrt(50.0), 1e-12);
  EXPECT_DOUBLE_EQ(r1.median, 15.0);
  EXPECT_DOUBLE_EQ(r1.min, 10.0);
  const perfq::RegionStats& r2 = t.regions[1];
  EXPECT_EQ(r2.voxels, 3u);
  EXPECT_EQ(r2.count, 1u);
  EXPECT_EQ(r2.excluded, 2u);
  EXPECT_DOUBLE_EQ(r2.mean, 3.0);
  EXPECT_DOUBLE_EQ(r2.sd, 0.0);
  const perfq::RegionStats& r3 = t.regions[2];
  EXPECT_EQ(r3.label, 3);
  EXPECT_EQ(r3.voxels, 1u);
  EXPECT_EQ(r3.excluded, 1u);
  EXPECT_FALSE(r3.has_values());

  // Without the status map every voxel counts: region 1 mean (10 + 20 + 0) / 3 = 10.
  perfq::StatsOptions all;
  all.percentiles = {};
  const auto u = perfq::region_stats(map, labels.view(), all, cpu());
  EXPECT_FALSE(u.status_filtered);
  EXPECT_DOUBLE_EQ(u.regions[0].mean, 10.0);
  EXPECT_EQ(u.regions[0].excluded, 0u);
  EXPECT_DOUBLE_EQ(u.regions[1].mean, 8.0 / 3.0);

  // Chosen codes (6 only): region 2 keeps all three voxels, mean 8/3.
  perfq::StatsOptions six = o;
  six.exclude_statuses = {6};
  const auto v = perfq::region_stats(map, labels.view(), six, cpu());
  EXPECT_DOUBLE_EQ(v.regions[0].mean, 15.0);
  EXPECT_EQ(v.regions[1].excluded, 0u);
  EXPECT_DOUBLE_EQ(v.regions[1].mean, 8.0 / 3.0);
  EXPECT_EQ(v.regions[2].excluded, 0u);

  // Outside the mask a voxel is neither a region's nor excluded: region 1 without voxel 0.
  perfq::Mask mask(g, 1, 1);
  mask[0] = 0;
  perfq::StatsOptions masked = o;
  masked.mask = mask.view();
  const auto m = perfq::region_stats(map, labels.view(), masked, cpu());
  EXPECT_EQ(m.regions[0].voxels, 2u);
  EXPECT_EQ(m.regions[0].count, 1u);
  EXPECT_EQ(m.regions[0].excluded, 1u);
  EXPECT_DOUBLE_EQ(m.regions[0].mean, 20.0);

  // A status map on another grid is refused.
  Volume<std::uint8_t> other(grid(6, 1, 1));
  perfq::StatsOptions wrong = o;
  wrong.status = other.view();
  EXPECT_THROW(perfq::region_stats(map, labels.view(), wrong, cpu()), perfq::InvalidArgument);
}

TEST(StatsRegion, RefusesBadArguments) {
  const Geometry g = grid(3, 2, 1);
  Volume<float> map(g, 1, 1.0f);
  Volume<std::int32_t> labels(g, 1, 1);
  const Geometry other = grid(3, 2, 2);
  Volume<float> map_other(other, 1, 1.0f);
  Volume<std::int32_t> labels_other(other, 1, 1);
  Geometry moved = g;
  moved.origin[0] = 5.0;
  Volume<std::int32_t> labels_moved(moved, 1, 1);
  perfq::Mask mask_other(other, 1, 1);
  Volume<float> series(g, 2, 1.0f);
  const auto e = cpu();
  using perfq::InvalidArgument;
  EXPECT_THROW(perfq::region_stats(map, labels_other, {}, e), InvalidArgument);
  EXPECT_THROW(perfq::region_stats(map, labels_moved, {}, e), InvalidArgument);
  EXPECT_THROW(perfq::region_stats(series, labels, {}, e), InvalidArgument);
  EXPECT_THROW(perfq::region_stats(perfq::View<const float>{}, labels.view(), {}, e),
               InvalidArgument);
  perfq::StatsOptions o;
  o.baseline = map_other.view();
  EXPECT_THROW(perfq::region_stats(map, labels, o, e), InvalidArgument);
  o = {};
  o.weights = map_other.view();
  EXPECT_THROW(perfq::region_stats(map, labels, o, e), InvalidArgument);
  o = {};
  o.mask = mask_other.view();
  EXPECT_THROW(perfq::region_stats(map, labels, o, e), InvalidArgument);
  for (double p : {-1.0, 100.5, std::nan("")}) {
    o = {};
    o.percentiles = {50, p};
    EXPECT_THROW(perfq::region_stats(map, labels, o, e), InvalidArgument) << p;
  }
  o = {};
  o.labels = {1, 2, 1};
  EXPECT_THROW(perfq::region_stats(map, labels, o, e), InvalidArgument);
  Volume<std::int32_t> background(g, 1, 0);  // no region at all
  EXPECT_THROW(perfq::region_stats(map, background, {}, e), InvalidArgument);
}

TEST(StatsRegion, CudaWithoutADeviceIsAClearError) {
  if (perfq::cuda_available()) GTEST_SKIP() << "a CUDA device is present";
  const Geometry g = grid(2, 1, 1);
  Volume<float> map(g, 1, 1.0f);
  Volume<std::int32_t> labels(g, 1, 1);
  perfq::Execution e;
  e.backend = perfq::Backend::Cuda;
  EXPECT_THROW(perfq::region_stats(map, labels, {}, e), perfq::BackendError);
}

// ---- paired change ------------------------------------------------------------------------

TEST(StatsRegion, PairedChangeHandComputed) {
  const Geometry g = grid(7, 1, 1);
  // Region 1 pairs voxels 0, 1 and 4 (voxel 2: baseline NaN; voxel 3: follow-up NaN):
  // d = 2, 3, 10 → mean 5, SD √((9 + 4 + 25) / 2) = √19; baseline mean 20, follow-up 25.
  Volume<float> followup(g, 1, std::vector<float>{12, 23, 33, kNaN, 40, 1, 3});
  Volume<float> baseline(g, 1, std::vector<float>{10, 20, kNaN, 5, 30, -1, 1});
  Volume<std::int32_t> labels(g, 1, std::vector<std::int32_t>{1, 1, 1, 1, 1, 2, 2});
  perfq::StatsOptions o;
  o.baseline = baseline.view();
  const auto t = perfq::region_stats(followup, labels, o, cpu());
  EXPECT_TRUE(t.paired);
  const perfq::PairedChange& c = t.regions[0].change;
  ASSERT_TRUE(c.defined);
  EXPECT_EQ(c.count, 3u);
  EXPECT_DOUBLE_EQ(c.baseline_mean, 20.0);
  EXPECT_DOUBLE_EQ(c.followup_mean, 25.0);
  EXPECT_DOUBLE_EQ(c.mean, 5.0);
  EXPECT_DOUBLE_EQ(c.sd, std::sqrt(19.0));
  ASSERT_TRUE(c.percent_defined);
  EXPECT_DOUBLE_EQ(c.percent, 25.0);
  EXPECT_EQ(t.regions[0].count, 4u);  // the follow-up statistics use every finite value
  // Region 2: baseline mean 0 → no percentage.
  const perfq::PairedChange& z = t.regions[1].change;
  EXPECT_TRUE(z.defined);
  EXPECT_DOUBLE_EQ(z.mean, 2.0);
  EXPECT_EQ(z.sd, 0.0);
  EXPECT_FALSE(z.percent_defined);
  EXPECT_EQ(z.percent, 0.0);
}

// ---- NAWM and lesion enrichment -----------------------------------------------------------

std::size_t count(const perfq::Mask& m) {
  return static_cast<std::size_t>(
      std::count_if(m.values().begin(), m.values().end(), [](std::uint8_t v) { return v != 0; }));
}

TEST(StatsMasks, NormalAppearingWhiteMatterRemovesDilatedLesions) {
  const Geometry g = grid(9, 9, 9);
  perfq::Mask wm(g, 1, 1);
  perfq::Mask lesions(g);
  lesions.at(4, 4, 4) = 1;
  // Radius 0: the lesion alone; 1 mm: + its 6 face neighbours; 1.5 mm: + 12 edge neighbours
  // (√2 mm); √3 mm corners stay.
  EXPECT_EQ(count(perfq::normal_appearing_white_matter(wm, lesions, 0.0, cpu())), 729u - 1);
  EXPECT_EQ(count(perfq::normal_appearing_white_matter(wm, lesions, 1.0, cpu())), 729u - 7);
  const perfq::Mask nawm = perfq::normal_appearing_white_matter(wm, lesions, 1.5, cpu());
  EXPECT_EQ(count(nawm), 729u - 19);
  EXPECT_EQ(nawm.at(5, 5, 4), 0);
  EXPECT_EQ(nawm.at(5, 5, 5), 1);
  // Voxels that are not WM stay out whatever the lesions.
  wm.at(0, 0, 0) = 0;
  EXPECT_EQ(perfq::normal_appearing_white_matter(wm, lesions, 1.5, cpu()).at(0, 0, 0), 0);

  // Anisotropic: 1 × 1 × 2 mm voxels, 1.5 mm reaches the 8 in-plane neighbours, not z ± 1.
  const Geometry flat = grid(9, 9, 9, {1.0, 1.0, 2.0});
  perfq::Mask wm2(flat, 1, 1), lesions2(flat);
  lesions2.at(4, 4, 4) = 1;
  const perfq::Mask n2 = perfq::normal_appearing_white_matter(wm2, lesions2, 1.5, cpu());
  EXPECT_EQ(count(n2), 729u - 9);
  EXPECT_EQ(n2.at(4, 4, 5), 1);

  EXPECT_THROW(perfq::normal_appearing_white_matter(wm, lesions, -1.0), perfq::InvalidArgument);
  EXPECT_THROW(perfq::normal_appearing_white_matter(wm, lesions2, 1.0), perfq::InvalidArgument);
}

TEST(StatsMasks, LesionInWatershedEnrichmentHandComputed) {
  // 10 × 10 × 1, 2 × 2 × 5 mm voxels (0.02 ml). WM: rows y = 0..4 (50 voxels). Watershed: row
  // 0 (10 voxels, all WM) and 5 voxels of row 9 (outside WM): 10 / 50 = 0.2 of WM. Lesions:
  // 2 in row 0, 1 in row 2 (WM), 1 in row 7 (outside WM): 2 / 4 = 0.5 inside. Ratio 2.5.
  const Geometry g = grid(10, 10, 1, {2.0, 2.0, 5.0});
  perfq::Mask wm(g), watershed(g), lesions(g);
  for (std::size_t y = 0; y < 5; ++y) {
    for (std::size_t x = 0; x < 10; ++x) wm.at(x, y, 0) = 1;
  }
  for (std::size_t x = 0; x < 10; ++x) watershed.at(x, 0, 0) = 1;
  for (std::size_t x = 0; x < 5; ++x) watershed.at(x, 9, 0) = 1;
  lesions.at(3, 0, 0) = lesions.at(4, 0, 0) = lesions.at(5, 2, 0) = lesions.at(5, 7, 0) = 1;
  const perfq::LesionEnrichment e = perfq::lesion_watershed_enrichment(lesions, watershed, wm);
  EXPECT_EQ(e.lesion_voxels, 4u);
  EXPECT_EQ(e.lesion_in_watershed, 2u);
  EXPECT_EQ(e.wm_voxels, 50u);
  EXPECT_EQ(e.watershed_in_wm, 10u);
  EXPECT_DOUBLE_EQ(e.lesion_volume_ml, 0.08);
  EXPECT_DOUBLE_EQ(e.lesion_in_watershed_ml, 0.04);
  EXPECT_DOUBLE_EQ(e.lesion_fraction, 0.5);
  EXPECT_DOUBLE_EQ(e.watershed_fraction, 0.2);
  ASSERT_TRUE(e.enrichment_defined);
  EXPECT_DOUBLE_EQ(e.enrichment, 2.5);

  const perfq::LesionEnrichment none =
      perfq::lesion_watershed_enrichment(perfq::Mask(g), watershed, wm);
  EXPECT_FALSE(none.enrichment_defined);
  EXPECT_EQ(none.enrichment, 0.0);
  EXPECT_DOUBLE_EQ(none.watershed_fraction, 0.2);
  EXPECT_THROW(perfq::lesion_watershed_enrichment(lesions, watershed, perfq::Mask(grid(10, 10, 2))),
               perfq::InvalidArgument);
}

// ---- determinism and GPU parity -----------------------------------------------------------

TEST(StatsRegion, BitwiseIdenticalForAnyThreadCount) {
  const RandomCase c = random_case({64, 64, 40}, 7);
  perfq::StatsOptions o;
  o.weights = c.weights.view();
  o.baseline = c.baseline.view();
  o.include_background = true;
  const auto one = perfq::region_stats(c.map, c.labels, o, cpu(1));
  for (int threads : {2, 3, 4, 0}) {
    const auto many = perfq::region_stats(c.map, c.labels, o, cpu(threads));
    ASSERT_EQ(many.regions.size(), one.regions.size());
    for (std::size_t r = 0; r < one.regions.size(); ++r) {
      const auto a = fields(one.regions[r]), b = fields(many.regions[r]);
      EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(double)), 0)
          << "threads " << threads << " region " << one.regions[r].label;
      EXPECT_EQ(one.regions[r].count, many.regions[r].count);
      EXPECT_EQ(one.regions[r].change.count, many.regions[r].change.count);
    }
  }
}

class StatsGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!perfq::cuda_available()) {
      GTEST_SKIP() << "no CUDA device, GPU statistics test skipped ("
                   << perfq::cuda_unavailable_reason() << ")";
    }
  }
};

void expect_close(double gpu, double cpu_value, const char* what) {
  EXPECT_NEAR(gpu, cpu_value, 1e-6 * std::abs(cpu_value) + 1e-9) << what;
}

TEST_F(StatsGpu, MatchesCpu) {
  const RandomCase c = random_case({61, 53, 47}, 11);
  perfq::StatsOptions o;
  o.percentiles = {0.5, 5, 25, 75, 95, 100};
  o.weights = c.weights.view();
  o.baseline = c.baseline.view();
  o.labels = {2, 1, 3, -7, 1000000, 0, 42};  // with background and an absent label
  perfq::Execution gpu;
  gpu.backend = perfq::Backend::Cuda;
  const auto a = perfq::region_stats(c.map, c.labels, o, cpu());
  const auto b = perfq::region_stats(c.map, c.labels, o, gpu);
  EXPECT_EQ(b.backend, perfq::Backend::Cuda);
  ASSERT_EQ(a.regions.size(), b.regions.size());
  for (std::size_t r = 0; r < a.regions.size(); ++r) {
    const perfq::RegionStats &x = a.regions[r], &y = b.regions[r];
    SCOPED_TRACE("label " + std::to_string(x.label));
    EXPECT_EQ(x.label, y.label);
    EXPECT_EQ(x.voxels, y.voxels);
    EXPECT_EQ(x.count, y.count);
    EXPECT_EQ(x.median, y.median);  // the same order statistics, interpolated on the host
    EXPECT_EQ(x.min, y.min);
    EXPECT_EQ(x.max, y.max);
    EXPECT_EQ(x.percentiles, y.percentiles);
    expect_close(y.mean, x.mean, "mean");
    expect_close(y.sd, x.sd, "sd");
    expect_close(y.weighted.mean, x.weighted.mean, "weighted mean");
    expect_close(y.weighted.sd, x.weighted.sd, "weighted sd");
    EXPECT_EQ(x.change.count, y.change.count);
    expect_close(y.change.mean, x.change.mean, "change mean");
    expect_close(y.change.sd, x.change.sd, "change sd");
  }
  // The mask overload and a large single region.
  perfq::Mask all(c.map.geometry(), 1, 1);
  const auto ma = perfq::region_stats(c.map, all.view(), {}, cpu());
  const auto mb = perfq::region_stats(c.map, all.view(), {}, gpu);
  EXPECT_EQ(ma.regions[0].count, mb.regions[0].count);
  EXPECT_EQ(ma.regions[0].median, mb.regions[0].median);
  expect_close(mb.regions[0].mean, ma.regions[0].mean, "mean");
}

}  // namespace
