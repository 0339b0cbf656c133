// Options per series from a configuration file (perfq/io/series_config.hpp): reading and
// every refusal with its message, matching by entity and by sidecar field (BIDS inheritance
// included), the order of entries and the command line beating them, and the record in the
// provenance.
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/io/series_config.hpp>
#include <perfq/phantom.hpp>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "cli_test_util.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using perfq::io::ConfigRules;
using perfq::io::configure_series;
using perfq::io::parse_series_config;
using perfq::io::SeriesConfig;
using perfq::io::SeriesFacts;

/// The message of the InputError that parsing `text` (as "cfg/config.json") throws; empty
/// when none is thrown.
std::string refusal(const std::string& text, const ConfigRules& rules = {}) {
  try {
    parse_series_config(text, "cfg/config.json", rules);
  } catch (const perfq::InputError& e) {
    EXPECT_EQ(e.file(), "cfg/config.json");
    return e.what();
  }
  return {};
}

/// A series' facts: sub-01_run-02, a GE 3 T sidecar with background suppression.
SeriesFacts ge_series() {
  SeriesFacts f;
  f.entities = {{"sub", "01"}, {"run", "02"}};
  f.sidecar_json =
      R"({"Manufacturer": "GE", "MagneticFieldStrength": 3.0, "BackgroundSuppression": true,
          "PostLabelingDelay": [1.5, 2.0]})";
  return f;
}

bool matches(const std::string& filter, const SeriesFacts& facts) {
  const SeriesConfig c =
      parse_series_config(R"([{"filter": )" + filter + R"(, "options": {}}])", "c.json");
  return perfq::io::config_entry_matches(c.entries.at(0), facts);
}

TEST(SeriesConfig, ReadsEntriesWithOptionsByPerfqCbfsNamesAndFilters) {
  const SeriesConfig c = parse_series_config(R"([
    {"description": "GE exports", "filter": {"Manufacturer": "GE", "subject": ["01", 3]},
     "options": {"m0_scale": 96, "model": "whitepaper", "att_prior": true, "robust": false,
                 "mask": "masks/brain.nii.gz", "ref_mask": "/abs/csf.nii.gz"}},
    {"options": {"bs_pulses": "4", "lambda": 0.85}}
  ])",
                                             "cfg/config.json");
  EXPECT_EQ(c.path, "cfg/config.json");
  ASSERT_EQ(c.entries.size(), 2u);
  const auto& first = c.entries[0];
  ASSERT_EQ(first.filter.size(), 2u);
  EXPECT_EQ(first.filter[0].key, "Manufacturer");
  EXPECT_EQ(first.filter[0].entity, "");
  EXPECT_EQ(first.filter[0].values, std::vector<std::string>{"\"GE\""});
  EXPECT_EQ(first.filter[1].entity, "sub");
  EXPECT_EQ(first.filter[1].values, (std::vector<std::string>{"\"01\"", "3"}));
  ASSERT_EQ(first.options.size(), 6u);
  EXPECT_EQ(first.options[0].name, "--m0-scale");
  EXPECT_EQ(first.options[0].value, "96");
  EXPECT_EQ(first.options[0].json, "96");
  EXPECT_EQ(first.options[1].value, "whitepaper");
  EXPECT_EQ(first.options[2].name, "--att-prior");
  EXPECT_TRUE(first.options[2].set);
  EXPECT_EQ(first.options[2].value, "");
  EXPECT_FALSE(first.options[3].set);
  // File names: relative to the configuration's folder.
  EXPECT_EQ(first.options[4].value, (fs::path("cfg") / "masks/brain.nii.gz").string());
  EXPECT_EQ(first.options[5].value, "/abs/csf.nii.gz");
  EXPECT_TRUE(c.entries[1].filter.empty());
  EXPECT_EQ(c.entries[1].options[0].value, "4");
  EXPECT_EQ(c.entries[1].options[1].value, "0.85");
  EXPECT_TRUE(parse_series_config("[]", "empty.json").entries.empty());
}

TEST(SeriesConfig, EveryRefusalNamesTheFileTheEntryAndTheKey) {
  struct Case {
    std::string text, message;
  };
  const std::vector<Case> cases = {
      {"[{", "cfg/config.json: invalid JSON"},
      {R"({"options": {}})", "cfg/config.json: expected a JSON list of {\"filter\""},
      {R"([{"options": {}}, 3])", "cfg/config.json: entry 1: expected an object"},
      {R"([{"options": {}, "filters": {}}])",
       "cfg/config.json: entry 0: unknown key \"filters\" (expected filter, options, description)"},
      {R"([{"filter": {}}])", "cfg/config.json: entry 0: \"options\" is required"},
      {R"([{"options": [1]}])", "cfg/config.json: entry 0: options: expected an object"},
      {R"([{"filter": "GE", "options": {}}])",
       "cfg/config.json: entry 0: filter: expected an "
       "object of BIDS entities and sidecar fields"},
      {R"([{"options": {}, "description": 1}])", "entry 0: description: expected a string"},
      {R"([{"options": {}}, {"options": {"m0scale": 2}}])",
       "cfg/config.json: entry 1: option \"m0scale\": unknown option (perfq cbf's options, named "
       "with underscores: m0_scale for --m0-scale)"},
      {R"([{"options": {"m0-scale": 2}}])",
       "entry 0: option \"m0-scale\": options are named with underscores and without dashes: "
       "write \"m0_scale\""},
      {R"([{"options": {"--att-prior": true}}])", "write \"att_prior\""},
      {R"([{"options": {"threads": 4}}])",
       "entry 0: option \"threads\": not a quantification option: output and execution options "
       "are given on the command line only"},
      {R"([{"options": {"output": "x"}}])", "option \"output\": not a quantification option"},
      {R"([{"options": {"att_prior": 1}}])",
       "entry 0: option \"att_prior\": a flag: expected true (set) or false (not set), found "
       "number 1"},
      {R"([{"options": {"m0_scale": true}}])",
       "entry 0: option \"m0_scale\": expected a number or a string, found boolean true"},
      {R"([{"options": {"m0_scale": ""}}])", "expected a number or a string, found an empty "},
      {R"([{"options": {"m0_scale": [96]}}])", "expected a number or a string, found array"},
      {R"([{"options": {"m0_scale": -1}}])",
       "entry 0: option \"m0_scale\": expected a positive factor"},
      {R"([{"options": {"lambda": "high"}}])", "option \"lambda\": expected a number, got 'high'"},
      {R"([{"options": {"model": "fabber"}}])", "entry 0: option \"model\": "},
      {R"([{"filter": {"subjects": "01"}, "options": {}}])",
       "cfg/config.json: entry 0: filter \"subjects\": unknown filter key: expected subject, "
       "session, acquisition, reconstruction, direction, run, or a sidecar field (which begins "
       "with a capital letter, e.g. Manufacturer)"},
      {R"([{"filter": {"sub": "01"}, "options": {}}])", "filter \"sub\": unknown filter key"},
      {R"([{"filter": {"subject": "sub-01"}, "options": {}}])",
       "entry 0: filter \"subject\": give the label without its 'sub-' prefix: \"01\""},
      {R"([{"filter": {"run": "1 2"}, "options": {}}])", "\"1 2\" is not a BIDS label"},
      {R"([{"filter": {"run": 1.5}, "options": {}}])",
       "filter \"run\": expected a label (a string) or a whole number, found number 1.5"},
      {R"([{"filter": {"session": true}, "options": {}}])", "found boolean true"},
      {R"([{"filter": {"Manufacturer": null}, "options": {}}])",
       "entry 0: filter \"Manufacturer\": expected a string, a number or true/false, found null"},
      {R"([{"filter": {"Manufacturer": {"a": 1}}, "options": {}}])", "found object"},
      {R"([{"filter": {"Manufacturer": []}, "options": {}}])", "an empty list matches no series"},
      {R"([{"filter": {"Manufacturer": [["GE"]]}, "options": {}}])",
       "a list of values means any of them; found array"},
      {R"([{"options": {}}, {"options": {"lambda": 0.8, "lambda": 0.9}}])",
       "cfg/config.json: entry 1: \"lambda\" given twice in one object"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const std::string message = refusal(c.text);
    EXPECT_NE(message.find(c.message), std::string::npos) << message;
  }
  // A caller's own refusals, with its reason.
  const ConfigRules rules{{"--mask", "--ref-tissue"}, "found by convention"};
  EXPECT_EQ(refusal(R"([{"options": {"mask": "brain.nii.gz"}}])", rules),
            "cfg/config.json: entry 0: option \"mask\": --mask cannot be set by a configuration "
            "here: found by convention");
  EXPECT_EQ(refusal(R"([{"options": {"mask": "brain.nii.gz"}}])"), "");
  // A file that is not there.
  try {
    perfq::io::read_series_config("no/such/config.json");
    FAIL() << "no error";
  } catch (const perfq::InputError& e) {
    EXPECT_EQ(e.file(), "no/such/config.json");
  }
}

TEST(SeriesConfig, EntitiesMatchByLabelOrWholeNumber) {
  const SeriesFacts f = ge_series();
  EXPECT_TRUE(matches(R"({})", f));
  EXPECT_TRUE(matches(R"({"subject": "01"})", f));
  EXPECT_FALSE(matches(R"({"subject": "1"})", f));  // a string is the label, exactly
  EXPECT_TRUE(matches(R"({"subject": 1})", f));     // a number: the label's value
  EXPECT_TRUE(matches(R"({"run": 2})", f));
  EXPECT_TRUE(matches(R"({"run": "02"})", f));
  EXPECT_FALSE(matches(R"({"run": 3})", f));
  EXPECT_TRUE(matches(R"({"subject": ["07", "01"]})", f));  // any of a list
  EXPECT_FALSE(matches(R"({"subject": ["07", "08"]})", f));
  EXPECT_FALSE(matches(R"({"session": "1"})", f));  // an entity the series has not
  EXPECT_TRUE(matches(R"({"subject": "01", "run": 2})", f));
  EXPECT_FALSE(matches(R"({"subject": "01", "run": 1})", f));  // every key must match
  SeriesFacts letters = f;
  letters.entities["sub"] = "ab0";
  EXPECT_FALSE(matches(R"({"subject": 0})", letters));
}

TEST(SeriesConfig, SidecarFieldsMatchAsJsonValuesStringsWithTheirLetterCase) {
  const SeriesFacts f = ge_series();
  EXPECT_TRUE(matches(R"({"Manufacturer": "GE"})", f));
  EXPECT_FALSE(matches(R"({"Manufacturer": "ge"})", f));  // letter case counts
  EXPECT_TRUE(matches(R"({"Manufacturer": ["Siemens", "GE"]})", f));
  EXPECT_TRUE(matches(R"({"MagneticFieldStrength": 3})", f));     // 3 matches 3.0
  EXPECT_FALSE(matches(R"({"MagneticFieldStrength": "3"})", f));  // a string is not a number
  EXPECT_FALSE(matches(R"({"MagneticFieldStrength": 1.5})", f));
  EXPECT_TRUE(matches(R"({"BackgroundSuppression": true})", f));
  EXPECT_FALSE(matches(R"({"BackgroundSuppression": false})", f));
  EXPECT_FALSE(matches(R"({"PostLabelingDelay": 1.5})", f));  // a list field matches no value
  EXPECT_FALSE(matches(R"({"M0Type": "Separate"})", f));      // absent
  EXPECT_TRUE(matches(R"({"Manufacturer": "GE", "subject": "01"})", f));
  SeriesFacts broken = f;
  broken.sidecar_json = "[1]";
  EXPECT_THROW(matches(R"({"Manufacturer": "GE"})", broken), perfq::InputError);
}

TEST(SeriesConfig, FactsComeFromTheFileNameAndTheInheritedSidecar) {
  const fs::path dir = cli_test::scratch_dir("series-config-facts");
  perfq::PhantomOptions o;
  o.dims = {16, 16, 16};
  o.repeats = 1;
  const fs::path asl = perfq::io::write_phantom_bids(perfq::make_phantom(o), dir.string(), "07");
  // A dataset-level sidecar that every series inherits; the series' own beats it.
  cli_test::write_text(dir / "asl.json", R"({"Manufacturer": "GE", "MagneticFieldStrength": 1.5})");
  const SeriesFacts f = perfq::io::series_facts(asl.string());
  EXPECT_EQ(f.entities.at("sub"), "07");
  const Json sidecar = Json::parse(f.sidecar_json);
  EXPECT_EQ(sidecar["Manufacturer"], "GE");
  EXPECT_EQ(sidecar["M0Type"], "Separate");
  EXPECT_EQ(sidecar["MagneticFieldStrength"], 3.0);  // the series' own value
  const SeriesConfig c = parse_series_config(
      R"([{"filter": {"Manufacturer": "GE", "subject": 7}, "options": {"m0_scale": 2}},
          {"filter": {"Manufacturer": "Philips"}, "options": {"m0_scale": 3}}])",
      "c.json");
  EXPECT_EQ(perfq::io::matching_entries(c, f), std::vector<std::size_t>{0});
  EXPECT_THROW(perfq::io::series_facts((dir / "sub-07" / "perf" / "sub-07_m0scan.nii.gz").string()),
               perfq::InputError);
}

TEST(SeriesConfig, MatchingEntriesApplyInOrderAndTheCommandLineBeatsThemAll) {
  const SeriesConfig c = parse_series_config(R"([
    {"options": {"m0_scale": 10, "att_prior": true, "lambda": 0.8}},
    {"filter": {"Manufacturer": "GE"}, "options": {"m0_scale": 96, "att_prior": false}},
    {"filter": {"Manufacturer": "Siemens"}, "options": {"m0_scale": 5}},
    {"filter": {"run": 2}, "options": {"robust": true}}
  ])",
                                             "cfg.json");
  const SeriesFacts f = ge_series();
  {
    const auto r = configure_series(c, f, {});
    EXPECT_EQ(r.entries, (std::vector<std::size_t>{0, 1, 3}));
    // A later entry's value replaces an earlier one's; false unsets an earlier entry's flag.
    EXPECT_EQ(r.request.m0_scale, 96.0);
    EXPECT_FALSE(r.request.kinetic.att_prior);
    EXPECT_EQ(r.request.blood_brain_partition, 0.8);
    EXPECT_TRUE(r.request.averaging.robust);
    EXPECT_EQ(r.options,
              (std::vector<std::string>{"--lambda", "0.8", "--m0-scale", "96", "--robust"}));
    const Json record = Json::parse(r.record);
    EXPECT_EQ(record.dump(),
              R"({"File":"cfg.json","EntriesApplied":[0,1,3],"Options":{"m0_scale":96,)"
              R"("att_prior":false,"lambda":0.8,"robust":true},"CommandLine":[],)"
              R"("OverriddenByCommandLine":[]})");
    EXPECT_EQ(r.request.configuration, r.record);
  }
  {
    // The command line beats every entry, and sets what none set.
    const auto r = configure_series(c, f, {"--m0-scale", "2", "--att-prior", "--t1t", "1.4"});
    EXPECT_EQ(r.request.m0_scale, 2.0);
    EXPECT_TRUE(r.request.kinetic.att_prior);
    EXPECT_EQ(r.request.t1_tissue, 1.4);
    EXPECT_EQ(r.request.blood_brain_partition, 0.8);
    const Json record = Json::parse(r.record);
    EXPECT_EQ(record["CommandLine"],
              Json::parse(R"(["--m0-scale", "2", "--att-prior", "--t1t", "1.4"])"));
    EXPECT_EQ(record["OverriddenByCommandLine"], Json::parse(R"(["m0_scale", "att_prior"])"));
    EXPECT_EQ(record["Options"]["m0_scale"], 96);  // what the configuration said
  }
  {
    // Another series: other entries.
    SeriesFacts siemens = f;
    siemens.sidecar_json = R"({"Manufacturer": "Siemens"})";
    siemens.entities["run"] = "1";
    const auto r = configure_series(c, siemens, {});
    EXPECT_EQ(r.entries, (std::vector<std::size_t>{0, 2}));
    EXPECT_EQ(r.request.m0_scale, 5.0);
    EXPECT_TRUE(r.request.kinetic.att_prior);
    EXPECT_FALSE(r.request.averaging.robust);
  }
  {
    // No entry matches: the command line alone, and the record says so.
    const SeriesConfig none = parse_series_config(
        R"([{"filter": {"subject": "99"}, "options": {"m0_scale": 5}}])", "none.json");
    const auto r = configure_series(none, f, {"--lambda", "0.9"});
    EXPECT_TRUE(r.entries.empty());
    EXPECT_FALSE(r.request.m0_scale);
    EXPECT_EQ(Json::parse(r.record)["EntriesApplied"], Json::array());
  }
}

TEST(SeriesConfig, BadCombinationsNameTheEntriesAndBadCommandLinesAreRefusedAsUsual) {
  const SeriesConfig c = parse_series_config(
      R"([{"options": {"lambda": 0.8}}, {"filter": {"run": 2}, "options": {"ref_t1": 4.0}}])",
      "cfg.json");
  try {
    configure_series(c, ge_series(), {});
    FAIL() << "no error";
  } catch (const perfq::InvalidArgument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("give --ref-tissue"), std::string::npos) << m;
    EXPECT_NE(m.find("(with the options of cfg.json, entries 0, 1)"), std::string::npos) << m;
  }
  // The command line completes the configuration's combination.
  const auto r = configure_series(c, ge_series(), {"--ref-tissue", "csf", "--ref-mask", "m.nii"});
  EXPECT_EQ(r.request.reference.t1, 4.0);
  // The command line's own mistakes, as parse_series_options words them.
  const auto refused = [&](const std::vector<std::string>& cli) {
    try {
      configure_series(c, ge_series(), cli);
    } catch (const perfq::InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(refused({"--m0-scale"}), "--m0-scale needs a value");
  EXPECT_EQ(refused({"--lambda", "0.9", "--lambda", "0.8"}), "--lambda given twice");
  EXPECT_EQ(refused({"--nonsense"}), "unknown option '--nonsense'");
  EXPECT_EQ(refused({"--m0-scale", "-2"}), "--m0-scale: expected a positive factor");
}

TEST(SeriesConfig, TheProvenanceRecordsWhatApplied) {
  const fs::path dir = cli_test::scratch_dir("series-config-provenance");
  perfq::PhantomOptions o;
  o.dims = {16, 16, 16};
  o.repeats = 1;
  const std::string asl = perfq::io::write_phantom_bids(perfq::make_phantom(o), dir.string(), "01");
  const SeriesConfig c = parse_series_config(
      R"([{"filter": {"subject": "01"}, "options": {"m0_scale": 2}}])", "c.json");
  const auto configured = configure_series(c, perfq::io::series_facts(asl), {});
  perfq::io::SeriesRequest plain;
  plain.execution.backend = perfq::Backend::Cpu;
  perfq::io::SeriesRequest request = configured.request;
  request.execution = plain.execution;
  const perfq::io::SeriesMaps scaled = perfq::io::quantify_series(asl, request);
  const perfq::io::SeriesMaps unscaled = perfq::io::quantify_series(asl, plain);
  const Json j = Json::parse(scaled.provenance_json);
  ASSERT_TRUE(j.contains("Configuration"));
  EXPECT_EQ(j["Configuration"], Json::parse(configured.record));
  EXPECT_FALSE(Json::parse(unscaled.provenance_json).contains("Configuration"));
  // The option took effect: twice the M0, half the CBF.
  EXPECT_NEAR(scaled.median_cbf * 2, unscaled.median_cbf, 1e-3 * unscaled.median_cbf);
  // A record that is not a JSON object is refused.
  request.configuration = "[1]";
  EXPECT_THROW(perfq::io::quantify_series(asl, request), perfq::InvalidArgument);
}

}  // namespace
