// Border-zone masks: atlas border zones against a brute-force implementation on analytic
// territories, probabilistic and timing masks against direct computation, the phantom's
// designed border zones recovered from its timing, bad inputs, and CPU-vs-GPU parity.
#include <perfq/distance.hpp>
#include <perfq/errors.hpp>
#include <perfq/phantom.hpp>
#include <perfq/watershed.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <random>
#include <utility>
#include <vector>

namespace {

using perfq::Mask;
using perfq::Volume;

perfq::Execution cpu(int threads = 0) {
  perfq::Execution e;
  e.backend = perfq::Backend::Cpu;
  e.threads = threads;
  return e;
}

perfq::Geometry grid(std::size_t nx, std::size_t ny, std::size_t nz,
                     std::array<double, 3> spacing) {
  perfq::Geometry g;
  g.dims = {nx, ny, nz};
  g.spacing = spacing;
  return g;
}

/// Analytic territories on an anisotropic grid: three wedges around a vertical axis inside an
/// ellipsoid, and a small sphere (territory 4) cut out of wedge 1. The brain is a smaller
/// ellipsoid, so territories reach beyond it.
struct Analytic {
  Volume<std::int32_t> territories;
  Mask brain;
};

Analytic analytic(std::size_t nx = 26, std::size_t ny = 22, std::size_t nz = 14) {
  const auto g = grid(nx, ny, nz, {1.5, 1.0, 2.0});
  Analytic a{Volume<std::int32_t>(g), Mask(g)};
  const double cx = 0.5 * (nx - 1) * 1.5, cy = 0.5 * (ny - 1), cz = 0.5 * (nz - 1) * 2.0;
  for (std::size_t z = 0; z < nz; ++z)
    for (std::size_t y = 0; y < ny; ++y)
      for (std::size_t x = 0; x < nx; ++x) {
        const double px = x * 1.5 - cx, py = y * 1.0 - cy, pz = z * 2.0 - cz;
        const double r = std::hypot(px / (0.48 * nx * 1.5), py / (0.48 * ny), pz / (0.48 * nz * 2));
        if (r > 1.0) continue;
        const double angle = std::atan2(py, px);
        std::int32_t t = angle < -1.0 ? 1 : (angle < 1.3 ? 2 : 3);
        if (std::hypot(px + 6.0, py + 5.0, pz) < 3.5) t = 4;
        a.territories[g.index(x, y, z)] = t;
        a.brain[g.index(x, y, z)] = r <= 0.85 ? 1 : 0;
      }
  return a;
}

/// Brute force: every voxel's squared distance to every territory by trying all voxels,
/// sorted by (distance, label). Empty outside the brain.
using Nearest = std::vector<std::vector<std::pair<double, std::int32_t>>>;
Nearest brute_nearest(const Volume<std::int32_t>& labels, const Mask* brain) {
  const auto& g = labels.geometry();
  const auto& d = g.dims;
  Nearest out(g.voxel_count());
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    if (brain != nullptr && (*brain)[i] == 0) continue;
    auto& best = out[i];
    const double x = double(i % d[0]), y = double((i / d[0]) % d[1]), z = double(i / (d[0] * d[1]));
    for (std::size_t j = 0; j < g.voxel_count(); ++j) {
      const std::int32_t t = labels[j];
      if (t == 0) continue;
      const double dx = (x - double(j % d[0])) * g.spacing[0];
      const double dy = (y - double((j / d[0]) % d[1])) * g.spacing[1];
      const double dz = (z - double(j / (d[0] * d[1]))) * g.spacing[2];
      const double s = dx * dx + dy * dy + dz * dz;
      auto it =
          std::find_if(best.begin(), best.end(), [t](const auto& b) { return b.second == t; });
      if (it == best.end()) {
        best.emplace_back(s, t);
      } else {
        it->first = std::min(it->first, s);
      }
    }
    std::sort(best.begin(), best.end());
  }
  return out;
}

/// Brute-force border zones of one width: the second-nearest territory within w/2.
perfq::BorderZones brute_border_zones(const Nearest& nearest, const perfq::Geometry& g,
                                      double width) {
  perfq::BorderZones out{Mask(g), Volume<std::int32_t>(g), {}, perfq::Backend::Cpu};
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    const auto& best = nearest[i];
    if (best.size() >= 2 && best[1].first <= 0.25 * width * width) {
      out.mask[i] = 1;
      out.pairs[i] = perfq::pair_code(best[0].second, best[1].second);
    }
  }
  return out;
}

TEST(Watershed, PairCodes) {
  EXPECT_EQ(perfq::pair_code(2, 1), 1002);
  EXPECT_EQ(perfq::pair_code(1, 2), 1002);
  EXPECT_EQ(perfq::pair_first(3005), 3);
  EXPECT_EQ(perfq::pair_second(3005), 5);
}

TEST(Watershed, AtlasBorderZonesMatchBruteForce) {
  const Analytic a = analytic();
  for (bool with_brain : {true, false}) {
    const Nearest nearest = brute_nearest(a.territories, with_brain ? &a.brain : nullptr);
    std::optional<perfq::View<const std::uint8_t>> brain;
    if (with_brain) brain = a.brain.view();
    for (double width : {2.0, 3.0, 4.5, 8.0}) {
      const auto got = perfq::border_zones(a.territories, brain, width, cpu());
      const auto expected = brute_border_zones(nearest, a.territories.geometry(), width);
      EXPECT_EQ(got.territories, (std::vector<std::int32_t>{1, 2, 3, 4}));
      EXPECT_EQ(got.backend, perfq::Backend::Cpu);
      ASSERT_EQ(got.mask.values(), expected.mask.values()) << "width " << width;
      ASSERT_EQ(got.pairs.values(), expected.pairs.values()) << "width " << width;
      std::size_t n = 0;
      for (auto v : got.mask.values()) n += v;
      EXPECT_GT(n, 0u);
    }
  }
}

TEST(Watershed, BorderZonesDoNotDependOnThreadCount) {
  const Analytic a = analytic(40, 36, 20);
  const auto one = perfq::border_zones(a.territories, a.brain.view(), 5.0, cpu(1));
  const auto two = perfq::border_zones(a.territories, a.brain.view(), 5.0, cpu(2));
  EXPECT_EQ(one.mask.values(), two.mask.values());
  EXPECT_EQ(one.pairs.values(), two.pairs.values());
}

TEST(Watershed, GroupingMergesTerritories) {
  const Analytic a = analytic();
  const perfq::TerritoryGroups groups{{1, 1}, {2, 2}, {3, 2}, {4, 0}};
  const auto grouped = perfq::group_territories(a.territories, groups);
  Volume<std::int32_t> manual = a.territories;
  for (auto& v : manual.values()) v = v == 3 ? 2 : (v == 4 ? 0 : v);
  EXPECT_EQ(grouped.values(), manual.values());
  const auto zones = perfq::border_zones(grouped, a.brain.view(), 4.0, cpu());
  EXPECT_EQ(zones.territories, (std::vector<std::int32_t>{1, 2}));
  for (auto v : zones.pairs.values()) EXPECT_TRUE(v == 0 || v == 1002);

  EXPECT_THROW(perfq::group_territories(a.territories, {{1, 1}, {2, 2}, {3, 3}}),
               perfq::InvalidArgument);  // label 4 has no group
  EXPECT_THROW(perfq::group_territories(a.territories, {{1, 1}, {2, 2}, {3, 3}, {4, 4}, {9, 1}}),
               perfq::InvalidArgument);  // territory 9 is empty
}

TEST(Watershed, ProbabilisticBorderZonesMatchDirectComputation) {
  const auto g = grid(9, 8, 7, {2, 2, 2});
  perfq::Series<float> p(g, 3);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    float w[3] = {u(rng), u(rng), u(rng)};
    const float sum = w[0] + w[1] + w[2];
    for (int k = 0; k < 3; ++k) p[k * g.voxel_count() + i] = w[k] / sum;
  }
  Mask brain(g, 1, 1);
  brain[0] = 0;
  const auto zones = perfq::border_zones_from_probabilities(p, brain.view(), 0.3, {4, 7, 9}, cpu());
  const std::int32_t labels[3] = {4, 7, 9};
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    int order[3] = {0, 1, 2};
    std::stable_sort(order, order + 3, [&](int a, int b) {
      return p[a * g.voxel_count() + i] > p[b * g.voxel_count() + i];
    });
    const bool inside = brain[i] && p[order[1] * g.voxel_count() + i] >= 0.3f;
    ASSERT_EQ(zones.mask[i], inside ? 1 : 0) << i;
    ASSERT_EQ(zones.pairs[i], inside ? perfq::pair_code(labels[order[0]], labels[order[1]]) : 0);
  }
  EXPECT_THROW(perfq::border_zones_from_probabilities(p.volume(0), std::nullopt, 0.3),
               perfq::InvalidArgument);  // a single territory
  p[5] = NAN;
  EXPECT_THROW(perfq::border_zones_from_probabilities(p, std::nullopt, 0.3),
               perfq::InvalidArgument);
}

/// numpy.percentile's default, from a sorted copy.
double numpy_percentile(std::vector<float> v, double q) {
  std::sort(v.begin(), v.end());
  const double h = (v.size() - 1) * q / 100.0;
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (h - lo) * (double(v[hi]) - v[lo]);
}

TEST(Watershed, TimingThresholdAndPercentile) {
  const auto g = grid(10, 9, 8, {1, 1, 1});
  Volume<float> att(g);
  Mask tissue(g);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.5f, 2.0f);
  std::vector<float> inside;
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    att[i] = u(rng);
    tissue[i] = i % 3 != 0;
    if (tissue[i]) inside.push_back(att[i]);
  }
  att[0] = NAN;  // outside the tissue: ignored
  for (double q : {0.0, 37.5, 80.0, 100.0}) {
    perfq::TimingOptions o;
    o.percentile = q;
    const auto z = perfq::timing_border_zones(att, tissue, o, cpu());
    EXPECT_NEAR(z.cut, numpy_percentile(inside, q), 1e-6);
    EXPECT_EQ(z.tissue_voxels, inside.size());
    for (std::size_t i = 0; i < g.voxel_count(); ++i) {
      ASSERT_EQ(z.mask[i], tissue[i] && att[i] >= z.cut ? 1 : 0);
    }
  }
  perfq::TimingOptions o;
  o.threshold = 1.5;
  const auto z = perfq::timing_border_zones(att, tissue, o, cpu());
  EXPECT_EQ(z.cut, 1.5);
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    ASSERT_EQ(z.mask[i], tissue[i] && att[i] >= 1.5f ? 1 : 0);
  }
  o.percentile = 50.0;  // both: refused
  EXPECT_THROW(perfq::timing_border_zones(att, tissue, o, cpu()), perfq::InvalidArgument);
  o.threshold.reset();
  att[1] = NAN;  // inside the tissue: refused
  EXPECT_THROW(perfq::timing_border_zones(att, tissue, o, cpu()), perfq::InvalidArgument);
}

TEST(Watershed, SmallComponentsAreDroppedByVolumeAndConnectivity) {
  const auto g = grid(12, 12, 12, {2, 2, 2});  // 0.008 ml per voxel
  Mask m(g);
  m.at(1, 1, 1) = 1;                  // 1 voxel
  m.at(5, 5, 5) = m.at(6, 6, 6) = 1;  // 2 voxels touching by a corner
  m.at(1, 8, 1) = m.at(2, 8, 1) = 1;  // 2 voxels sharing a face
  for (std::size_t z = 8; z < 11; ++z)
    for (std::size_t y = 8; y < 11; ++y)
      for (std::size_t x = 8; x < 11; ++x) m.at(x, y, z) = 1;  // 27 voxels
  auto full = perfq::drop_small_components(m, 0.016, perfq::Connectivity::Full26);
  EXPECT_EQ(full.kept, 3u);
  EXPECT_EQ(full.dropped, 1u);
  EXPECT_EQ(full.voxels_dropped, 1u);
  EXPECT_EQ(full.mask.at(6, 6, 6), 1);
  auto faces = perfq::drop_small_components(m, 0.016, perfq::Connectivity::Faces6);
  EXPECT_EQ(faces.kept, 2u);
  EXPECT_EQ(faces.dropped, 3u);
  EXPECT_EQ(faces.mask.at(6, 6, 6), 0);
  EXPECT_EQ(faces.mask.at(2, 8, 1), 1);
  auto none = perfq::drop_small_components(m, 0.0);
  EXPECT_EQ(none.mask.values(), m.values());
  EXPECT_THROW(perfq::drop_small_components(m, -1.0), perfq::InvalidArgument);
}

TEST(Watershed, LocalCovMatchesDirectComputation) {
  const auto g = grid(11, 10, 6, {1.0, 1.5, 2.5});
  Volume<float> cbf(g);
  Mask tissue(g);
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> u(10.0f, 80.0f);
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    cbf[i] = u(rng);
    tissue[i] = (i * 7) % 5 != 0;
  }
  const double radius = 3.0;
  const auto cov = perfq::local_cov(cbf, tissue, radius, cpu());
  const auto& d = g.dims;
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    if (!tissue[i]) {
      ASSERT_EQ(cov[i], 0.0f);
      continue;
    }
    std::vector<double> v;
    for (std::size_t j = 0; j < g.voxel_count(); ++j) {
      if (!tissue[j]) continue;
      const double dx = (double(i % d[0]) - double(j % d[0])) * 1.0;
      const double dy = (double((i / d[0]) % d[1]) - double((j / d[0]) % d[1])) * 1.5;
      const double dz = (double(i / (d[0] * d[1])) - double(j / (d[0] * d[1]))) * 2.5;
      if (dx * dx + dy * dy + dz * dz <= radius * radius) v.push_back(cbf[j]);
    }
    double mean = 0, ss = 0;
    for (double x : v) mean += x / v.size();
    for (double x : v) ss += (x - mean) * (x - mean);
    const double expected = v.size() < 2 ? 0.0 : std::sqrt(ss / (v.size() - 1)) / mean;
    ASSERT_NEAR(cov[i], expected, 1e-5 * expected + 1e-7) << "voxel " << i;
  }
  Volume<float> bad = cbf;
  bad[1] = NAN;
  EXPECT_THROW(perfq::local_cov(bad, tissue, radius), perfq::InvalidArgument);
}

TEST(Watershed, CombineSplitAndThreshold) {
  const auto g = grid(4, 1, 1, {1, 1, 1});
  const Mask a(g, 1, std::vector<std::uint8_t>{1, 1, 0, 0});
  const Mask b(g, 1, std::vector<std::uint8_t>{1, 0, 1, 0});
  EXPECT_EQ(perfq::combine_masks(a, b, perfq::Combination::Union).values(),
            (std::vector<std::uint8_t>{1, 1, 1, 0}));
  EXPECT_EQ(perfq::combine_masks(a, b, perfq::Combination::Intersection).values(),
            (std::vector<std::uint8_t>{1, 0, 0, 0}));
  const Volume<float> wm_probability(g, 1, std::vector<float>{0.9f, 0.2f, 0.5f, NAN});
  const Mask wm = perfq::threshold_map(wm_probability, 0.5);
  EXPECT_EQ(wm.values(), (std::vector<std::uint8_t>{1, 0, 1, 0}));
  const Mask zones(g, 1, std::vector<std::uint8_t>{1, 1, 1, 1});
  const Mask gm(g, 1, std::vector<std::uint8_t>{0, 1, 1, 0});
  const auto split = perfq::split_internal_external(zones, wm, gm.view());
  EXPECT_EQ(split.internal.values(), (std::vector<std::uint8_t>{1, 0, 1, 0}));
  EXPECT_EQ(split.external.values(), (std::vector<std::uint8_t>{0, 1, 0, 0}));
  EXPECT_DOUBLE_EQ(perfq::dice(a, b), 0.5);
  EXPECT_DOUBLE_EQ(perfq::dice(Mask(g), Mask(g)), 1.0);
  const Mask other(grid(5, 1, 1, {1, 1, 1}));
  EXPECT_THROW(perfq::combine_masks(a, other, perfq::Combination::Union), perfq::InvalidArgument);
}

TEST(Watershed, PeriventricularCapsFollowTheDocumentedRule) {
  perfq::PhantomOptions o;
  o.dims = {40, 48, 36};
  const auto p = perfq::make_phantom(o);
  perfq::CapOptions c;
  c.distance_mm = 9.0;
  const auto caps = perfq::periventricular_caps(p.ventricles, p.brain.view(), c, cpu());
  const auto& g = p.brain.geometry();
  double y0 = 1e9, y1 = -1e9;
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    if (!p.ventricles[i]) continue;
    const double y = g.origin[1] + g.spacing[1] * double((i / g.dims[0]) % g.dims[1]);
    y0 = std::min(y0, y);
    y1 = std::max(y1, y);
  }
  const auto near = perfq::dilate(p.ventricles, 9.0, cpu());
  std::size_t frontal = 0, occipital = 0;
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    const double y = g.origin[1] + g.spacing[1] * double((i / g.dims[0]) % g.dims[1]);
    std::uint8_t expected = 0;
    if (near[i] && !p.ventricles[i] && p.brain[i]) {
      if (y <= y0 + 0.25 * (y1 - y0))
        expected = perfq::kFrontalCap;
      else if (y >= y1 - 0.25 * (y1 - y0))
        expected = perfq::kOccipitalCap;
    }
    ASSERT_EQ(caps[i], expected) << "voxel " << i;
    frontal += expected == perfq::kFrontalCap;
    occipital += expected == perfq::kOccipitalCap;
  }
  EXPECT_GT(frontal, 0u);
  EXPECT_GT(occipital, 0u);
  EXPECT_THROW(perfq::periventricular_caps(Mask(g), std::nullopt), perfq::InvalidArgument);
  c.horn_fraction = 0.7;
  EXPECT_THROW(perfq::periventricular_caps(p.ventricles, std::nullopt, c), perfq::InvalidArgument);
}

// ---- the phantom's designed border zones --------------------------------------------------

Mask both(const Mask& a, const Volume<std::uint8_t>& tissue, std::uint8_t label) {
  Mask out(a.geometry());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] && tissue[i] == label;
  return out;
}

Mask tissue_mask(const Volume<std::uint8_t>& tissue, std::uint8_t label) {
  Mask out(tissue.geometry());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = tissue[i] == label;
  return out;
}

double fraction(const Mask& part, const Mask& whole) {
  double n = 0, d = 0;
  for (std::size_t i = 0; i < whole.size(); ++i) {
    n += part[i] && whole[i];
    d += whole[i];
  }
  return n / d;
}

TEST(Watershed, TimingMasksRecoverThePhantomsDesignedBorderZones) {
  perfq::PhantomOptions o;
  o.lesions = 6;
  const auto p = perfq::make_phantom(o);
  for (std::uint8_t label : {perfq::kWhiteMatter, perfq::kGreyMatter}) {
    const Mask tissue = tissue_mask(p.tissue, label);
    const Mask designed = both(p.border_zone, p.tissue, label);
    // The designed zones' share of the tissue sets the percentile.
    perfq::TimingOptions options;
    options.percentile = 100.0 * (1.0 - fraction(designed, tissue));
    const auto exact = perfq::timing_border_zones(p.att, tissue, options, cpu());
    const double exact_dice = perfq::dice(exact.mask, designed);
    EXPECT_GE(exact_dice, 0.95) << "tissue " << int(label);

    // Noisy timing (σ 0.1 s): small components removed, still ≥ 0.8.
    Volume<float> noisy = p.att;
    std::mt19937 rng(11);
    std::normal_distribution<float> noise(0.0f, 0.1f);
    for (auto& v : noisy.values()) v += noise(rng);
    options.min_volume_ml = 1.0;
    const auto cleaned = perfq::timing_border_zones(noisy, tissue, options, cpu());
    EXPECT_GT(cleaned.components_dropped, 0u);
    const double noisy_dice = perfq::dice(cleaned.mask, designed);
    EXPECT_GE(noisy_dice, 0.8) << "tissue " << int(label);
    std::cout << "tissue " << int(label) << ": Dice " << exact_dice << " (exact ATT), "
              << noisy_dice << " (ATT + noise, cleaned)\n";
  }
  // Atlas border zones of width 2 × 8 mm cover the same band.
  const auto atlas =
      perfq::border_zones(p.territories, p.brain.view(), 2.0 * perfq::kPhantomBorderZoneMm, cpu());
  const double atlas_dice = perfq::dice(atlas.mask, p.border_zone);
  EXPECT_GE(atlas_dice, 0.8);
  std::cout << "atlas border zones (16 mm): Dice " << atlas_dice << "\n";
  // Lesions favour the border zones.
  const Mask wm = tissue_mask(p.tissue, perfq::kWhiteMatter);
  EXPECT_GT(fraction(both(p.border_zone, p.tissue, perfq::kWhiteMatter), p.lesions),
            fraction(p.border_zone, wm));
}

TEST(Watershed, PhantomAnatomyForTheMasks) {
  perfq::PhantomOptions o;
  o.dims = {40, 48, 36};
  o.snr = 5.0;
  const auto plain = perfq::make_phantom(o);
  o.lesions = 5;
  const auto with_lesions = perfq::make_phantom(o);
  // Lesions change nothing else, not even the noise.
  EXPECT_EQ(plain.asl.values(), with_lesions.asl.values());
  EXPECT_EQ(plain.cbf.values(), with_lesions.cbf.values());
  std::size_t ventricle = 0, lesion = 0;
  for (std::size_t i = 0; i < plain.brain.size(); ++i) {
    EXPECT_EQ(plain.lesions[i], 0);
    if (plain.ventricles[i]) {
      ++ventricle;
      EXPECT_EQ(plain.tissue[i], perfq::kCsf);
    }
    EXPECT_EQ(plain.border_zone[i],
              plain.brain[i] && plain.border_distance[i] <= perfq::kPhantomBorderZoneMm ? 1 : 0);
    if (with_lesions.lesions[i]) {
      ++lesion;
      EXPECT_EQ(with_lesions.tissue[i], perfq::kWhiteMatter);
    }
  }
  EXPECT_GT(ventricle, 100u);
  EXPECT_GT(lesion, 5u);
}

// ---- bad inputs ---------------------------------------------------------------------------

TEST(Watershed, BadAtlasInputsAreRefused) {
  const Analytic a = analytic();
  const Mask other(grid(26, 22, 15, {1.5, 1.0, 2.0}), 1, 1);
  EXPECT_THROW(perfq::border_zones(a.territories, other.view(), 4.0), perfq::InvalidArgument);
  Volume<std::int32_t> single = a.territories;
  for (auto& v : single.values()) v = v != 0 ? 2 : 0;
  EXPECT_THROW(perfq::border_zones(single, std::nullopt, 4.0), perfq::InvalidArgument);
  const Volume<std::int32_t> none(a.territories.geometry());
  EXPECT_THROW(perfq::border_zones(none, std::nullopt, 4.0), perfq::InvalidArgument);
  // Territory 4 lies outside this brain mask entirely: an empty territory.
  Mask small(a.brain.geometry());
  small.at(20, 18, 7) = 1;
  EXPECT_THROW(perfq::border_zones(a.territories, small.view(), 4.0), perfq::InvalidArgument);
  Volume<std::int32_t> large = a.territories;
  large[0] = 1000;
  EXPECT_THROW(perfq::border_zones(large, std::nullopt, 4.0), perfq::InvalidArgument);
  large[0] = -1;
  EXPECT_THROW(perfq::border_zones(large, std::nullopt, 4.0), perfq::InvalidArgument);
  for (double w : {0.0, -2.0, double(NAN), double(INFINITY)}) {
    EXPECT_THROW(perfq::border_zones(a.territories, std::nullopt, w), perfq::InvalidArgument);
  }
}

// ---- GPU parity ---------------------------------------------------------------------------

TEST(WatershedGpu, BorderZonesMatchCpu) {
  if (!perfq::cuda_available()) {
    GTEST_SKIP() << "no CUDA device, GPU test skipped (" << perfq::cuda_unavailable_reason() << ")";
  }
  perfq::Execution gpu;
  gpu.backend = perfq::Backend::Cuda;
  const auto p = perfq::make_phantom();
  for (double width : {6.0, 16.0}) {
    const auto a = perfq::border_zones(p.territories, p.brain.view(), width, cpu());
    const auto b = perfq::border_zones(p.territories, p.brain.view(), width, gpu);
    EXPECT_EQ(b.backend, perfq::Backend::Cuda);
    EXPECT_EQ(a.mask.values(), b.mask.values());
    EXPECT_EQ(a.pairs.values(), b.pairs.values());
  }
  const Analytic an = analytic();
  const auto a = perfq::border_zones(an.territories, std::nullopt, 4.5, cpu());
  const auto b = perfq::border_zones(an.territories, std::nullopt, 4.5, gpu);
  EXPECT_EQ(a.pairs.values(), b.pairs.values());
  perfq::CapOptions c;
  EXPECT_EQ(perfq::periventricular_caps(p.ventricles, p.brain.view(), c, gpu).values(),
            perfq::periventricular_caps(p.ventricles, p.brain.view(), c, cpu()).values());
}

}  // namespace
