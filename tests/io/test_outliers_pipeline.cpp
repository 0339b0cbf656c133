// --outliers score|scrub end to end: a phantom series with motion-corrupted pairs written as
// ASL-BIDS, quantified by the library and by perfq cbf; the pairs dropped recorded in the
// _cbf.json.
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/phantom.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace cli_test;  // run, Result, read_text, scratch_dir

/// A single-delay phantom of 12 pairs (a pair's GM SNR 3) with pair 2's label image moved by
/// one voxel along y and pair 7's label image 3 % darker, as motion leaves them.
perfq::Phantom corrupted_phantom(std::vector<double> delays = {1.8}) {
  perfq::PhantomOptions o;
  o.dims = {30, 36, 24};
  o.repeats = 12;
  o.snr = 3;
  o.delays = std::move(delays);
  perfq::Phantom p = perfq::make_phantom(o);
  const auto& d = p.m0.geometry().dims;
  const std::size_t n = p.m0.size();
  const perfq::Series<float> original = p.asl;
  float* label = p.asl.data() + 5 * n;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t y = (i / d[0]) % d[1];
    label[i] = y + 1 < d[1] ? original.data()[5 * n + i + d[0]] : original.data()[5 * n + i];
  }
  for (std::size_t i = 0; i < n; ++i) p.asl.data()[15 * n + i] *= 0.97f;
  return p;
}

/// Writes the phantom's tissue classes as GM, WM and CSF maps (0/1) into `dir`.
void write_tissue(const perfq::Phantom& p, const fs::path& dir) {
  const std::pair<const char*, std::uint8_t> classes[] = {
      {"gm", perfq::kGreyMatter}, {"wm", perfq::kWhiteMatter}, {"csf", perfq::kCsf}};
  for (const auto& [name, label] : classes) {
    perfq::Volume<float> map(p.tissue.geometry());
    for (std::size_t i = 0; i < map.size(); ++i) map[i] = p.tissue[i] == label;
    perfq::io::write_nifti((dir / (std::string(name) + ".nii.gz")).string(), map.view());
  }
}

double gm_mean(const perfq::Phantom& p, const perfq::Volume<float>& map) {
  double sum = 0.0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < map.size(); ++i) {
    if (p.tissue[i] != perfq::kGreyMatter) continue;
    sum += map[i];
    ++count;
  }
  return sum / static_cast<double>(count);
}

perfq::io::SeriesRequest request_for(const fs::path& dir, perfq::OutlierRejection method) {
  perfq::io::SeriesRequest r;
  r.execution.backend = perfq::Backend::Cpu;
  r.gm_probseg = (dir / "gm.nii.gz").string();
  r.wm_probseg = (dir / "wm.nii.gz").string();
  r.csf_probseg = (dir / "csf.nii.gz").string();
  r.averaging.outliers = method;
  return r;
}

TEST(PipelineOutliers, ScoreAndScrubDropTheCorruptedPairsAndRecordThem) {
  const fs::path dir = scratch_dir("outliers-pipeline");
  const perfq::Phantom p = corrupted_phantom();
  const std::string asl = perfq::io::write_phantom_bids(p, (dir / "bids").string());
  write_tissue(p, dir);
  const double truth = gm_mean(p, p.cbf);

  perfq::io::SeriesRequest plain_request = request_for(dir, perfq::OutlierRejection::None);
  const perfq::io::SeriesMaps plain = perfq::io::quantify_series(asl, plain_request);
  for (perfq::OutlierRejection method :
       {perfq::OutlierRejection::Score, perfq::OutlierRejection::Scrub}) {
    SCOPED_TRACE(perfq::to_string(method));
    const perfq::io::SeriesMaps maps = perfq::io::quantify_series(asl, request_for(dir, method));
    // Pairs 2 (volumes 4, 5) and 7 (14, 15), and no other (this seed puts no clean pair's GM
    // mean beyond the first rule's 2.5 robust SDs; docs/outliers.md).
    ASSERT_EQ(maps.rejected_volumes.size(), 1u);
    ASSERT_EQ(maps.rejected_volumes[0].size(), 2u);
    EXPECT_EQ(maps.rejected_volumes[0][0].control, 4u);
    EXPECT_EQ(maps.rejected_volumes[0][1].control, 14u);
    const nlohmann::json j = nlohmann::json::parse(maps.provenance_json);
    const nlohmann::json& o = j.at("OutlierRejection");
    EXPECT_EQ(o.at("Method"), method == perfq::OutlierRejection::Scrub ? "SCORE+SCRUB" : "SCORE");
    EXPECT_EQ(o.at("PairsExamined"), 12);
    EXPECT_EQ(o.at("PairsRejected"), 2);
    ASSERT_EQ(o.at("Rejected").size(), 2u);
    EXPECT_EQ(o.at("Rejected")[0].at("Control"), 4);
    EXPECT_EQ(o.at("Rejected")[0].at("Label"), 5);
    EXPECT_EQ(o.at("Rejected")[1].at("Control"), 14);
    EXPECT_EQ(o.at("Rejected")[1].at("Label"), 15);
    EXPECT_FALSE(o.at("Rejected")[0].at("Reason").get<std::string>().empty());
    EXPECT_EQ(o.at("Kept").size(), 10u);
    EXPECT_EQ(o.at("Kept")[0].at("Control"), 0);
    EXPECT_EQ(o.at("TissueMaps").at("CSF"), (dir / "csf.nii.gz").string());
    EXPECT_EQ(j.at("Averaging").at("RepeatsAveraged"), 10);
    EXPECT_EQ(j.at("Averaging").at("Outliers"), perfq::to_string(method));
    // CBF near the truth, and much nearer than with every pair.
    EXPECT_NEAR(gm_mean(p, maps.cbf) / truth, 1.0, 0.05);
    EXPECT_LT(std::abs(gm_mean(p, maps.cbf) - truth),
              0.25 * std::abs(gm_mean(p, plain.cbf) - truth));
  }
  EXPECT_EQ(nlohmann::json::parse(plain.provenance_json).count("OutlierRejection"), 0u);

  // The tool: the same pairs in its _cbf.json.
  const Result cbf =
      run("cbf " + asl + " -o " + (dir / "out").string() + " --outliers score --gm-probseg " +
          (dir / "gm.nii.gz").string() + " --wm-probseg " + (dir / "wm.nii.gz").string() +
          " --csf-probseg " + (dir / "csf.nii.gz").string() + " --backend cpu");
  ASSERT_EQ(cbf.status, 0) << cbf.output;
  const nlohmann::json written = nlohmann::json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
  EXPECT_EQ(written.at("OutlierRejection").at("PairsRejected"), 2);
  EXPECT_EQ(written.at("OutlierRejection").at("Rejected")[1].at("Label"), 15);
}

TEST(PipelineOutliers, RefusesWhatScoreCannotDo) {
  const fs::path dir = scratch_dir("outliers-refusals");
  // Several delays: refused naming the sidecar and the field.
  const perfq::Phantom multi = corrupted_phantom({1.0, 2.0});
  const std::string asl = perfq::io::write_phantom_bids(multi, (dir / "bids").string());
  write_tissue(multi, dir);
  try {
    perfq::io::quantify_series(asl, request_for(dir, perfq::OutlierRejection::Score));
    ADD_FAILURE() << "a multi-delay series was accepted";
  } catch (const perfq::InputError& e) {
    EXPECT_EQ(e.field(), "PostLabelingDelay");
    EXPECT_NE(std::string(e.what()).find("--outliers score works on single-delay series"),
              std::string::npos)
        << e.what();
  }
  // The options: tissue maps missing, --robust as well, a method unknown.
  auto refusal = [](const std::vector<std::string>& options) {
    try {
      perfq::io::parse_series_options(options);
    } catch (const perfq::InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(refusal({"--outliers", "scrub", "--gm-probseg", "gm.nii.gz"})
                .find("missing: --wm-probseg, --csf-probseg"),
            std::string::npos);
  EXPECT_NE(refusal({"--outliers", "score", "--robust", "--gm-probseg", "g", "--wm-probseg", "w",
                     "--csf-probseg", "c"})
                .find("--outliers score and --robust are two outlier rules"),
            std::string::npos);
  EXPECT_NE(refusal({"--outliers", "enable"}).find("--outliers: expected score or scrub"),
            std::string::npos);
  const Result cbf = run("cbf " + asl + " -o " + (dir / "out").string() + " --outliers score");
  EXPECT_NE(cbf.status, 0) << cbf.output;
  EXPECT_NE(cbf.output.find("--gm-probseg"), std::string::npos) << cbf.output;
}

}  // namespace
