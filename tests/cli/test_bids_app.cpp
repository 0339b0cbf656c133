// `perfq bids` (the BIDS-App) end to end on a small phantom dataset: two subjects, one with
// two sessions; participant and group levels, failures, skipping and filters.
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/phantom.hpp>
#include <perfq/version.hpp>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "cli_test_util.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

using namespace cli_test;  // run, Result, read_text, write_text, scratch_dir

/// One series of the test dataset: its folder (relative) and file prefix.
struct SeriesName {
  std::string folder, prefix;
};
const std::vector<SeriesName> kSeries = {{"sub-01/perf", "sub-01"},
                                         {"sub-02/ses-1/perf", "sub-02_ses-1"},
                                         {"sub-02/ses-2/perf", "sub-02_ses-2"}};

/// A dataset under `dir/bids`: sub-01 without sessions, sub-02 with ses-1 and ses-2 (the
/// phantom's files moved and renamed with the ses entity). The truth of each subject, in
/// `bids/derivatives/truth/sub-X/perf/`, serves as --labels-dir (found by dropping ses-).
fs::path make_dataset(const std::string& name) {
  const fs::path dir = cli_test::scratch_dir("bidsapp-" + name);
  const fs::path bids = dir / "bids";
  perfq::PhantomOptions o;
  o.dims = {24, 24, 20};
  o.repeats = 2;
  const perfq::Phantom phantom = perfq::make_phantom(o);
  perfq::io::write_phantom_bids(phantom, bids.string(), "01");
  const fs::path staging = dir / "sub-02-staging";
  perfq::io::write_phantom_bids(phantom, staging.string(), "02");
  for (const std::string ses : {"1", "2"}) {
    const fs::path perf = bids / "sub-02" / ("ses-" + ses) / "perf";
    fs::create_directories(perf);
    for (const auto& e : fs::directory_iterator(staging / "sub-02" / "perf")) {
      const std::string file = e.path().filename().string();  // sub-02_asl.nii.gz, ...
      fs::copy_file(e.path(), perf / ("sub-02_ses-" + ses + file.substr(6)));
    }
    Json m0 = Json::parse(read_text(perf / ("sub-02_ses-" + ses + "_m0scan.json")));
    m0["IntendedFor"] = "bids::sub-02/ses-" + ses + "/perf/sub-02_ses-" + ses + "_asl.nii.gz";
    write_text(perf / ("sub-02_ses-" + ses + "_m0scan.json"), m0.dump(2));
  }
  fs::copy(staging / "derivatives" / "truth" / "sub-02", bids / "derivatives" / "truth" / "sub-02",
           fs::copy_options::recursive);
  fs::remove_all(staging);
  return dir;
}

std::string labels_dir(const fs::path& dir) {
  return " --labels-dir " + (dir / "bids" / "derivatives" / "truth").string();
}

Result participant(const fs::path& dir, const std::string& options = "") {
  return run("bids " + (dir / "bids").string() + " " + (dir / "out").string() +
             " participant --backend cpu" + options);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// Worst relative CBF error inside the truth's brain mask.
double worst_error(const fs::path& cbf_path, const fs::path& dir) {
  const fs::path truth = dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
  const auto cbf = perfq::io::read_nifti(cbf_path.string());
  const auto expected = perfq::io::read_nifti((truth / "sub-01_cbf.nii.gz").string());
  const auto mask = perfq::io::read_nifti_mask((truth / "sub-01_mask.nii.gz").string());
  double worst = 0;
  for (std::size_t i = 0; i < cbf.size(); ++i) {
    if (mask[i]) worst = std::max(worst, std::abs(double(cbf[i]) - expected[i]) / expected[i]);
  }
  return worst;
}

/// Every regular file under `dir` (relative path → bytes).
std::map<std::string, std::string> files_under(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = read_text(e.path());
  }
  return out;
}

TEST(BidsApp, StepsRunInProcessGiveTheSingleCommandsFilesByteForByte) {
  // The steps run in the app's own process (no child perfq), several series at once; their
  // files must be those of the single commands run by hand with the same arguments (the
  // lines --verbose prints), byte for byte: maps, tables, sidecars, report pages and figures.
  const fs::path dir = make_dataset("in-process");
  const Result r = participant(dir, labels_dir(dir) + " --nprocs 3 --verbose");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto by_app = files_under(dir / "out");
  // The same steps by hand, into a fresh folder of the same name (paths are recorded in
  // the sidecars), with the two dataset-level files the app writes itself.
  fs::rename(dir / "out", dir / "by-app");
  fs::create_directories(dir / "out");
  for (const char* name : {"dataset_description.json", "desc-borderzone_dseg.tsv"}) {
    fs::copy_file(dir / "by-app" / name, dir / "out" / name);
  }
  std::istringstream lines(r.output);
  std::string line;
  std::size_t steps = 0;
  while (std::getline(lines, line)) {
    const std::string marker = "  $ perfq ";
    if (line.rfind(marker, 0) != 0) continue;
    const Result step = run(line.substr(marker.size()));
    EXPECT_EQ(step.status, 0) << line << "\n" << step.output;
    ++steps;
  }
  EXPECT_EQ(steps, 3u * 6u) << r.output;  // cbf, watershed, 3 tables, report per series
  const auto by_hand = files_under(dir / "out");
  ASSERT_EQ(by_hand.size(), by_app.size());
  for (const auto& [name, bytes] : by_app) {
    const auto it = by_hand.find(name);
    ASSERT_NE(it, by_hand.end()) << name;
    EXPECT_TRUE(it->second == bytes) << name << " differs";
  }
}

TEST(BidsApp, ParticipantLevelQuantifiesEverySeries) {
  const fs::path dir = make_dataset("all");
  const Result r = participant(dir, labels_dir(dir) + " --nprocs 2 --border-width 16");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "[3/3]")) << r.output;
  EXPECT_TRUE(contains(r.output, "sub-02 ses-2: ok (cpu, ")) << r.output;
  EXPECT_TRUE(contains(r.output, "3 tables, report)")) << r.output;
  EXPECT_TRUE(contains(r.output, "3 ok, 0 skipped, 0 failed")) << r.output;

  for (const auto& s : kSeries) {
    const fs::path perf = dir / "out" / s.folder;
    for (const std::string suffix :
         {"_cbf.nii.gz", "_fitstatus.nii.gz", "_cbf.json", "_desc-borderzone_mask.nii.gz",
          "_desc-borderzone_mask.json", "_desc-tissue_stats.tsv", "_desc-tissue_stats.json",
          "_desc-territories_stats.tsv", "_desc-borderzone_stats.tsv", "_report.html"}) {
      EXPECT_TRUE(fs::exists(perf / (s.prefix + suffix))) << perf / (s.prefix + suffix);
    }
    // The report's figures, and its statistics tables from the steps before it.
    for (const std::string desc : {"cbf", "borderzone"}) {
      const fs::path png = perf / "figures" / (s.prefix + "_desc-" + desc + "_montage.png");
      EXPECT_TRUE(fs::is_regular_file(png)) << png;
    }
    const std::string page = read_text(perf / (s.prefix + "_report.html"));
    EXPECT_TRUE(contains(page, "Tissue classes") && contains(page, "Arterial territories"))
        << s.prefix;
    EXPECT_LT(worst_error(perf / (s.prefix + "_cbf.nii.gz"), dir), 0.01) << s.prefix;
    // The convention's brain mask reached perfq cbf; the subject-level truth was found.
    const Json j = Json::parse(read_text(perf / (s.prefix + "_cbf.json")));
    EXPECT_TRUE(contains(j["Mask"].get<std::string>(), "sub-0")) << j["Mask"];
    EXPECT_EQ(j["GeneratedBy"]["Backend"], "cpu");
    // Tissue statistics named from the dseg.tsv found beside the labels.
    const std::string tissue = read_text(perf / (s.prefix + "_desc-tissue_stats.tsv"));
    EXPECT_TRUE(contains(tissue, "\tGM\t")) << tissue;
  }
  const Json d = Json::parse(read_text(dir / "out" / "dataset_description.json"));
  EXPECT_EQ(d["DatasetType"], "derivative");
  EXPECT_EQ(d["GeneratedBy"][0]["Name"], "perfq");
  EXPECT_EQ(d["GeneratedBy"][0]["Version"], PERFQ_VERSION_STRING);
  EXPECT_TRUE(contains(d["SourceDatasets"][0]["URL"].get<std::string>(), "bids"));
  EXPECT_TRUE(d.contains("BIDSVersion") && d.contains("Name"));
  // No staging folder left in any output folder.
  for (const auto& e : fs::recursive_directory_iterator(dir / "out")) {
    EXPECT_NE(e.path().filename().string()[0], '.') << e.path();
  }
}

TEST(BidsApp, WithoutLabelsOnlyCbfIsMade) {
  const fs::path dir = make_dataset("cbf-only");
  const Result r = participant(dir, " --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_FALSE(contains(r.output, "[1/3]")) << r.output;  // --quiet: the summary only
  EXPECT_TRUE(contains(r.output, "3 ok")) << r.output;
  const fs::path perf = dir / "out" / "sub-02" / "ses-1" / "perf";
  EXPECT_TRUE(fs::exists(perf / "sub-02_ses-1_cbf.nii.gz"));
  EXPECT_FALSE(fs::exists(perf / "sub-02_ses-1_desc-tissue_stats.tsv"));
  const Json j = Json::parse(read_text(perf / "sub-02_ses-1_cbf.json"));
  EXPECT_TRUE(j["Mask"].is_null());
  EXPECT_LT(worst_error(perf / "sub-02_ses-1_cbf.nii.gz", dir), 0.01);
  // The report of a series without labels: CBF alone.
  EXPECT_TRUE(fs::exists(perf / "sub-02_ses-1_report.html"));
  EXPECT_TRUE(fs::exists(perf / "figures" / "sub-02_ses-1_desc-cbf_montage.png"));
  EXPECT_FALSE(fs::exists(perf / "figures" / "sub-02_ses-1_desc-borderzone_montage.png"));
}

TEST(BidsApp, ReportsCanBeLeftOutAndCountInSkipping) {
  const fs::path dir = make_dataset("report");
  const fs::path page = dir / "out" / "sub-01" / "perf" / "sub-01_report.html";
  Result r = participant(dir, labels_dir(dir) + " --no-report");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_FALSE(contains(r.output, "report)")) << r.output;
  EXPECT_FALSE(fs::exists(page));
  EXPECT_FALSE(fs::exists(page.parent_path() / "figures"));

  // Without --no-report the missing reports are made, and nothing else is redone.
  const fs::path cbf = dir / "out" / "sub-01" / "perf" / "sub-01_cbf.nii.gz";
  const auto cbf_time = fs::last_write_time(cbf);
  r = participant(dir, labels_dir(dir) + " --verbose");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "3 ok, 0 skipped")) << r.output;
  EXPECT_TRUE(contains(r.output, "$ perfq report ")) << r.output;
  EXPECT_FALSE(contains(r.output, "$ perfq cbf ")) << r.output;
  EXPECT_EQ(fs::last_write_time(cbf), cbf_time);
  EXPECT_TRUE(fs::exists(page));

  // A complete report is skipped; a missing one is made again.
  r = participant(dir, labels_dir(dir));
  EXPECT_TRUE(contains(r.output, "0 ok, 3 skipped")) << r.output;
  fs::remove(page);
  r = participant(dir, labels_dir(dir));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "1 ok, 2 skipped")) << r.output;
  EXPECT_TRUE(fs::exists(page));
}

TEST(BidsApp, AFailedSeriesDoesNotStopTheOthers) {
  const fs::path dir = make_dataset("failure");
  fs::remove(dir / "bids" / "sub-02" / "ses-1" / "perf" / "sub-02_ses-1_asl.json");
  const Result r = participant(dir, labels_dir(dir));
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "2 ok, 0 skipped, 1 failed")) << r.output;
  EXPECT_TRUE(contains(r.output, "sub-02 ses-1: FAILED in cbf")) << r.output;
  const std::string listed = r.output.substr(r.output.find("failed:\n"));
  EXPECT_TRUE(contains(listed, "sub-02_ses-1_asl.nii.gz: cbf: ")) << r.output;
  EXPECT_TRUE(contains(listed, "sub-02_ses-1_asl.json")) << r.output;  // the child's message
  EXPECT_FALSE(fs::exists(dir / "out" / "sub-02" / "ses-1" / "perf" / "sub-02_ses-1_cbf.nii.gz"));
  EXPECT_TRUE(fs::exists(dir / "out" / "sub-01" / "perf" / "sub-01_desc-tissue_stats.tsv"));
  EXPECT_TRUE(fs::exists(dir / "out" / "sub-02" / "ses-2" / "perf" / "sub-02_ses-2_cbf.json"));
}

TEST(BidsApp, WarningsOfASeriesAreListed) {
  // sub-01's M0 scaled down 20-fold (as if stored with another scale than the ASL series):
  // its CBF is 20 times too high, quantified with a warning that the summary lists.
  const fs::path dir = make_dataset("warning");
  const fs::path m0_path = dir / "bids" / "sub-01" / "perf" / "sub-01_m0scan.nii.gz";
  perfq::Image<float> m0 = perfq::io::read_nifti(m0_path.string());
  for (std::size_t i = 0; i < m0.size(); ++i) m0[i] *= 0.05f;
  perfq::io::write_nifti(m0_path.string(), m0.view());
  const Result r = participant(dir, labels_dir(dir));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "3 ok, 0 skipped, 0 failed")) << r.output;
  EXPECT_TRUE(contains(r.output, "  warning: the median CBF in the brain is")) << r.output;
  const std::string listed = r.output.substr(r.output.find("warnings (outputs written"));
  EXPECT_TRUE(contains(listed, "sub-01_asl.nii.gz: the median CBF in the brain is")) << r.output;
  EXPECT_FALSE(contains(listed, "sub-02")) << r.output;
}

TEST(BidsApp, ReferenceRegionMasksAreFoundByConvention) {
  // --ref-tissue csf: each series' CSF region is its _label-CSF_mask, else its
  // _label-ventricles_mask (the phantom's truth has the latter; sub-02's serves both sessions).
  const fs::path dir = make_dataset("refregion");
  const Result r = participant(dir, labels_dir(dir) + " --no-report --ref-tissue csf");
  ASSERT_EQ(r.status, 0) << r.output;
  for (const auto& s : kSeries) {
    const Json j = Json::parse(read_text(dir / "out" / s.folder / (s.prefix + "_cbf.json")));
    EXPECT_EQ(j["M0Calibration"]["Tissue"], "csf") << s.prefix;
    const std::string subject = s.prefix.substr(0, 6);
    EXPECT_TRUE(contains(j["M0Calibration"]["Mask"].get<std::string>(),
                         subject + "_label-ventricles_mask.nii.gz"))
        << j["M0Calibration"]["Mask"];
  }
  // Without the region a series fails, naming the file it expected.
  fs::remove(dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf" /
             "sub-01_label-ventricles_mask.nii.gz");
  const Result missing =
      participant(dir, labels_dir(dir) + " --no-report --overwrite --ref-tissue csf");
  EXPECT_EQ(missing.status, 1) << missing.output;
  EXPECT_TRUE(contains(missing.output, "2 ok, 0 skipped, 1 failed")) << missing.output;
  EXPECT_TRUE(contains(missing.output, "sub-01_label-CSF_mask.nii.gz")) << missing.output;
  // Usage errors before any work.
  EXPECT_EQ(participant(dir, " --ref-tissue bone").status, 2);
  EXPECT_EQ(participant(dir, " --ref-t1 4").status, 2);                       // needs --ref-tissue
  EXPECT_EQ(participant(dir, " --ref-tissue csf --echo-time 20").status, 2);  // ms
}

TEST(BidsApp, SecondRunSkipsAndOverwriteRedoes) {
  const fs::path dir = make_dataset("rerun");
  ASSERT_EQ(participant(dir, labels_dir(dir)).status, 0);
  // Spoil one output: a skipped series leaves it alone, --overwrite rewrites it.
  const fs::path cbf = dir / "out" / "sub-01" / "perf" / "sub-01_cbf.nii.gz";
  write_text(cbf, "not a NIfTI");
  Result again = participant(dir, labels_dir(dir));
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_TRUE(contains(again.output, "sub-01: skipped")) << again.output;
  EXPECT_TRUE(contains(again.output, "0 ok, 3 skipped, 0 failed")) << again.output;
  EXPECT_EQ(read_text(cbf), "not a NIfTI");

  // An incomplete series (a table's sidecar missing) is completed, the others skipped.
  fs::remove(dir / "out" / "sub-02" / "ses-2" / "perf" / "sub-02_ses-2_desc-tissue_stats.json");
  again = participant(dir, labels_dir(dir));
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_TRUE(contains(again.output, "1 ok, 2 skipped")) << again.output;
  EXPECT_TRUE(fs::exists(dir / "out" / "sub-02" / "ses-2" / "perf" /
                         "sub-02_ses-2_desc-tissue_stats.json"));

  again = participant(dir, labels_dir(dir) + " --overwrite");
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_TRUE(contains(again.output, "3 ok, 0 skipped")) << again.output;
  EXPECT_LT(worst_error(cbf, dir), 0.01);
}

TEST(BidsApp, TissueMapsByConventionServeQualityIndicesAndOutlierRejection) {
  const fs::path dir = cli_test::scratch_dir("bidsapp-tissue");
  ASSERT_EQ(run("phantom -o " + (dir / "bids").string() + " --repeats 4 --snr 5").status, 0);
  const std::string labels = " --labels-dir " + (dir / "bids" / "derivatives" / "truth").string();
  const std::string bids = "bids " + (dir / "bids").string() + " ";
  Result r =
      run(bids + (dir / "out").string() + " participant --backend cpu --outliers score" + labels);
  ASSERT_EQ(r.status, 0) << r.output;
  const fs::path perf = dir / "out" / "sub-01" / "perf";
  const auto j = nlohmann::json::parse(read_text(perf / "sub-01_cbf.json"));
  EXPECT_EQ(j["OutlierRejection"]["Method"], "SCORE") << j.dump(2);
  // _label-GM_mask, _label-WM_mask and _label-CSF_probseg found: every index defined.
  const auto qc = nlohmann::json::parse(read_text(perf / "sub-01_desc-qualitycontrol_cbf.json"));
  EXPECT_TRUE(qc["NotDefined"].empty()) << qc["NotDefined"].dump();
  EXPECT_TRUE(contains(read_text(perf / "sub-01_cbf.json"), "label-CSF_probseg"));
  // --t1t-pv passed on with the maps found: a single-delay series warns that it is unused.
  r = run(bids + (dir / "t1").string() + " participant --backend cpu --t1t-pv --t1t-wm 1.0" +
          labels);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "--t1t-pv: the single-delay formula uses no tissue T1"))
      << r.output;
  // Without the maps, each series fails naming what is missing.
  r = run(bids + (dir / "bare").string() + " participant --backend cpu --outliers scrub");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "missing: --gm-probseg, --wm-probseg, --csf-probseg")) << r.output;
}

TEST(BidsApp, UncompressedImagesAreReadByTheLaterSteps) {
  const fs::path dir = make_dataset("uncompressed");
  const Result r = participant(dir, labels_dir(dir) + " --uncompressed --participant-label 01");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "3 tables, report)")) << r.output;
  const fs::path perf = dir / "out" / "sub-01" / "perf";
  for (const std::string suffix :
       {"_cbf.nii", "_fitstatus.nii", "_cbf.json", "_desc-borderzone_mask.nii",
        "_desc-tissue_stats.tsv", "_desc-territories_stats.tsv", "_desc-borderzone_stats.tsv",
        "_report.html"}) {
    EXPECT_TRUE(fs::is_regular_file(perf / ("sub-01" + suffix))) << suffix;
  }
  for (const auto& e : fs::directory_iterator(perf)) {
    EXPECT_FALSE(contains(e.path().filename().string(), ".nii.gz")) << e.path();
  }
  EXPECT_LT(worst_error(perf / "sub-01_cbf.nii", dir), 0.01);
  // The tables are those of a compressed run, byte for byte (the maps' values are the same).
  const fs::path twin = make_dataset("compressed");
  ASSERT_EQ(participant(twin, labels_dir(twin) + " --participant-label 01").status, 0);
  const fs::path twin_perf = twin / "out" / "sub-01" / "perf";
  for (const std::string table : {"tissue", "territories", "borderzone"}) {
    const std::string name = "sub-01_desc-" + table + "_stats.tsv";
    EXPECT_EQ(read_text(perf / name), read_text(twin_perf / name)) << name;
  }
  // A second run skips the series; one that asks for .nii.gz redoes it (its images are
  // missing), and then skips it too.
  Result again = participant(dir, labels_dir(dir) + " --uncompressed --participant-label 01");
  EXPECT_TRUE(contains(again.output, "0 ok, 1 skipped")) << again.output;
  again = participant(dir, labels_dir(dir) + " --participant-label 01");
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_TRUE(contains(again.output, "1 ok, 0 skipped")) << again.output;
  EXPECT_TRUE(fs::is_regular_file(perf / "sub-01_cbf.nii.gz"));
  again = participant(dir, labels_dir(dir) + " --participant-label 01");
  EXPECT_TRUE(contains(again.output, "0 ok, 1 skipped")) << again.output;
}

TEST(BidsApp, LabelsSelectParticipantsAndSessions) {
  const fs::path dir = make_dataset("filter");
  Result r = participant(dir, " --participant-label 02 --session-label ses-2 --verbose");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "[1/1] sub-02 ses-2: ok")) << r.output;
  EXPECT_TRUE(contains(r.output, "$ perfq cbf ")) << r.output;  // --verbose: the steps
  EXPECT_FALSE(fs::exists(dir / "out" / "sub-01"));
  EXPECT_FALSE(fs::exists(dir / "out" / "sub-02" / "ses-1"));
  EXPECT_TRUE(fs::exists(dir / "out" / "sub-02" / "ses-2" / "perf" / "sub-02_ses-2_cbf.nii.gz"));

  r = participant(dir, " --participant-label sub-01 sub-02 --session-label 1");
  ASSERT_EQ(r.status, 0) << r.output;  // sub-01 has no session: left out
  EXPECT_TRUE(contains(r.output, "[1/1] sub-02 ses-1: ok")) << r.output;

  r = participant(dir, " --participant-label 03");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "sub-03")) << r.output;
}

TEST(BidsApp, GroupLevelGathersTheStatistics) {
  const fs::path dir = make_dataset("group");
  const std::string group =
      "bids " + (dir / "bids").string() + " " + (dir / "out").string() + " group";
  // Nothing quantified yet: nothing to gather, an error.
  fs::create_directories(dir / "empty");
  Result r = run("bids " + (dir / "bids").string() + " " + (dir / "empty").string() + " group");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "no *_stats.tsv")) << r.output;
  EXPECT_FALSE(fs::exists(dir / "empty" / "group_qualitycontrol.tsv"));

  // CBF only: no regional statistics, but every series' quality indices.
  ASSERT_EQ(participant(dir).status, 0);
  r = run(group);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "quality indices of 3 series")) << r.output;
  EXPECT_TRUE(contains(r.output, "(no *_stats.tsv to gather)")) << r.output;
  EXPECT_FALSE(fs::exists(dir / "out" / "group_stats.tsv"));
  const std::string qc = read_text(dir / "out" / "group_qualitycontrol.tsv");
  EXPECT_EQ(std::count(qc.begin(), qc.end(), '\n'), 4) << qc;  // the header and 3 series
  EXPECT_TRUE(fs::exists(dir / "out" / "group_qc.html"));

  ASSERT_EQ(participant(dir, labels_dir(dir) + " --overwrite").status, 0);
  r = run(group);
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string table = read_text(dir / "out" / "group_stats.tsv");
  EXPECT_EQ(table.rfind("subject\tsession\trun\tdesc\tmap\tsource\tlabel\tname\t", 0), 0u) << table;
  EXPECT_TRUE(contains(table,
                       "\n01\tn/a\tn/a\ttissue\tcbf\tsub-01/perf/sub-01_desc-tissue_stats.tsv"
                       "\t2\tGM\t"))
      << table;
  EXPECT_TRUE(contains(table, "\n02\t2\tn/a\tborderzone\tcbf\t")) << table;
  EXPECT_TRUE(contains(table, "\n02\t1\tn/a\tterritories\tcbf\t")) << table;
  EXPECT_FALSE(contains(table, "\tatt\t")) << table;  // single-delay series: CBF only
  // 3 series × (3 tissue + 3 territory + 2 border-zone rows) and the header.
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 1 + 3 * 8) << table;
  const Json j = Json::parse(read_text(dir / "out" / "group_stats.json"));
  EXPECT_TRUE(j.contains("subject") && j.contains("desc") && j.contains("mean"));
  EXPECT_EQ(j["mean"]["Units"], "mL/100g/min");
}

/// The `mean` of the row with `label` in a perfq stats table (NaN when missing).
double table_mean(const fs::path& tsv, const std::string& label) {
  std::istringstream in(read_text(tsv));
  std::string line;
  std::vector<std::string> header;
  auto split = [](const std::string& text) {
    std::vector<std::string> fields;
    std::istringstream row(text);
    std::string field;
    while (std::getline(row, field, '\t')) fields.push_back(field);
    return fields;
  };
  std::size_t label_column = 0, mean_column = 0;
  while (std::getline(in, line)) {
    const auto fields = split(line);
    if (header.empty()) {
      header = fields;
      label_column = std::find(header.begin(), header.end(), "label") - header.begin();
      mean_column = std::find(header.begin(), header.end(), "mean") - header.begin();
      continue;
    }
    if (fields.size() == header.size() && fields[label_column] == label) {
      return std::stod(fields[mean_column]);
    }
  }
  return std::nan("");
}

TEST(BidsApp, MultiDelaySeriesGetAttStatisticsToo) {
  // sub-01 multi-delay, sub-02 single-delay, both with the phantom's labels.
  const fs::path dir = cli_test::scratch_dir("bidsapp-att");
  const fs::path bids = dir / "bids";
  perfq::PhantomOptions o;
  o.dims = {24, 24, 20};
  o.delays = {0.5, 1.0, 1.5, 2.0, 2.5};
  o.repeats = 1;
  perfq::io::write_phantom_bids(perfq::make_phantom(o), bids.string(), "01");
  perfq::PhantomOptions single;
  single.dims = {24, 24, 20};
  single.repeats = 2;
  perfq::io::write_phantom_bids(perfq::make_phantom(single), bids.string(), "02");

  Result r = participant(dir, labels_dir(dir) +
                                  " --border-width 16 --att-prior --prior-noise uniform"
                                  " --arterial --aatt-prior-mean 0.8");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "3 tables of CBF and of ATT, report)")) << r.output;
  const fs::path multi = dir / "out" / "sub-01" / "perf";
  const fs::path one = dir / "out" / "sub-02" / "perf";
  // perfq cbf's options reach the fit.
  const Json fit = Json::parse(read_text(multi / "sub-01_cbf.json"))["Fit"];
  EXPECT_EQ(fit["PriorNoise"], "uniform") << fit.dump();
  EXPECT_NEAR(fit["ArterialATTPriorMean"].get<double>(), 0.8, 1e-6) << fit.dump();
  ASSERT_TRUE(fs::exists(multi / "sub-01_att.nii.gz"));
  for (const std::string desc : {"tissue", "territories", "borderzone"}) {
    const fs::path att = multi / ("sub-01_desc-" + desc + "_att_stats.tsv");
    EXPECT_TRUE(fs::exists(att)) << att;
    EXPECT_TRUE(fs::exists(multi / ("sub-01_desc-" + desc + "_stats.tsv"))) << desc;
    EXPECT_FALSE(fs::exists(one / ("sub-02_desc-" + desc + "_att_stats.tsv"))) << desc;
    EXPECT_TRUE(fs::exists(one / ("sub-02_desc-" + desc + "_stats.tsv"))) << desc;
    // ATT in seconds, units from the cbf step's sidecar.
    const Json j = Json::parse(read_text(multi / ("sub-01_desc-" + desc + "_att_stats.json")));
    EXPECT_EQ(j["mean"]["Units"], "s") << desc;
    EXPECT_TRUE(contains(j["Inputs"]["Map"].get<std::string>(), "sub-01_att.nii.gz"));
  }
  // Plausible transit times, later in the border zones (1) than in the rest of the brain (0).
  const fs::path zones = multi / "sub-01_desc-borderzone_att_stats.tsv";
  const double inside = table_mean(zones, "1"), outside = table_mean(zones, "0");
  EXPECT_GT(outside, 0.3) << read_text(zones);
  EXPECT_LT(inside, 3.0) << read_text(zones);
  EXPECT_GT(inside, outside) << read_text(zones);
  const double gm = table_mean(multi / "sub-01_desc-tissue_att_stats.tsv", "2");
  EXPECT_GT(gm, 0.3);
  EXPECT_LT(gm, 3.0);
  // The report's tables are those of CBF: the ATT twins are left out.
  const std::string page = read_text(multi / "sub-01_report.html");
  EXPECT_TRUE(contains(page, "Tissue classes"));
  EXPECT_FALSE(contains(page, "att_stats")) << "ATT tables in the CBF report";

  // A second run skips both series; a missing ATT table is made again, alone.
  r = participant(dir, labels_dir(dir) + " --border-width 16 --verbose");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "0 ok, 2 skipped")) << r.output;
  fs::remove(multi / "sub-01_desc-tissue_att_stats.json");
  r = participant(dir, labels_dir(dir) + " --border-width 16 --verbose");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "1 ok, 1 skipped")) << r.output;
  EXPECT_FALSE(contains(r.output, "$ perfq cbf ")) << r.output;
  EXPECT_TRUE(contains(r.output, "sub-01_desc-tissue_att_stats.tsv --backend cpu --overwrite"))
      << r.output;
  EXPECT_TRUE(fs::exists(multi / "sub-01_desc-tissue_att_stats.json"));

  // The group table: both maps, each CBF table followed by its ATT twin.
  r = run("bids " + bids.string() + " " + (dir / "out").string() + " group");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string table = read_text(dir / "out" / "group_stats.tsv");
  EXPECT_TRUE(contains(table,
                       "\n01\tn/a\tn/a\tborderzone\tatt\t"
                       "sub-01/perf/sub-01_desc-borderzone_att_stats.tsv\t"))
      << table;
  EXPECT_TRUE(contains(table, "\n01\tn/a\tn/a\tborderzone\tcbf\t")) << table;
  EXPECT_TRUE(contains(table, "\n02\tn/a\tn/a\ttissue\tcbf\t")) << table;
  EXPECT_FALSE(contains(table, "\n02\tn/a\tn/a\ttissue\tatt\t")) << table;
  EXPECT_LT(table.find("sub-01_desc-tissue_stats.tsv"), table.find("sub-01_desc-tissue_att_stats"));
  // 2 series × 8 CBF rows, 8 ATT rows of sub-01, and the header.
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 1 + 2 * 8 + 8) << table;
  const Json j = Json::parse(read_text(dir / "out" / "group_stats.json"));
  EXPECT_TRUE(j.contains("map"));
  EXPECT_EQ(j["mean"]["Units"], "mL/100g/min");  // a CBF table's sidecar; ATT is under `map`
}

TEST(BidsApp, RefusesBadDatasetsAndUsage) {
  const fs::path dir = cli_test::scratch_dir("bidsapp-usage");
  const std::string out = " " + (dir / "out").string();
  Result r = run("bids " + (dir / "missing").string() + out + " participant");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "no such folder")) << r.output;

  fs::create_directories(dir / "empty" / "sub-01" / "perf");
  r = run("bids " + (dir / "empty").string() + out + " participant");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "dataset_description.json")) << r.output;

  write_text(dir / "empty" / "dataset_description.json",
             R"({"Name": "x", "BIDSVersion": "1.9.0"})");
  r = run("bids " + (dir / "empty").string() + out + " participant");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "no ASL series")) << r.output;

  const std::string bids = "bids " + (dir / "empty").string() + out;
  EXPECT_EQ(run(bids + " session").status, 2);
  EXPECT_EQ(run("bids " + (dir / "empty").string() + " participant").status, 2);
  EXPECT_EQ(run(bids + " participant --nprocs 0").status, 2);
  EXPECT_EQ(run(bids + " participant --model nonsense").status, 2);
  r = run(bids + " participant --prior-noise nonsense");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--prior-noise")) << r.output;
  // Options that need others, and bad kernels: one usage error, not a failure per series.
  for (const std::string bad : {" --aatt-prior-mean 0.8", " --att-prior --aatt-prior-sd 0.5",
                                " --dispersion gauss", " --dispersion-s 5"}) {
    r = run(bids + " participant" + bad);
    EXPECT_EQ(r.status, 2) << bad << ": " << r.output;
    EXPECT_TRUE(contains(r.output, bad.substr(1, bad.find(' ', 1) - 1))) << bad << ": " << r.output;
  }
  EXPECT_EQ(run(bids + " participant --participant-label").status, 2);
  EXPECT_EQ(run(bids + " participant --quiet --verbose").status, 2);
  r = run("bids --help");
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(contains(r.output, "--participant-label") && contains(r.output, "group_stats.tsv"))
      << r.output;
}

}  // namespace
