// Quality indices of a CBF map (perfq/quality.hpp), against values computed by hand.
#include <perfq/calibration.hpp>
#include <perfq/detail/status.hpp>
#include <perfq/errors.hpp>
#include <perfq/quality.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

namespace {

perfq::Geometry row_of(std::size_t n) {
  perfq::Geometry g;
  g.dims = {n, 1, 1};
  return g;
}

template <class T>
perfq::View<const T> view(const std::vector<T>& v) {
  return perfq::View<const T>{v.data(), row_of(v.size()), 1};
}

const perfq::QualityIndex& index(const perfq::QualityReport& r, const std::string& name) {
  return r.at(name);
}

}  // namespace

TEST(Quality, TissueIndicesMatchHandComputedValues) {
  // Voxels 0-2 GM, 3-4 WM, 5 GM but outside the mask (status 1: no value), 6 with GM
  // probability exactly 0.7 (not above the threshold: brain only).
  const std::vector<float> cbf = {60, 40, -10, 20, 30, 999, 10};
  const std::vector<float> gm = {1, 0.9f, 0.8f, 0, 0.1f, 1, 0.7f};
  const std::vector<float> wm = {0, 0.1f, 0.2f, 1, 0.9f, 0, 0.3f};
  const std::vector<std::uint8_t> status = {0, 5, 7, 0, 6, 1, 0};
  perfq::TissueMaps tissue;
  tissue.gm = view(gm);
  tissue.wm = view(wm);
  perfq::QualityOptions options;
  options.status = view(status);
  const perfq::QualityReport r = perfq::quality_indices(view(cbf), tissue, options);

  // Brain: every voxel with a value (no brain mask): 60, 40, -10, 20, 30, 10.
  EXPECT_EQ(index(r, "brain_voxels").value, 6);
  EXPECT_NEAR(index(r, "brain_mean_cbf").value, 150.0 / 6.0, 1e-12);
  EXPECT_NEAR(index(r, "brain_median_cbf").value, 25.0, 1e-12);  // (20 + 30) / 2
  EXPECT_NEAR(index(r, "brain_negative_fraction").value, 1.0 / 6.0, 1e-12);
  // GM: 60, 40, -10: mean 30, median 40, SD sqrt((900 + 100 + 1600) / 2) = sqrt(1300).
  EXPECT_EQ(index(r, "gm_voxels").value, 3);
  EXPECT_NEAR(index(r, "gm_mean_cbf").value, 30.0, 1e-12);
  EXPECT_NEAR(index(r, "gm_median_cbf").value, 40.0, 1e-12);
  EXPECT_NEAR(index(r, "gm_scov").value, 100.0 * std::sqrt(1300.0) / 30.0, 1e-9);
  EXPECT_NEAR(index(r, "gm_negative_fraction").value, 1.0 / 3.0, 1e-12);
  EXPECT_EQ(index(r, "gm_above_100_fraction").value, 0.0);
  EXPECT_TRUE(index(r, "gm_above_100_fraction").defined);
  // WM: 20, 30.
  EXPECT_EQ(index(r, "wm_voxels").value, 2);
  EXPECT_NEAR(index(r, "wm_mean_cbf").value, 25.0, 1e-12);
  EXPECT_NEAR(index(r, "wm_median_cbf").value, 25.0, 1e-12);
  EXPECT_NEAR(index(r, "gm_wm_ratio").value, 1.2, 1e-12);
  // No CSF map: no QEI, and why.
  EXPECT_FALSE(index(r, "qei").defined);
  EXPECT_EQ(index(r, "qei").value, 0.0);
  EXPECT_NE(index(r, "qei").why_not.find("CSF"), std::string::npos);
  EXPECT_EQ(r.indices.size(), perfq::quality_index_names().size());
}

TEST(Quality, HighCbfSharesCountStrictlyAbove) {
  const std::vector<float> cbf = {50, 100, 120, 150, 180, 200, 250, -1};
  const std::vector<float> gm(cbf.size(), 1.0f);
  perfq::TissueMaps tissue;
  tissue.gm = view(gm);
  const perfq::QualityReport r = perfq::quality_indices(view(cbf), tissue);
  EXPECT_NEAR(index(r, "gm_above_100_fraction").value, 5.0 / 8.0, 1e-12);
  EXPECT_NEAR(index(r, "gm_above_150_fraction").value, 3.0 / 8.0, 1e-12);
  EXPECT_NEAR(index(r, "gm_above_200_fraction").value, 1.0 / 8.0, 1e-12);
  EXPECT_NEAR(index(r, "gm_negative_fraction").value, 1.0 / 8.0, 1e-12);
  EXPECT_FALSE(index(r, "gm_wm_ratio").defined);
  EXPECT_EQ(index(r, "gm_wm_ratio").why_not, "no WM probability map");
}

TEST(Quality, QeiMatchesAWorkedExample) {
  // Unsmoothed (FWHM 0) so that every component can be worked out by hand.
  const std::vector<float> cbf = {50, 70, -5, 20, 25, 5, 10, 30};
  const std::vector<float> gm = {1, 1, 1, 0, 0, 0, 0, 0.5f};
  const std::vector<float> wm = {0, 0, 0, 1, 1, 0, 0, 0.5f};
  const std::vector<float> csf = {0, 0, 0, 0, 0, 1, 1, 0};
  perfq::TissueMaps tissue{view(gm), view(wm), view(csf)};
  perfq::QualityOptions options;
  options.qei_smoothing_fwhm_mm = 0.0;
  const perfq::QualityReport r = perfq::quality_indices(view(cbf), tissue, options);

  // Pooled variance: GM {50, 70, -5} mean 115/3, sum of squares 3016.667; WM {20, 25} 12.5;
  // CSF {5, 10} 12.5; over 7 - 3 degrees of freedom: 760.41667. V = that / (115/3).
  const double pooled = (3016.0 + 2.0 / 3.0 + 12.5 + 12.5) / 4.0;
  const double v = pooled / (115.0 / 3.0);
  const double n = 1.0 / 3.0;
  // r: Pearson correlation of CBF with 2.5 GM + WM = {2.5, 2.5, 2.5, 1, 1, 0, 0, 1.75}.
  // Sums: Σx = 205, Σy = 11.25, Σxy = 287.5 + 45 + 52.5 = 385, Σx² = 9475, Σy² = 23.8125.
  const double mean_x = 205.0 / 8, mean_y = 11.25 / 8;
  const double sxy = 385.0 - 8 * mean_x * mean_y;
  const double sxx = 9475.0 - 8 * mean_x * mean_x;
  const double syy = 23.8125 - 8 * mean_y * mean_y;
  const double corr = sxy / std::sqrt(sxx * syy);
  EXPECT_NEAR(index(r, "qei_spatial_variability").value, v, 1e-9);
  EXPECT_NEAR(index(r, "qei_negative_gm_fraction").value, n, 1e-12);
  EXPECT_NEAR(index(r, "qei_structural_similarity").value, corr, 1e-9);
  const double q =
      std::cbrt(std::exp(-0.054 * std::pow(v, 0.9272)) * std::exp(-2.8478 * std::pow(n, 0.5196)) *
                (1.0 - std::exp(-3.0126 * std::pow(corr, 2.4419))));
  EXPECT_NEAR(index(r, "qei").value, q, 1e-9);
  EXPECT_GT(q, 0.0);
  EXPECT_LT(q, 1.0);
}

TEST(Quality, QeiSmoothsTheMapFirst) {
  // A GM slab at 60 with one negative voxel: unsmoothed the share of negative GM is one
  // voxel's; smoothed at 5 mm within the brain (1 mm voxels) it is 0, and a uniform map
  // stays uniform (its correlation with the pseudo-CBF is then not defined).
  perfq::Geometry g;
  g.dims = {9, 9, 9};
  const std::size_t n = g.voxel_count();
  std::vector<float> cbf(n, 60.0f), gm(n, 1.0f), wm(n, 0.0f), csf(n, 0.0f);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t x = i % 9;
    if (x < 3) {
      gm[i] = 0.0f;
      wm[i] = 1.0f;
      cbf[i] = 25.0f;
    }
    if (x == 8) {
      gm[i] = 0.0f;
      csf[i] = 1.0f;
      cbf[i] = 5.0f;
    }
  }
  cbf[g.index(5, 4, 4)] = -20.0f;
  auto v = [&](const std::vector<float>& x) { return perfq::View<const float>{x.data(), g, 1}; };
  perfq::TissueMaps tissue{v(gm), v(wm), v(csf)};
  perfq::QualityOptions raw;
  raw.qei_smoothing_fwhm_mm = 0.0;
  const auto unsmoothed = perfq::quality_indices(v(cbf), tissue, raw);
  EXPECT_NEAR(unsmoothed.at("qei_negative_gm_fraction").value, 1.0 / (5 * 81), 1e-12);
  const auto smoothed = perfq::quality_indices(v(cbf), tissue);
  EXPECT_EQ(smoothed.at("qei_negative_gm_fraction").value, 0.0);
  EXPECT_TRUE(smoothed.at("qei").defined);
  EXPECT_GT(smoothed.at("qei").value, 0.0);
  EXPECT_LT(smoothed.at("qei").value, 1.0);

  const std::vector<float> uniform(n, 50.0f);
  const auto flat = perfq::quality_indices(v(uniform), tissue);
  EXPECT_FALSE(flat.at("qei").defined);
  EXPECT_NE(flat.at("qei").why_not.find("constant"), std::string::npos);
}

TEST(Quality, QeiSmoothingIsSmoothM0sNormalisedGaussian) {
  // The QEI's smoothing is that of perfq::smooth_m0 (a separate implementation, in double):
  // check it through N, the share of GM below 0, on an anisotropic grid whose brain is an
  // irregular blob, for maps with values near 0 everywhere so that any difference in the
  // smoothing shows.
  perfq::Geometry g;
  g.dims = {23, 17, 11};
  g.spacing = {1.0, 1.5, 2.5};
  const std::size_t n = g.voxel_count();
  std::mt19937 rng(4);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  std::vector<float> cbf(n), gm(n, 0.0f), wm(n, 0.0f), csf(n, 0.0f);
  std::vector<std::uint8_t> brain(n, 0);
  for (std::size_t z = 0; z < 11; ++z) {
    for (std::size_t y = 0; y < 17; ++y) {
      for (std::size_t x = 0; x < 23; ++x) {
        const std::size_t i = g.index(x, y, z);
        const double dx = (x - 11.0) / 10.0, dy = (y - 8.0) / 7.0, dz = (z - 5.0) / 5.0;
        brain[i] = dx * dx + dy * dy + dz * dz + 0.2 * std::sin(3.0 * x) < 1.0;
        cbf[i] = 0.02f + noise(rng);
        (x % 3 == 0 ? csf : x % 3 == 1 ? wm : gm)[i] = 1.0f;
      }
    }
  }
  auto v = [&](const auto& x) {
    return perfq::View<const std::decay_t<decltype(x[0])>>{x.data(), g, 1};
  };
  for (const double fwhm : {3.0, 5.0, 12.0}) {
    SCOPED_TRACE(fwhm);
    perfq::QualityOptions o;
    o.brain = v(brain);
    o.qei_smoothing_fwhm_mm = fwhm;
    const auto r = perfq::quality_indices(v(cbf), {v(gm), v(wm), v(csf)}, o);
    // The reference: smooth_m0 of the brain's CBF within the brain.
    const perfq::Volume<float> s = perfq::smooth_m0(v(cbf), fwhm, v(brain));
    std::size_t in_gm = 0, negative = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (brain[i] && gm[i] > 0.7f) {
        ++in_gm;
        negative += s[i] < 0.0f;
      }
    }
    EXPECT_NEAR(r.at("qei_negative_gm_fraction").value, double(negative) / in_gm, 1e-12);
    EXPECT_GT(negative, 0u);
    EXPECT_LT(negative, in_gm);
    // Threads do not change it.
    o.threads = 1;
    const auto one = perfq::quality_indices(v(cbf), {v(gm), v(wm), v(csf)}, o);
    EXPECT_EQ(one.at("qei").value, r.at("qei").value);
  }
}

TEST(Quality, BrainMaskBoundsTheBrainIndices) {
  const std::vector<float> cbf = {40, 60, 0, 0};
  const std::vector<std::uint8_t> brain = {1, 1, 0, 0};
  perfq::QualityOptions options;
  options.brain = view(brain);
  const auto r = perfq::quality_indices(view(cbf), {}, options);
  EXPECT_EQ(r.at("brain_voxels").value, 2);
  EXPECT_NEAR(r.at("brain_mean_cbf").value, 50.0, 1e-12);
  // SD of {40, 60} is sqrt(200); sCoV 100 sqrt(200) / 50.
  EXPECT_NEAR(r.at("brain_scov").value, 2.0 * std::sqrt(200.0), 1e-9);
  // Without tissue maps the GM and WM indices say why they are missing.
  EXPECT_FALSE(r.at("gm_mean_cbf").defined);
  EXPECT_EQ(r.at("gm_mean_cbf").why_not, "no GM probability map");
  EXPECT_EQ(r.at("gm_voxels").value, 0);
}

TEST(Quality, RelativeCbfLeavesOutTheAbsoluteIndices) {
  const std::vector<float> cbf = {0.8f, 1.0f, 1.2f, 0.5f, 0.1f, 0.4f};
  const std::vector<float> gm = {1, 1, 1, 0, 0, 0}, wm = {0, 0, 0, 1, 0, 0},
                           csf = {0, 0, 0, 0, 1, 1};
  perfq::QualityOptions options;
  options.relative = true;
  options.qei_smoothing_fwhm_mm = 0.0;
  const auto r = perfq::quality_indices(view(cbf), {view(gm), view(wm), view(csf)}, options);
  EXPECT_FALSE(r.at("gm_above_100_fraction").defined);
  EXPECT_FALSE(r.at("qei").defined);
  EXPECT_TRUE(r.at("gm_scov").defined);  // a ratio: free of the scale
  EXPECT_NEAR(r.at("gm_wm_ratio").value, 2.0, 1e-6);
}

TEST(Quality, NoIndexIsEverNaN) {
  // Empty regions, a zero mean, non-finite CBF: every index a number or not defined.
  const std::vector<float> cbf = {NAN, INFINITY, 0, 0};
  const std::vector<float> gm = {1, 1, 1, 1}, wm = {0, 0, 0, 0}, csf = {0, 0, 0, 0};
  const auto r = perfq::quality_indices(view(cbf), {view(gm), view(wm), view(csf)});
  for (const auto& q : r.indices) {
    SCOPED_TRACE(q.name);
    EXPECT_TRUE(std::isfinite(q.value));
    if (!q.defined) {
      EXPECT_FALSE(q.why_not.empty());
    }
  }
  EXPECT_EQ(r.at("gm_voxels").value, 2);
  EXPECT_FALSE(r.at("gm_scov").defined);  // mean 0
  EXPECT_FALSE(r.at("wm_mean_cbf").defined);
}

TEST(Quality, BadInputIsAClearError) {
  const std::vector<float> cbf = {10, 20, 30};
  const std::vector<float> label_image = {0, 2, 3};  // a dseg, not probabilities
  try {
    perfq::quality_indices(view(cbf), {view(label_image), std::nullopt, std::nullopt});
    FAIL() << "a label image was taken for probabilities";
  } catch (const perfq::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("GM map must hold probabilities in [0, 1]"),
              std::string::npos)
        << e.what();
  }
  const std::vector<float> nan_map = {0, NAN, 1};
  EXPECT_THROW(perfq::quality_indices(view(cbf), {std::nullopt, view(nan_map), std::nullopt}),
               perfq::InvalidArgument);
  const std::vector<float> other_grid = {0, 1};
  EXPECT_THROW(perfq::quality_indices(view(cbf), {view(other_grid), std::nullopt, std::nullopt}),
               perfq::InvalidArgument);
  perfq::QualityOptions bad;
  bad.tissue_threshold = 1.0;
  EXPECT_THROW(perfq::quality_indices(view(cbf), {}, bad), perfq::InvalidArgument);
  EXPECT_THROW(perfq::QualityReport{}.at("nope"), perfq::InvalidArgument);
}
