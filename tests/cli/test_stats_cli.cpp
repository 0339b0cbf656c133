// perfq stats end to end: the phantom's truth by tissue and by territory, baseline, weights and
// names, and the refusals (exit 1 naming the file, exit 2 for usage) that leave no output.
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
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

using namespace cli_test;  // run, Result, read_text, write_text, scratch_dir

fs::path scratch(const std::string& name) { return cli_test::scratch_dir("stats-cli-" + name); }

/// A TSV table: the header, and each row as column name → text.
struct Table {
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> rows;
  double number(std::size_t row, const std::string& column) const {
    return std::stod(rows.at(row).at(column));
  }
};

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> f;
  std::stringstream in(line);
  std::string item;
  while (std::getline(in, item, '\t')) f.push_back(item);
  return f;
}

Table read_table(const fs::path& path) {
  std::ifstream in(path);
  Table t;
  std::string line;
  std::getline(in, line);
  t.header = split_tabs(line);
  while (std::getline(in, line)) {
    const auto f = split_tabs(line);
    EXPECT_EQ(f.size(), t.header.size()) << line;
    std::map<std::string, std::string> row;
    for (std::size_t k = 0; k < f.size() && k < t.header.size(); ++k) row[t.header[k]] = f[k];
    t.rows.push_back(row);
  }
  return t;
}

/// The phantom's truth folder (a small grid, noise-free).
fs::path phantom_truth(const fs::path& dir) {
  perfq::PhantomOptions o;
  o.dims = {32, 36, 28};
  o.repeats = 1;
  perfq::io::write_phantom_bids(perfq::make_phantom(o), (dir / "bids").string());
  return dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
}

/// Mean of the truth CBF per label, computed directly.
std::map<int, double> direct_means(const fs::path& map, const fs::path& labels) {
  const auto cbf = perfq::io::read_nifti(map.string());
  const auto seg = perfq::io::read_nifti_labels(labels.string());
  std::map<int, long double> sum;
  std::map<int, std::size_t> n;
  for (std::size_t i = 0; i < cbf.size(); ++i) {
    sum[seg[i]] += cbf[i];
    ++n[seg[i]];
  }
  std::map<int, double> mean;
  for (const auto& [label, s] : sum) mean[label] = static_cast<double>(s / n[label]);
  return mean;
}

TEST(StatsCli, PhantomTruthByTissueAndByTerritory) {
  const fs::path dir = scratch("phantom");
  const fs::path truth = phantom_truth(dir);
  const fs::path cbf = truth / "sub-01_cbf.nii.gz", dseg = truth / "sub-01_dseg.nii.gz";
  const Result r = run("stats " + cbf.string() + " --labels " + dseg.string() + " --names " +
                       (truth / "sub-01_dseg.tsv").string() + " --backend cpu -o " +
                       (dir / "out" / "tissue.tsv").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const Table t = read_table(dir / "out" / "tissue.tsv");
  ASSERT_EQ(t.rows.size(), 3u);
  const std::vector<std::string> first{"label", "name", "voxels", "count", "nonfinite", "volume_ml",
                                       "mean",  "sd",   "median", "p5",    "p25",       "p75",
                                       "p95",   "min",  "max",    "cov",   "scov"};
  EXPECT_EQ(t.header, first);
  EXPECT_EQ(t.rows[0].at("name"), "CSF");
  EXPECT_EQ(t.rows[1].at("name"), "GM");
  EXPECT_EQ(t.rows[2].at("name"), "WM");
  const auto expected = direct_means(cbf, dseg);
  for (std::size_t k = 0; k < 3; ++k) {
    const int label = std::stoi(t.rows[k].at("label"));
    EXPECT_NEAR(t.number(k, "mean"), expected.at(label), 1e-7 * expected.at(label) + 1e-12);
    EXPECT_NEAR(t.number(k, "volume_ml"), t.number(k, "voxels") * 0.027, 1e-9);
    EXPECT_EQ(t.rows[k].at("nonfinite"), "0");
  }
  // GM 60 and WM 22 ml/100 g/min away from borders, down to −30 % at them.
  EXPECT_GT(t.number(1, "mean"), 0.7 * 60.0);
  EXPECT_LE(t.number(1, "max"), 60.0);
  EXPECT_NEAR(t.number(1, "p95"), 60.0, 0.5);
  EXPECT_GT(t.number(2, "mean"), 0.7 * 22.0);
  EXPECT_LE(t.number(2, "max"), 22.0);
  EXPECT_GE(t.number(2, "min"), 0.7 * 22.0 - 1e-4);
  EXPECT_NEAR(t.number(1, "scov"), 100.0 * t.number(1, "sd") / t.number(1, "mean"), 1e-6);
  EXPECT_EQ(t.rows[0].at("mean"), "0");  // CSF has CBF 0: no CoV
  EXPECT_EQ(t.rows[0].at("cov"), "n/a");

  const Json j = Json::parse(read_text(dir / "out" / "tissue.json"));
  for (const auto& column : t.header) {
    ASSERT_TRUE(j.contains(column)) << column;
    EXPECT_FALSE(j[column]["Description"].get<std::string>().empty()) << column;
    EXPECT_TRUE(j[column].contains("Units")) << column;
  }
  EXPECT_EQ(j["mean"]["Units"], "mL/100 g/min");  // from the map's sidecar
  EXPECT_EQ(j["scov"]["Units"], "%");
  EXPECT_EQ(j["Inputs"]["Map"], cbf.string());
  EXPECT_EQ(j["Inputs"]["Labels"], dseg.string());
  EXPECT_TRUE(j["Inputs"]["Baseline"].is_null());
  EXPECT_EQ(j["GeneratedBy"]["Backend"], "cpu");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir / "out"), fs::directory_iterator{}), 2);

  // By territory, inside the brain mask: every brain voxel in exactly one territory.
  const fs::path mask = truth / "sub-01_mask.nii.gz";
  const Result s =
      run("stats " + cbf.string() + " --labels " + (truth / "sub-01_territories.nii.gz").string() +
          " --names " + (truth / "sub-01_territories.tsv").string() + " --mask " + mask.string() +
          " -o " + (dir / "territories.tsv").string());
  ASSERT_EQ(s.status, 0) << s.output;
  const Table u = read_table(dir / "territories.tsv");
  ASSERT_EQ(u.rows.size(), 3u);
  EXPECT_EQ(u.rows[0].at("name"), "ACA");
  EXPECT_EQ(u.rows[2].at("name"), "PCA");
  const auto brain = perfq::io::read_nifti_mask(mask.string());
  double voxels = 0;
  for (std::size_t k = 0; k < 3; ++k) {
    voxels += u.number(k, "voxels");
    EXPECT_GT(u.number(k, "mean"), 0.7 * 22.0);
    EXPECT_LT(u.number(k, "mean"), 60.0);
  }
  double in_brain = 0;
  for (std::uint8_t v : brain.values()) in_brain += v;
  EXPECT_EQ(voxels, in_brain);
}

TEST(StatsCli, BaselineWeightsPercentilesAndNames) {
  const fs::path dir = scratch("paired");
  const fs::path truth = phantom_truth(dir);
  const auto cbf = perfq::io::read_nifti((truth / "sub-01_cbf.nii.gz").string());
  perfq::Volume<float> followup = cbf;
  for (auto& v : followup.values()) v *= 1.1f;
  followup[0] = std::numeric_limits<float>::quiet_NaN();  // background: not in any region
  perfq::io::write_nifti((dir / "followup.nii.gz").string(), followup.view());
  perfq::io::write_nifti((dir / "weights.nii.gz").string(),
                         perfq::Volume<float>(cbf.geometry(), 1, 0.5f).view());
  std::ofstream(dir / "names.tsv")
      << "label\tname\tcolor\n1\tCSF\tx\n2\tGM\tx\n3\tWM\tx\n7\tlesion\tx\n";
  const Result r =
      run("stats " + (dir / "followup.nii.gz").string() + " --labels " +
          (truth / "sub-01_dseg.nii.gz").string() + " --baseline " +
          (truth / "sub-01_cbf.nii.gz").string() + " --weights " +
          (dir / "weights.nii.gz").string() + " --names " + (dir / "names.tsv").string() +
          " --percentiles 10,97.5 -o " + (dir / "paired.tsv").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const Table t = read_table(dir / "paired.tsv");
  ASSERT_EQ(t.rows.size(), 4u);  // the named label 7 is absent: an empty row
  for (const char* column : {"p10", "p97.5", "weighted_mean", "weighted_sd", "paired_count",
                             "change_mean", "change_sd", "change_percent", "baseline_mean"}) {
    EXPECT_NE(std::find(t.header.begin(), t.header.end(), column), t.header.end()) << column;
  }
  EXPECT_EQ(std::find(t.header.begin(), t.header.end(), "p5"), t.header.end());
  for (std::size_t k : {1u, 2u}) {  // GM, WM: +10 % everywhere
    EXPECT_NEAR(t.number(k, "change_percent"), 10.0, 1e-4);
    EXPECT_NEAR(t.number(k, "change_mean"), 0.1 * t.number(k, "baseline_mean"), 1e-4);
    EXPECT_EQ(t.number(k, "paired_count"), t.number(k, "count"));
    EXPECT_NEAR(t.number(k, "weighted_mean"), t.number(k, "mean"), 1e-6 * t.number(k, "mean"));
    EXPECT_NEAR(t.number(k, "weighted_sd"), t.number(k, "sd"), 1e-6 * t.number(k, "sd"));
    EXPECT_NEAR(t.number(k, "pv_volume_ml"), 0.5 * t.number(k, "volume_ml"), 1e-9);
  }
  EXPECT_EQ(t.rows[0].at("change_percent"), "n/a");  // CSF: baseline mean 0
  EXPECT_EQ(t.rows[3].at("label"), "7");
  EXPECT_EQ(t.rows[3].at("name"), "lesion");
  EXPECT_EQ(t.rows[3].at("voxels"), "0");
  EXPECT_EQ(t.rows[3].at("mean"), "n/a");
  EXPECT_EQ(t.rows[3].at("change_mean"), "n/a");
  const Json j = Json::parse(read_text(dir / "paired.json"));
  EXPECT_TRUE(j.contains("change_percent"));
  EXPECT_TRUE(j["mean"]["Units"].is_string());  // no sidecar: a description of the units
  EXPECT_EQ(j["Inputs"]["Percentiles"], Json::array({10.0, 97.5}));
}

/// Writes a float image on a 4 × 4 × 3 grid (2 mm), optionally shifted or with other dims.
fs::path write_map(const fs::path& path, float value, std::size_t nz = 3, double shift = 0) {
  perfq::Geometry g;
  g.dims = {4, 4, nz};
  g.spacing = {2, 2, 2};
  g.origin[0] = shift;
  perfq::io::write_nifti(path.string(), perfq::Volume<float>(g, 1, value).view());
  return path;
}

TEST(StatsCli, RefusesBadInputsAndLeavesNoOutput) {
  const fs::path dir = scratch("refusals");
  const std::string map = write_map(dir / "map.nii.gz", 40.0f).string();
  const std::string labels = write_map(dir / "labels.nii.gz", 1.0f).string();
  const std::string other = write_map(dir / "other.nii.gz", 1.0f, 5).string();
  const std::string moved = write_map(dir / "moved.nii.gz", 1.0f, 3, 10.0).string();
  const std::string nan = write_map(dir / "nan.nii.gz", std::nanf("")).string();
  const std::string half = write_map(dir / "half.nii.gz", 1.5f).string();
  const std::string zero = write_map(dir / "zero.nii.gz", 0.0f).string();
  const std::string heavy = write_map(dir / "heavy.nii.gz", 2.0f).string();
  std::ofstream(dir / "bad_names.tsv") << "index\tlabel_name\n1\tGM\n";
  const std::string out = (dir / "out" / "s.tsv").string();
  const std::string base = "stats " + map + " --labels " + labels + " -o " + out;

  struct Case {
    std::string arguments;
    int status;
    std::string mentions;
  };
  const std::vector<Case> cases{
      {"stats " + map + " --labels " + other + " -o " + out, 1, other},
      {"stats " + map + " --labels " + moved + " -o " + out, 1, moved},
      {base + " --baseline " + other, 1, other},
      {base + " --weights " + moved, 1, moved},
      {base + " --mask " + other, 1, other},
      {base + " --weights " + heavy, 1, heavy},
      {"stats " + nan + " --labels " + labels + " -o " + out, 1, nan},
      {"stats " + map + " --labels " + half + " -o " + out, 1, half},
      {"stats " + map + " --labels " + zero + " -o " + out, 1, zero},
      {base + " --names " + (dir / "bad_names.tsv").string(), 1, "required column"},
      {base + " --names " + (dir / "missing.tsv").string(), 1, "missing.tsv"},
      {"stats " + (dir / "absent.nii.gz").string() + " --labels " + labels + " -o " + out, 1,
       "absent.nii.gz"},
      {"stats " + map + " -o " + out, 2, "--labels"},
      {"stats " + map + " --labels " + labels, 2, "--output"},
      {"stats " + map + " --labels " + labels + " -o " + (dir / "s.txt").string(), 2, ".tsv"},
      {base + " --percentiles 5,abc", 2, "--percentiles"},
      {base + " --percentiles 150", 2, "--percentiles"},
      {base + " --percentiles 5,5", 2, "twice"},
      {base + " --bogus", 2, "--bogus"},
      {base + " --backend gpu", 2, "--backend"},
  };
  for (const Case& c : cases) {
    const Result r = run(c.arguments);
    EXPECT_EQ(r.status, c.status) << c.arguments << "\n" << r.output;
    EXPECT_NE(r.output.find(c.mentions), std::string::npos) << c.arguments << "\n" << r.output;
    EXPECT_FALSE(fs::exists(out)) << c.arguments;
  }

  // A good run, then a refused one to the same place: the first outputs stay intact.
  ASSERT_EQ(run(base).status, 0);
  const std::string table = read_text(out), sidecar = read_text(dir / "out" / "s.json");
  EXPECT_NE(table.find("40"), std::string::npos);
  EXPECT_EQ(run(base + " --baseline " + other).status, 1);
  EXPECT_EQ(read_text(out), table);
  EXPECT_EQ(read_text(dir / "out" / "s.json"), sidecar);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir / "out"), fs::directory_iterator{}), 2);
}

TEST(StatsCli, MaskAloneIsOneRegionAndHelpWorks) {
  const fs::path dir = scratch("mask");
  const std::string map = write_map(dir / "map.nii.gz", 12.5f).string();
  const std::string mask = write_map(dir / "mask.nii.gz", 1.0f).string();
  const Result r = run("stats " + map + " --mask " + mask + " -o " + (dir / "m.tsv").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const Table t = read_table(dir / "m.tsv");
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.rows[0].at("name"), "mask");
  EXPECT_EQ(t.rows[0].at("count"), "48");
  EXPECT_EQ(t.rows[0].at("mean"), "12.5");
  EXPECT_EQ(t.rows[0].at("sd"), "0");
  const Result help = run("stats --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.output.find("--labels"), std::string::npos);
}

TEST(StatsCli, VoxelsWhoseFitFailedAreLeftOutByTheStatusMapBesideTheMap) {
  // A hand-made ATT map as perfq cbf writes it, with its _fitstatus beside it. Region 1 (CSF):
  // ATT 1.2 (status 0), 1.4 (0), 0 (6: singular fit), 0.9 (7: at a bound, kept); region 2:
  // 1.0 (0), 0 (8: M0 too low). By hand: region 1 mean (1.2 + 1.4 + 0.9) / 3 = 7/6, excluded
  // 1; region 2 mean 1.0, excluded 1. With --include-failed: 3.5 / 4 and 0.5.
  const fs::path dir = scratch("status");
  fs::create_directories(dir);
  perfq::Geometry g;
  g.dims = {6, 1, 1};
  g.spacing = {2.0, 2.0, 2.0};
  perfq::Image<float> att(g, 1, 0.0f), labels(g, 1, 0.0f), status(g, 1, 0.0f);
  const float values[] = {1.2f, 1.4f, 0.0f, 0.9f, 1.0f, 0.0f};
  const float regions[] = {1, 1, 1, 1, 2, 2};
  const float codes[] = {0, 0, 6, 7, 0, 8};
  for (std::size_t i = 0; i < 6; ++i) {
    att[i] = values[i];
    labels[i] = regions[i];
    status[i] = codes[i];
  }
  perfq::io::write_nifti((dir / "sub-01_att.nii.gz").string(), att);
  perfq::io::write_nifti((dir / "labels.nii.gz").string(), labels);
  perfq::io::write_nifti((dir / "sub-01_fitstatus.nii.gz").string(), status);

  const std::string base = "stats " + (dir / "sub-01_att.nii.gz").string() + " --labels " +
                           (dir / "labels.nii.gz").string() + " --percentiles 50 -o ";
  const Result r = run(base + (dir / "att_stats.tsv").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const Table t = read_table(dir / "att_stats.tsv");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].at("voxels"), "4");
  EXPECT_EQ(t.rows[0].at("count"), "3");
  EXPECT_EQ(t.rows[0].at("excluded"), "1");
  EXPECT_NEAR(t.number(0, "mean"), (1.2 + 1.4 + 0.9) / 3.0, 1e-6);
  EXPECT_EQ(t.rows[1].at("excluded"), "1");
  EXPECT_NEAR(t.number(1, "mean"), 1.0, 1e-6);
  const Json j = Json::parse(read_text(dir / "att_stats.json"));
  EXPECT_TRUE(j.contains("excluded"));
  const Json& e = j["ExcludedByStatus"];
  EXPECT_EQ(e["StatusMap"], (dir / "sub-01_fitstatus.nii.gz").string());
  EXPECT_EQ(e["StatusMapSource"], "found beside the map");
  EXPECT_EQ(e["ExcludedCodes"], Json::array({1, 2, 3, 4, 5, 6, 8}));
  EXPECT_EQ(e["VoxelsPerRegion"]["1"], 1);
  EXPECT_EQ(e["VoxelsPerRegion"]["2"], 1);
  EXPECT_EQ(e["Voxels"], 2);

  // --include-failed: every voxel, no excluded column.
  const Result all = run(base + (dir / "all_stats.tsv").string() + " --include-failed");
  ASSERT_EQ(all.status, 0) << all.output;
  const Table u = read_table(dir / "all_stats.tsv");
  EXPECT_EQ(std::find(u.header.begin(), u.header.end(), "excluded"), u.header.end());
  EXPECT_NEAR(u.number(0, "mean"), 3.5 / 4.0, 1e-6);
  EXPECT_NEAR(u.number(1, "mean"), 0.5, 1e-6);
  EXPECT_EQ(Json::parse(read_text(dir / "all_stats.json"))["ExcludedByStatus"]["StatusMap"],
            Json());

  // --exclude-status chooses the codes (7 too here), --status names the map.
  const Result chosen =
      run(base + (dir / "chosen_stats.tsv").string() + " --exclude-status 6,7 --status " +
          (dir / "sub-01_fitstatus.nii.gz").string());
  ASSERT_EQ(chosen.status, 0) << chosen.output;
  const Table v = read_table(dir / "chosen_stats.tsv");
  EXPECT_EQ(v.rows[0].at("excluded"), "2");
  EXPECT_NEAR(v.number(0, "mean"), 1.3, 1e-6);
  EXPECT_EQ(v.rows[1].at("excluded"), "0");
  EXPECT_NEAR(v.number(1, "mean"), 0.5, 1e-6);
  EXPECT_EQ(
      Json::parse(read_text(dir / "chosen_stats.json"))["ExcludedByStatus"]["StatusMapSource"],
      "--status");
  // Usage errors.
  EXPECT_EQ(
      run(base + (dir / "x_stats.tsv").string() + " --include-failed --exclude-status 6").status,
      2);
  EXPECT_EQ(run(base + (dir / "x_stats.tsv").string() + " --exclude-status 300").status, 2);
}

}  // namespace
