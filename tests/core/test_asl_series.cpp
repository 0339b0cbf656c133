// Pairing, grouping and averaging of ASL series.
#include <perfq/asl_series.hpp>
#include <perfq/errors.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <random>
#include <string>

namespace {

using perfq::AslProtocol;
using perfq::Series;
using perfq::VolumeType;
using C = VolumeType;

/// A 2×2×1 series whose volume v holds `values[v]` in every voxel.
Series<float> constant_series(const std::vector<float>& values) {
  perfq::Geometry g;
  g.dims = {2, 2, 1};
  Series<float> s(g, values.size());
  for (std::size_t v = 0; v < values.size(); ++v) {
    for (std::size_t i = 0; i < 4; ++i) s[v * 4 + i] = values[v];
  }
  return s;
}

AslProtocol pcasl(std::vector<double> plds) {
  AslProtocol p;
  p.post_labeling_delay = std::move(plds);
  p.labeling_duration = {1.8};
  return p;
}

TEST(AslSeries, PairsControlAndLabelInEitherOrder) {
  // control−label: (100−90) and (101−89) → mean 11; label first in the second pair.
  const auto s = constant_series({100, 90, 89, 101});
  const auto out =
      perfq::prepare_asl(s, {C::Control, C::Label, C::Label, C::Control}, pcasl({1.8}));
  ASSERT_EQ(out.delta_m.volumes(), 1u);
  EXPECT_FLOAT_EQ(out.delta_m[0], 11.0f);
  EXPECT_EQ(out.repeats, std::vector<std::size_t>{2});
  EXPECT_DOUBLE_EQ(out.post_labeling_delay[0], 1.8);
  EXPECT_DOUBLE_EQ(out.labeling_duration[0], 1.8);
}

TEST(AslSeries, DeltaMVolumesM0ScansNoRfAndScannerCbf) {
  const auto s = constant_series({1000, 12, 8, 0, 55, 1100});
  const auto out = perfq::prepare_asl(
      s, {C::M0Scan, C::DeltaM, C::DeltaM, C::NoRf, C::Cbf, C::M0Scan}, pcasl({1.8}));
  EXPECT_FLOAT_EQ(out.delta_m[3], 10.0f);
  ASSERT_TRUE(out.m0.has_value());
  EXPECT_FLOAT_EQ((*out.m0)[0], 1050.0f);
  ASSERT_TRUE(out.scanner_cbf.has_value());
  EXPECT_FLOAT_EQ((*out.scanner_cbf)[2], 55.0f);
  ASSERT_EQ(out.notes.size(), 2u);
  EXPECT_NE(out.notes[0].find("cbf"), std::string::npos);
  EXPECT_NE(out.notes[1].find("noRF"), std::string::npos);
}

TEST(AslSeries, GroupsRepeatsByDelayInIncreasingOrder) {
  const auto s = constant_series({100, 80, 100, 90, 100, 70, 100, 92});
  AslProtocol p = pcasl({2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 1.0, 1.0});
  const auto out = perfq::prepare_asl(
      s, {C::Control, C::Label, C::Control, C::Label, C::Control, C::Label, C::Control, C::Label},
      p);
  ASSERT_EQ(out.delta_m.volumes(), 2u);
  EXPECT_EQ(out.post_labeling_delay, (std::vector<double>{1.0, 2.0}));
  EXPECT_FLOAT_EQ(out.delta_m[0], 9.0f);       // delay 1.0: (10 + 8) / 2
  EXPECT_FLOAT_EQ(out.delta_m[4 + 0], 25.0f);  // delay 2.0: (20 + 30) / 2
}

TEST(AslSeries, RobustAveragingDropsAnOutlierRepeat) {
  // Five pairs with ΔM 10, 11, 9, 10 and one corrupted by motion (ΔM 60).
  const auto s = constant_series({100, 90, 100, 89, 100, 91, 100, 90, 100, 40});
  std::vector<VolumeType> ctx;
  for (int k = 0; k < 5; ++k) {
    ctx.push_back(C::Control);
    ctx.push_back(C::Label);
  }
  perfq::AveragingOptions plain;
  EXPECT_FLOAT_EQ(perfq::prepare_asl(s, ctx, pcasl({1.8}), plain).delta_m[0], 20.0f);
  perfq::AveragingOptions robust;
  robust.robust = true;
  const auto out = perfq::prepare_asl(s, ctx, pcasl({1.8}), robust);
  EXPECT_FLOAT_EQ(out.delta_m[0], 10.0f);
  EXPECT_EQ(out.rejected, std::vector<std::size_t>{1});
  EXPECT_EQ(out.repeats, std::vector<std::size_t>{4});
}

TEST(AslSeries, RobustAveragingKeepsConsistentRepeats) {
  const auto s = constant_series({100, 90, 100, 89, 100, 91});
  perfq::AveragingOptions robust;
  robust.robust = true;
  const auto out = perfq::prepare_asl(
      s, {C::Control, C::Label, C::Control, C::Label, C::Control, C::Label}, pcasl({1.8}), robust);
  EXPECT_EQ(out.rejected, std::vector<std::size_t>{0});
  EXPECT_FLOAT_EQ(out.delta_m[0], 10.0f);
}

void expect_input_error(const std::function<void()>& f, const std::string& field) {
  try {
    f();
    FAIL() << "expected InputError on " << field;
  } catch (const perfq::InputError& e) {
    EXPECT_EQ(e.field(), field) << e.what();
    EXPECT_EQ(e.file(), "sub-01_asl.nii.gz") << e.what();
  }
}

TEST(AslSeries, AnIncompleteLastPairIsLeftOutWithANote) {
  const auto s = constant_series({100, 90, 100, 90, 100});
  const auto out =
      perfq::prepare_asl(s, {C::Control, C::Label, C::Control, C::Label, C::Control}, pcasl({1.8}));
  ASSERT_EQ(out.delta_m.volumes(), 1u);
  EXPECT_EQ(out.repeats, std::vector<std::size_t>{2});  // two pairs; volume 4 left out
  EXPECT_FLOAT_EQ(out.delta_m[0], 10.0f);
  ASSERT_EQ(out.notes.size(), 1u);
  EXPECT_NE(out.notes[0].find("volume 4 (control) has no partner"), std::string::npos)
      << out.notes[0];
  // A label likewise.
  const auto labels = perfq::prepare_asl(constant_series({90, 100, 90}),
                                         {C::Label, C::Control, C::Label}, pcasl({1.8}));
  EXPECT_EQ(labels.repeats, std::vector<std::size_t>{1});
  EXPECT_NE(labels.notes.at(0).find("volume 2 (label)"), std::string::npos);
}

TEST(AslSeries, RefusesInconsistentSeries) {
  const auto s = constant_series({100, 90, 100});
  const std::string src = "sub-01_asl.nii.gz";
  expect_input_error(
      [&] {
        perfq::prepare_asl(s, {C::Control, C::Label}, pcasl({1.8}), {}, src);
      },
      "volume_type");
  // An extra control is left out only at the end of the series (an incomplete last pair).
  expect_input_error(
      [&] {
        perfq::prepare_asl(s, {C::Control, C::Control, C::Label}, pcasl({1.8}), {}, src);
      },
      "volume_type");
  expect_input_error(
      [&] {
        perfq::prepare_asl(s, {C::M0Scan, C::NoRf, C::M0Scan}, pcasl({1.8}), {}, src);
      },
      "volume_type");
  expect_input_error(
      [&] {
        perfq::prepare_asl(s, {C::Control, C::Label, C::M0Scan}, pcasl({1.8, 1.5, 0.0}), {}, src);
      },
      "PostLabelingDelay");
  AslProtocol no_tau = pcasl({1.8});
  no_tau.labeling_duration = {0.0};
  expect_input_error(
      [&] {
        perfq::prepare_asl(s, {C::Control, C::Label, C::M0Scan}, no_tau, {}, src);
      },
      "LabelingDuration");
}

TEST(AslSeries, ParsesVolumeTypes) {
  EXPECT_EQ(perfq::parse_volume_type("noRF"), C::NoRf);
  EXPECT_EQ(perfq::parse_volume_type("m0scan"), C::M0Scan);
  EXPECT_THROW(perfq::parse_volume_type("Control"), perfq::InvalidArgument);
  EXPECT_STREQ(perfq::to_string(C::DeltaM), "deltam");
}

/// ΔM with `volumes` volumes on a 20×20×10 grid: inside the central 10×10×10 block ("brain",
/// M0 1000) each volume holds `signal` + noise of SD 1, outside (M0 0) noise alone.
struct SignCase {
  Series<float> delta_m;
  perfq::Volume<float> m0;
};
SignCase sign_case(float signal, std::size_t volumes, unsigned seed) {
  perfq::Geometry g;
  g.dims = {20, 20, 10};
  SignCase c{Series<float>(g, volumes), perfq::Volume<float>(g)};
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  for (std::size_t z = 0; z < 10; ++z) {
    for (std::size_t y = 0; y < 20; ++y) {
      for (std::size_t x = 0; x < 20; ++x) {
        const std::size_t i = (z * 20 + y) * 20 + x;
        const bool brain = x >= 5 && x < 15 && y >= 5 && y < 15;
        c.m0[i] = brain ? 1000.0f : 0.0f;
        for (std::size_t v = 0; v < volumes; ++v) {
          c.delta_m[v * g.voxel_count() + i] = (brain ? signal : 0.0f) + noise(rng);
        }
      }
    }
  }
  return c;
}

TEST(AslSeries, SignCheckFindsSwappedControlAndLabel) {
  // Per-voxel SNR 1 (signal 1, noise SD 1 per volume), one volume: in the right order
  // P(negative) = Φ(−1) = 0.159 in the brain's 1000 voxels, swapped 0.841.
  for (unsigned seed : {1u, 2u, 3u}) {
    const SignCase right = sign_case(1.0f, 1, seed);
    const perfq::DeltaMSign ok = perfq::check_delta_m_sign(right.delta_m.view(), right.m0.view());
    EXPECT_EQ(ok.voxels, 1000u);  // the brain only: M0 ≥ half its 98th percentile
    EXPECT_NEAR(ok.negative_fraction, 0.159, 0.04);
    EXPECT_FALSE(ok.inverted);
    const SignCase swapped = sign_case(-1.0f, 1, seed);
    const perfq::DeltaMSign bad =
        perfq::check_delta_m_sign(swapped.delta_m.view(), swapped.m0.view());
    EXPECT_NEAR(bad.negative_fraction, 0.841, 0.04);
    EXPECT_TRUE(bad.inverted);
    // Several volumes: the voxel's mean over them counts (SNR 1 per volume, 3 volumes:
    // P = Φ(−√3) = 0.042).
    const SignCase multi = sign_case(-1.0f, 3, seed);
    const perfq::DeltaMSign m = perfq::check_delta_m_sign(multi.delta_m.view(), multi.m0.view());
    EXPECT_NEAR(m.negative_fraction, 1.0 - 0.042, 0.03);
    EXPECT_TRUE(m.inverted);
    // Noise alone is about half negative, never "inverted".
    const SignCase none = sign_case(0.0f, 1, seed);
    const perfq::DeltaMSign n = perfq::check_delta_m_sign(none.delta_m.view(), none.m0.view());
    EXPECT_NEAR(n.negative_fraction, 0.5, 0.06);
    EXPECT_FALSE(n.inverted);
    // Without M0 every voxel counts (4000, three quarters noise alone): 0.75 × 0.5 +
    // 0.25 × 0.841 = 0.585, under the 60 % rule.
    const perfq::DeltaMSign all = perfq::check_delta_m_sign(swapped.delta_m.view());
    EXPECT_EQ(all.voxels, 4000u);
    EXPECT_NEAR(all.negative_fraction, 0.585, 0.03);
    // A mask chooses the region: the background alone is noise.
    perfq::Volume<std::uint8_t> background(swapped.m0.geometry());
    for (std::size_t i = 0; i < background.size(); ++i) background[i] = swapped.m0[i] == 0.0f;
    const perfq::DeltaMSign masked =
        perfq::check_delta_m_sign(swapped.delta_m.view(), swapped.m0.view(), background.view());
    EXPECT_EQ(masked.voxels, 3000u);
    EXPECT_FALSE(masked.inverted);
  }
  // Fewer than 100 voxels never decide; exact zeros carry no sign and are skipped.
  perfq::Geometry g;
  g.dims = {9, 11, 1};
  Series<float> few(g, 1, -1.0f);
  EXPECT_FALSE(perfq::check_delta_m_sign(few.view()).inverted);
  EXPECT_EQ(perfq::check_delta_m_sign(few.view()).negative_fraction, 1.0);
  Series<float> zeros(g, 1, 0.0f);
  EXPECT_EQ(perfq::check_delta_m_sign(zeros.view()).voxels, 0u);
  // M0 on another grid is a misuse.
  perfq::Geometry other;
  other.dims = {9, 11, 2};
  perfq::Volume<float> m0(other, 1, 1000.0f);
  EXPECT_THROW(perfq::check_delta_m_sign(few.view(), m0.view()), perfq::InvalidArgument);
}

}  // namespace
