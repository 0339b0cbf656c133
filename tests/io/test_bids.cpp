// ASL-BIDS: sidecars shaped like those of real datasets (Siemens, Philips, GE examples of the
// BIDS ASL specification), aslcontext parsing, refusals that name file and field, and the
// phantom written as a dataset and read back.
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/phantom.hpp>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#ifdef _WIN32
#include <process.h>
#else
#include <unistd.h>
#endif

namespace fs = std::filesystem;
using perfq::AslProtocol;
using perfq::Geometry;
using perfq::Image;
using perfq::InputError;
using perfq::LabelingType;
using perfq::M0Type;
using perfq::Readout;
using perfq::VolumeType;
using perfq::io::parse_asl_sidecar;
using perfq::io::parse_aslcontext;
using perfq::io::read_asl_bids;

namespace {

// ---- sidecars in the shape of real ASL-BIDS examples -------------------------------------

/// Siemens PCASL, 3D GRASE, single delay, background suppression with 4 pulses.
const char* kPcasl3d = R"({
  "Manufacturer": "Siemens",
  "ManufacturersModelName": "Skyra",
  "MagneticFieldStrength": 3,
  "MRAcquisitionType": "3D",
  "PulseSequenceType": "3D_GRASE",
  "RepetitionTimePreparation": 4.6,
  "EchoTime": 0.0158,
  "FlipAngle": 180,
  "ArterialSpinLabelingType": "PCASL",
  "PCASLType": "balanced",
  "LabelingDuration": 1.8,
  "PostLabelingDelay": 1.8,
  "BackgroundSuppression": true,
  "BackgroundSuppressionNumberPulses": 4,
  "BackgroundSuppressionPulseTime": [1.14, 2.42, 3.3, 3.5],
  "M0Type": "Separate",
  "TotalAcquiredPairs": 10,
  "VascularCrushing": false,
  "AcquisitionVoxelSize": [3.5, 3.5, 4.0],
  "LabelingLocationDescription": "Fixed, 9 cm below ACPC",
  "LabelingDistance": 90
})";

/// Siemens PASL (PICORE Q2TIPS), 2D EPI, M0 included as the first volume.
const char* kPaslQ2tips = R"({
  "Manufacturer": "Siemens",
  "MagneticFieldStrength": 3,
  "MRAcquisitionType": "2D",
  "PulseSequenceType": "EPI",
  "ArterialSpinLabelingType": "PASL",
  "PASLType": "PICORE",
  "PostLabelingDelay": 1.8,
  "BolusCutOffFlag": true,
  "BolusCutOffDelayTime": [0.7, 1.6],
  "BolusCutOffTechnique": "Q2TIPS",
  "LabelingSlabThickness": 100,
  "BackgroundSuppression": false,
  "M0Type": "Included",
  "RepetitionTimePreparation": [5.0, 2.5, 2.5, 2.5, 2.5],
  "SliceTiming": [0, 0.0475, 0.095, 0.1425, 0.19],
  "VascularCrushing": false
})";

/// Philips PCASL, 2D EPI multi-slice with slice timing, 2 background-suppression pulses.
const char* kPcasl2d = R"({
  "Manufacturer": "Philips",
  "MagneticFieldStrength": 3,
  "MRAcquisitionType": "2D",
  "ArterialSpinLabelingType": "PCASL",
  "PCASLType": "balanced",
  "LabelingDuration": 1.65,
  "PostLabelingDelay": 1.525,
  "BackgroundSuppression": true,
  "BackgroundSuppressionNumberPulses": 2,
  "M0Type": "Separate",
  "RepetitionTimePreparation": 4.4,
  "SliceTiming": [0, 0.0367, 0.0733, 0.11, 0.1467, 0.1833],
  "LabelingEfficiency": 0.83
})";

/// GE 3D spiral PCASL with a single M0 value.
const char* kEstimate = R"({
  "Manufacturer": "GE",
  "MagneticFieldStrength": 1.5,
  "MRAcquisitionType": "3D",
  "ArterialSpinLabelingType": "PCASL",
  "LabelingDuration": 1.45,
  "PostLabelingDelay": 2.025,
  "BackgroundSuppression": true,
  "BackgroundSuppressionNumberPulses": 5,
  "M0Type": "Estimate",
  "M0Estimate": 3500.5,
  "RepetitionTimePreparation": 4.8
})";

/// The message of the InputError `f` throws (empty, with a test failure, when it does not).
std::string input_error(const std::function<void()>& f, const std::string& file,
                        const std::string& field) {
  try {
    f();
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(file), std::string::npos) << "file not named: " << what;
    EXPECT_NE(what.find(field), std::string::npos) << "field not named: " << what;
    if (!field.empty()) {
      EXPECT_EQ(e.field(), field) << what;
    }
    return what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an InputError: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no error thrown";
  return {};
}

/// Replaces the first occurrence of `from` in `text` (which must contain it).
std::string edit(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// ---- sidecar parsing ------------------------------------------------------------------------

TEST(BidsSidecar, Pcasl3dSingleDelayWithBackgroundSuppression) {
  const AslProtocol p = parse_asl_sidecar(kPcasl3d, "sub-01_asl.json");
  EXPECT_EQ(p.labeling_type, LabelingType::Pcasl);
  EXPECT_EQ(p.post_labeling_delay, std::vector<double>{1.8});
  EXPECT_EQ(p.labeling_duration, std::vector<double>{1.8});
  EXPECT_FALSE(p.bolus_cutoff_delay);
  EXPECT_EQ(p.readout, Readout::ThreeD);
  EXPECT_TRUE(p.slice_timing.empty());
  EXPECT_TRUE(p.background_suppression.enabled);
  EXPECT_EQ(p.background_suppression.pulses, 4);
  EXPECT_FALSE(p.background_suppression.efficiency);
  EXPECT_FALSE(p.labeling_efficiency);
  EXPECT_EQ(p.m0_type, M0Type::Separate);
  // The ASL TR is not the TR of a separate M0: read_asl_bids takes the m0scan's.
  EXPECT_FALSE(p.m0_repetition_time);
  EXPECT_DOUBLE_EQ(p.magnetic_field_strength, 3.0);
}

TEST(BidsSidecar, PaslQ2tipsTakesFirstBolusCutOffValue) {
  const AslProtocol p = parse_asl_sidecar(kPaslQ2tips, "sub-02_asl.json");
  EXPECT_EQ(p.labeling_type, LabelingType::Pasl);
  EXPECT_EQ(p.post_labeling_delay, std::vector<double>{1.8});
  ASSERT_TRUE(p.bolus_cutoff_delay);
  EXPECT_DOUBLE_EQ(*p.bolus_cutoff_delay, 0.7);
  EXPECT_TRUE(p.labeling_duration.empty());  // PASL has none
  EXPECT_EQ(p.readout, Readout::TwoD);
  EXPECT_EQ(p.slice_timing.size(), 5u);
  EXPECT_FALSE(p.background_suppression.enabled);
  EXPECT_EQ(p.m0_type, M0Type::Included);
  // A per-volume list with different values: which volume is M0 is in the aslcontext.
  EXPECT_FALSE(p.m0_repetition_time);
}

TEST(BidsSidecar, Pcasl2dWithSliceTimingAndEfficiency) {
  const AslProtocol p = parse_asl_sidecar(kPcasl2d, "sub-03_asl.json");
  EXPECT_EQ(p.readout, Readout::TwoD);
  ASSERT_EQ(p.slice_timing.size(), 6u);
  EXPECT_DOUBLE_EQ(p.slice_timing[1], 0.0367);
  EXPECT_DOUBLE_EQ(p.pld_of(0), 1.525);
  EXPECT_DOUBLE_EQ(p.duration_of(0), 1.65);
  ASSERT_TRUE(p.labeling_efficiency);
  EXPECT_DOUBLE_EQ(*p.labeling_efficiency, 0.83);
  EXPECT_EQ(p.background_suppression.pulses, 2);
}

TEST(BidsSidecar, SliceEncodingDirectionOrdersTheSliceTimes) {
  // BIDS: with "k-" SliceTiming lists the slice of the largest index first; perfq's offsets
  // run from slice 0. Slices along i or j are refused.
  auto with_direction = [](const char* direction) {
    nlohmann::json j = nlohmann::json::parse(kPcasl2d);
    j["SliceEncodingDirection"] = direction;
    return j.dump();
  };
  const AslProtocol forward = parse_asl_sidecar(with_direction("k"), "sub-03_asl.json");
  EXPECT_EQ(forward.slice_timing,
            (std::vector<double>{0, 0.0367, 0.0733, 0.11, 0.1467, 0.1833}));
  const AslProtocol reverse = parse_asl_sidecar(with_direction("k-"), "sub-03_asl.json");
  EXPECT_EQ(reverse.slice_timing,
            (std::vector<double>{0.1833, 0.1467, 0.11, 0.0733, 0.0367, 0}));
  for (const char* other : {"i", "j-", "K"}) {
    input_error([&] { parse_asl_sidecar(with_direction(other), "sub-03_asl.json"); },
                "sub-03_asl.json", "SliceEncodingDirection");
  }
  // A 3D readout has no slice timing to order: the field is not read.
  nlohmann::json three_d = nlohmann::json::parse(kPcasl2d);
  three_d["MRAcquisitionType"] = "3D";
  three_d["SliceEncodingDirection"] = "j";
  EXPECT_NO_THROW(parse_asl_sidecar(three_d.dump(), "sub-03_asl.json"));
}

TEST(BidsSidecar, LookLockerReadoutsAreRefused) {
  // Not modelled: refused by name rather than quantified with a bias.
  nlohmann::json j = nlohmann::json::parse(kPcasl2d);
  j["LookLocker"] = true;
  j["FlipAngle"] = 35;
  const std::string what =
      input_error([&] { parse_asl_sidecar(j.dump(), "sub-03_asl.json"); }, "sub-03_asl.json",
                  "LookLocker");
  EXPECT_NE(what.find("not supported"), std::string::npos) << what;
  j["LookLocker"] = false;
  EXPECT_NO_THROW(parse_asl_sidecar(j.dump(), "sub-03_asl.json"));
}

TEST(BidsSidecar, M0EstimateAtOnePointFiveTesla) {
  const AslProtocol p = parse_asl_sidecar(kEstimate, "sub-04_asl.json");
  EXPECT_EQ(p.m0_type, M0Type::Estimate);
  ASSERT_TRUE(p.m0_estimate);
  EXPECT_DOUBLE_EQ(*p.m0_estimate, 3500.5);
  EXPECT_FALSE(p.m0_repetition_time);  // a value, not an image: no TR correction
  EXPECT_DOUBLE_EQ(p.magnetic_field_strength, 1.5);
}

TEST(BidsSidecar, MultiDelayListsAndIncludedM0WithOneTr) {
  const AslProtocol p = parse_asl_sidecar(R"({
    "ArterialSpinLabelingType": "PCASL", "MRAcquisitionType": "3D", "M0Type": "Included",
    "PostLabelingDelay": [0, 0.5, 0.5, 1.0, 1.0, 1.5, 1.5],
    "LabelingDuration": [0, 1.8, 1.8, 1.8, 1.8, 1.8, 1.8],
    "RepetitionTimePreparation": 4.1, "BackgroundSuppression": false})",
                                          "multi_asl.json");
  EXPECT_EQ(p.post_labeling_delay.size(), 7u);
  EXPECT_DOUBLE_EQ(p.pld_of(5), 1.5);
  EXPECT_DOUBLE_EQ(p.duration_of(0), 0.0);
  ASSERT_TRUE(p.m0_repetition_time);
  EXPECT_DOUBLE_EQ(*p.m0_repetition_time, 4.1);
}

TEST(BidsSidecar, RefusalsNameFileAndField) {
  const std::string src = "sub-01_asl.json";
  auto parse = [&](const std::string& text) {
    return [text, src] { parse_asl_sidecar(text, src); };
  };
  std::string what = input_error(parse(edit(kPcasl3d, R"("LabelingDuration": 1.8,)", "")), src,
                                 "LabelingDuration");
  EXPECT_NE(what.find("required for PCASL"), std::string::npos) << what;
  input_error(parse(edit(kEstimate, R"("M0Estimate": 3500.5,)", "")), src, "M0Estimate");
  input_error(parse(edit(kEstimate, "3500.5", "0")), src, "M0Estimate");
  input_error(parse(edit(kPcasl3d, R"("M0Type": "Separate",)", "")), src, "M0Type");
  input_error(parse(edit(kPcasl3d, R"("M0Type": "Separate")", R"("M0Type": "Guess")")), src,
              "M0Type");
  input_error(parse(edit(kPcasl3d, R"("PCASL",)", R"("FAIR",)")), src, "ArterialSpinLabelingType");
  input_error(parse(edit(kPcasl3d, R"("ArterialSpinLabelingType": "PCASL",)", "")), src,
              "ArterialSpinLabelingType");
  input_error(parse(edit(kPcasl3d, R"("PostLabelingDelay": 1.8,)", "")), src, "PostLabelingDelay");
  input_error(parse(edit(kPcasl3d, R"("PostLabelingDelay": 1.8)", R"("PostLabelingDelay": -1)")),
              src, "PostLabelingDelay");
  input_error(parse(edit(kPaslQ2tips, R"("BolusCutOffDelayTime": [0.7, 1.6],)", "")), src,
              "BolusCutOffDelayTime");
  input_error(parse(edit(kPcasl3d, R"("MRAcquisitionType": "3D")", R"("MRAcquisitionType": "4D")")),
              src, "MRAcquisitionType");
  input_error(parse(edit(kPcasl2d, "0.83", "1.3")), src, "LabelingEfficiency");
  input_error(parse(edit(kPcasl3d, R"("BackgroundSuppressionNumberPulses": 4)",
                         R"("BackgroundSuppressionNumberPulses": 2.5)")),
              src, "BackgroundSuppressionNumberPulses");
}

TEST(BidsSidecar, WrongJsonTypesAreClearErrors) {
  const std::string src = "types_asl.json";
  auto parse = [&](const std::string& text) {
    return [text, src] { parse_asl_sidecar(text, src); };
  };
  std::string what = input_error(
      parse(edit(kPcasl3d, R"("PostLabelingDelay": 1.8)", R"("PostLabelingDelay": "1.8")")), src,
      "PostLabelingDelay");
  EXPECT_NE(what.find("expected a number"), std::string::npos) << what;
  input_error(
      parse(edit(kPcasl3d, R"("LabelingDuration": 1.8)", R"("LabelingDuration": [1.8, "x"])")), src,
      "LabelingDuration");
  input_error(parse(edit(kPcasl3d, R"("LabelingDuration": 1.8)", R"("LabelingDuration": [])")), src,
              "LabelingDuration");
  input_error(parse(edit(kPcasl3d, R"("BackgroundSuppression": true)",
                         R"("BackgroundSuppression": "yes")")),
              src, "BackgroundSuppression");
  input_error(parse(edit(kPcasl3d, R"("M0Type": "Separate")", R"("M0Type": 1)")), src, "M0Type");
  input_error(parse(edit(kPcasl3d, R"("MagneticFieldStrength": 3)",
                         R"("MagneticFieldStrength": {"value": 3})")),
              src, "MagneticFieldStrength");
  input_error(
      parse(edit(kPcasl3d, R"("MagneticFieldStrength": 3)", R"("MagneticFieldStrength": true)")),
      src, "MagneticFieldStrength");
}

TEST(BidsSidecar, InvalidJson) {
  std::string what = input_error(
      [] { parse_asl_sidecar("{\"M0Type\": \"Separate\",", "bad.json"); }, "bad.json", "");
  EXPECT_NE(what.find("invalid JSON"), std::string::npos) << what;
  input_error([] { parse_asl_sidecar("[1, 2]", "array.json"); }, "array.json", "");
  input_error([] { parse_asl_sidecar("", "empty.json"); }, "empty.json", "");
}

// ---- aslcontext ---------------------------------------------------------------------------

TEST(BidsContext, ParsesAllTypesAndToleratesFormatting) {
  const auto types = parse_aslcontext(
      "\xEF\xBB\xBFvolume_type\tnotes\r\nm0scan\tfirst\r\ncontrol \r\nlabel\t\r\ndeltam\r\n"
      "cbf\r\nnoRF\r\n\r\n",
      "ctx.tsv");
  EXPECT_EQ(types,
            (std::vector<VolumeType>{VolumeType::M0Scan, VolumeType::Control, VolumeType::Label,
                                     VolumeType::DeltaM, VolumeType::Cbf, VolumeType::NoRf}));
}

TEST(BidsContext, Refusals) {
  std::string what = input_error(
      [] { parse_aslcontext("volume_type\ncontrol\nlabel\nCONTROL\n", "sub-01_aslcontext.tsv"); },
      "sub-01_aslcontext.tsv", "volume_type");
  EXPECT_NE(what.find("row 3"), std::string::npos) << what;
  EXPECT_NE(what.find("CONTROL"), std::string::npos) << what;
  input_error([] { parse_aslcontext("type\ncontrol\n", "h.tsv"); }, "h.tsv", "volume_type");
  input_error([] { parse_aslcontext("volume_type\n", "none.tsv"); }, "none.tsv", "volume_type");
  input_error([] { parse_aslcontext("", "empty.tsv"); }, "empty.tsv", "volume_type");
  input_error([] { parse_aslcontext("volume_type\ncontrol\n\nlabel\n", "gap.tsv"); }, "gap.tsv",
              "volume_type");
}

// ---- datasets on disk ---------------------------------------------------------------------

class BidsDataset : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
#ifdef _WIN32
    const int pid = _getpid();
#else
    const int pid = static_cast<int>(getpid());
#endif
    dir_ = fs::path(PERFQ_TEST_TMP) /
           (std::string("bids-") + info->name() + "-" + std::to_string(pid));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void text(const std::string& name, const std::string& content) const {
    std::ofstream(path(name), std::ios::binary) << content;
  }

  static Geometry grid() {
    Geometry g;
    g.dims = {5, 4, 3};
    g.spacing = {3.0, 3.0, 4.0};
    g.origin = {-6.0, -4.5, 10.0};
    return g;
  }

  /// A tiny PCASL dataset with a separate M0: 2 pairs, PLD per volume.
  void write_pcasl(const std::string& sidecar_pld = "[1.8, 1.8, 1.8, 1.8]") {
    Image<float> asl(grid(), 4, 100.0f);
    for (std::size_t i = 0; i < asl.voxel_count(); ++i) asl.values()[asl.voxel_count() + i] = 99.0f;
    perfq::io::write_nifti(path("sub-01_asl.nii.gz"), asl);
    text("sub-01_asl.json", R"({"ArterialSpinLabelingType": "PCASL", "MRAcquisitionType": "3D",
      "PostLabelingDelay": )" + sidecar_pld +
                                R"(, "LabelingDuration": 1.8,
      "BackgroundSuppression": false, "M0Type": "Separate", "RepetitionTimePreparation": 4.5})");
    text("sub-01_aslcontext.tsv", "volume_type\ncontrol\nlabel\ncontrol\nlabel\n");
    perfq::io::write_nifti(path("sub-01_m0scan.nii.gz"), Image<float>(grid(), 1, 1000.0f));
    text("sub-01_m0scan.json", R"({"RepetitionTimePreparation": 3.2, "RepetitionTime": 3.3})");
  }

  fs::path dir_;
};

TEST_F(BidsDataset, ReadsSeparateM0WithItsRepetitionTime) {
  write_pcasl();
  const auto d = read_asl_bids(path("sub-01_asl.nii.gz"));
  EXPECT_EQ(d.prefix, "sub-01");
  EXPECT_EQ(d.sidecar_path, path("sub-01_asl.json"));
  EXPECT_EQ(d.context_path, path("sub-01_aslcontext.tsv"));
  EXPECT_EQ(d.m0_path, path("sub-01_m0scan.nii.gz"));
  EXPECT_EQ(d.asl.volumes(), 4u);
  EXPECT_EQ(d.context.size(), 4u);
  EXPECT_FLOAT_EQ(d.asl.at(1, 1, 1, 1), 99.0f);
  ASSERT_TRUE(d.m0);
  EXPECT_FLOAT_EQ((*d.m0)[0], 1000.0f);
  ASSERT_TRUE(d.protocol.m0_repetition_time);
  EXPECT_DOUBLE_EQ(*d.protocol.m0_repetition_time, 3.2);  // the m0scan's, not the ASL's 4.5

  text("sub-01_m0scan.json", R"({"RepetitionTime": 3.3, "IntendedFor": "perf/sub-01_asl.nii.gz"})");
  EXPECT_DOUBLE_EQ(*read_asl_bids(path("sub-01_asl.nii.gz")).protocol.m0_repetition_time, 3.3);
}

TEST_F(BidsDataset, PldListLengthMustMatchVolumes) {
  write_pcasl("[1.8, 1.8, 1.8]");
  input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); }, "sub-01_asl.json",
              "PostLabelingDelay");
}

TEST_F(BidsDataset, ContextRowsMustMatchVolumes) {
  write_pcasl();
  text("sub-01_aslcontext.tsv", "volume_type\ncontrol\nlabel\ncontrol\n");
  const std::string what = input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); },
                                       "sub-01_aslcontext.tsv", "volume_type");
  EXPECT_NE(what.find("3 rows"), std::string::npos) << what;
}

TEST_F(BidsDataset, UnknownVolumeTypeNamesRow) {
  write_pcasl();
  text("sub-01_aslcontext.tsv", "volume_type\ncontrol\nlabel\ncontrol\ntag\n");
  const std::string what = input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); },
                                       "sub-01_aslcontext.tsv", "volume_type");
  EXPECT_NE(what.find("row 4"), std::string::npos) << what;
}

TEST_F(BidsDataset, M0OnAnotherGrid) {
  write_pcasl();
  Geometry other = grid();
  other.spacing[2] = 5.0;
  perfq::io::write_nifti(path("sub-01_m0scan.nii.gz"), Image<float>(other, 1, 1000.0f));
  const std::string what =
      input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); }, "sub-01_m0scan.nii.gz", "");
  EXPECT_NE(what.find("grid"), std::string::npos) << what;
  other = grid();
  other.dims[0] = 6;
  perfq::io::write_nifti(path("sub-01_m0scan.nii.gz"), Image<float>(other, 1, 1000.0f));
  input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); }, "sub-01_m0scan.nii.gz", "");
}

TEST_F(BidsDataset, FourDimensionalM0IsAveraged) {
  // Three M0 repeats: voxel i holds 900 + i, 1000 + 2i and 1100 + 3i, mean 1000 + 2i; a NaN in
  // one repeat leaves that voxel NaN (the fit skips it) and no other.
  write_pcasl();
  Image<float> repeats(grid(), 3);
  const std::size_t n = repeats.voxel_count();
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t v = 0; v < 3; ++v) {
      repeats.values()[v * n + i] = static_cast<float>(900.0 + 100.0 * v + (v + 1.0) * i);
    }
  }
  repeats.values()[1 * n + 7] = std::nanf("");
  perfq::io::write_nifti(path("sub-01_m0scan.nii.gz"), repeats);
  text("sub-01_m0scan.json", R"({"RepetitionTimePreparation": [3.2, 3.2, 3.2]})");
  const auto d = read_asl_bids(path("sub-01_asl.nii.gz"));
  ASSERT_TRUE(d.m0);
  EXPECT_EQ(d.m0->volumes(), 1u);
  EXPECT_EQ(d.m0_volumes, 3u);
  for (std::size_t i = 0; i < n; ++i) {
    if (i == 7) {
      EXPECT_TRUE(std::isnan((*d.m0)[i]));
    } else {
      EXPECT_FLOAT_EQ((*d.m0)[i], static_cast<float>(1000.0 + 2.0 * i)) << "voxel " << i;
    }
  }
  EXPECT_DOUBLE_EQ(*d.protocol.m0_repetition_time, 3.2);
  // Repeats acquired with different repetition times cannot be averaged.
  text("sub-01_m0scan.json", R"({"RepetitionTimePreparation": [3.2, 5.0, 3.2]})");
  input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); }, "sub-01_m0scan.json",
              "RepetitionTimePreparation");
  // An all-zero repeat is a dropped acquisition, named.
  text("sub-01_m0scan.json", R"({"RepetitionTimePreparation": 3.2})");
  for (std::size_t i = 0; i < n; ++i) repeats.values()[2 * n + i] = 0.0f;
  perfq::io::write_nifti(path("sub-01_m0scan.nii.gz"), repeats);
  input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); }, "sub-01_m0scan.nii.gz",
              "volume 2");
  // A 3D m0scan is one volume.
  write_pcasl();
  EXPECT_EQ(read_asl_bids(path("sub-01_asl.nii.gz")).m0_volumes, 1u);
}

TEST_F(BidsDataset, SidecarsAreInheritedFromTheDatasetRoot) {
  // BIDS inheritance: sub-01/perf holds the data, the timing lies in the root's asl.json, M0Type
  // in sub-01/sub-01_asl.json, the aslcontext in sub-01/, the m0scan's TR in the root; the
  // series' own sidecar overrides one key. Files with other entities do not apply.
  write_pcasl();
  const fs::path perf = dir_ / "sub-01" / "perf";
  fs::create_directories(perf);
  for (const char* name : {"sub-01_asl.nii.gz", "sub-01_m0scan.nii.gz"}) {
    fs::rename(dir_ / name, perf / name);
  }
  fs::remove(dir_ / "sub-01_asl.json");
  fs::remove(dir_ / "sub-01_m0scan.json");
  fs::rename(dir_ / "sub-01_aslcontext.tsv", dir_ / "sub-01" / "sub-01_aslcontext.tsv");
  text("dataset_description.json", R"({"Name": "inherit", "BIDSVersion": "1.9.0"})");
  text("asl.json", R"({"ArterialSpinLabelingType": "PCASL", "MRAcquisitionType": "3D",
    "PostLabelingDelay": 1.5, "LabelingDuration": 1.8, "BackgroundSuppression": false,
    "M0Type": "Estimate", "M0Estimate": 5})");
  text("acq-other_asl.json", R"({"LabelingDuration": 0.7})");  // another acquisition's
  text("sub-01/sub-01_asl.json", R"({"M0Type": "Separate"})");
  text("sub-01/perf/sub-01_asl.json", R"({"PostLabelingDelay": 1.8})");
  text("m0scan.json", R"({"RepetitionTimePreparation": 6.0})");
  const std::string series = (perf / "sub-01_asl.nii.gz").string();
  auto d = read_asl_bids(series);
  EXPECT_EQ(d.protocol.labeling_type, perfq::LabelingType::Pcasl);
  EXPECT_EQ(d.protocol.post_labeling_delay, std::vector<double>{1.8});  // the nearest wins
  EXPECT_EQ(d.protocol.labeling_duration, std::vector<double>{1.8});    // not acq-other's
  EXPECT_EQ(d.protocol.m0_type, perfq::M0Type::Separate);
  ASSERT_TRUE(d.protocol.m0_repetition_time);
  EXPECT_DOUBLE_EQ(*d.protocol.m0_repetition_time, 6.0);
  ASSERT_EQ(d.sidecar_paths.size(), 3u);
  EXPECT_EQ(fs::path(d.sidecar_paths[0]).filename(), "asl.json");
  EXPECT_EQ(fs::path(d.sidecar_paths[1]).filename(), "sub-01_asl.json");
  EXPECT_EQ(d.sidecar_path, (perf / "sub-01_asl.json").string());
  EXPECT_EQ(fs::path(d.context_path).filename(), "sub-01_aslcontext.tsv");
  EXPECT_EQ(d.context.size(), 4u);

  // A bad inherited value names the file it came from, not the series' own sidecar.
  text("asl.json", R"({"ArterialSpinLabelingType": "PCASL", "MRAcquisitionType": "3D",
    "PostLabelingDelay": 1.5, "LabelingDuration": -1, "BackgroundSuppression": false})");
  const std::string inherited = (dir_ / "asl.json").string();
  const std::string own = (perf / "sub-01_asl.json").string();
  std::string what = input_error([&] { read_asl_bids(series); }, "asl.json", "LabelingDuration");
  EXPECT_EQ(what.rfind(inherited + ":", 0), 0u) << what;
  EXPECT_EQ(what.find(own), std::string::npos) << what;
  // So does one that only the protocol's validation finds (milliseconds).
  text("asl.json", R"({"ArterialSpinLabelingType": "PCASL", "MRAcquisitionType": "3D",
    "PostLabelingDelay": 1.5, "LabelingDuration": 1800, "BackgroundSuppression": false})");
  what = input_error([&] { read_asl_bids(series); }, "asl.json", "LabelingDuration");
  EXPECT_EQ(what.rfind(inherited + ":", 0), 0u) << what;
  EXPECT_EQ(what.find(own), std::string::npos) << what;
  EXPECT_NE(what.find("milliseconds"), std::string::npos) << what;
  // Two applicable sidecars in one folder are ambiguous.
  text("sub-01/perf/ses-x_asl.json", R"({"LabelingDuration": 1.8})");
  text("sub-01/perf/sub-01_acq-a_asl.json", R"({})");  // not applicable: acq differs
  text("asl.json", R"({"ArterialSpinLabelingType": "PCASL", "LabelingDuration": 1.8})");
  EXPECT_NO_THROW(read_asl_bids(series));  // ses-x does not apply to a file without ses
  text("sub-01/perf/sub-01_asl.json", R"({"PostLabelingDelay": 1.8})");
  text("sub-01/perf/asl.json", R"({})");
  what = input_error([&] { read_asl_bids(series); }, "asl.json", "");
  EXPECT_NE(what.find("more than one"), std::string::npos) << what;
  fs::remove(perf / "asl.json");
  // Without dataset_description.json there is no dataset root: nothing is inherited.
  fs::remove(dir_ / "dataset_description.json");
  input_error([&] { read_asl_bids(series); }, "perf/sub-01_asl.json", "ArterialSpinLabelingType");
}

TEST_F(BidsDataset, SeparateM0FoundThroughIntendedFor) {
  // An m0scan with other entities (dir-AP) is the series' M0 when its sidecar's IntendedFor
  // names the series: a path from the subject folder or a BIDS URI, one string or a list.
  write_pcasl();
  fs::rename(path("sub-01_m0scan.nii.gz"), path("sub-01_dir-AP_m0scan.nii.gz"));
  fs::remove(path("sub-01_m0scan.json"));
  const std::string here = dir_.filename().string();
  text("sub-01_dir-AP_m0scan.json",
       R"({"RepetitionTimePreparation": 4.0, "IntendedFor": ")" + here + R"(/sub-01_asl.nii.gz"})");
  auto d = read_asl_bids(path("sub-01_asl.nii.gz"));
  EXPECT_EQ(d.m0_path, path("sub-01_dir-AP_m0scan.nii.gz"));
  // The same lookup on its own (perfq bids registers that image to the T1w).
  EXPECT_EQ(perfq::io::find_m0scan(path("sub-01_asl.nii.gz")), path("sub-01_dir-AP_m0scan.nii.gz"));
  ASSERT_TRUE(d.protocol.m0_repetition_time);
  EXPECT_DOUBLE_EQ(*d.protocol.m0_repetition_time, 4.0);
  text("sub-01_dir-AP_m0scan.json", R"({"RepetitionTimePreparation": 4.0, "IntendedFor":
    ["bids::sub-02/perf/sub-02_asl.nii.gz", "bids::)" + here + R"(/sub-01_asl.nii.gz"]})");
  EXPECT_EQ(read_asl_bids(path("sub-01_asl.nii.gz")).m0_path, path("sub-01_dir-AP_m0scan.nii.gz"));
  // Naming another series only: not found, and the message says where it looked.
  text("sub-01_dir-AP_m0scan.json", R"({"IntendedFor": "perf/sub-01_run-2_asl.nii.gz"})");
  std::string what = input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); },
                                 "sub-01_asl.json", "M0Type");
  EXPECT_NE(what.find("IntendedFor"), std::string::npos) << what;
  EXPECT_EQ(perfq::io::find_m0scan(path("sub-01_asl.nii.gz")), "");
  // Two m0scans naming the series: ambiguous.
  text("sub-01_dir-AP_m0scan.json", R"({"IntendedFor": ")" + here + R"(/sub-01_asl.nii.gz"})");
  fs::copy_file(path("sub-01_dir-AP_m0scan.nii.gz"), path("sub-01_dir-PA_m0scan.nii.gz"));
  fs::copy_file(path("sub-01_dir-AP_m0scan.json"), path("sub-01_dir-PA_m0scan.json"));
  what = input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); }, "dir-AP_m0scan",
                     "IntendedFor");
  EXPECT_NE(what.find("dir-PA"), std::string::npos) << what;
  input_error([&] { perfq::io::find_m0scan(path("sub-01_asl.nii.gz")); }, "dir-AP_m0scan",
              "IntendedFor");
  // The series' own <prefix>_m0scan comes first.
  write_pcasl();
  EXPECT_EQ(read_asl_bids(path("sub-01_asl.nii.gz")).m0_path, path("sub-01_m0scan.nii.gz"));
  EXPECT_EQ(perfq::io::find_m0scan(path("sub-01_asl.nii.gz")), path("sub-01_m0scan.nii.gz"));
  input_error([&] { perfq::io::find_m0scan(path("sub-01_m0scan.nii.gz")); }, "sub-01_m0scan", "");
}

TEST_F(BidsDataset, MissingPieces) {
  write_pcasl();
  fs::remove(path("sub-01_m0scan.nii.gz"));
  input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); }, "sub-01_asl.json", "M0Type");
  write_pcasl();
  fs::remove(path("sub-01_m0scan.json"));
  input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); }, "sub-01_m0scan.json", "");
  write_pcasl();
  fs::remove(path("sub-01_aslcontext.tsv"));
  input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); }, "sub-01_aslcontext.tsv", "");
  write_pcasl();
  fs::remove(path("sub-01_asl.json"));
  input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); }, "sub-01_asl.json", "");
  input_error([&] { read_asl_bids(path("sub-01_bold.nii.gz")); }, "sub-01_bold.nii.gz", "");
}

TEST_F(BidsDataset, InvalidSidecarJsonNamesTheFile) {
  write_pcasl();
  text("sub-01_asl.json", "{\"ArterialSpinLabelingType\": \"PCASL\" \"M0Type\": 3}");
  const std::string what =
      input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); }, "sub-01_asl.json", "");
  EXPECT_NE(what.find("invalid JSON"), std::string::npos) << what;
}

TEST_F(BidsDataset, EstimateWithoutValue) {
  write_pcasl();
  text("sub-01_asl.json", R"({"ArterialSpinLabelingType": "PCASL", "PostLabelingDelay": 1.8,
    "LabelingDuration": 1.8, "M0Type": "Estimate"})");
  input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); }, "sub-01_asl.json", "M0Estimate");
}

TEST_F(BidsDataset, IncludedM0TakesTheM0VolumesRepetitionTime) {
  Image<float> asl(grid(), 5, 50.0f);
  perfq::io::write_nifti(path("sub-02_ses-1_asl.nii"), asl);
  text("sub-02_ses-1_asl.json", kPaslQ2tips);
  text("sub-02_ses-1_aslcontext.tsv", "volume_type\nm0scan\ncontrol\nlabel\ncontrol\nlabel\n");
  // kPaslQ2tips has 5 slice times but this grid has 3 slices: validate_protocol refuses.
  input_error([&] { read_asl_bids(path("sub-02_ses-1_asl.nii")); }, "sub-02_ses-1_asl.json",
              "SliceTiming");
  text("sub-02_ses-1_asl.json",
       edit(kPaslQ2tips, "[0, 0.0475, 0.095, 0.1425, 0.19]", "[0, 0.05, 0.1]"));
  const auto d = read_asl_bids(path("sub-02_ses-1_asl.nii"));
  EXPECT_EQ(d.prefix, "sub-02_ses-1");
  EXPECT_TRUE(d.m0_path.empty());
  EXPECT_FALSE(d.m0);
  ASSERT_TRUE(d.protocol.m0_repetition_time);
  EXPECT_DOUBLE_EQ(*d.protocol.m0_repetition_time, 5.0);

  // No m0scan row although M0Type says Included.
  text("sub-02_ses-1_aslcontext.tsv", "volume_type\ncontrol\ncontrol\nlabel\ncontrol\nlabel\n");
  input_error([&] { read_asl_bids(path("sub-02_ses-1_asl.nii")); }, "sub-02_ses-1_aslcontext.tsv",
              "volume_type");
}

TEST_F(BidsDataset, NanOnlySeriesIsRefused) {
  write_pcasl();
  perfq::io::write_nifti(path("sub-01_asl.nii.gz"), Image<float>(grid(), 4, std::nanf("")));
  input_error([&] { read_asl_bids(path("sub-01_asl.nii.gz")); }, "sub-01_asl.nii.gz", "");
}

// ---- the phantom as a dataset -------------------------------------------------------------

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST_F(BidsDataset, PhantomRoundTrip) {
  perfq::PhantomOptions options;
  options.dims = {24, 24, 20};
  options.delays = {1.5, 2.0};
  options.repeats = 2;
  const perfq::Phantom phantom = perfq::make_phantom(options);
  const std::string asl = perfq::io::write_phantom_bids(phantom, path("ds"), "01");
  EXPECT_EQ(asl, (dir_ / "ds" / "sub-01" / "perf" / "sub-01_asl.nii.gz").string());

  const auto d = read_asl_bids(asl);
  EXPECT_EQ(d.prefix, "sub-01");
  EXPECT_EQ(d.asl.volumes(), phantom.asl.volumes());
  EXPECT_TRUE(d.asl.geometry().same_grid(phantom.asl.geometry(), 1e-5));
  EXPECT_EQ(d.asl.values(), phantom.asl.values());
  EXPECT_EQ(d.context, phantom.context);
  EXPECT_EQ(d.protocol.labeling_type, LabelingType::Pcasl);
  ASSERT_EQ(d.protocol.post_labeling_delay.size(), phantom.asl.volumes());
  for (std::size_t v = 0; v < phantom.asl.volumes(); ++v) {
    EXPECT_DOUBLE_EQ(d.protocol.pld_of(v), phantom.protocol.pld_of(v)) << v;
    EXPECT_DOUBLE_EQ(d.protocol.duration_of(v), phantom.protocol.duration_of(v)) << v;
  }
  EXPECT_EQ(d.protocol.m0_type, M0Type::Separate);
  ASSERT_TRUE(d.m0);
  EXPECT_EQ(d.m0->values(), phantom.m0.values());
  ASSERT_TRUE(d.protocol.m0_repetition_time);
  EXPECT_DOUBLE_EQ(*d.protocol.m0_repetition_time, 6.0);

  const fs::path root = dir_ / "ds";
  EXPECT_NE(slurp(root / "dataset_description.json").find("\"raw\""), std::string::npos);
  const fs::path truth = root / "derivatives" / "truth";
  EXPECT_NE(slurp(truth / "dataset_description.json").find("\"derivative\""), std::string::npos);
  const fs::path perf = truth / "sub-01" / "perf";
  EXPECT_EQ(slurp(perf / "sub-01_dseg.tsv"), "index\tname\n1\tCSF\n2\tGM\n3\tWM\n");
  EXPECT_EQ(slurp(perf / "sub-01_territories.tsv"), "index\tname\n1\tACA\n2\tMCA\n3\tPCA\n");
  EXPECT_EQ(perfq::io::read_nifti_labels((perf / "sub-01_territories.nii.gz").string()).values(),
            phantom.territories.values());
  const auto tissue = perfq::io::read_nifti_labels((perf / "sub-01_dseg.nii.gz").string());
  for (std::size_t i = 0; i < tissue.size(); ++i) ASSERT_EQ(tissue[i], phantom.tissue[i]);
  EXPECT_EQ(perfq::io::read_nifti_mask((perf / "sub-01_mask.nii.gz").string()).values(),
            phantom.brain.values());
  EXPECT_EQ(perfq::io::read_nifti((perf / "sub-01_cbf.nii.gz").string()).values(),
            phantom.cbf.values());
  EXPECT_EQ(perfq::io::read_nifti((perf / "sub-01_att.nii.gz").string()).values(),
            phantom.att.values());
  EXPECT_EQ(perfq::io::read_nifti((perf / "sub-01_borderdistance.nii.gz").string()).values(),
            phantom.border_distance.values());
  // Nothing but the dataset's files: no temporaries left behind.
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  }
}

TEST_F(BidsDataset, PaslPhantomRoundTrip) {
  perfq::PhantomOptions options;
  options.dims = {24, 24, 20};
  options.pasl = true;
  options.delays = {1.6};
  options.bolus_cutoff = 0.75;
  const perfq::Phantom phantom = perfq::make_phantom(options);
  const auto d = read_asl_bids(perfq::io::write_phantom_bids(phantom, path("ds"), "sub-p01"));
  EXPECT_EQ(d.prefix, "sub-p01");
  EXPECT_EQ(d.protocol.labeling_type, LabelingType::Pasl);
  ASSERT_TRUE(d.protocol.bolus_cutoff_delay);
  EXPECT_DOUBLE_EQ(*d.protocol.bolus_cutoff_delay, 0.75);
  EXPECT_TRUE(d.protocol.labeling_duration.empty());
  EXPECT_DOUBLE_EQ(d.protocol.pld_of(0), 1.6);
  const std::string sidecar = slurp(dir_ / "ds" / "sub-p01" / "perf" / "sub-p01_asl.json");
  EXPECT_NE(sidecar.find("QUIPSSII"), std::string::npos) << sidecar;
  EXPECT_EQ(sidecar.find("LabelingDuration"), std::string::npos) << sidecar;
}

TEST_F(BidsDataset, PhantomRefusesBadSubjectLabel) {
  perfq::PhantomOptions options;
  options.dims = {16, 16, 16};
  const perfq::Phantom phantom = perfq::make_phantom(options);
  EXPECT_THROW(perfq::io::write_phantom_bids(phantom, path("ds"), "01_a"), perfq::InvalidArgument);
}

TEST(BidsSidecar, DeeplyNestedJsonIsRefusedBeforeItIsParsed) {
  // 80,000 levels (~160 KB) overflowed the stack of the recursive code that reads values.
  const std::string deep = std::string(80000, '[') + "1.8" + std::string(80000, ']');
  const std::string what = input_error(
      [&] {
        perfq::io::parse_asl_sidecar(
            R"({"ArterialSpinLabelingType": "PCASL", "PostLabelingDelay": )" + deep + "}",
            "deep.json");
      },
      "deep.json", "");
  EXPECT_NE(what.find("nested more than 64 levels"), std::string::npos) << what;
  // The bound itself, and brackets inside strings (which do not nest), are fine.
  const std::string at_bound = std::string(63, '[') + "0" + std::string(63, ']');
  EXPECT_NO_THROW(perfq::io::check_json_nesting("{\"a\": " + at_bound + "}", "ok.json"));
  EXPECT_NO_THROW(perfq::io::check_json_nesting(
      "{\"a\": \"" + std::string(1000, '[') + "\\\"{\"}", "ok.json"));
  EXPECT_THROW(perfq::io::check_json_nesting("{\"a\": " + std::string(64, '[') + "]}", "x"),
               InputError);
}

}  // namespace
