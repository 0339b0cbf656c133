// `perfq bids --config` end to end: a dataset that mixes a GE series (its M0 on another
// scale: --m0-scale) and an M0-absent series (--m0-value) runs in one call; each series'
// _cbf.json records what applied, the options take effect, and the command line beats them.
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/phantom.hpp>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "cli_test_util.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace cli_test;  // run, Result, read_text, write_text, scratch_dir, edit_json

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// Two series of the phantom: sub-01 from a GE scanner, sub-02 from a Siemens one without M0
/// (its m0scan moved to `dir/m0/` and its M0Type set to Absent).
fs::path make_dataset(const std::string& name) {
  const fs::path dir = scratch_dir("bidsconfig-" + name);
  const fs::path bids = dir / "bids";
  perfq::PhantomOptions o;
  o.dims = {24, 24, 20};
  o.repeats = 2;
  const perfq::Phantom phantom = perfq::make_phantom(o);
  for (const std::string subject : {"01", "02"}) {
    perfq::io::write_phantom_bids(phantom, bids.string(), subject);
  }
  const fs::path perf1 = bids / "sub-01" / "perf", perf2 = bids / "sub-02" / "perf";
  edit_json(perf1 / "sub-01_asl.json", [](Json& j) { j["Manufacturer"] = "GE"; });
  edit_json(perf2 / "sub-02_asl.json", [](Json& j) {
    j["Manufacturer"] = "Siemens";
    j["M0Type"] = "Absent";
  });
  fs::create_directories(dir / "m0");
  for (const char* file : {"sub-02_m0scan.nii.gz", "sub-02_m0scan.json"}) {
    fs::rename(perf2 / file, dir / "m0" / file);
  }
  return dir;
}

Result participant(const fs::path& dir, const std::string& options) {
  return run("bids " + (dir / "bids").string() + " " + (dir / "out").string() +
             " participant --backend cpu --no-report" + options);
}

/// CBF / truth × factor(voxel), over the truth's brain mask: its smallest and largest value.
std::pair<double, double> ratio_range(const fs::path& dir, const std::string& subject,
                                      const std::vector<float>& factor) {
  const fs::path truth = dir / "bids" / "derivatives" / "truth" / ("sub-" + subject) / "perf";
  const auto cbf = perfq::io::read_nifti(
      (dir / "out" / ("sub-" + subject) / "perf" / ("sub-" + subject + "_cbf.nii.gz")).string());
  const auto expected =
      perfq::io::read_nifti((truth / ("sub-" + subject + "_cbf.nii.gz")).string());
  const auto mask =
      perfq::io::read_nifti_mask((truth / ("sub-" + subject + "_mask.nii.gz")).string());
  double low = 1e300, high = -1e300;
  for (std::size_t i = 0; i < cbf.size(); ++i) {
    if (!mask[i]) continue;
    const double r = cbf[i] / expected[i] * (factor.empty() ? 1.0 : factor[i]);
    low = std::min(low, r);
    high = std::max(high, r);
  }
  return {low, high};
}

Json configuration_of(const fs::path& dir, const std::string& subject) {
  const Json j = Json::parse(
      read_text(dir / "out" / ("sub-" + subject) / "perf" / ("sub-" + subject + "_cbf.json")));
  return j.contains("Configuration") ? j["Configuration"] : Json();
}

TEST(BidsConfig, SeriesThatNeedDifferentOptionsRunInOneCall) {
  const fs::path dir = make_dataset("mixed");
  // Without a configuration the M0-absent series gets relative CBF only.
  const Result plain = participant(dir, "");
  EXPECT_EQ(plain.status, 0) << plain.output;
  EXPECT_TRUE(fs::exists(dir / "out" / "sub-02" / "perf" / "sub-02_desc-relative_cbf.nii.gz"))
      << plain.output;
  EXPECT_TRUE(contains(plain.output, "relative CBF (no M0: no tables or report)")) << plain.output;
  EXPECT_FALSE(fs::exists(dir / "out" / "sub-02" / "perf" / "sub-02_report.html"));
  fs::remove_all(dir / "out");

  // M0 of sub-02 (moved away): one value for it, the median inside the brain.
  const auto m0 = perfq::io::read_nifti((dir / "m0" / "sub-02_m0scan.nii.gz").string());
  const auto mask = perfq::io::read_nifti_mask(
      (dir / "bids" / "derivatives" / "truth" / "sub-02" / "perf" / "sub-02_mask.nii.gz").string());
  std::vector<float> brain;
  for (std::size_t i = 0; i < m0.size(); ++i) {
    if (mask[i]) brain.push_back(m0[i]);
  }
  std::nth_element(brain.begin(), brain.begin() + brain.size() / 2, brain.end());
  const double m0_value = std::round(brain[brain.size() / 2]);
  const fs::path config = dir / "config.json";
  write_text(config, R"([
    {"description": "GE exports the M0 on another scale",
     "filter": {"Manufacturer": "GE"}, "options": {"m0_scale": 2}},
    {"filter": {"M0Type": "Absent"}, "options": {"m0_value": )" +
                         std::to_string(m0_value) + R"(}},
    {"filter": {"subject": "09"}, "options": {"lambda": 0.5}}
  ])");
  const Result r = participant(dir, " --config " + config.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, config.string() + ": entry 2 matches none of the selected series"))
      << r.output;

  // sub-01: the M0 twice as large, CBF half the truth.
  const auto [low1, high1] = ratio_range(dir, "01", {});
  EXPECT_NEAR(low1, 0.5, 0.0075);
  EXPECT_NEAR(high1, 0.5, 0.0075);
  // sub-02: one M0 for every voxel, CBF = truth × M0(voxel) / m0_value.
  std::vector<float> factor(m0.size());
  for (std::size_t i = 0; i < m0.size(); ++i) factor[i] = float(m0_value / m0[i]);
  const auto [low2, high2] = ratio_range(dir, "02", factor);
  EXPECT_NEAR(low2, 1.0, 0.015);
  EXPECT_NEAR(high2, 1.0, 0.015);

  // Each _cbf.json records what applied.
  EXPECT_EQ(configuration_of(dir, "01"),
            Json::parse(R"({"File": ")" + config.string() + R"(", "EntriesApplied": [0],
                            "Options": {"m0_scale": 2}, "CommandLine": [],
                            "OverriddenByCommandLine": []})"));
  const Json second = configuration_of(dir, "02");
  EXPECT_EQ(second["EntriesApplied"], Json::parse("[1]"));
  EXPECT_EQ(second["Options"]["m0_value"], m0_value);

  // The command line beats the configuration: --m0-scale 4 for sub-01 (sub-02 keeps its
  // configuration's M0 value; only sub-01 is redone).
  const Result again =
      participant(dir, " --config " + config.string() + " --m0-scale 4 --overwrite" +
                           " --participant-label 01");
  ASSERT_EQ(again.status, 0) << again.output;
  const auto [low3, high3] = ratio_range(dir, "01", {});
  EXPECT_NEAR(low3, 0.25, 0.00375);
  EXPECT_NEAR(high3, 0.25, 0.00375);
  const Json beaten = configuration_of(dir, "01");
  EXPECT_EQ(beaten["Options"], Json::parse(R"({"m0_scale": 2})"));
  EXPECT_EQ(beaten["CommandLine"], Json::parse(R"(["--m0-scale", "4"])"));
  EXPECT_EQ(beaten["OverriddenByCommandLine"], Json::parse(R"(["m0_scale"])"));
}

TEST(BidsConfig, ABadConfigurationIsRefusedBeforeAnyWork) {
  const fs::path dir = make_dataset("bad");
  struct Case {
    std::string text, message;
  };
  const std::vector<Case> cases = {
      {R"([{"options": {"mask": "brain.nii.gz"}}])",
       ": entry 0: option \"mask\": --mask cannot be set by a configuration here: perfq bids "
       "finds the masks by convention"},
      {R"([{"options": {"m0_scale": 2}}, {"options": {"threads": 4}}])",
       ": entry 1: option \"threads\": not a quantification option"},
      {R"([{"filter": {"Subject": "01", "vendor": "GE"}, "options": {}}])",
       ": entry 0: filter \"vendor\": unknown filter key"},
      {R"([{"options": {"bs_pulses": "four"}}])",
       ": entry 0: option \"bs_pulses\": expected a number, got 'four'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    write_text(dir / "config.json", c.text);
    const Result r = participant(dir, " --config " + (dir / "config.json").string());
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_TRUE(contains(r.output, (dir / "config.json").string() + c.message)) << r.output;
    EXPECT_FALSE(fs::exists(dir / "out")) << r.output;
  }
  const Result missing = participant(dir, " --config " + (dir / "none.json").string());
  EXPECT_EQ(missing.status, 1) << missing.output;
  EXPECT_TRUE(contains(missing.output, (dir / "none.json").string())) << missing.output;
  // A combination the configuration completes is not refused for the command line alone,
  // and one it leaves bad fails the series, naming the entries.
  write_text(dir / "config.json",
             R"([{"filter": {"subject": "01"}, "options": {"ref_tissue": "csf"}}])");
  const Result refused = participant(dir, " --config " + (dir / "config.json").string());
  EXPECT_EQ(refused.status, 1);
  EXPECT_TRUE(contains(refused.output, "option \"ref_tissue\": --ref-tissue cannot be set"))
      << refused.output;
  write_text(dir / "config.json",
             R"([{"filter": {"subject": "01"}, "options": {"aatt_prior_sd": 0.5}}])");
  const Result combination =
      participant(dir, " --config " + (dir / "config.json").string() + " --participant-label 01");
  EXPECT_EQ(combination.status, 1) << combination.output;
  EXPECT_TRUE(contains(combination.output,
                       "--aatt-prior-mean and --aatt-prior-sd need --att-prior and --arterial "
                       "(with the options of " +
                           (dir / "config.json").string() + ", entry 0)"))
      << combination.output;
}

}  // namespace
