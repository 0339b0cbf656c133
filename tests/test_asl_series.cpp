// Pairing, grouping and averaging of ASL series.
#include <perfq/asl_series.hpp>
#include <perfq/errors.hpp>

#include <gtest/gtest.h>

#include <functional>
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
  const auto out = perfq::prepare_asl(s, {C::Control, C::Label, C::Label, C::Control},
                                      pcasl({1.8}));
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
  const auto out = perfq::prepare_asl(s, {C::Control, C::Label, C::Control, C::Label, C::Control,
                                          C::Label, C::Control, C::Label},
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

TEST(AslSeries, RefusesInconsistentSeries) {
  const auto s = constant_series({100, 90, 100});
  const std::string src = "sub-01_asl.nii.gz";
  expect_input_error([&] { perfq::prepare_asl(s, {C::Control, C::Label}, pcasl({1.8}), {}, src); },
                     "volume_type");
  expect_input_error(
      [&] { perfq::prepare_asl(s, {C::Control, C::Label, C::Control}, pcasl({1.8}), {}, src); },
      "volume_type");
  expect_input_error(
      [&] { perfq::prepare_asl(s, {C::M0Scan, C::NoRf, C::M0Scan}, pcasl({1.8}), {}, src); },
      "volume_type");
  expect_input_error(
      [&] {
        perfq::prepare_asl(s, {C::Control, C::Label, C::M0Scan}, pcasl({1.8, 1.5, 0.0}), {}, src);
      },
      "PostLabelingDelay");
  AslProtocol no_tau = pcasl({1.8});
  no_tau.labeling_duration = {0.0};
  expect_input_error(
      [&] { perfq::prepare_asl(s, {C::Control, C::Label, C::M0Scan}, no_tau, {}, src); },
      "LabelingDuration");
}

TEST(AslSeries, ParsesVolumeTypes) {
  EXPECT_EQ(perfq::parse_volume_type("noRF"), C::NoRf);
  EXPECT_EQ(perfq::parse_volume_type("m0scan"), C::M0Scan);
  EXPECT_THROW(perfq::parse_volume_type("Control"), perfq::InvalidArgument);
  EXPECT_STREQ(perfq::to_string(C::DeltaM), "deltam");
}

}  // namespace
