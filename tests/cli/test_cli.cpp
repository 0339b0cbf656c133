// The perfq tool end to end: phantom → cbf, outputs against the truth, and refusals.
#include <perfq/execution.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/phantom.hpp>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "cli_test_util.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

using namespace cli_test;  // run, Result, read_text, write_text, scratch_dir

fs::path scratch(const std::string& name) { return cli_test::scratch_dir("cli-" + name); }

/// Writes a small phantom dataset and returns the path of its *_asl.nii.gz.
fs::path small_phantom(const fs::path& root, bool pasl = false) {
  perfq::PhantomOptions o;
  o.dims = {32, 36, 28};
  o.repeats = 2;
  o.pasl = pasl;
  if (pasl) o.delays = {2.5};
  return perfq::io::write_phantom_bids(perfq::make_phantom(o), root.string());
}

/// Worst relative CBF error over the truth's brain mask.
double worst_error(const fs::path& cbf_path, const fs::path& root) {
  const auto cbf = perfq::io::read_nifti(cbf_path.string());
  const fs::path truth = root / "derivatives" / "truth" / "sub-01" / "perf";
  const auto expected = perfq::io::read_nifti((truth / "sub-01_cbf.nii.gz").string());
  const auto mask = perfq::io::read_nifti_mask((truth / "sub-01_mask.nii.gz").string());
  EXPECT_TRUE(cbf.geometry().same_grid(expected.geometry()));
  double worst = 0;
  for (std::size_t i = 0; i < cbf.size(); ++i) {
    if (mask[i]) worst = std::max(worst, std::abs(double(cbf[i]) - expected[i]) / expected[i]);
  }
  return worst;
}

TEST(Cli, PhantomCommandThenCbfRecoversTheTruth) {
  const fs::path dir = scratch("pcasl");
  const Result made = run("phantom -o " + (dir / "bids").string() + " --repeats 2");
  ASSERT_EQ(made.status, 0) << made.output;
  const fs::path asl = dir / "bids" / "sub-01" / "perf" / "sub-01_asl.nii.gz";
  const Result r = run("cbf " + asl.string() + " -o " + (dir / "out").string() + " --backend cpu");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_LT(worst_error(dir / "out" / "sub-01_cbf.nii.gz", dir / "bids"), 0.01);
  const auto input = perfq::io::read_nifti_info(asl.string());
  const auto output = perfq::io::read_nifti_info((dir / "out" / "sub-01_cbf.nii.gz").string());
  EXPECT_TRUE(output.geometry.same_grid(input.geometry, 1e-6));
  EXPECT_EQ(output.stored_type, "float32");

  const Json j = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
  EXPECT_EQ(j["GeneratedBy"]["Version"], PERFQ_VERSION_STRING);
  EXPECT_EQ(j["GeneratedBy"]["Backend"], "cpu");
  EXPECT_EQ(j["Units"], "mL/100g/min");
  EXPECT_DOUBLE_EQ(j["BloodBrainPartitionCoefficient"].get<double>(), 0.9);
  EXPECT_DOUBLE_EQ(j["ArterialBloodT1"].get<double>(), 1.65);
  EXPECT_DOUBLE_EQ(j["LabelingEfficiency"].get<double>(), 0.85);
  EXPECT_DOUBLE_EQ(j["PostLabelingDelay"].get<double>(), 1.8);
  EXPECT_DOUBLE_EQ(j["LabelingDuration"].get<double>(), 1.8);
  EXPECT_EQ(j["M0Type"], "Separate");
  EXPECT_EQ(j["Averaging"]["RepeatsAveraged"], 2);
  EXPECT_TRUE(fs::exists(dir / "out" / "sub-01_fitstatus.nii.gz"));
  EXPECT_TRUE(fs::exists(dir / "out" / "sub-01_desc-brain_mask.nii.gz"));  // no --mask given
  EXPECT_EQ(j["BrainRegion"]["Region"], "automatic brain mask (of the M0 image)");
  // The quality indices, over the brain alone (no tissue maps given).
  EXPECT_TRUE(fs::exists(dir / "out" / "sub-01_desc-qualitycontrol_cbf.tsv"));
  EXPECT_TRUE(fs::exists(dir / "out" / "sub-01_desc-qualitycontrol_cbf.json"));
  // Nothing but the outputs: no staging folder or temporary file left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir / "out"), fs::directory_iterator{}), 6);
}

TEST(Cli, QualityIndicesFromTissueMapsMatchTheTruth) {
  const fs::path dir = scratch("quality");
  const fs::path asl = small_phantom(dir / "bids");
  const fs::path truth = dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
  const Result r = run("cbf " + asl.string() + " -o " + (dir / "out").string() + " --backend cpu" +
                       " --gm-probseg " + (truth / "sub-01_label-GM_mask.nii.gz").string() +
                       " --wm-probseg " + (truth / "sub-01_label-WM_mask.nii.gz").string() +
                       " --csf-probseg " + (truth / "sub-01_label-CSF_probseg.nii.gz").string());
  ASSERT_EQ(r.status, 0) << r.output;
  // The truth's mean CBF over its GM and WM masks, computed here.
  const auto expected = perfq::io::read_nifti((truth / "sub-01_cbf.nii.gz").string());
  const auto gm = perfq::io::read_nifti_mask((truth / "sub-01_label-GM_mask.nii.gz").string());
  const auto wm = perfq::io::read_nifti_mask((truth / "sub-01_label-WM_mask.nii.gz").string());
  double gm_sum = 0, wm_sum = 0;
  std::size_t gm_n = 0, wm_n = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (gm[i]) gm_sum += expected[i], ++gm_n;
    if (wm[i]) wm_sum += expected[i], ++wm_n;
  }
  std::ifstream table(dir / "out" / "sub-01_desc-qualitycontrol_cbf.tsv");
  std::string header, row;
  ASSERT_TRUE(std::getline(table, header) && std::getline(table, row));
  std::map<std::string, std::string> q;
  std::stringstream h(header), v(row);
  for (std::string name, value; std::getline(h, name, '\t') && std::getline(v, value, '\t');) {
    q[name] = value;
  }
  EXPECT_EQ(std::stoul(q["gm_voxels"]), gm_n);
  EXPECT_EQ(std::stoul(q["wm_voxels"]), wm_n);
  EXPECT_NEAR(std::stod(q["gm_mean_cbf"]), gm_sum / gm_n, 0.01 * gm_sum / gm_n);
  EXPECT_NEAR(std::stod(q["wm_mean_cbf"]), wm_sum / wm_n, 0.01 * wm_sum / wm_n);
  EXPECT_NEAR(std::stod(q["gm_wm_ratio"]), (gm_sum / gm_n) / (wm_sum / wm_n), 0.02 * 2.5);
  EXPECT_EQ(std::stod(q["gm_negative_fraction"]), 0.0);  // noise-free phantom
  // A clean map whose contrast follows the tissue: high QEI, strong structural similarity.
  EXPECT_GT(std::stod(q["qei"]), 0.8);
  EXPECT_GT(std::stod(q["qei_structural_similarity"]), 0.7);
  const Json j = Json::parse(read_text(dir / "out" / "sub-01_desc-qualitycontrol_cbf.json"));
  EXPECT_TRUE(j["NotDefined"].empty()) << j["NotDefined"].dump();
  const Json record = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
  EXPECT_NEAR(record["QualityControl"]["Summary"]["qei"].get<double>(), std::stod(q["qei"]), 1e-9);

  // A label image given as a probability map: the file named, the values explained.
  const Result bad = run("cbf " + asl.string() + " -o " + (dir / "bad").string() +
                         " --gm-probseg " + (truth / "sub-01_dseg.nii.gz").string());
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("sub-01_dseg.nii.gz"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("probabilities in [0, 1]"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(dir / "bad" / "sub-01_cbf.nii.gz"));
}

TEST(Cli, TissueT1PerVoxelFromAMapOrTheTissueFractions) {
  const fs::path dir = scratch("t1map");
  ASSERT_EQ(
      run("phantom -o " + (dir / "bids").string() + " --delays 0.5,1,1.5,2 --repeats 1").status, 0);
  const fs::path asl = dir / "bids" / "sub-01" / "perf" / "sub-01_asl.nii.gz";
  const fs::path truth = dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
  const fs::path gm = truth / "sub-01_label-GM_mask.nii.gz",
                 wm = truth / "sub-01_label-WM_mask.nii.gz";
  auto cbf = [&](const std::string& out, const std::string& options) {
    const Result r =
        run("cbf " + asl.string() + " -o " + (dir / out).string() + " --backend cpu" + options);
    EXPECT_EQ(r.status, 0) << r.output;
    return perfq::io::read_nifti((dir / out / "sub-01_cbf.nii.gz").string());
  };
  const auto one = cbf("one", "");
  // The tissue fractions: GM 1.3 s (the tissue T1), WM 1.1 s, and 1.3 s where neither; the
  // map that formula gives, written here, gives the same fit bit for bit.
  const auto grey = perfq::io::read_nifti(gm.string()), white = perfq::io::read_nifti(wm.string());
  perfq::Volume<float> t1(grey.geometry());
  for (std::size_t i = 0; i < t1.size(); ++i) t1[i] = white[i] > 0.5f ? 1.1f : 1.3f;
  perfq::io::write_nifti((dir / "t1.nii.gz").string(), t1.view());
  const auto pv =
      cbf("pv", " --t1t-pv --gm-probseg " + gm.string() + " --wm-probseg " + wm.string());
  const auto mapped = cbf("mapped", " --t1t-map " + (dir / "t1.nii.gz").string());
  std::size_t wm_changed = 0;
  for (std::size_t i = 0; i < t1.size(); ++i) {
    ASSERT_EQ(pv[i], mapped[i]) << i;
    if (white[i] > 0.5f) {
      wm_changed += pv[i] != one[i];
    } else {
      ASSERT_EQ(pv[i], one[i]) << i;  // GM and the rest: the one value, the same fit
    }
  }
  EXPECT_GT(wm_changed, 100u);
  const Json record = Json::parse(read_text(dir / "pv" / "sub-01_cbf.json"));
  EXPECT_EQ(record["TissueT1Source"]["Source"], "partial-volume weighted");
  EXPECT_DOUBLE_EQ(record["TissueT1Source"]["WhiteMatter"].get<double>(), 1.1);
  EXPECT_EQ(Json::parse(read_text(dir / "one" / "sub-01_cbf.json"))["TissueT1Source"]["Source"],
            "one value");

  // A map with a value of 0 where voxels are fitted: the file named.
  for (std::size_t i = 0; i < t1.size(); ++i) t1[i] = 0.0f;
  perfq::io::write_nifti((dir / "zero.nii.gz").string(), t1.view());
  Result r = run("cbf " + asl.string() + " -o " + (dir / "zero").string() + " --backend cpu" +
                 " --t1t-map " + (dir / "zero.nii.gz").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("zero.nii.gz"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(0, 10] s"), std::string::npos) << r.output;
  r = run("cbf " + asl.string() + " -o " + (dir / "nomaps").string() + " --t1t-pv");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("give --gm-probseg and --wm-probseg"), std::string::npos) << r.output;
}

TEST(Cli, PaslPhantomRecoversTheTruth) {
  const fs::path dir = scratch("pasl");
  const fs::path asl = small_phantom(dir / "bids", true);
  const Result r = run("cbf " + asl.string() + " -o " + (dir / "out").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_LT(worst_error(dir / "out" / "sub-01_cbf.nii.gz", dir / "bids"), 0.01);
  const Json j = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
  EXPECT_EQ(j["ArterialSpinLabelingType"], "PASL");
  EXPECT_DOUBLE_EQ(j["BolusCutOffDelayTime"].get<double>(), 0.8);
}

TEST(Cli, PhantomVoxelSizeGivesTheSameHeadOnAnotherGrid) {
  // --voxel-size keeps the default field of view (180 x 216 x 168 mm): 6 mm gives 30 x 36 x
  // 28 voxels, and the brain's volume stays that of the 3 mm phantom within a few per cent.
  const fs::path dir = scratch("voxel-size");
  const Result r = run("phantom -o " + (dir / "six").string() + " --voxel-size 6 --repeats 1");
  ASSERT_EQ(r.status, 0) << r.output;
  const fs::path truth =
      fs::path("derivatives") / "truth" / "sub-01" / "perf" / "sub-01_mask.nii.gz";
  const auto coarse = perfq::io::read_nifti_mask((dir / "six" / truth).string());
  EXPECT_EQ(coarse.geometry().dims, (std::array<std::size_t, 3>{30, 36, 28}));
  EXPECT_DOUBLE_EQ(coarse.geometry().spacing[0], 6.0);
  ASSERT_EQ(run("phantom -o " + (dir / "three").string() + " --repeats 1").status, 0);
  const auto standard = perfq::io::read_nifti_mask((dir / "three" / truth).string());
  auto volume = [](const perfq::Mask& m) {
    const double voxel =
        m.geometry().spacing[0] * m.geometry().spacing[1] * m.geometry().spacing[2];
    return voxel * static_cast<double>(std::count(m.values().begin(), m.values().end(), 1));
  };
  EXPECT_NEAR(volume(coarse) / volume(standard), 1.0, 0.05);
  EXPECT_EQ(perfq::phantom_dims(1.15), (std::array<std::size_t, 3>{157, 188, 146}));
  // Refusals name the option.
  for (const char* bad : {"0", "-1", "12", "nan"}) {
    const Result refused =
        run("phantom -o " + (dir / "bad").string() + " --voxel-size " + std::string(bad));
    EXPECT_EQ(refused.status, 2) << bad << ": " << refused.output;
    EXPECT_NE(refused.output.find("--voxel-size"), std::string::npos) << refused.output;
  }
}

TEST(Cli, MaskAndOverridesAreAppliedAndRecorded) {
  const fs::path dir = scratch("overrides");
  const fs::path asl = small_phantom(dir / "bids");
  const fs::path mask =
      dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf" / "sub-01_mask.nii.gz";
  const Result r = run("cbf " + asl.string() + " -o " + (dir / "out").string() + " --mask " +
                       mask.string() + " --alpha 0.425 --lambda 0.9");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto cbf = perfq::io::read_nifti((dir / "out" / "sub-01_cbf.nii.gz").string());
  const auto status = perfq::io::read_nifti((dir / "out" / "sub-01_fitstatus.nii.gz").string());
  const auto truth = perfq::io::read_nifti(
      (dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf" / "sub-01_cbf.nii.gz").string());
  const auto inside = perfq::io::read_nifti_mask(mask.string());
  for (std::size_t i = 0; i < cbf.size(); ++i) {
    if (inside[i]) {
      ASSERT_NEAR(cbf[i], 2.0 * truth[i], 0.01 * 2.0 * truth[i]);  // α halved: CBF doubled
    } else {
      ASSERT_EQ(status[i], 1.0f);  // outside the mask
      ASSERT_EQ(cbf[i], 0.0f);
    }
  }
  const Json j = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
  EXPECT_DOUBLE_EQ(j["LabelingEfficiency"].get<double>(), 0.425);
  EXPECT_EQ(j["LabelingEfficiencySource"], "override");
  EXPECT_EQ(j["Mask"], mask.string());
}

TEST(Cli, IncludedM0DeltaMVolumesAndScannerCbf) {
  // A series as some scanners export it: M0 inside, ΔM already subtracted, a scanner CBF map.
  const fs::path dir = scratch("included");
  perfq::PhantomOptions o;
  o.dims = {32, 36, 28};
  o.repeats = 2;
  const perfq::Phantom p = perfq::make_phantom(o);
  const std::size_t n = p.m0.size();
  perfq::Series<float> series(p.m0.geometry(), 5);
  for (std::size_t i = 0; i < n; ++i) {
    series[i] = p.m0[i];                                      // m0scan
    series[n + i] = p.asl[i] - p.asl[n + i];                  // deltam, pair 1
    series[2 * n + i] = 7.0f;                                 // noRF: ignored
    series[3 * n + i] = p.asl[2 * n + i] - p.asl[3 * n + i];  // deltam, pair 2
    series[4 * n + i] = 50.0f;                                // scanner cbf
  }
  const fs::path perf = dir / "bids" / "sub-02" / "perf";
  fs::create_directories(perf);
  perfq::io::write_nifti((perf / "sub-02_asl.nii.gz").string(), series.view());
  write_text(perf / "sub-02_aslcontext.tsv", "volume_type\nm0scan\ndeltam\nnoRF\ndeltam\ncbf\n");
  write_text(perf / "sub-02_asl.json", R"({
    "ArterialSpinLabelingType": "PCASL", "MRAcquisitionType": "3D",
    "PostLabelingDelay": [0, 1.8, 0, 1.8, 1.8], "LabelingDuration": [0, 1.8, 0, 1.8, 1.8],
    "M0Type": "Included", "RepetitionTimePreparation": [6.0, 4.5, 4.5, 4.5, 4.5],
    "BackgroundSuppression": false, "MagneticFieldStrength": 3})");
  const Result r = run("cbf " + (perf / "sub-02_asl.nii.gz").string() + " -o " +
                       (dir / "out").string() + " --backend cpu");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("noRF"), std::string::npos) << r.output;
  const auto cbf = perfq::io::read_nifti((dir / "out" / "sub-02_cbf.nii.gz").string());
  for (std::size_t i = 0; i < n; ++i) {
    if (p.brain[i]) ASSERT_NEAR(cbf[i], p.cbf[i], 0.01 * p.cbf[i]) << "voxel " << i;
  }
  const auto scanner =
      perfq::io::read_nifti((dir / "out" / "sub-02_desc-scanner_cbf.nii.gz").string());
  EXPECT_EQ(scanner[n / 2], 50.0f);
  const Json j = Json::parse(read_text(dir / "out" / "sub-02_cbf.json"));
  EXPECT_EQ(j["M0Type"], "Included");
  EXPECT_DOUBLE_EQ(j["M0RepetitionTime"].get<double>(), 6.0);
}

/// Runs `perfq cbf` on a dataset spoiled by `spoil`, expects exit 1 with a message naming
/// `file_part` and `field`, and no output files.
void expect_refusal(const std::string& name, const std::function<void(const fs::path&)>& spoil,
                    const std::string& file_part, const std::string& field) {
  const fs::path dir = scratch(name);
  const fs::path asl = small_phantom(dir / "bids");
  spoil(asl.parent_path());
  const Result r = run("cbf " + asl.string() + " -o " + (dir / "out").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(file_part), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(field), std::string::npos) << r.output;
  EXPECT_FALSE(folder_has_files(dir / "out")) << "partial output left in " << dir / "out";
}

void edit_sidecar(const fs::path& perf, const std::function<void(Json&)>& edit) {
  edit_json(perf / "sub-01_asl.json", edit);
}

TEST(Cli, RefusesPldListOfWrongLength) {
  expect_refusal(
      "pld-length",
      [](const fs::path& perf) {
        edit_sidecar(perf, [](Json& j) { j["PostLabelingDelay"] = Json::array({1.8, 1.8, 1.8}); });
      },
      "sub-01_asl.json", "PostLabelingDelay");
}

TEST(Cli, RefusesPcaslWithoutLabelingDuration) {
  expect_refusal(
      "no-tau",
      [](const fs::path& perf) {
        edit_sidecar(perf, [](Json& j) { j.erase("LabelingDuration"); });
      },
      "sub-01_asl.json", "LabelingDuration");
}

TEST(Cli, RefusesAslcontextRowsNotMatchingVolumes) {
  expect_refusal(
      "context-rows",
      [](const fs::path& perf) {
        write_text(perf / "sub-01_aslcontext.tsv", "volume_type\ncontrol\nlabel\n");
      },
      "aslcontext", "volume_type");
}

TEST(Cli, RefusesM0OnAnotherGrid) {
  expect_refusal(
      "m0-grid",
      [](const fs::path& perf) {
        perfq::Geometry g;
        g.dims = {10, 10, 10};
        perfq::io::write_nifti((perf / "sub-01_m0scan.nii.gz").string(),
                               perfq::Volume<float>(g, 1, 1000.0f).view());
      },
      "m0scan", "grid");
}

/// Rewrites the m0scan as two volumes: its own, then `second(voxel value)`.
void two_volume_m0(const fs::path& perf, float (*second)(float)) {
  const auto m0 = perfq::io::read_nifti((perf / "sub-01_m0scan.nii.gz").string());
  perfq::Series<float> two(m0.geometry(), 2);
  const std::size_t n = m0.voxel_count();
  for (std::size_t i = 0; i < n; ++i) {
    two.values()[i] = m0[i];
    two.values()[n + i] = second(m0[i]);
  }
  perfq::io::write_nifti((perf / "sub-01_m0scan.nii.gz").string(), two.view());
}

TEST(Cli, FourDimensionalM0IsAveraged) {
  // Two repeats of the same M0: their mean is the 3D M0 exactly, so CBF is identical.
  const fs::path dir = scratch("m0-4d");
  const fs::path asl = small_phantom(dir / "bids");
  Result r = run("cbf " + asl.string() + " -o " + (dir / "one").string());
  ASSERT_EQ(r.status, 0) << r.output;
  two_volume_m0(asl.parent_path(), [](float x) { return x; });
  r = run("cbf " + asl.string() + " -o " + (dir / "two").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(perfq::io::read_nifti((dir / "one" / "sub-01_cbf.nii.gz").string()).values(),
            perfq::io::read_nifti((dir / "two" / "sub-01_cbf.nii.gz").string()).values());
  EXPECT_EQ(Json::parse(read_text(dir / "one" / "sub-01_cbf.json"))["M0VolumesAveraged"], 1);
  EXPECT_EQ(Json::parse(read_text(dir / "two" / "sub-01_cbf.json"))["M0VolumesAveraged"], 2);
}

TEST(Cli, ReferenceRegionCalibrationUsesOneBloodM0) {
  // The phantom's ventricles (M0 2000, its M0 scan at TR 6 s) as the CSF reference: one M0 of
  // blood, by hand 2000 / (1 − e^(−6/4.3)) / 1.15 = 2311.894 (TE 0), and every voxel's CBF is
  // the voxelwise one times M0 / (λ · M0_blood): the same ΔM, another M0 (λ 0.9; at TR 6 s
  // the voxelwise short-TR correction does not apply).
  const fs::path dir = scratch("refregion");
  const fs::path asl = small_phantom(dir / "bids");
  const fs::path truth = dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
  const std::string ventricles = (truth / "sub-01_label-ventricles_mask.nii.gz").string();
  const std::string base = "cbf " + asl.string() + " --backend cpu -o ";
  ASSERT_EQ(run(base + (dir / "voxelwise").string()).status, 0);
  const Result r =
      run(base + (dir / "ref").string() + " --ref-tissue csf --ref-mask " + ventricles);
  ASSERT_EQ(r.status, 0) << r.output;
  const Json j = Json::parse(read_text(dir / "ref" / "sub-01_cbf.json"));
  const double m0_blood = 2000.0 / (1.0 - std::exp(-6.0 / 4.3)) / 1.15;
  EXPECT_NEAR(j["M0Calibration"]["ArterialBloodM0"].get<double>(), m0_blood, 1e-6 * m0_blood);
  EXPECT_EQ(j["M0Calibration"]["Tissue"], "csf");
  EXPECT_DOUBLE_EQ(j["M0ScaleFactor"].get<double>(), 1.0);
  const auto m0 = perfq::io::read_nifti((asl.parent_path() / "sub-01_m0scan.nii.gz").string());
  const auto voxelwise = perfq::io::read_nifti((dir / "voxelwise" / "sub-01_cbf.nii.gz").string());
  const auto ref = perfq::io::read_nifti((dir / "ref" / "sub-01_cbf.nii.gz").string());
  double worst = 0.0;
  std::size_t compared = 0;
  for (std::size_t i = 0; i < m0.size(); ++i) {
    if (voxelwise[i] == 0.0f || m0[i] <= 0.0f) continue;
    const double expected = voxelwise[i] * m0[i] / (0.9 * m0_blood);
    worst = std::max(worst, std::abs(ref[i] - expected) / std::abs(expected));
    ++compared;
  }
  EXPECT_GT(compared, 5000u);  // the brain of the 32×36×28 phantom
  EXPECT_LT(worst, 1e-5);

  // The echo time (TE 15 ms): blood's T2 decay over CSF's, e^(−0.015/0.15) / e^(−0.015/0.75).
  const Result te = run(base + (dir / "te").string() + " --ref-tissue csf --ref-mask " +
                        ventricles + " --echo-time 0.015");
  ASSERT_EQ(te.status, 0) << te.output;
  const Json k = Json::parse(read_text(dir / "te" / "sub-01_cbf.json"));
  EXPECT_NEAR(k["M0Calibration"]["ArterialBloodM0"].get<double>(),
              m0_blood * std::exp(-0.015 / 0.15) / std::exp(-0.015 / 0.75), 1e-6 * m0_blood);

  // The same TE from the m0scan sidecar's EchoTime; in milliseconds it is refused.
  const fs::path m0_json = asl.parent_path() / "sub-01_m0scan.json";
  Json m0_sidecar = Json::parse(read_text(m0_json));
  m0_sidecar["EchoTime"] = 0.015;
  write_text(m0_json, m0_sidecar.dump(2));
  ASSERT_EQ(run(base + (dir / "te-sidecar").string() + " --ref-tissue csf --ref-mask " + ventricles)
                .status,
            0);
  const Json l = Json::parse(read_text(dir / "te-sidecar" / "sub-01_cbf.json"));
  EXPECT_EQ(l["M0Calibration"]["EchoTimeSource"], "EchoTime of the M0's sidecar");
  EXPECT_DOUBLE_EQ(l["M0Calibration"]["ArterialBloodM0"].get<double>(),
                   k["M0Calibration"]["ArterialBloodM0"].get<double>());
  m0_sidecar["EchoTime"] = 15;
  write_text(m0_json, m0_sidecar.dump(2));
  const Result ms =
      run(base + (dir / "te-ms").string() + " --ref-tissue csf --ref-mask " + ventricles);
  EXPECT_EQ(ms.status, 1) << ms.output;
  EXPECT_NE(ms.output.find("sub-01_m0scan.json: EchoTime: value 15"), std::string::npos)
      << ms.output;
  // Only reference-region calibration uses the TE: voxelwise calibration is not refused.
  EXPECT_EQ(run(base + (dir / "te-unused").string()).status, 0);
  m0_sidecar.erase("EchoTime");
  write_text(m0_json, m0_sidecar.dump(2));

  // Usage: the region needs its tissue and the tissue its region; --m0-value excludes it.
  for (const std::string bad :
       {std::string(" --ref-tissue csf"), " --ref-mask " + ventricles,
        " --ref-tissue bone --ref-mask " + ventricles,
        " --ref-tissue csf --ref-mask " + ventricles + " --m0-value 1000",
        " --ref-tissue csf --ref-mask " + ventricles + " --ref-t1 0",
        " --ref-tissue csf --ref-mask " + ventricles + " --echo-time 20",  // ms
        " --ref-tissue csf --ref-mask " + ventricles + " --t2-blood 150",
        " --ref-tissue csf --ref-mask " + ventricles + " --ref-partition 3"}) {
    EXPECT_EQ(run(base + (dir / "usage").string() + bad).status, 2) << bad;
  }
  // A probability map is not a region: exit 1 naming it.
  {
    perfq::Image<float> pve = perfq::io::read_nifti(ventricles);
    for (std::size_t i = 0; i < pve.size(); ++i) pve[i] *= 0.5f;
    const fs::path pve_path = dir / "csf_pve.nii.gz";
    perfq::io::write_nifti(pve_path.string(), pve.view());
    const Result r2 =
        run(base + (dir / "pve").string() + " --ref-tissue csf --ref-mask " + pve_path.string());
    EXPECT_EQ(r2.status, 1) << r2.output;
    EXPECT_NE(r2.output.find("csf_pve.nii.gz"), std::string::npos) << r2.output;
    EXPECT_NE(r2.output.find("probability map"), std::string::npos) << r2.output;
  }
  // A region on another grid, or with no voxel: exit 1 naming the mask.
  const fs::path other = dir / "other_mask.nii.gz";
  perfq::Geometry g;
  g.dims = {4, 4, 4};
  perfq::io::write_nifti(other.string(), perfq::Mask(g, 1, 1).view());
  const Result misfit =
      run(base + (dir / "misfit").string() + " --ref-tissue csf --ref-mask " + other.string());
  EXPECT_EQ(misfit.status, 1) << misfit.output;
  EXPECT_NE(misfit.output.find("other_mask.nii.gz"), std::string::npos) << misfit.output;
  EXPECT_FALSE(folder_has_files(dir / "misfit"));
}

TEST(Cli, SmoothedM0CarriesLessNoiseIntoCbf) {
  // Noise-free ΔM, M0 with 10 % noise: CBF inherits it voxel by voxel. Smoothed inside the
  // white matter (the mask; its M0 is uniform, 1000), most of it is gone.
  const fs::path dir = scratch("m0-smooth");
  const fs::path asl = small_phantom(dir / "bids");
  const fs::path m0_path = asl.parent_path() / "sub-01_m0scan.nii.gz";
  perfq::Image<float> m0 = perfq::io::read_nifti(m0_path.string());
  std::mt19937 rng(11);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  for (std::size_t i = 0; i < m0.size(); ++i) m0[i] *= 1.0f + noise(rng);
  perfq::io::write_nifti(m0_path.string(), m0.view());
  const fs::path truth = dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
  const fs::path wm = truth / "sub-01_label-WM_mask.nii.gz";
  const std::string base = "cbf " + asl.string() + " --backend cpu --mask " + wm.string() + " -o ";
  ASSERT_EQ(run(base + (dir / "raw").string()).status, 0);
  const Result r = run(base + (dir / "smooth").string() + " --m0-smooth 8");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto expected = perfq::io::read_nifti((truth / "sub-01_cbf.nii.gz").string());
  const auto in_wm = perfq::io::read_nifti_mask(wm.string());
  auto median_error = [&](const fs::path& map) {
    const auto cbf = perfq::io::read_nifti(map.string());
    std::vector<double> errors;
    for (std::size_t i = 0; i < cbf.size(); ++i) {
      if (in_wm[i]) errors.push_back(std::abs(cbf[i] - expected[i]) / expected[i]);
    }
    std::nth_element(errors.begin(), errors.begin() + errors.size() / 2, errors.end());
    return errors[errors.size() / 2];
  };
  const double raw = median_error(dir / "raw" / "sub-01_cbf.nii.gz");
  const double smooth = median_error(dir / "smooth" / "sub-01_cbf.nii.gz");
  EXPECT_GT(raw, 0.05);  // ~0.6745 × 10 %
  EXPECT_LT(smooth, 0.4 * raw) << raw << " → " << smooth;
  const Json j = Json::parse(read_text(dir / "smooth" / "sub-01_cbf.json"));
  EXPECT_DOUBLE_EQ(j["M0Smoothing"]["FWHM"].get<double>(), 8.0);
  EXPECT_EQ(j["M0Smoothing"]["Region"], "mask");
  // One M0 value has nothing to smooth.
  EXPECT_EQ(run(base + (dir / "usage").string() + " --m0-smooth 8 --m0-value 1000").status, 2);
  EXPECT_EQ(run(base + (dir / "usage").string() + " --m0-smooth -1").status, 2);
}

TEST(Cli, InheritedSidecarsGiveTheSameCbf) {
  // The phantom's ASL and m0scan sidecars moved to the dataset root (BIDS inheritance): the
  // same CBF, bit for bit, and the output sidecar lists the file applied.
  const fs::path dir = scratch("inherited");
  const fs::path asl = small_phantom(dir / "bids");
  Result r = run("cbf " + asl.string() + " -o " + (dir / "own").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const fs::path perf = asl.parent_path();
  fs::rename(perf / "sub-01_asl.json", dir / "bids" / "asl.json");
  fs::rename(perf / "sub-01_m0scan.json", dir / "bids" / "m0scan.json");
  r = run("cbf " + asl.string() + " -o " + (dir / "inherited").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(perfq::io::read_nifti((dir / "own" / "sub-01_cbf.nii.gz").string()).values(),
            perfq::io::read_nifti((dir / "inherited" / "sub-01_cbf.nii.gz").string()).values());
  const Json j = Json::parse(read_text(dir / "inherited" / "sub-01_cbf.json"));
  ASSERT_EQ(j["Sidecars"].size(), 1u) << j.dump();
  EXPECT_EQ(fs::path(j["Sidecars"][0].get<std::string>()).filename(), "asl.json");
  ASSERT_TRUE(j.contains("M0RepetitionTime")) << j.dump();  // from the inherited m0scan.json
  EXPECT_EQ(j["M0RepetitionTime"],
            Json::parse(read_text(dir / "own" / "sub-01_cbf.json"))["M0RepetitionTime"]);
}

TEST(Cli, RefusesAnEmptyM0Volume) {
  expect_refusal(
      "m0-empty", [](const fs::path& perf) { two_volume_m0(perf, [](float) { return 0.0f; }); },
      "m0scan", "volume 1");
}

TEST(Cli, MultiDelayPhantomGivesCbfAndArrivalTime) {
  // The phantom's signal uses T1app = T1 blood, so the white-paper variant must recover it.
  const fs::path dir = scratch("multi");
  const Result made = run("phantom -o " + (dir / "bids").string() +
                          " --delays 0.25,0.5,0.75,1.0,1.25,1.5 --repeats 1");
  ASSERT_EQ(made.status, 0) << made.output;
  const fs::path truth = dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
  const Result r = run("cbf " + (dir / "bids" / "sub-01" / "perf" / "sub-01_asl.nii.gz").string() +
                       " -o " + (dir / "out").string() + " --model whitepaper --mask " +
                       (truth / "sub-01_mask.nii.gz").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("6 delays"), std::string::npos) << r.output;
  EXPECT_LT(worst_error(dir / "out" / "sub-01_cbf.nii.gz", dir / "bids"), 0.01);
  const auto att = perfq::io::read_nifti((dir / "out" / "sub-01_att.nii.gz").string());
  const auto att_truth = perfq::io::read_nifti((truth / "sub-01_att.nii.gz").string());
  const auto mask = perfq::io::read_nifti_mask((truth / "sub-01_mask.nii.gz").string());
  for (std::size_t i = 0; i < att.size(); ++i) {
    if (mask[i]) ASSERT_NEAR(att[i], att_truth[i], 0.01 * att_truth[i]) << "voxel " << i;
  }
  for (const char* name :
       {"sub-01_cbf_se.nii.gz", "sub-01_att_se.nii.gz", "sub-01_fitstatus.nii.gz"}) {
    EXPECT_TRUE(fs::exists(dir / "out" / name)) << name;
  }
  const Json j = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
  EXPECT_EQ(j["PostLabelingDelay"].size(), 6u);
  EXPECT_EQ(j["Fit"]["Weights"].size(), 6u);
  EXPECT_NE(j["Model"].get<std::string>().find("whitepaper"), std::string::npos);

  // With the arterial component: the phantom has none, so the tissue-only fit wins (aBV 0)
  // and CBF is unchanged.
  const Result art =
      run("cbf " + (dir / "bids" / "sub-01" / "perf" / "sub-01_asl.nii.gz").string() + " -o " +
          (dir / "art").string() + " --model whitepaper --arterial --mask " +
          (truth / "sub-01_mask.nii.gz").string());
  ASSERT_EQ(art.status, 0) << art.output;
  EXPECT_LT(worst_error(dir / "art" / "sub-01_cbf.nii.gz", dir / "bids"), 0.01);
  const auto abv = perfq::io::read_nifti((dir / "art" / "sub-01_abv.nii.gz").string());
  std::size_t nonzero = 0, brain = 0;
  for (std::size_t i = 0; i < abv.size(); ++i) {
    if (!mask[i]) continue;
    ++brain;
    nonzero += std::abs(abv[i]) > 1e-3f;
  }
  EXPECT_LT(nonzero, brain / 100) << nonzero << " of " << brain;
  for (const char* name : {"sub-01_abv_se.nii.gz", "sub-01_aatt.nii.gz"}) {
    EXPECT_TRUE(fs::exists(dir / "art" / name)) << name;
  }
}

TEST(Cli, AttPriorRecordsItsNoiseModel) {
  const fs::path dir = scratch("prior-noise");
  const Result made = run("phantom -o " + (dir / "bids").string() +
                          " --delays 0.25,0.5,0.75,1.0,1.25,1.5 --repeats 1 --snr 10");
  ASSERT_EQ(made.status, 0) << made.output;
  const fs::path truth = dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
  const std::string cbf =
      "cbf " + (dir / "bids" / "sub-01" / "perf" / "sub-01_asl.nii.gz").string() +
      " --model whitepaper --att-prior --mask " + (truth / "sub-01_mask.nii.gz").string() + " -o ";
  // Default: noise homogeneous in ΔM, referred to the median M0 of the fitted voxels.
  Result r = run(cbf + (dir / "m0").string());
  ASSERT_EQ(r.status, 0) << r.output;
  Json fit = Json::parse(read_text(dir / "m0" / "sub-01_cbf.json"))["Fit"];
  EXPECT_EQ(fit["PriorNoise"], "m0");
  const auto m0 =
      perfq::io::read_nifti((dir / "bids" / "sub-01" / "perf" / "sub-01_m0scan.nii.gz").string());
  const auto mask = perfq::io::read_nifti_mask((truth / "sub-01_mask.nii.gz").string());
  std::vector<float> brain_m0;
  for (std::size_t i = 0; i < m0.size(); ++i) {
    if (mask[i]) brain_m0.push_back(m0[i]);
  }
  const auto [lowest, highest] = std::minmax_element(brain_m0.begin(), brain_m0.end());
  ASSERT_TRUE(fit.contains("NoiseReferenceM0")) << fit.dump();
  EXPECT_GE(fit["NoiseReferenceM0"].get<double>(), *lowest);
  EXPECT_LE(fit["NoiseReferenceM0"].get<double>(), *highest);
  EXPECT_GT(fit["PooledNoiseVariance"].get<double>(), 0.0);
  // One variance in ΔM/M0 for every voxel: no reference M0, other transit times.
  r = run(cbf + (dir / "uniform").string() + " --prior-noise uniform");
  ASSERT_EQ(r.status, 0) << r.output;
  fit = Json::parse(read_text(dir / "uniform" / "sub-01_cbf.json"))["Fit"];
  EXPECT_EQ(fit["PriorNoise"], "uniform");
  EXPECT_FALSE(fit.contains("NoiseReferenceM0")) << fit.dump();
  EXPECT_NE(read_text(dir / "m0" / "sub-01_att.nii.gz"),
            read_text(dir / "uniform" / "sub-01_att.nii.gz"));
  r = run(cbf + (dir / "bad").string() + " --prior-noise pooled");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("--prior-noise"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "bad"));
  // The arterial arrival's prior: BASIL's defaults (ATT prior mean − 0.3 s, the ATT prior's
  // SD) unless given; recorded beside the ATT prior's.
  r = run(cbf + (dir / "arterial").string() + " --arterial --att-prior-mean 1.4");
  ASSERT_EQ(r.status, 0) << r.output;
  fit = Json::parse(read_text(dir / "arterial" / "sub-01_cbf.json"))["Fit"];
  EXPECT_NEAR(fit["ArterialATTPriorMean"].get<double>(), 1.1, 1e-6) << fit.dump();
  EXPECT_NEAR(fit["ArterialATTPriorSD"].get<double>(), 1.0, 1e-6) << fit.dump();
  r = run(cbf + (dir / "arterial-given").string() +
          " --arterial --aatt-prior-mean 0.6 --aatt-prior-sd 0.4");
  ASSERT_EQ(r.status, 0) << r.output;
  fit = Json::parse(read_text(dir / "arterial-given" / "sub-01_cbf.json"))["Fit"];
  EXPECT_NEAR(fit["ArterialATTPriorMean"].get<double>(), 0.6, 1e-6) << fit.dump();
  EXPECT_NEAR(fit["ArterialATTPriorSD"].get<double>(), 0.4, 1e-6) << fit.dump();
  EXPECT_FALSE(Json::parse(read_text(dir / "m0" / "sub-01_cbf.json"))["Fit"].contains(
      "ArterialATTPriorMean"));
  // Without the arterial component (or without the prior) the options mean nothing: refused.
  for (const std::string bad : {" --aatt-prior-mean 0.6", " --arterial --aatt-prior-sd 0"}) {
    r = run(cbf + (dir / "bad").string() + bad);
    EXPECT_EQ(r.status, 2) << bad << ": " << r.output;
    EXPECT_NE(r.output.find("aatt-prior"), std::string::npos) << bad << ": " << r.output;
    EXPECT_FALSE(fs::exists(dir / "bad")) << bad;
  }
  r = run("cbf " + (dir / "bids" / "sub-01" / "perf" / "sub-01_asl.nii.gz").string() + " -o " +
          (dir / "bad").string() + " --arterial --aatt-prior-mean 0.6");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("--att-prior"), std::string::npos) << r.output;
}

TEST(Cli, SpatialPriorLowersTheErrorOnTheNoisyPhantom) {
  const fs::path dir = scratch("spatial");
  const Result made = run("phantom -o " + (dir / "bids").string() +
                          " --delays 0.25,0.5,0.75,1.0,1.25,1.5 --repeats 1 --snr 3");
  ASSERT_EQ(made.status, 0) << made.output;
  const fs::path truth = dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
  const std::string cbf =
      "cbf " + (dir / "bids" / "sub-01" / "perf" / "sub-01_asl.nii.gz").string() +
      " --backend cpu --att-prior --mask " + (truth / "sub-01_mask.nii.gz").string() + " -o ";
  Result r = run(cbf + (dir / "voxelwise").string());
  ASSERT_EQ(r.status, 0) << r.output;
  r = run(cbf + (dir / "spatial").string() + " --spatial");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto expected = perfq::io::read_nifti((truth / "sub-01_cbf.nii.gz").string());
  const auto mask = perfq::io::read_nifti_mask((truth / "sub-01_mask.nii.gz").string());
  auto median_error = [&](const fs::path& path) {
    const auto cbf_map = perfq::io::read_nifti(path.string());
    std::vector<double> errors;
    for (std::size_t i = 0; i < cbf_map.size(); ++i) {
      if (mask[i]) errors.push_back(std::abs(double(cbf_map[i]) - expected[i]));
    }
    std::nth_element(errors.begin(), errors.begin() + errors.size() / 2, errors.end());
    return errors[errors.size() / 2];
  };
  const double before = median_error(dir / "voxelwise" / "sub-01_cbf.nii.gz");
  const double after = median_error(dir / "spatial" / "sub-01_cbf.nii.gz");
  std::printf("phantom, SNR 3: median |CBF error| %.2f -> %.2f ml/100 g/min\n", before, after);
  EXPECT_LT(after, before);
  const Json fit = Json::parse(read_text(dir / "spatial" / "sub-01_cbf.json"))["Fit"];
  EXPECT_EQ(fit["SpatialPrior"], true) << fit.dump();
  EXPECT_GT(fit["SpatialPrecisionCBF"].get<double>(), 0.0) << fit.dump();
  EXPECT_GE(fit["SpatialIterations"].get<int>(), 1) << fit.dump();
  EXPECT_EQ(Json::parse(read_text(dir / "voxelwise" / "sub-01_cbf.json"))["Fit"]["SpatialPrior"],
            false);
}

TEST(Cli, MultiDelayWithDispersionRecordsTheKernel) {
  // The phantom is undispersed: the dispersed fit must run, record its kernel and give sane
  // maps (arrival earlier by about the kernel's mean extra delay, CBF close to the truth).
  const fs::path dir = scratch("dispersion");
  const Result made = run("phantom -o " + (dir / "bids").string() +
                          " --delays 0.25,0.5,0.75,1.0,1.25,1.5 --repeats 1");
  ASSERT_EQ(made.status, 0) << made.output;
  const fs::path truth = dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
  const std::string asl = (dir / "bids" / "sub-01" / "perf" / "sub-01_asl.nii.gz").string();
  const std::string mask = " --mask " + (truth / "sub-01_mask.nii.gz").string();
  const Result r =
      run("cbf " + asl + " -o " + (dir / "out").string() +
          " --model whitepaper --dispersion gamma --dispersion-s 5 --dispersion-p 0.2" + mask);
  ASSERT_EQ(r.status, 0) << r.output;
  const Json j = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
  EXPECT_EQ(j["Fit"]["Dispersion"]["Kernel"], "gamma");
  EXPECT_DOUBLE_EQ(j["Fit"]["Dispersion"]["Sharpness"].get<double>(), 5.0);
  EXPECT_DOUBLE_EQ(j["Fit"]["Dispersion"]["TimeToPeak"].get<double>(), 0.2);
  const auto cbf = perfq::io::read_nifti((dir / "out" / "sub-01_cbf.nii.gz").string());
  const auto att = perfq::io::read_nifti((dir / "out" / "sub-01_att.nii.gz").string());
  const auto cbf_truth = perfq::io::read_nifti((truth / "sub-01_cbf.nii.gz").string());
  const auto att_truth = perfq::io::read_nifti((truth / "sub-01_att.nii.gz").string());
  const auto brain = perfq::io::read_nifti_mask((truth / "sub-01_mask.nii.gz").string());
  double att_shift = 0, cbf_ratio = 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < cbf.size(); ++i) {
    if (!brain[i] || cbf_truth[i] <= 0) continue;
    att_shift += att[i] - att_truth[i];
    cbf_ratio += cbf[i] / cbf_truth[i];
    ++n;
  }
  ASSERT_GT(n, 100u);
  att_shift /= n;
  cbf_ratio /= n;
  EXPECT_LT(att_shift, -0.1) << "mean extra delay (1 + s p)/s = 0.4 s";
  EXPECT_GT(att_shift, -0.6);
  EXPECT_NEAR(cbf_ratio, 1.0, 0.25);
  // The default records that there is none.
  const Result plain =
      run("cbf " + asl + " -o " + (dir / "plain").string() + " --model whitepaper" + mask);
  ASSERT_EQ(plain.status, 0) << plain.output;
  EXPECT_EQ(
      Json::parse(read_text(dir / "plain" / "sub-01_cbf.json"))["Fit"]["Dispersion"]["Kernel"],
      "none");
  // Bad usage: exit 2 with a message naming the option.
  for (const std::string bad :
       {"--dispersion gauss", "--dispersion-s 5", "--dispersion gamma --dispersion-s 0",
        "--dispersion gamma --dispersion-p -1",
        "--dispersion gamma --dispersion-s 50 --dispersion-p 1"}) {
    const Result b = run("cbf " + asl + " -o " + (dir / "bad").string() + " " + bad);
    EXPECT_EQ(b.status, 2) << bad << ": " << b.output;
    EXPECT_NE(b.output.find("--dispersion"), std::string::npos) << bad << ": " << b.output;
  }
  const Result help = run("cbf --help");
  EXPECT_NE(help.output.find("--dispersion KERNEL"), std::string::npos) << help.output;
}

TEST(Cli, PartialVolumeCorrectionWritesGreyAndWhiteMatterCbf) {
  const fs::path dir = scratch("pvc");
  const fs::path asl = small_phantom(dir / "bids");
  const fs::path truth = dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
  const auto dseg = perfq::io::read_nifti((truth / "sub-01_dseg.nii.gz").string());
  perfq::Volume<float> gm(dseg.geometry()), wm(dseg.geometry());
  for (std::size_t i = 0; i < dseg.size(); ++i) {
    gm[i] = dseg[i] == 2.0f;
    wm[i] = dseg[i] == 3.0f;
  }
  perfq::io::write_nifti((dir / "gm.nii.gz").string(), gm.view());
  perfq::io::write_nifti((dir / "wm.nii.gz").string(), wm.view());
  const Result r = run("cbf " + asl.string() + " -o " + (dir / "out").string() + " --pvc-gm " +
                       (dir / "gm.nii.gz").string() + " --pvc-wm " + (dir / "wm.nii.gz").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto cbf_gm = perfq::io::read_nifti((dir / "out" / "sub-01_cbf_gm.nii.gz").string());
  const auto cbf_wm = perfq::io::read_nifti((dir / "out" / "sub-01_cbf_wm.nii.gz").string());
  const auto cbf_truth = perfq::io::read_nifti((truth / "sub-01_cbf.nii.gz").string());
  std::vector<double> gm_error, wm_error;
  for (std::size_t i = 0; i < dseg.size(); ++i) {
    if (gm[i] > 0) gm_error.push_back(std::abs(cbf_gm[i] - cbf_truth[i]) / cbf_truth[i]);
    if (wm[i] > 0) wm_error.push_back(std::abs(cbf_wm[i] - cbf_truth[i]) / cbf_truth[i]);
  }
  // Crisp tissues: each tissue's CBF is its local mean, close to the voxel's own.
  std::nth_element(gm_error.begin(), gm_error.begin() + gm_error.size() / 2, gm_error.end());
  std::nth_element(wm_error.begin(), wm_error.begin() + wm_error.size() / 2, wm_error.end());
  EXPECT_LT(gm_error[gm_error.size() / 2], 0.05);
  EXPECT_LT(wm_error[wm_error.size() / 2], 0.05);
  const Json j = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
  EXPECT_EQ(j["PartialVolumeCorrection"]["Kernel"][0], 5);
  // Only one of the pair is a usage error.
  EXPECT_EQ(run("cbf " + asl.string() + " -o " + (dir / "out2").string() + " --pvc-gm " +
                (dir / "gm.nii.gz").string())
                .status,
            2);
}

TEST(Cli, MultiDelayOptionsAreValidated) {
  EXPECT_EQ(run("cbf x_asl.nii.gz -o out --model fabber").status, 2);
  EXPECT_EQ(run("cbf x_asl.nii.gz -o out --att-max soon").status, 2);
}

TEST(Cli, CudaBackendWithoutDeviceIsAClearError) {
  if (perfq::cuda_available()) GTEST_SKIP() << "a CUDA device is present";
  const fs::path dir = scratch("cuda");
  const fs::path asl = small_phantom(dir / "bids");
  const Result r = run("cbf " + asl.string() + " -o " + (dir / "out").string() + " --backend cuda");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("CUDA"), std::string::npos) << r.output;
  EXPECT_FALSE(folder_has_files(dir / "out"));
}

TEST(Cli, UsageErrorsExitWithStatus2) {
  EXPECT_EQ(run("").status, 2);
  EXPECT_EQ(run("frobnicate").status, 2);
  EXPECT_EQ(run("cbf").status, 2);
  EXPECT_EQ(run("cbf x_asl.nii.gz").status, 2);  // no -o
  EXPECT_EQ(run("cbf x_asl.nii.gz -o out --lambda abc").status, 2);
  EXPECT_EQ(run("cbf x_asl.nii.gz -o out --backend gpu").status, 2);
  const Result help = run("cbf --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.output.find("--lambda"), std::string::npos);
  const Result missing =
      run("cbf /nonexistent/sub-01_asl.nii.gz -o " + scratch("missing").string());
  EXPECT_EQ(missing.status, 1) << missing.output;
  EXPECT_NE(missing.output.find("/nonexistent/sub-01_asl.nii.gz: file not found"),
            std::string::npos);
}

}  // namespace
