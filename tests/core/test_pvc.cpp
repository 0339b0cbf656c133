// Partial-volume correction: tissue CBF recovered from mixed voxels.
#include <perfq/errors.hpp>
#include <perfq/pvc.hpp>

#include <gtest/gtest.h>

#include <cmath>

namespace {

using perfq::Geometry;
using perfq::Volume;

Geometry grid() {
  Geometry g;
  g.dims = {24, 20, 3};
  g.spacing = {3, 3, 4};
  return g;
}

/// Fractions that vary smoothly, with some CSF (p_gm + p_wm ≤ 1).
void fractions(Volume<float>& gm, Volume<float>& wm) {
  const Geometry& g = gm.geometry();
  for (std::size_t z = 0; z < g.dims[2]; ++z) {
    for (std::size_t y = 0; y < g.dims[1]; ++y) {
      for (std::size_t x = 0; x < g.dims[0]; ++x) {
        const double pg = 0.5 + 0.4 * std::sin(0.7 * x + 0.2 * z) * std::cos(0.5 * y);
        const double csf = 0.1 * (1 + std::sin(0.3 * x + 0.9 * y));
        gm.at(x, y, z) = static_cast<float>(pg * (1 - csf));
        wm.at(x, y, z) = static_cast<float>((1 - pg) * (1 - csf));
      }
    }
  }
}

TEST(Pvc, RecoversConstantTissueCbfExactly) {
  Volume<float> gm(grid()), wm(grid()), cbf(grid());
  fractions(gm, wm);
  for (std::size_t i = 0; i < cbf.size(); ++i) cbf[i] = 60.0f * gm[i] + 20.0f * wm[i];
  const auto pvc = perfq::partial_volume_correct(cbf, gm, wm);
  std::size_t both = 0;
  for (std::size_t i = 0; i < cbf.size(); ++i) {
    if (pvc.valid[i] & 1) EXPECT_NEAR(pvc.cbf_gm[i], 60.0f, 1e-3) << i;
    if (pvc.valid[i] & 2) EXPECT_NEAR(pvc.cbf_wm[i], 20.0f, 1e-3) << i;
    both += pvc.valid[i] == 3;
  }
  EXPECT_GT(both, cbf.size() / 2);
}

TEST(Pvc, FollowsSlowlyVaryingTissueCbf) {
  // GM CBF ramps 50 → 70 across x; a 5×5 neighbourhood sees it as nearly constant.
  Volume<float> gm(grid()), wm(grid()), cbf(grid()), truth(grid());
  fractions(gm, wm);
  for (std::size_t z = 0; z < 3; ++z) {
    for (std::size_t y = 0; y < 20; ++y) {
      for (std::size_t x = 0; x < 24; ++x) {
        truth.at(x, y, z) = 50.0f + 20.0f * x / 23.0f;
        cbf.at(x, y, z) = truth.at(x, y, z) * gm.at(x, y, z) + 22.0f * wm.at(x, y, z);
      }
    }
  }
  const auto pvc = perfq::partial_volume_correct(cbf, gm, wm);
  double worst = 0;
  for (std::size_t i = 0; i < cbf.size(); ++i) {
    if ((pvc.valid[i] & 1) && gm[i] > 0.3f) {
      worst = std::max(worst, std::abs(double(pvc.cbf_gm[i]) - truth[i]) / truth[i]);
    }
  }
  EXPECT_LT(worst, 0.05);
}

TEST(Pvc, PureTissueAndUnusableVoxels) {
  Volume<float> gm(grid(), 1, 1.0f), wm(grid(), 1, 0.0f), cbf(grid(), 1, 55.0f);
  perfq::Mask usable(grid(), 1, 1);
  cbf[100] = std::nanf("");  // never used
  cbf[101] = 1000.0f;        // excluded by `usable`
  usable[101] = 0;
  const auto pvc = perfq::partial_volume_correct(cbf, gm, wm, usable.view());
  for (std::size_t i = 0; i < cbf.size(); ++i) {
    ASSERT_EQ(pvc.valid[i], 1) << i;  // grey matter only
    ASSERT_NEAR(pvc.cbf_gm[i], 55.0f, 1e-4) << i;
    ASSERT_EQ(pvc.cbf_wm[i], 0.0f);
  }
}

TEST(Pvc, RefusesBadInputs) {
  Volume<float> gm(grid(), 1, 0.5f), wm(grid(), 1, 0.5f), cbf(grid(), 1, 40.0f);
  Geometry other = grid();
  other.dims[0] = 5;
  Volume<float> small(other, 1, 0.5f);
  EXPECT_THROW(perfq::partial_volume_correct(cbf, small, wm), perfq::InvalidArgument);
  perfq::PvcOptions even;
  even.kernel_xy = 4;
  EXPECT_THROW(perfq::partial_volume_correct(cbf, gm, wm, {}, even), perfq::InvalidArgument);
  gm[3] = 1.5f;
  EXPECT_THROW(perfq::partial_volume_correct(cbf, gm, wm), perfq::InvalidArgument);
  gm[3] = std::nanf("");
  EXPECT_THROW(perfq::partial_volume_correct(cbf, gm, wm), perfq::InvalidArgument);
}

}  // namespace
