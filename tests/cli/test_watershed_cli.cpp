// perfq watershed end to end: the phantom's atlas and timing, refusals, usage, and the JHU
// arterial-territory atlas on the MNI152 grid (skipped when ../shared/data is absent).
#include <perfq/distance.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/phantom.hpp>
#include <perfq/watershed.hpp>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "cli_test_util.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

using namespace cli_test;  // run, Result, read_text, write_text, scratch_dir

fs::path scratch(const std::string& name) { return cli_test::scratch_dir("watershed-" + name); }

std::size_t file_count(const fs::path& dir) {
  if (!fs::exists(dir)) return 0;
  std::size_t n = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) n += entry.is_regular_file();
  return n;
}

/// The phantom, written once per test into `dir`/bids; returns its truth folder.
struct PhantomFiles {
  perfq::Phantom phantom;
  fs::path truth;
  std::string file(const std::string& suffix) const {
    return (truth / ("sub-01_" + suffix + ".nii.gz")).string();
  }
};

PhantomFiles phantom_files(const fs::path& dir) {
  perfq::PhantomOptions o;
  o.repeats = 1;
  PhantomFiles p{perfq::make_phantom(o),
                 dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf"};
  perfq::io::write_phantom_bids(p.phantom, (dir / "bids").string());
  return p;
}

TEST(WatershedCli, AtlasBorderZonesFromThePhantom) {
  const fs::path dir = scratch("atlas");
  const PhantomFiles p = phantom_files(dir);
  const fs::path out = dir / "out" / "sub-01_desc-watershed_mask.nii.gz";
  const Result r =
      run("watershed --territories " + p.file("territories") + " --brain " + p.file("mask") +
          " --width 16 -o " + out.string() + " --names " +
          (p.truth / "sub-01_territories.tsv").string() + " --wm " + p.file("label-WM_mask") +
          " --gm " + p.file("label-GM_mask") + " --ventricles " + p.file("label-ventricles_mask") +
          " --reference " + p.file("label-borderzone_mask") + " --backend cpu");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(file_count(dir / "out"), 6u)
      << r.output;  // mask, pairs, internal, external, caps, json

  // The same as the library's, on the input's grid.
  const auto expected = perfq::border_zones(p.phantom.territories, p.phantom.brain.view(), 16.0);
  const auto mask = perfq::io::read_nifti_mask(out.string());
  EXPECT_EQ(mask.values(), expected.mask.values());
  EXPECT_TRUE(mask.geometry().same_grid(p.phantom.brain.geometry(), 1e-6));
  const auto pairs = perfq::io::read_nifti_labels(
      (dir / "out" / "sub-01_desc-watershed_mask_pairs.nii.gz").string());
  EXPECT_EQ(pairs.values(), expected.pairs.values());
  const auto internal = perfq::io::read_nifti_mask(
      (dir / "out" / "sub-01_desc-watershed_mask_internal.nii.gz").string());
  const auto external = perfq::io::read_nifti_mask(
      (dir / "out" / "sub-01_desc-watershed_mask_external.nii.gz").string());
  for (std::size_t i = 0; i < mask.size(); ++i) {
    ASSERT_EQ(internal[i] + external[i], mask[i]) << "voxel " << i;  // GM ∪ WM = brain
    if (internal[i]) ASSERT_EQ(p.phantom.tissue[i], perfq::kWhiteMatter);
  }

  const Json j = Json::parse(read_text(dir / "out" / "sub-01_desc-watershed_mask.json"));
  EXPECT_EQ(j["GeneratedBy"]["Version"], PERFQ_VERSION_STRING);
  EXPECT_EQ(j["GeneratedBy"]["Backend"], "cpu");
  EXPECT_DOUBLE_EQ(j["Atlas"]["Width"].get<double>(), 16.0);
  EXPECT_EQ(j["Atlas"]["TerritoryLabels"], Json::array({1, 2, 3}));
  EXPECT_EQ(j["Pairs"]["1002"]["Names"], Json::array({"ACA", "MCA"}));
  EXPECT_EQ(j["Pairs"]["2003"]["Names"], Json::array({"MCA", "PCA"}));
  EXPECT_FALSE(j["Pairs"].contains("1003"));  // ACA and PCA do not meet in the phantom
  EXPECT_GE(j["Reference"]["Dice"].get<double>(), 0.8);
  EXPECT_GT(j["PeriventricularCaps"]["FrontalVoxels"].get<int>(), 0);
  EXPECT_GT(j["PeriventricularCaps"]["OccipitalVoxels"].get<int>(), 0);
  EXPECT_EQ(j["Files"]["Pairs"], "sub-01_desc-watershed_mask_pairs.nii.gz");
}

TEST(WatershedCli, PhantomTruthHoldsTheMasks) {
  const fs::path dir = scratch("truth");
  perfq::PhantomOptions o;
  o.dims = {32, 36, 28};
  o.repeats = 1;
  o.lesions = 4;
  const perfq::Phantom phantom = perfq::make_phantom(o);
  perfq::io::write_phantom_bids(phantom, (dir / "bids").string());
  const fs::path truth = dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
  auto mask = [&](const std::string& label) {
    return perfq::io::read_nifti_mask(
        (truth / ("sub-01_label-" + label + "_mask.nii.gz")).string());
  };
  EXPECT_EQ(mask("ventricles").values(), phantom.ventricles.values());
  EXPECT_EQ(mask("borderzone").values(), phantom.border_zone.values());
  EXPECT_EQ(mask("lesion").values(), phantom.lesions.values());
  const auto wm = mask("WM"), gm = mask("GM");
  for (std::size_t i = 0; i < wm.size(); ++i) {
    ASSERT_EQ(wm[i], phantom.tissue[i] == perfq::kWhiteMatter ? 1 : 0);
    ASSERT_EQ(gm[i], phantom.tissue[i] == perfq::kGreyMatter ? 1 : 0);
  }
}

TEST(WatershedCli, FloatLabelsAndGroups) {
  const fs::path dir = scratch("groups");
  const PhantomFiles p = phantom_files(dir);
  // Labels stored as float, grouped: MCA and PCA become one territory.
  perfq::Volume<float> as_float(p.phantom.territories.geometry());
  for (std::size_t i = 0; i < as_float.size(); ++i) as_float[i] = float(p.phantom.territories[i]);
  perfq::io::write_nifti((dir / "labels.nii.gz").string(), as_float.view());
  write_text(dir / "groups.tsv", "label\tgroup\tname\n1\t1\tACA\n2\t2\tMCA\n3\t2\tPCA\n");
  const Result r =
      run("watershed --territories " + (dir / "labels.nii.gz").string() + " --groups " +
          (dir / "groups.tsv").string() + " --width 9 -o " + (dir / "out" / "bz.nii").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const Json j = Json::parse(read_text(dir / "out" / "bz.json"));
  EXPECT_EQ(j["Atlas"]["TerritoryLabels"], Json::array({1, 2}));
  EXPECT_EQ(j["Pairs"].size(), 1u);
  EXPECT_TRUE(j["Pairs"].contains("1002"));
  EXPECT_TRUE(fs::exists(dir / "out" / "bz_pairs.nii"));
}

TEST(WatershedCli, TimingRecoversThePhantomsDesignedBorderZones) {
  const fs::path dir = scratch("timing");
  const PhantomFiles p = phantom_files(dir);
  // The designed border zones in white matter, and their share of it.
  perfq::Mask designed(p.phantom.brain.geometry());
  double in_zone = 0, wm = 0;
  for (std::size_t i = 0; i < designed.size(); ++i) {
    const bool white = p.phantom.tissue[i] == perfq::kWhiteMatter;
    designed[i] = white && p.phantom.border_zone[i];
    in_zone += designed[i];
    wm += white;
  }
  perfq::io::write_nifti((dir / "designed.nii.gz").string(), designed.view());
  const std::string percentile = std::to_string(100.0 * (1.0 - in_zone / wm));
  const Result r =
      run("watershed --att " + p.file("att") + " --tissue " + p.file("label-WM_mask") +
          " --att-percentile " + percentile + " --min-volume 0.5 --reference " +
          (dir / "designed.nii.gz").string() + " -o " + (dir / "out" / "att.nii.gz").string());
  ASSERT_EQ(r.status, 0) << r.output;
  Json j = Json::parse(read_text(dir / "out" / "att.json"));
  EXPECT_GE(j["Reference"]["Dice"].get<double>(), 0.8) << r.output;
  EXPECT_EQ(j["Timing"]["Kind"], "ATT");
  EXPECT_EQ(j["Timing"]["Connectivity"], 26);
  EXPECT_FALSE(fs::exists(dir / "out" / "att_pairs.nii.gz"));  // timing has no pairs

  // White and grey matter, each with its own cut (0.3 s above its baseline ATT): the union
  // is the whole designed border zone.
  const Result two =
      run("watershed --att " + p.file("att") + " --tissue " + p.file("label-WM_mask") + "," +
          p.file("label-GM_mask") + " --att-threshold 1.40,1.10 --reference " +
          p.file("label-borderzone_mask") + " -o " + (dir / "out" / "two.nii.gz").string());
  ASSERT_EQ(two.status, 0) << two.output;
  j = Json::parse(read_text(dir / "out" / "two.json"));
  EXPECT_GE(j["Reference"]["Dice"].get<double>(), 0.95) << two.output;
  ASSERT_EQ(j["Timing"]["Tissues"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["Timing"]["Tissues"][1]["Cut"].get<double>(), 1.10);

  // Atlas and timing intersected: within both.
  const Result both = run("watershed --territories " + p.file("territories") + " --width 16 " +
                          "--att " + p.file("att") + " --tissue " + p.file("label-WM_mask") +
                          " --att-threshold 1.35 --combine intersection -o " +
                          (dir / "out" / "both.nii.gz").string());
  ASSERT_EQ(both.status, 0) << both.output;
  const auto mask = perfq::io::read_nifti_mask((dir / "out" / "both.nii.gz").string());
  const auto atlas = perfq::border_zones(p.phantom.territories, std::nullopt, 16.0);
  for (std::size_t i = 0; i < mask.size(); ++i) {
    if (mask[i]) {
      ASSERT_TRUE(atlas.mask[i] && p.phantom.att[i] >= 1.35f) << "voxel " << i;
    }
  }
  j = Json::parse(read_text(dir / "out" / "both.json"));
  EXPECT_EQ(j["Combination"], "intersection");

  // The single-delay surrogate runs and records its kernel.
  const Result cov =
      run("watershed --cbf " + p.file("cbf") + " --tissue " + p.file("label-WM_mask") +
          " --cov-percentile 80 --cov-radius 7.5 -o " + (dir / "out" / "cov.nii.gz").string());
  ASSERT_EQ(cov.status, 0) << cov.output;
  j = Json::parse(read_text(dir / "out" / "cov.json"));
  EXPECT_NE(j["Timing"]["Kind"].get<std::string>().find("CoV"), std::string::npos);
  EXPECT_DOUBLE_EQ(j["Timing"]["CovRadius"].get<double>(), 7.5);
}

TEST(WatershedCli, ProbabilisticTerritoriesAs4DOrList) {
  const fs::path dir = scratch("probabilities");
  const PhantomFiles p = phantom_files(dir);
  // Soft territories: weights e^(−d/6 mm) of the distance to each territory, normalised.
  const auto& g = p.phantom.brain.geometry();
  perfq::Series<float> prob(g, 3);
  for (std::int32_t t = 1; t <= 3; ++t) {
    perfq::Mask sites(g);
    for (std::size_t i = 0; i < sites.size(); ++i) sites[i] = p.phantom.territories[i] == t;
    const auto d = perfq::distance_map(sites);
    for (std::size_t i = 0; i < sites.size(); ++i) {
      prob[(t - 1) * g.voxel_count() + i] = std::exp(-d[i] / 6.0f);
    }
  }
  std::string list;
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    const float sum = prob[i] + prob[g.voxel_count() + i] + prob[2 * g.voxel_count() + i];
    for (int k = 0; k < 3; ++k) prob[k * g.voxel_count() + i] /= sum;
  }
  perfq::io::write_nifti((dir / "prob4d.nii.gz").string(), prob.view());
  for (std::size_t k = 0; k < 3; ++k) {
    const fs::path one = dir / ("prob" + std::to_string(k + 1) + ".nii.gz");
    perfq::io::write_nifti(one.string(), prob.volume(k));
    list += (k ? "," : "") + one.string();
  }
  const auto expected =
      perfq::border_zones_from_probabilities(prob.view(), p.phantom.brain.view(), 0.3);
  for (const std::string& source : {(dir / "prob4d.nii.gz").string(), list}) {
    const fs::path out = dir / "out" / "bz.nii.gz";
    const Result r = run("watershed --probabilities " + source + " --prob-threshold 0.3 --brain " +
                         p.file("mask") + " -o " + out.string() + " --overwrite");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(perfq::io::read_nifti_mask(out.string()).values(), expected.mask.values());
    EXPECT_EQ(perfq::io::read_nifti_labels((dir / "out" / "bz_pairs.nii.gz").string()).values(),
              expected.pairs.values());
    const Json j = Json::parse(read_text(dir / "out" / "bz.json"));
    EXPECT_DOUBLE_EQ(j["Atlas"]["ProbabilityThreshold"].get<double>(), 0.3);
    EXPECT_TRUE(j["Pairs"].contains("1002"));
  }
}

/// Runs `arguments` (with -o into a fresh folder), expects exit 1, a message naming
/// `file_part` and `what`, and no output at all.
void expect_refusal(const fs::path& dir, const std::string& arguments, const std::string& file_part,
                    const std::string& what) {
  const fs::path out = dir / "refused";
  fs::remove_all(out);
  const Result r = run("watershed " + arguments + " -o " + (out / "bz.nii.gz").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(file_part), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(what), std::string::npos) << r.output;
  EXPECT_EQ(file_count(out), 0u) << r.output;
}

TEST(WatershedCli, BadInputsAreRefusedWithoutOutput) {
  const fs::path dir = scratch("refusals");
  const PhantomFiles p = phantom_files(dir);
  perfq::Geometry other;
  other.dims = {10, 10, 10};
  perfq::io::write_nifti((dir / "small.nii.gz").string(), perfq::Mask(other, 1, 1).view());
  expect_refusal(dir,
                 "--territories " + p.file("territories") + " --width 8 --brain " +
                     (dir / "small.nii.gz").string(),
                 "small.nii.gz", "grid");

  perfq::Volume<float> fractional(p.phantom.territories.geometry());
  for (std::size_t i = 0; i < fractional.size(); ++i) fractional[i] = p.phantom.territories[i];
  fractional[fractional.size() / 2] = 1.5f;
  perfq::io::write_nifti((dir / "fractional.nii.gz").string(), fractional.view());
  expect_refusal(dir, "--territories " + (dir / "fractional.nii.gz").string() + " --width 8",
                 "fractional.nii.gz", "integer");

  perfq::Volume<std::int32_t> single = p.phantom.territories;
  for (auto& v : single.values()) v = v != 0 ? 2 : 0;
  perfq::io::write_nifti((dir / "single.nii.gz").string(), single.view());
  expect_refusal(dir, "--territories " + (dir / "single.nii.gz").string() + " --width 8",
                 "single.nii.gz", "two territories");

  write_text(dir / "nogroup.tsv", "label\tname\n1\tACA\n");
  expect_refusal(dir,
                 "--territories " + p.file("territories") + " --width 8 --groups " +
                     (dir / "nogroup.tsv").string(),
                 "nogroup.tsv", "group");
  write_text(dir / "partial.tsv", "label\tgroup\n1\t1\n2\t2\n");
  expect_refusal(dir,
                 "--territories " + p.file("territories") + " --width 8 --groups " +
                     (dir / "partial.tsv").string(),
                 "partial.tsv", "label 3");
  write_text(dir / "extra.tsv", "label\tgroup\n1\t1\n2\t2\n3\t3\n4\t3\n");
  expect_refusal(dir,
                 "--territories " + p.file("territories") + " --width 8 --groups " +
                     (dir / "extra.tsv").string(),
                 "extra.tsv", "empty");

  perfq::Volume<float> att = p.phantom.att;
  for (std::size_t i = 0; i < att.size(); ++i) {
    if (p.phantom.tissue[i] == perfq::kWhiteMatter) {
      att[i] = NAN;
      break;
    }
  }
  perfq::io::write_nifti((dir / "nan_att.nii.gz").string(), att.view());
  expect_refusal(dir,
                 "--att " + (dir / "nan_att.nii.gz").string() + " --tissue " +
                     p.file("label-WM_mask") + " --att-threshold 1.3",
                 "nan_att.nii.gz", "NaN");
  expect_refusal(dir, "--territories /nonexistent/labels.nii.gz --width 8",
                 "/nonexistent/labels.nii.gz", "not found");
}

TEST(WatershedCli, UsageErrorsExitWith2AndHelpListsEveryOption) {
  const std::string t = " --territories t.nii.gz";
  EXPECT_EQ(run("watershed").status, 2);
  EXPECT_EQ(run("watershed -o x.nii.gz").status, 2);                  // no source
  EXPECT_EQ(run("watershed" + t + " -o x.nii.gz").status, 2);         // no width
  EXPECT_EQ(run("watershed" + t + " --width 8").status, 2);           // no -o
  EXPECT_EQ(run("watershed" + t + " --width 8 -o x.txt").status, 2);  // not NIfTI
  EXPECT_EQ(run("watershed" + t + " --width -3 -o x.nii.gz").status, 2);
  EXPECT_EQ(run("watershed" + t + " --width abc -o x.nii.gz").status, 2);
  EXPECT_EQ(run("watershed --att a.nii.gz --att-threshold 1 -o x.nii.gz").status, 2);  // tissue
  EXPECT_EQ(run("watershed --att a.nii.gz --tissue w.nii.gz --att-threshold 1 "
                "--att-percentile 80 -o x.nii.gz")
                .status,
            2);
  EXPECT_EQ(run("watershed --att a.nii.gz --tissue w.nii.gz --cov-threshold 1 -o x.nii.gz").status,
            2);
  EXPECT_EQ(run("watershed --att a.nii.gz --tissue w.nii.gz --att-threshold 1 "
                "--connectivity 18 -o x.nii.gz")
                .status,
            2);
  EXPECT_EQ(run("watershed" + t + " --width 8 --combine union -o x.nii.gz").status, 2);
  EXPECT_EQ(run("watershed --att a.nii.gz --tissue w.nii.gz,g.nii.gz --att-threshold 1,2,3 "
                "-o x.nii.gz")
                .status,
            2);  // neither one value nor one per tissue
  EXPECT_EQ(run("watershed" + t + " --width 8 --frobnicate -o x.nii.gz").status, 2);
  const Result help = run("watershed --help");
  EXPECT_EQ(help.status, 0);
  for (const char* option : {"--territories",   "--width",
                             "--groups",        "--names",
                             "--probabilities", "--prob-threshold",
                             "--brain",         "--att",
                             "--cbf",           "--cov-radius",
                             "--tissue",        "--tissue-threshold",
                             "--att-threshold", "--att-percentile",
                             "--cov-threshold", "--cov-percentile",
                             "--min-volume",    "--connectivity",
                             "--combine",       "--wm",
                             "--wm-threshold",  "--gm",
                             "--gm-threshold",  "--ventricles",
                             "--cap-distance",  "--horn-fraction",
                             "--reference",     "--output",
                             "--backend",       "--device",
                             "--threads"}) {
    EXPECT_NE(help.output.find(option), std::string::npos) << option;
  }
}

// ---- the JHU arterial-territory atlas (real data, when present) --------------------------

TEST(WatershedCli, JhuArterialTerritoriesOnMni152) {
  const fs::path data = fs::path(PERFQ_SHARED_DATA) / "mni152-2mm";
  if (!fs::exists(data)) {
    GTEST_SKIP() << "no reference atlases at " << data.string()
                 << " (the JHU arterial territories and MNI152 masks; see ../shared/data)";
  }
  const fs::path atlas =
      data / "JHU-ArterialTerritoriesNoVent-LVL2_space-MNI152NLin6Asym_2mm.nii.gz";
  const fs::path brain = data / "MNI152_T1_2mm_Brain_Mask.nii.gz";
  const fs::path dir = scratch("jhu");
  // Names from the atlas' region list (one per line, label = line number).
  std::ifstream regions(data / "JHU-ArterialTerritoriesNoVent-LVL2_regions.txt");
  std::string names = "index\tname\n", line;
  for (int label = 1; std::getline(regions, line); ++label) {
    if (!line.empty()) names += std::to_string(label) + "\t" + line + "\n";
  }
  write_text(dir / "names.tsv", names);
  const fs::path out = dir / "jhu_bz.nii.gz";
  const Result r =
      run("watershed --territories " + atlas.string() + " --brain " + brain.string() +
          " --width 8 --names " + (dir / "names.tsv").string() + " -o " + out.string());
  ASSERT_EQ(r.status, 0) << r.output;

  const auto mask = perfq::io::read_nifti_mask(out.string());
  const auto inside = perfq::io::read_nifti_mask(brain.string());
  const auto pairs = perfq::io::read_nifti_labels((dir / "jhu_bz_pairs.nii.gz").string());
  std::size_t voxels = 0, outside = 0;
  std::map<std::int32_t, std::size_t> per_pair;
  for (std::size_t i = 0; i < mask.size(); ++i) {
    if (!mask[i]) continue;
    ++voxels;
    outside += inside[i] == 0;
    ++per_pair[pairs[i]];
  }
  EXPECT_GT(voxels, 10000u);  // 8 mm zones on a 2 mm grid: tens of thousands of voxels
  EXPECT_EQ(outside, 0u);
  EXPECT_EQ(per_pair.count(0), 0u);  // every border-zone voxel names its pair
  // ACA–MCA and MCA–PCA in each hemisphere (1 ACAL, 2 ACAR, 3 MCAL, 4 MCAR, 5 PCAL, 6 PCAR).
  for (std::int32_t code : {1003, 2004, 3005, 4006}) {
    EXPECT_GT(per_pair[code], voxels / 50) << "pair " << code;
  }
  // ACA of one side and PCA of the other hardly meet.
  EXPECT_LT(per_pair[1006] + per_pair[2005], voxels / 200);
  const Json j = Json::parse(read_text(dir / "jhu_bz.json"));
  EXPECT_EQ(j["Atlas"]["TerritoryLabels"], Json::array({1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(j["Pairs"]["1003"]["Names"], Json::array({"ACAL", "MCAL"}));
}

}  // namespace
