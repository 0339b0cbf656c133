// perfq::io::check_series and perfq check: each rule on small hand-made series, a complete
// phantom series found ready, and the quirks of real converter output (../shared/data/real,
// skipped when absent).
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/check.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/phantom.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace cli_test;  // run, scratch_dir, write_text, read_text
using perfq::io::CheckFinding;
using perfq::io::CheckSeverity;

/// A series of `means.size()` volumes on a 6x6x4 grid, volume v uniformly means[v] (a little
/// structure so that the head is found), with `sidecar` beside it as `<name>.json`.
fs::path write_series(const fs::path& dir, const std::string& name,
                      const std::vector<double>& means, const Json& sidecar) {
  fs::create_directories(dir);
  perfq::Geometry g;
  g.dims = {6, 6, 4};
  perfq::Image<float> image(g, means.size(), 0.0f);
  for (std::size_t v = 0; v < means.size(); ++v) {
    for (std::size_t i = 0; i < g.voxel_count(); ++i) {
      image[v * g.voxel_count() + i] = static_cast<float>(i % 3 == 0 ? 1.0 : means[v]);
    }
  }
  const fs::path path = dir / (name + ".nii.gz");
  perfq::io::write_nifti(path.string(), image);
  write_text(dir / (name + ".json"), sidecar.dump(2));
  return path;
}

const CheckFinding* find(const perfq::io::SeriesCheck& c, const std::string& field,
                         CheckSeverity severity) {
  for (const auto& f : c.findings) {
    if (f.field == field && f.severity == severity) return &f;
  }
  return nullptr;
}

Json pcasl() {
  return {{"ArterialSpinLabelingType", "PCASL"},
          {"PostLabelingDelay", 1.8},
          {"LabelingDuration", 1.8},
          {"M0Type", "Included"},
          {"BackgroundSuppression", false},
          {"MagneticFieldStrength", 3},
          {"RepetitionTimePreparation", 4.0},
          {"MRAcquisitionType", "3D"}};
}

TEST(Check, TimesInMillisecondsAreErrorsWithTheValueInSeconds) {
  Json j = pcasl();
  j["RepetitionTimePreparation"] = 4100;
  j["PostLabelingDelay"] = Json::array({250, 500});
  const auto c = perfq::io::check_series(
      write_series(scratch_dir("check-ms"), "sub-01_asl", {1000, 800, 792, 801, 790}, j).string());
  const CheckFinding* tr = find(c, "RepetitionTimePreparation", CheckSeverity::Error);
  ASSERT_NE(tr, nullptr);
  EXPECT_NE(tr->problem.find("4100"), std::string::npos) << tr->problem;
  EXPECT_EQ(Json::parse(tr->proposed), Json(4.1));
  const CheckFinding* pld = find(c, "PostLabelingDelay", CheckSeverity::Error);
  ASSERT_NE(pld, nullptr);
  EXPECT_EQ(Json::parse(pld->proposed), Json::array({0.25, 0.5}));
  EXPECT_FALSE(c.ready());
}

TEST(Check, ThePldInTheLabelingDurationOfWangsGraseIsNamedWithBothValues) {
  // dcm2niix, D. J. Wang's 3D GRASE PCASL: LabelingDuration holds the PLD (1.2 s), no
  // PostLabelingDelay; the labeling is NumRFBlocks x 18.4 ms (82 blocks: 1.5088 s).
  Json j = pcasl();
  j.erase("PostLabelingDelay");
  j["LabelingDuration"] = 1.2;
  j["NumRFBlocks"] = 82;
  const auto c = perfq::io::check_series(
      write_series(scratch_dir("check-wang"), "sub-01_asl", {1000, 800, 792, 801, 790}, j)
          .string());
  const CheckFinding* pld = find(c, "PostLabelingDelay", CheckSeverity::Error);
  ASSERT_NE(pld, nullptr);
  EXPECT_NE(pld->problem.find("LabelingDuration holds it"), std::string::npos) << pld->problem;
  EXPECT_EQ(Json::parse(pld->proposed), Json(1.2));
  const CheckFinding* tau = find(c, "LabelingDuration", CheckSeverity::Error);
  ASSERT_NE(tau, nullptr);
  EXPECT_NEAR(Json::parse(tau->proposed).get<double>(), 82 * 0.0184, 1e-12);
  // The 2D sequence's sidecar, whose LabelingDuration is the train: no finding.
  Json two_d = pcasl();
  two_d["LabelingDuration"] = 1.5088;
  two_d["NumRFBlocks"] = 82;
  const auto fine = perfq::io::check_series(
      write_series(scratch_dir("check-wang-2d"), "sub-01_asl", {1000, 800, 792, 801, 790}, two_d)
          .string());
  EXPECT_EQ(find(fine, "LabelingDuration", CheckSeverity::Error), nullptr);
}

TEST(Check, APaslLabelingDurationIsAWarningNamingBothFields) {
  Json j = pcasl();
  j["ArterialSpinLabelingType"] = "PASL";
  j["PostLabelingDelay"] = 1.0;  // TI − TI1, as one simulator writes it
  j["BolusCutOffFlag"] = true;
  j["BolusCutOffDelayTime"] = 0.8;
  j["LabelingDuration"] = 0.8;
  const auto c = perfq::io::check_series(
      write_series(scratch_dir("check-pasl-ld"), "sub-01_asl", {1000, 800, 792, 801, 790}, j)
          .string());
  const CheckFinding* ld = find(c, "LabelingDuration", CheckSeverity::Warning);
  ASSERT_NE(ld, nullptr);
  EXPECT_NE(ld->problem.find("PostLabelingDelay (1.0)"), std::string::npos) << ld->problem;
  EXPECT_NE(ld->problem.find("BolusCutOffDelayTime"), std::string::npos) << ld->problem;
  EXPECT_NE(ld->fix.find("PostLabelingDelay"), std::string::npos) << ld->fix;
  EXPECT_EQ(find(c, "LabelingDuration", CheckSeverity::Error), nullptr);
}

TEST(Check, ASegmentedReadoutsRepetitionTimeIsOneSegments) {
  // A 4-segment 3D GRASE: dcm2niix's RepetitionTimePreparation (here in ms) spans the four
  // segments; each is prepared anew every RepetitionTimeExcitation.
  Json j = pcasl();
  j["RepetitionTimePreparation"] = 13929.4;
  j["RepetitionTimeExcitation"] = 3.48;
  const auto c = perfq::io::check_series(
      write_series(scratch_dir("check-segments"), "sub-01_asl", {1000, 800, 792, 801, 790}, j)
          .string());
  const CheckFinding* tr = find(c, "RepetitionTimePreparation", CheckSeverity::Error);
  ASSERT_NE(tr, nullptr);
  EXPECT_NE(tr->problem.find("4 × RepetitionTimeExcitation"), std::string::npos) << tr->problem;
  EXPECT_EQ(Json::parse(tr->proposed), Json(3.48));
  // A 2D series with a GRE-like excitation TR (ms): only the milliseconds.
  j["MRAcquisitionType"] = "2D";
  const auto two_d = perfq::io::check_series(
      write_series(scratch_dir("check-segments-2d"), "sub-01_asl", {1000, 800, 792, 801, 790}, j)
          .string());
  EXPECT_EQ(Json::parse(find(two_d, "RepetitionTimePreparation", CheckSeverity::Error)->proposed),
            Json(13.9294));
}

TEST(Check, AGeDeltaMOnThe32TimesNexScaleIsFoundWithTheFactor) {
  // GE: ΔM summed over NEX 3 excitations and amplified by 32 against the M0 (PD) image. A
  // physical ΔM/M0 of 0.8 % is stored as 96 x 0.8 % = 77 %.
  Json j = pcasl();
  j["Manufacturer"] = "GE";
  j["NumberOfExcitations"] = 3;
  const fs::path dir = scratch_dir("check-ge");
  const fs::path asl = write_series(dir, "sub-01_asl", {96 * 0.008 * 1000, 1000}, j);
  write_text(dir / "sub-01_aslcontext.tsv", "volume_type\ndeltam\nm0scan\n");
  const auto c = perfq::io::check_series(asl.string());
  const CheckFinding* scale = find(c, "deltam", CheckSeverity::Error);
  ASSERT_NE(scale, nullptr);
  EXPECT_NE(scale->problem.find("76.8 %"), std::string::npos) << scale->problem;
  EXPECT_NE(scale->fix.find("--m0-scale 96"), std::string::npos) << scale->fix;
  // On the physical scale: nothing to say.
  const fs::path fine_dir = scratch_dir("check-ge-fine");
  const fs::path fine = write_series(fine_dir, "sub-01_asl", {8, 1000}, j);
  write_text(fine_dir / "sub-01_aslcontext.tsv", "volume_type\ndeltam\nm0scan\n");
  EXPECT_EQ(find(perfq::io::check_series(fine.string()), "deltam", CheckSeverity::Error), nullptr);
}

TEST(Check, ADelayListGivenOncePerDelayIsExpandedInTheOrderTheImagesShow) {
  // An M0, then 12 label/control pairs over 3 delays, 4 repeats each. Background suppression
  // makes each delay's pairs alike in brightness (1000, 800, 600): the order shows.
  auto series = [](bool cycled) {
    std::vector<double> means{3000};
    for (std::size_t p = 0; p < 12; ++p) {
      const double level = 1000.0 - 200.0 * static_cast<double>(cycled ? p % 3 : p / 4);
      means.insert(means.end(), {level * 0.99, level});
    }
    return means;
  };
  for (const bool cycled : {true, false}) {
    Json j = pcasl();
    j["PostLabelingDelay"] = Json::array({0.5, 1.0, 1.5});
    const fs::path dir = scratch_dir(cycled ? "check-plds-cycled" : "check-plds-blocked");
    const fs::path asl = write_series(dir, "sub-01_asl", series(cycled), j);
    std::string context = "volume_type\nm0scan\n";
    for (int p = 0; p < 12; ++p) context += "label\ncontrol\n";
    write_text(dir / "sub-01_aslcontext.tsv", context);
    const perfq::io::SeriesCheck c = perfq::io::check_series(asl.string());
    const CheckFinding* f = find(c, "PostLabelingDelay", CheckSeverity::Error);
    ASSERT_NE(f, nullptr);
    EXPECT_NE(f->problem.find(cycled ? ": cycled" : ": in blocks"), std::string::npos)
        << f->problem;
    Json expected = Json::array({0.0});
    for (std::size_t p = 0; p < 12; ++p) {
      const double d = 0.5 * static_cast<double>(1 + (cycled ? p % 3 : p / 4));
      expected.insert(expected.end(), {d, d});
    }
    EXPECT_EQ(Json::parse(f->proposed), expected);
  }
}

TEST(Check, AConvertersM0SeriesBesideTheSeriesIsProposedAsItsM0Scan) {
  const fs::path dir = scratch_dir("check-m0-candidate");
  Json j = pcasl();
  j.erase("M0Type");
  j["SeriesDescription"] = "pcasl_2d";
  const fs::path asl = write_series(dir, "9_pcasl_2d_9", {800, 808, 800, 808, 800, 808}, j);
  Json m0 = pcasl();
  m0["SeriesDescription"] = "pcasl_2d_m0";
  m0["RepetitionTimePreparation"] = 2000;
  write_series(dir, "10_pcasl_2d_m0_10", {1500}, m0);
  const auto c = perfq::io::check_series(asl.string());
  EXPECT_EQ(c.m0_candidate, (dir / "10_pcasl_2d_m0_10.nii.gz").string());
  const CheckFinding* type = find(c, "M0Type", CheckSeverity::Error);
  ASSERT_NE(type, nullptr);
  EXPECT_EQ(type->proposed, "\"Separate\"");
  const fs::path out = scratch_dir("check-m0-candidate-proposal");
  fs::remove_all(out);
  perfq::io::write_proposal(c, out.string());
  const Json written = Json::parse(read_text(out / "9_pcasl_2d_9_m0scan.json"));
  EXPECT_EQ(written["RepetitionTimePreparation"], Json(2.0));
  EXPECT_FALSE(written.contains("M0Type"));
  EXPECT_TRUE(perfq::io::check_series((out / "9_pcasl_2d_9_asl.nii.gz").string()).ready());
  // Alone, without M0 volumes: Absent (relative CBF) is proposed.
  fs::remove(dir / "10_pcasl_2d_m0_10.nii.gz");
  EXPECT_EQ(find(perfq::io::check_series(asl.string()), "M0Type", CheckSeverity::Error)->proposed,
            "\"Absent\"");
}

TEST(Check, VendorNamesAreNamedWithTheirBidsFieldAndValue) {
  const Json pasl = {{"ArterialSpinLabelingType", "PASL"},
                     {"InversionTime", 2.0},
                     {"BolusDuration", 0.8},
                     {"M0Type", "Included"},
                     {"MagneticFieldStrength", 3},
                     {"MRAcquisitionType", "2D"}};
  const auto c = perfq::io::check_series(
      write_series(scratch_dir("check-pasl"), "pasl", {1330, 999, 1001, 998, 1002}, pasl).string());
  const CheckFinding* ti = find(c, "InversionTime", CheckSeverity::Warning);
  ASSERT_NE(ti, nullptr);
  EXPECT_NE(ti->problem.find("PostLabelingDelay"), std::string::npos);
  EXPECT_EQ(Json::parse(ti->proposed), Json(2.0));
  const CheckFinding* pld = find(c, "PostLabelingDelay", CheckSeverity::Error);
  ASSERT_NE(pld, nullptr);
  EXPECT_NE(pld->problem.find("InversionTime holds it"), std::string::npos);
  const CheckFinding* ti1 = find(c, "BolusCutOffDelayTime", CheckSeverity::Error);
  ASSERT_NE(ti1, nullptr);
  EXPECT_EQ(Json::parse(ti1->proposed), Json(0.8));
  EXPECT_NE(find(c, "BackgroundSuppression", CheckSeverity::Warning), nullptr);
  EXPECT_NE(find(c, "", CheckSeverity::Warning), nullptr);  // not named as BIDS

  Json tgse = pcasl();
  tgse.erase("PostLabelingDelay");
  tgse["InitialPostLabelDelay"] = Json::array({0.5, 1.0});
  const auto d = perfq::io::check_series(
      write_series(scratch_dir("check-tgse"), "sub-01_asl", {1000, 800, 792}, tgse).string());
  const CheckFinding* initial = find(d, "InitialPostLabelDelay", CheckSeverity::Warning);
  ASSERT_NE(initial, nullptr);
  EXPECT_EQ(Json::parse(initial->proposed), Json::array({0.5, 1.0}));
}

TEST(Check, AMissingAslcontextIsSuggestedFromTheImages) {
  // Volume 0 an M0 (a third brighter), then label/control pairs, the control 1 % brighter;
  // then the same with the control first and no M0.
  const fs::path dir = scratch_dir("check-context");
  const auto c = perfq::io::check_series(
      write_series(dir, "a_asl", {1330, 990, 1000, 991, 1001, 989, 999}, pcasl()).string());
  EXPECT_EQ(c.suggested_context, (std::vector<std::string>{"m0scan", "label", "control", "label",
                                                           "control", "label", "control"}));
  const CheckFinding* missing = nullptr;
  for (const auto& f : c.findings) {
    if (f.file == (dir / "a_aslcontext.tsv").string()) missing = &f;
  }
  ASSERT_NE(missing, nullptr);
  EXPECT_EQ(missing->severity, CheckSeverity::Error);
  EXPECT_NE(missing->problem.find("volume 0 stands out"), std::string::npos) << missing->problem;
  const auto d = perfq::io::check_series(
      write_series(dir, "b_asl", {1000, 990, 1001, 991, 1002, 990}, pcasl()).string());
  EXPECT_EQ(d.suggested_context,
            (std::vector<std::string>{"control", "label", "control", "label", "control", "label"}));
  // Brighter pairs at the shortest delays (background suppression) are no M0.
  const auto e = perfq::io::check_series(
      write_series(dir, "c_asl", {2000, 990, 1000, 700, 708, 500, 506, 990, 1000, 700, 708},
                   pcasl())
          .string());
  EXPECT_EQ(std::count(e.suggested_context.begin(), e.suggested_context.end(), "m0scan"), 1);
  // With an aslcontext, nothing is suggested; one whose rows do not match is an error.
  write_text(dir / "b_aslcontext.tsv", "volume_type\ncontrol\nlabel\n");
  const auto f = perfq::io::check_series((dir / "b_asl.nii.gz").string());
  EXPECT_TRUE(f.suggested_context.empty());
  EXPECT_NE(find(f, "volume_type", CheckSeverity::Error), nullptr);
}

TEST(Check, AProposalCompletesTheSeriesBesideItAndLeavesTheInputAlone) {
  // A converter's PASL series: TI and TI1 under vendor names, the M0 repetition time only as
  // RepetitionTime, no aslcontext (volume 0 an M0, then label/control).
  const Json pasl = {{"ArterialSpinLabelingType", "PASL"},
                     {"InversionTime", 2.0},
                     {"BolusDuration", 0.8},
                     {"M0Type", "Included"},
                     {"RepetitionTime", 3.1},
                     {"MagneticFieldStrength", 3},
                     {"BackgroundSuppression", false},
                     {"MRAcquisitionType", "3D"}};
  const fs::path dir = scratch_dir("check-propose");
  const fs::path image =
      write_series(dir / "in", "5_pasl", {1330, 990, 1000, 991, 1001, 989, 999}, pasl);
  const std::string before = read_text(dir / "in" / "5_pasl.json");
  const auto c = perfq::io::check_series(image.string());
  ASSERT_FALSE(c.ready());
  const perfq::io::Proposal p = perfq::io::write_proposal(c, (dir / "out").string());
  EXPECT_EQ(p.asl_path, (dir / "out" / "5_pasl_asl.nii.gz").string());
  EXPECT_EQ(p.files.size(), 3u);
  EXPECT_TRUE(fs::is_symlink(p.asl_path));
  EXPECT_EQ(read_text(dir / "in" / "5_pasl.json"), before);  // the input untouched
  const Json sidecar = Json::parse(read_text(dir / "out" / "5_pasl_asl.json"));
  EXPECT_EQ(sidecar["PostLabelingDelay"], Json(2.0));
  EXPECT_EQ(sidecar["BolusCutOffDelayTime"], Json(0.8));
  EXPECT_EQ(sidecar["BolusCutOffFlag"], Json(true));
  EXPECT_EQ(sidecar["RepetitionTimePreparation"], Json(3.1));
  for (const char* key : {"PostLabelingDelay", "BolusCutOffDelayTime", "BolusCutOffFlag",
                          "RepetitionTimePreparation"}) {
    EXPECT_TRUE(sidecar["PerfqProposed"].contains(key)) << key;
  }
  EXPECT_EQ(read_text(dir / "out" / "5_pasl_aslcontext.tsv"),
            "volume_type\nm0scan\nlabel\ncontrol\nlabel\ncontrol\nlabel\ncontrol\n");
  // The proposal is ready and reads as ASL-BIDS.
  EXPECT_TRUE(perfq::io::check_series(p.asl_path).ready());
  const perfq::io::AslDataset d = perfq::io::read_asl_bids(p.asl_path);
  EXPECT_EQ(d.protocol.bolus_cutoff_delay, 0.8);
  EXPECT_EQ(d.protocol.m0_repetition_time, 3.1);
  // Written once: again only with overwrite.
  EXPECT_THROW(perfq::io::write_proposal(c, (dir / "out").string()), perfq::Error);
  EXPECT_NO_THROW(perfq::io::write_proposal(c, (dir / "out").string(), true));
}

TEST(Check, AnM0WrittenAsAnAslSeriesIsNamedSo) {
  Json j = pcasl();
  j["SeriesDescription"] = "pcasl_2d_m0";
  j["RepetitionTimePreparation"] = 2000;
  const auto c =
      perfq::io::check_series(write_series(scratch_dir("check-m0"), "m0", {1000}, j).string());
  ASSERT_FALSE(c.findings.empty());
  EXPECT_NE(c.findings[0].problem.find("an M0 scan"), std::string::npos) << c.findings[0].problem;
  EXPECT_NE(find(c, "M0Type", CheckSeverity::Warning), nullptr);
  EXPECT_NE(find(c, "RepetitionTimePreparation", CheckSeverity::Error), nullptr);
}

TEST(Check, APhantomSeriesIsReadyAndFoundInItsDataset) {
  perfq::PhantomOptions o;
  o.dims = {20, 24, 16};
  o.repeats = 2;
  const fs::path root = scratch_dir("check-phantom");
  const std::string asl = perfq::io::write_phantom_bids(perfq::make_phantom(o), root.string());
  const auto c = perfq::io::check_series(asl);
  EXPECT_TRUE(c.ready());
  for (const auto& f : c.findings) ADD_FAILURE() << f.field << ": " << f.problem;
  EXPECT_EQ(perfq::io::find_asl_series(root.string()), std::vector<std::string>{asl});
  // An m0scan sidecar with M0Type (dcm2niix writes it there too).
  edit_json(fs::path(asl).parent_path() / "sub-01_m0scan.json",
            [](Json& j) { j["M0Type"] = "Included"; });
  EXPECT_NE(find(perfq::io::check_series(asl), "M0Type", CheckSeverity::Warning), nullptr);

  // The tool: exit 0 for a ready dataset, JSON listing the series.
  const Result r = run("check " + root.string() + " --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const Json j = Json::parse(r.output.substr(r.output.find('[')));
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["series"], asl);
  EXPECT_TRUE(j[0]["ready"].get<bool>());
}

TEST(Check, RealConverterOutputShowsEveryKnownQuirk) {
  const fs::path real = fs::path(PERFQ_SHARED_DATA) / "real" / "siemens-prisma";
  if (!fs::exists(real)) GTEST_SKIP() << "no real data at " << real;
  const Result r = run("check " + real.string() + " --json");
  EXPECT_EQ(r.status, 1) << r.output;  // not ready as converted
  const Json all = Json::parse(r.output.substr(r.output.find('[')));
  auto series = [&](const std::string& name) -> const Json& {
    for (const Json& s : all) {
      if (fs::path(s["series"].get<std::string>()).filename() == name) return s;
    }
    throw std::runtime_error("no series " + name);
  };
  auto finding = [&](const Json& s, const std::string& field) -> Json {
    for (const Json& f : s["findings"]) {
      if (f["field"] == field) return f;
    }
    return Json();
  };
  EXPECT_EQ(all.size(), 6u);
  // RepetitionTimePreparation in milliseconds (dcm2niix).
  EXPECT_EQ(finding(series("9_pcasl_2d_9.nii.gz"), "RepetitionTimePreparation")["proposed"],
            Json(2.54));
  // The separate M0 written as a one-volume ASL series with M0Type.
  EXPECT_EQ(finding(series("10_pcasl_2d_m0_10.nii.gz"), "M0Type")["severity"], "warning");
  // Vendor names: InitialPostLabelDelay (3D GRASE), InversionTime/BolusDuration (PASL).
  // InitialPostLabelDelay lists each delay once: its vendor-name warning proposes the list, the
  // missing PostLabelingDelay one value per volume, cycled pair by pair as the images show.
  const Json& tgse = series("20_jw_tgse_PCASL_singleShot_6PLDs_8Averages_20.nii.gz");
  EXPECT_EQ(finding(tgse, "InitialPostLabelDelay")["proposed"],
            Json::array({0.25, 0.5, 0.75, 1, 1.25, 1.5}));
  const Json per_volume = finding(tgse, "PostLabelingDelay")["proposed"];
  ASSERT_EQ(per_volume.size(), 96u);
  EXPECT_EQ(per_volume[0], Json(0.25));
  EXPECT_EQ(per_volume[2], Json(0.5));
  EXPECT_EQ(per_volume[12], Json(0.25));
  EXPECT_EQ(finding(tgse, "LabelingDuration")["proposed"], Json(1.4));  // from Tag0
  EXPECT_EQ(finding(series("3_pasl_2d_3.nii.gz"), "BolusCutOffDelayTime")["proposed"], Json(0.8));
  // A PostLabelingDelay list shorter than the volumes (6 delays, 97 volumes).
  EXPECT_EQ(finding(series("11_to_ep2d_PCASL_11.nii.gz"), "PostLabelingDelay")["severity"],
            "error");
  // The aslcontexts the images suggest agree with the README's description of the series:
  // PASL: volume 0 an M0, then label/control; 3D PCASL: volume 0 an M0, then control/label.
  const Json pasl = series("3_pasl_2d_3.nii.gz")["suggested_aslcontext"];
  ASSERT_EQ(pasl.size(), 85u);
  EXPECT_EQ(pasl[0], "m0scan");
  EXPECT_EQ(pasl[1], "label");
  EXPECT_EQ(pasl[2], "control");
  const Json grase = series("15_pcasl_3d_15.nii.gz")["suggested_aslcontext"];
  EXPECT_EQ(grase[0], "m0scan");
  EXPECT_EQ(grase[1], "control");
  const Json multi = series("11_to_ep2d_PCASL_11.nii.gz")["suggested_aslcontext"];
  EXPECT_EQ(std::count(multi.begin(), multi.end(), "m0scan"), 1);
  // Every series is ready once the proposal completes it (the PLD list in the order the images
  // show, the separate M0 found beside the 2D PCASL, M0Type Absent for the M0-less 3D GRASE),
  // and quantifies.
  const fs::path proposal = scratch_dir("check-real-propose");
  const Result proposed = run("check " + real.string() + " --propose " + proposal.string());
  EXPECT_EQ(proposed.status, 1) << proposed.output;  // the input itself is not ready
  for (const std::string name :
       {"3_pasl_2d_3", "9_pcasl_2d_9", "11_to_ep2d_PCASL_11", "15_pcasl_3d_15",
        "20_jw_tgse_PCASL_singleShot_6PLDs_8Averages_20"}) {
    const fs::path asl = proposal / (name + "_asl.nii.gz");
    EXPECT_NE(proposed.output.find(asl.string() + ": ready"), std::string::npos) << name << "\n"
                                                                                 << proposed.output;
    const Result cbf = run("cbf " + asl.string() + " -o " + (proposal / "out").string() +
                           " --backend cpu --overwrite");
    EXPECT_EQ(cbf.status, 0) << cbf.output;
  }
  EXPECT_TRUE(fs::is_symlink(proposal / "9_pcasl_2d_9_m0scan.nii.gz"));
  const Json m0 = Json::parse(read_text(proposal / "9_pcasl_2d_9_m0scan.json"));
  EXPECT_EQ(m0["RepetitionTimePreparation"], Json(2.0));
  EXPECT_FALSE(m0.contains("M0Type"));
  const Json multi_delay = Json::parse(read_text(proposal / "11_to_ep2d_PCASL_11_asl.json"));
  ASSERT_EQ(multi_delay["PostLabelingDelay"].size(), 97u);
  EXPECT_EQ(multi_delay["PostLabelingDelay"][0], Json(0.0));  // the M0
  EXPECT_EQ(multi_delay["PostLabelingDelay"][1], Json(0.25));
  EXPECT_EQ(multi_delay["PostLabelingDelay"][3], Json(0.5));  // cycled pair by pair
  EXPECT_EQ(multi_delay["PostLabelingDelay"][13], Json(0.25));
  EXPECT_EQ(Json::parse(read_text(
                proposal / "20_jw_tgse_PCASL_singleShot_6PLDs_8Averages_20_asl.json"))["M0Type"],
            "Absent");
  // BackgroundSuppression, required by BIDS, is left out of every ASL sidecar.
  EXPECT_EQ(finding(series("9_pcasl_2d_9.nii.gz"), "BackgroundSuppression")["severity"], "warning");
}

}  // namespace
