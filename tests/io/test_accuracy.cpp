// Accuracy checks of the series pipeline against independent data (issue #18 §3): voxels
// whose M0 is far below the brain's get a status of their own, and the arterial blood T1 from
// the haematocrit (--hct, participants.tsv). Expected values are computed here by hand.
#include <perfq/cbf.hpp>
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/phantom.hpp>
#include <perfq/protocol.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace cli_test;  // run, Result, read_text, write_text, scratch_dir

constexpr std::size_t kNx = 12, kNy = 12, kNz = 6;
constexpr double kPld = 1.8, kTau = 1.8, kLambda = 0.9, kAlpha = 0.85;

std::size_t at(std::size_t x, std::size_t y, std::size_t z) { return x + kNx * (y + kNy * z); }

bool in_brain(std::size_t x, std::size_t y, std::size_t z) {
  return x >= 3 && x < 9 && y >= 3 && y < 9 && z >= 1 && z < 5;  // 6 x 6 x 4 = 144 voxels
}

/// A single-delay PCASL series held in memory, as a resampled acquisition gives it: M0 1000
/// in a 144-voxel brain, ~1e-14 around it, ΔM 10 in the brain and 0.01 (noise) around it.
/// Three voxels outside the brain: M0 5 (0.5 % of the brain's), 20 (2 %) and 0.
perfq::io::AslDataset resampled_series() {
  perfq::io::AslDataset d;
  d.asl_path = "memory/sub-01_asl.nii.gz";
  d.sidecar_path = "memory/sub-01_asl.json";
  d.sidecar_paths = {d.sidecar_path};
  d.context_path = "memory/sub-01_aslcontext.tsv";
  d.m0_path = "memory/sub-01_m0scan.nii.gz";
  d.prefix = "sub-01";
  perfq::Geometry g;
  g.dims = {kNx, kNy, kNz};
  g.spacing = {3.0, 3.0, 3.0};
  d.asl = perfq::Series<float>(g, 2);
  d.m0 = perfq::Volume<float>(g);
  d.m0_volumes = 1;
  d.context = {perfq::VolumeType::Control, perfq::VolumeType::Label};
  const std::size_t n = g.voxel_count();
  for (std::size_t z = 0; z < kNz; ++z) {
    for (std::size_t y = 0; y < kNy; ++y) {
      for (std::size_t x = 0; x < kNx; ++x) {
        const std::size_t i = at(x, y, z);
        const bool brain = in_brain(x, y, z);
        (*d.m0)[i] = brain ? 1000.0f : 1e-14f;
        d.asl[i] = brain ? 100.0f : 0.01f;    // control
        d.asl[n + i] = brain ? 90.0f : 0.0f;  // label
      }
    }
  }
  (*d.m0)[at(0, 0, 0)] = 5.0f;
  (*d.m0)[at(1, 0, 0)] = 20.0f;
  (*d.m0)[at(2, 0, 0)] = 0.0f;
  d.protocol.labeling_type = perfq::LabelingType::Pcasl;
  d.protocol.post_labeling_delay = {kPld};
  d.protocol.labeling_duration = {kTau};
  d.protocol.m0_type = perfq::M0Type::Separate;
  d.protocol.m0_repetition_time = 8.0;  // long: no short-TR correction
  d.protocol.magnetic_field_strength = 3.0;
  return d;
}

/// The white paper's PCASL CBF, by hand.
double white_paper_cbf(double delta_m, double m0, double t1b) {
  return 6000.0 * kLambda * delta_m * std::exp(kPld / t1b) /
         (2.0 * kAlpha * t1b * m0 * (1.0 - std::exp(-kTau / t1b)));
}

perfq::io::SeriesRequest cpu_request() {
  perfq::io::SeriesRequest r;
  r.execution.backend = perfq::Backend::Cpu;
  return r;
}

TEST(Accuracy, VoxelsWithM0FarBelowTheBrainsGetStatusM0TooLowAndNoValue) {
  const perfq::io::AslDataset data = resampled_series();
  const perfq::io::SeriesMaps maps = perfq::io::quantify_series(data, cpu_request());
  const auto m0_too_low = static_cast<std::uint8_t>(perfq::VoxelStatus::M0TooLow);
  // The automatic brain mask is the M0's bright block: median M0 1000, threshold 1 % = 10.
  std::size_t ok = 0, low = 0, not_positive = 0;
  for (std::size_t i = 0; i < maps.cbf.size(); ++i) {
    EXPECT_TRUE(std::isfinite(maps.cbf[i])) << i;
    EXPECT_LT(std::abs(maps.cbf[i]), 1000.0f) << "voxel " << i << ": no huge value";
    ok += maps.status[i] == 0;
    low += maps.status[i] == m0_too_low;
    not_positive += maps.status[i] == 2;
    if (maps.status[i] == m0_too_low) EXPECT_EQ(maps.cbf[i], 0.0f) << i;
  }
  EXPECT_EQ(ok, 144u + 1u);                // the brain and the voxel of M0 20 (2 %)
  EXPECT_EQ(not_positive, 1u);             // M0 0 keeps its status
  EXPECT_EQ(low, kNx * kNy * kNz - 146u);  // the background and the voxel of M0 5 (0.5 %)
  EXPECT_EQ(maps.status[at(0, 0, 0)], m0_too_low);
  EXPECT_EQ(maps.status[at(1, 0, 0)], 0);
  EXPECT_NEAR(maps.cbf[at(1, 0, 0)], white_paper_cbf(0.01, 20.0, 1.65), 1e-4);
  EXPECT_NEAR(maps.cbf[at(4, 4, 2)], white_paper_cbf(10.0, 1000.0, 1.65), 1e-3);
  EXPECT_EQ(perfq::to_string(perfq::VoxelStatus::M0TooLow),
            std::string("M0 too low (far below the brain's)"));

  // The sidecar counts them and records the rule.
  const Json j = Json::parse(maps.provenance_json);
  EXPECT_EQ(j["StatusCounts"]["8"], kNx * kNy * kNz - 146u);
  EXPECT_EQ(j["StatusCounts"]["0"], 145u);
  EXPECT_EQ(j["StatusCounts"]["2"], 1u);
  EXPECT_EQ(j["StatusCodes"]["8"], "M0 too low (far below the brain's)");
  EXPECT_EQ(j["M0Floor"]["Applied"], true);
  EXPECT_EQ(j["M0Floor"]["Fraction"], 0.01);
  EXPECT_EQ(j["M0Floor"]["BrainMedianM0"], 1000.0);
  EXPECT_EQ(j["M0Floor"]["Threshold"], 10.0);
  EXPECT_EQ(j["M0Floor"]["Voxels"], kNx * kNy * kNz - 146u);

  // The fraction is an option (0: off, the old behaviour: status 0 and CBF ~1e14 there).
  perfq::io::SeriesRequest off = cpu_request();
  perfq::io::set_series_option(off, "--min-m0-fraction", "0");
  const perfq::io::SeriesMaps raw = perfq::io::quantify_series(data, off);
  EXPECT_EQ(raw.status[at(0, 1, 0)], 0);
  EXPECT_GT(raw.cbf[at(0, 1, 0)], 1e12f);
  EXPECT_EQ(Json::parse(raw.provenance_json)["M0Floor"]["Applied"], false);
  // A higher fraction: 3 % of the median 1000 = 30.
  perfq::io::SeriesRequest higher = cpu_request();
  perfq::io::set_series_option(higher, "--min-m0-fraction", "0.03");
  const perfq::io::SeriesMaps strict = perfq::io::quantify_series(data, higher);
  EXPECT_EQ(strict.status[at(1, 0, 0)], m0_too_low);  // 20 < 30
  EXPECT_EQ(strict.status[at(4, 4, 2)], 0);
  EXPECT_THROW(perfq::io::set_series_option(higher, "--min-m0-fraction", "0.6"),
               perfq::InvalidArgument);
}

TEST(Accuracy, MultiDelayVoxelsWithM0FarBelowTheBrainsHaveEveryMapZero) {
  perfq::io::AslDataset data = resampled_series();
  // Two delays: two pairs, the same ΔM at both.
  perfq::Series<float> series(data.asl.geometry(), 4);
  const std::size_t n = data.asl.voxel_count();
  for (std::size_t v = 0; v < 4; ++v) {
    for (std::size_t i = 0; i < n; ++i) series[v * n + i] = data.asl[(v % 2) * n + i];
  }
  data.asl = std::move(series);
  data.context = {perfq::VolumeType::Control, perfq::VolumeType::Label, perfq::VolumeType::Control,
                  perfq::VolumeType::Label};
  data.protocol.post_labeling_delay = {1.5, 1.5, 2.0, 2.0};
  const perfq::io::SeriesMaps maps = perfq::io::quantify_series(data, cpu_request());
  ASSERT_TRUE(maps.att && maps.cbf_se && maps.att_se);
  const std::size_t i = at(0, 1, 0);
  EXPECT_EQ(maps.status[i], static_cast<std::uint8_t>(perfq::VoxelStatus::M0TooLow));
  EXPECT_EQ(maps.cbf[i], 0.0f);
  EXPECT_EQ((*maps.att)[i], 0.0f);
  EXPECT_EQ((*maps.cbf_se)[i], 0.0f);
  EXPECT_EQ((*maps.att_se)[i], 0.0f);
  EXPECT_EQ(Json::parse(maps.provenance_json)["StatusCounts"]["8"], kNx * kNy * kNz - 146u);
}

TEST(Accuracy, BloodT1FromTheHaematocritByLuEtAl2004) {
  // 1/T1 = 0.52 Hct + 0.38 /s (arterial blood, 3 T).
  EXPECT_NEAR(perfq::blood_t1_from_hematocrit(0.42), 1.0 / 0.5984, 1e-12);
  EXPECT_NEAR(perfq::blood_t1_from_hematocrit(0.30), 1.0 / 0.536, 1e-12);
  EXPECT_NEAR(perfq::blood_t1_from_hematocrit(0.1), 1.0 / 0.432, 1e-12);
  EXPECT_NEAR(perfq::blood_t1_from_hematocrit(0.7), 1.0 / 0.744, 1e-12);
  for (double bad : {0.05, 0.75, -0.4, 0.0}) {
    EXPECT_THROW(perfq::blood_t1_from_hematocrit(bad), perfq::InvalidArgument) << bad;
  }
  try {
    perfq::blood_t1_from_hematocrit(42);
    ADD_FAILURE() << "a percentage was taken";
  } catch (const perfq::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("fraction"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("0.42"), std::string::npos) << e.what();
  }

  // --hct in the request: the T1 used, the CBF it gives, and its record in the sidecar.
  const perfq::io::AslDataset data = resampled_series();
  perfq::io::SeriesRequest r = perfq::io::parse_series_options({"--hct", "0.45"});
  r.execution.backend = perfq::Backend::Cpu;
  const double t1b = 1.0 / (0.52 * 0.45 + 0.38);
  const perfq::io::SeriesMaps maps = perfq::io::quantify_series(data, r);
  EXPECT_NEAR(maps.constants.t1_blood, t1b, 1e-12);
  EXPECT_NEAR(maps.cbf[at(4, 4, 2)], white_paper_cbf(10.0, 1000.0, t1b), 1e-3);
  const Json j = Json::parse(maps.provenance_json);
  EXPECT_NEAR(j["ArterialBloodT1"].get<double>(), t1b, 1e-12);
  EXPECT_EQ(j["ArterialBloodT1Source"], "haematocrit (--hct)");
  EXPECT_EQ(j["ArterialBloodT1FromHematocrit"]["Hematocrit"], 0.45);
  EXPECT_EQ(j["ArterialBloodT1FromHematocrit"]["Formula"], "1/T1b = 0.52 * Hct + 0.38 (1/s)");
  EXPECT_NE(j["ArterialBloodT1FromHematocrit"]["Reference"].get<std::string>().find(
                "Magn Reson Med 2004;52:679"),
            std::string::npos);

  // An explicit --t1b beats it, with a note.
  perfq::io::SeriesRequest both =
      perfq::io::parse_series_options({"--hct", "0.45", "--t1b", "1.7"});
  both.execution.backend = perfq::Backend::Cpu;
  const perfq::io::SeriesMaps stated = perfq::io::quantify_series(data, both);
  EXPECT_EQ(stated.constants.t1_blood, 1.7);
  const Json k = Json::parse(stated.provenance_json);
  EXPECT_EQ(k["ArterialBloodT1Source"], "--t1b");
  bool noted = false;
  for (const auto& note : k["Notes"]) {
    noted = noted || note.get<std::string>().find("--t1b 1.7 s beats --hct 0.45") == 0;
  }
  EXPECT_TRUE(noted) << k["Notes"].dump();

  // Out of range or in %: refused naming the option; at 1.5 T: refused naming the field.
  for (const std::string bad : {"42", "0.05", "0.9", "x"}) {
    EXPECT_THROW(perfq::io::parse_series_options({"--hct", bad}), perfq::InvalidArgument) << bad;
  }
  try {
    perfq::io::parse_series_options({"--hct", "45"});
    ADD_FAILURE() << "no error";
  } catch (const perfq::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("--hct: haematocrit 45: expected a fraction"),
              std::string::npos)
        << e.what();
  }
  perfq::io::AslDataset low_field = resampled_series();
  low_field.protocol.magnetic_field_strength = 1.5;
  try {
    perfq::io::quantify_series(low_field, r);
    ADD_FAILURE() << "no error";
  } catch (const perfq::InputError& e) {
    EXPECT_EQ(e.field(), "MagneticFieldStrength");
    EXPECT_NE(std::string(e.what()).find("--t1b"), std::string::npos) << e.what();
  }
}

TEST(Accuracy, TheHaematocritOfParticipantsTsv) {
  const fs::path dir = scratch_dir("accuracy-participants");
  fs::create_directories(dir);
  EXPECT_FALSE(perfq::io::participant_hematocrit(dir.string(), "01"));  // no file
  write_text(dir / "participants.tsv",
             "participant_id\tage\tHct\nsub-01\t34\t0.41\nsub-02\t51\tn/a\nsub-03\t40\t44\n"
             "sub-04\t29\tabc\n");
  EXPECT_EQ(perfq::io::participant_hematocrit(dir.string(), "01"), 0.41);
  EXPECT_EQ(perfq::io::participant_hematocrit(dir.string(), "sub-01"), 0.41);
  EXPECT_FALSE(perfq::io::participant_hematocrit(dir.string(), "02"));  // n/a
  EXPECT_FALSE(perfq::io::participant_hematocrit(dir.string(), "09"));  // not listed
  for (const auto& [label, needle] : std::vector<std::pair<std::string, std::string>>{
           {"03", "expected a fraction"}, {"04", "is not a number"}}) {
    try {
      perfq::io::participant_hematocrit(dir.string(), label);
      ADD_FAILURE() << label;
    } catch (const perfq::InputError& e) {
      EXPECT_EQ(e.field(), "Hct");
      EXPECT_NE(std::string(e.what()).find("participants.tsv"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  write_text(dir / "participants.tsv", "participant_id\tsex\nsub-01\tF\n");
  EXPECT_FALSE(perfq::io::participant_hematocrit(dir.string(), "01"));  // no such column

  // perfq bids passes it to the cbf step (as --hct): the blood T1 of the sidecar.
  perfq::PhantomOptions o;
  o.dims = {24, 28, 20};
  o.repeats = 2;
  perfq::io::write_phantom_bids(perfq::make_phantom(o), (dir / "bids").string());
  write_text(dir / "bids" / "participants.tsv",
             "participant_id\themato crit\thematocrit\nsub-01\tx\t0.38\n");
  const Result r = run("bids " + (dir / "bids").string() + " " + (dir / "out").string() +
                       " participant --no-report --backend cpu");
  ASSERT_EQ(r.status, 0) << r.output;
  const Json j = Json::parse(read_text(dir / "out" / "sub-01" / "perf" / "sub-01_cbf.json"));
  EXPECT_NEAR(j["ArterialBloodT1"].get<double>(), 1.0 / (0.52 * 0.38 + 0.38), 1e-12);
  EXPECT_EQ(j["ArterialBloodT1FromHematocrit"]["Hematocrit"], 0.38);
}

}  // namespace
