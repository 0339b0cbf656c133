// The multi-delay fit with a tissue T1 per voxel (KineticOptions::t1_tissue_map), against
// data made by a reference written here with each voxel's own tissue T1.
#include <perfq/errors.hpp>
#include <perfq/kinetic.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace {

constexpr double kLambda = 0.9, kT1b = 1.65, kAlpha = 0.85, kTau = 1.8;

/// PCASL ΔM/M0 of the Buxton model with tissue T1 `t1t` (apparent T1 from it and the flow),
/// by Simpson integration of delivery × residue × decay; t from the start of labeling.
double pcasl(double t, double att, double cbf, double t1t) {
  const double f = cbf / 6000.0;
  const double t1app = 1.0 / (1.0 / t1t + f / kLambda);
  const double lo = att, hi = std::min(t, att + kTau);
  if (hi <= lo) return 0.0;
  const int steps = 4000;
  const double h = (hi - lo) / steps;
  double sum = 0.0;
  for (int k = 0; k <= steps; ++k) {
    const double u = lo + k * h;
    const double w = (k == 0 || k == steps) ? 1.0 : (k % 2 == 1 ? 4.0 : 2.0);
    sum += w * std::exp(-att / kT1b) * std::exp(-(t - u) / t1app);
  }
  return 2.0 * kAlpha * f / kLambda * sum * h / 3.0;
}

struct Data {
  perfq::Series<float> delta_m;
  perfq::Volume<float> m0, t1;
  perfq::AslProtocol protocol;
  perfq::Physiology physiology;
};

// x: CBF 20, 40, 60; y: tissue T1 0.83 (white matter at 3 T), 1.05 (a partial volume) and
// 1.3 s (grey matter); ATT 1.0 s everywhere.
const std::vector<double> kCbf = {20, 40, 60}, kT1t = {0.83, 1.05, 1.3};

Data make() {
  Data d;
  const std::vector<double> delays = {0.25, 0.5, 0.75, 1.0, 1.25, 1.5};
  perfq::Geometry g;
  g.dims = {kCbf.size(), kT1t.size(), 1};
  d.protocol.labeling_type = perfq::LabelingType::Pcasl;
  d.protocol.post_labeling_delay = delays;
  d.protocol.labeling_duration = {kTau};
  d.physiology.t1_blood = kT1b;
  d.physiology.t1_tissue = 1.3;
  d.physiology.blood_brain_partition = kLambda;
  d.physiology.labeling_efficiency = kAlpha;
  d.delta_m = perfq::Series<float>(g, delays.size());
  d.m0 = perfq::Volume<float>(g, 1, 1000.0f);
  d.t1 = perfq::Volume<float>(g);
  for (std::size_t y = 0; y < kT1t.size(); ++y) {
    for (std::size_t x = 0; x < kCbf.size(); ++x) {
      d.t1.at(x, y, 0) = static_cast<float>(kT1t[y]);
      for (std::size_t k = 0; k < delays.size(); ++k) {
        d.delta_m.at(x, y, 0, k) =
            static_cast<float>(1000.0 * pcasl(kTau + delays[k], 1.0, kCbf[x], kT1t[y]));
      }
    }
  }
  return d;
}

perfq::Execution cpu() {
  perfq::Execution e;
  e.backend = perfq::Backend::Cpu;
  return e;
}

}  // namespace

TEST(KineticT1Map, EachVoxelFittedWithItsOwnTissueT1) {
  const Data d = make();
  perfq::KineticOptions with_map;
  with_map.t1_tissue_map = d.t1.view();
  const perfq::KineticFit fit =
      perfq::fit_kinetic(d.delta_m, perfq::M0Source::from_image(d.m0), d.protocol, d.physiology,
                         with_map, std::nullopt, cpu());
  const perfq::KineticFit one =
      perfq::fit_kinetic(d.delta_m, perfq::M0Source::from_image(d.m0), d.protocol, d.physiology, {},
                         std::nullopt, cpu());
  for (std::size_t y = 0; y < kT1t.size(); ++y) {
    for (std::size_t x = 0; x < kCbf.size(); ++x) {
      SCOPED_TRACE(testing::Message() << "CBF " << kCbf[x] << ", T1t " << kT1t[y]);
      EXPECT_EQ(fit.status.at(x, y, 0), 0);
      EXPECT_NEAR(fit.cbf.at(x, y, 0), kCbf[x], 0.005 * kCbf[x]);
      EXPECT_NEAR(fit.att.at(x, y, 0), 1.0, 0.005);
      if (kT1t[y] == 1.3) {
        // The map's value is the physiology's: the same fit, bit for bit.
        EXPECT_EQ(fit.cbf.at(x, y, 0), one.cbf.at(x, y, 0));
        EXPECT_EQ(fit.att.at(x, y, 0), one.att.at(x, y, 0));
      }
    }
  }
  // White matter fitted with grey matter's T1: CBF clearly off (what the map corrects).
  for (std::size_t x = 0; x < kCbf.size(); ++x) {
    EXPECT_GT(std::abs(one.cbf.at(x, 0, 0) - kCbf[x]), 0.05 * kCbf[x]) << kCbf[x];
  }
}

TEST(KineticT1Map, BadMapIsAClearError) {
  Data d = make();
  perfq::KineticOptions o;
  d.t1.at(1, 1, 0) = 0.0f;
  o.t1_tissue_map = d.t1.view();
  try {
    perfq::fit_kinetic(d.delta_m, perfq::M0Source::from_image(d.m0), d.protocol, d.physiology, o,
                       std::nullopt, cpu());
    FAIL() << "a tissue T1 of 0 was taken";
  } catch (const perfq::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("tissue T1 map must hold values in (0, 10] s"),
              std::string::npos)
        << e.what();
  }
  // Outside the mask it does not matter.
  perfq::Mask mask(d.t1.geometry());
  for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = i != d.t1.geometry().index(1, 1, 0);
  EXPECT_NO_THROW(perfq::fit_kinetic(d.delta_m, perfq::M0Source::from_image(d.m0), d.protocol,
                                     d.physiology, o, mask.view(), cpu()));
  perfq::Volume<float> small(perfq::Geometry{});
  o.t1_tissue_map = small.view();
  EXPECT_THROW(perfq::fit_kinetic(d.delta_m, perfq::M0Source::from_image(d.m0), d.protocol,
                                  d.physiology, o, std::nullopt, cpu()),
               perfq::InvalidArgument);
}
