// Hostile input to the perfq tool (docs/reliability.md, "Bad input"): deeply nested JSON, absurd option
// values, folders and link loops where files belong, headers that do not match their
// metadata, a full disk. Each ends with exit status 1 (bad data) or 2 (bad usage), one clear
// message naming the file and field or the option, and nothing written.
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/phantom.hpp>

#include <gtest/gtest.h>

#include "cli_test_util.hpp"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace cli_test;  // run, Result, read_text, write_text, scratch_dir, folder_has_files

fs::path scratch(const std::string& name) { return scratch_dir("hostile-" + name); }

/// A small single-delay phantom dataset under `root`; returns its series.
fs::path small_phantom(const fs::path& root) {
  perfq::PhantomOptions o;
  o.dims = {24, 28, 20};
  o.repeats = 1;
  return perfq::io::write_phantom_bids(perfq::make_phantom(o), root.string());
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// `text` with its first `from` replaced by `to`.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

/// A JSON array nested `levels` deep around `inner` (about 2 bytes per level).
std::string nested(std::size_t levels, const std::string& inner) {
  return std::string(levels, '[') + inner + std::string(levels, ']');
}

/// Refused as bad data: exit 1, one message naming `file` and `detail`, nothing in `out`.
void expect_refused(const Result& r, const fs::path& file, const std::string& detail,
                    const fs::path& out) {
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, file.string())) << r.output;
  EXPECT_TRUE(contains(r.output, detail)) << r.output;
  EXPECT_FALSE(folder_has_files(out)) << out;
}

// ---- JSON nested deeply enough to exhaust a recursive reader's stack ---------------------

TEST(Hostile, DeeplyNestedJsonIsRefusedInEveryFilePerfqReads) {
  const fs::path dir = scratch("json");
  const fs::path asl = small_phantom(dir / "bids");
  const fs::path perf = asl.parent_path();
  const fs::path sidecar = perf / "sub-01_asl.json";
  const std::string original = read_text(sidecar);
  const std::string cbf = "cbf " + asl.string() + " --backend cpu -o ";

  // The series' own sidecar: PostLabelingDelay wrapped in 80,000 levels (~160 KB).
  nlohmann::json j = nlohmann::json::parse(original);
  j["PostLabelingDelay"] = "PLACEHOLDER";
  write_text(sidecar, replaced(j.dump(), "\"PLACEHOLDER\"", nested(80000, "1.8")));
  expect_refused(run(cbf + (dir / "out1").string()), sidecar, "nested more than", dir / "out1");
  write_text(sidecar, original);

  // An inherited dataset-level asl.json with an unused key nested so.
  const fs::path inherited = dir / "bids" / "asl.json";
  write_text(inherited, "{\"Unused\": " + nested(80000, "0") + "}");
  expect_refused(run(cbf + (dir / "out2").string()), inherited, "nested more than", dir / "out2");
  fs::remove(inherited);

  // The m0scan sidecar.
  const fs::path m0_sidecar = perf / "sub-01_m0scan.json";
  const std::string m0_original = read_text(m0_sidecar);
  write_text(m0_sidecar, replaced(m0_original, "{", "{\"Unused\": " + nested(80000, "0") + ","));
  expect_refused(run(cbf + (dir / "out3").string()), m0_sidecar, "nested more than",
                 dir / "out3");
  write_text(m0_sidecar, m0_original);

  // perfq report reading a _cbf.json.
  const fs::path out = dir / "out4";
  ASSERT_EQ(run(cbf + out.string()).status, 0);
  const fs::path cbf_json = out / "sub-01_cbf.json";
  write_text(cbf_json, replaced(read_text(cbf_json), "{", "{\"Unused\": " + nested(80000, "0") + ","));
  const Result report = run("report " + (out / "sub-01_cbf.nii.gz").string());
  EXPECT_EQ(report.status, 1) << report.output;
  EXPECT_TRUE(contains(report.output, cbf_json.string())) << report.output;
  EXPECT_TRUE(contains(report.output, "nested more than")) << report.output;
  EXPECT_FALSE(fs::exists(out / "sub-01_report.html"));
  EXPECT_FALSE(fs::exists(out / "figures"));

  // Modest nesting (what metadata has) is read as before.
  write_text(inherited, "{\"Unused\": " + nested(40, "0") + "}");
  EXPECT_EQ(run(cbf + (dir / "out5").string()).status, 0);
}

// ---- options -------------------------------------------------------------------------------

TEST(Hostile, OutOfRangeOptionsAreUsageErrorsBeforeAnyInputIsRead) {
  // The series does not exist: a usage error (2) proves the option was checked first.
  const std::string cbf = "cbf /nonexistent/sub-01_asl.nii.gz -o " + scratch("options").string();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"--threads", "100000"},      {"--threads", "3000000000"}, {"--grid-points", "2"},
      {"--grid-points", "1001"},    {"--max-iterations", "0"},   {"--max-iterations", "256"},
      {"--tolerance", "0"},         {"--tolerance", "1"},        {"--att-min", "-0.1"},
      {"--att-max", "0"},           {"--att-max", "31"},         {"--att-prior-sd", "0"},
      {"--lambda", "0"},            {"--lambda", "2.5"},         {"--alpha", "7"},
      {"--alpha", "0"},             {"--t1b", "0"},              {"--t1b", "1650"},
      {"--t1t", "-1"},              {"--bs-pulse-efficiency", "1.5"}, {"--device", "-1"}};
  for (const auto& [option, value] : bad) {
    const Result r = run(cbf + " " + option + " " + value);
    EXPECT_EQ(r.status, 2) << option << " " << value << ": " << r.output;
    EXPECT_TRUE(contains(r.output, "perfq cbf: " + option)) << option << ": " << r.output;
    EXPECT_FALSE(contains(r.output, "not found")) << option << ": " << r.output;
  }
  // The two bounds together.
  const Result range = run(cbf + " --att-min 2 --att-max 1.5");
  EXPECT_EQ(range.status, 2) << range.output;
  EXPECT_TRUE(contains(range.output, "--att-min")) << range.output;
}

TEST(Hostile, BidsAppRefusesABadOptionOnceBeforeAnyWork) {
  const fs::path dir = scratch("bids-options");
  small_phantom(dir / "bids");
  for (const std::string option : {"--lambda 0", "--alpha 7", "--grid-points 2"}) {
    const fs::path out = dir / "out";
    const Result r = run("bids " + (dir / "bids").string() + " " + out.string() +
                         " participant " + option);
    EXPECT_EQ(r.status, 2) << option << ": " << r.output;
    EXPECT_TRUE(contains(r.output, option.substr(0, option.find(' ')))) << r.output;
    EXPECT_FALSE(fs::exists(out)) << option << ": work was started";
  }
}

TEST(Hostile, AForgottenOrEmptyOptionValueIsAUsageError) {
  const fs::path dir = scratch("values");
  const fs::path asl = small_phantom(dir / "bids");
  const fs::path cwd = fs::current_path();
  fs::current_path(dir);  // a folder named --overwrite would appear here
  const Result forgotten = run("cbf " + asl.string() + " -o --overwrite");
  const Result empty = run("cbf " + asl.string() + " -o ''");
  const Result phantom = run("phantom -o --subject 02");
  fs::current_path(cwd);
  for (const Result* r : {&forgotten, &empty, &phantom}) {
    EXPECT_EQ(r->status, 2) << r->output;
    EXPECT_TRUE(contains(r->output, "--output needs a value")) << r->output;
  }
  EXPECT_FALSE(fs::exists(dir / "--overwrite"));
  EXPECT_FALSE(fs::exists(dir / "--subject"));
}

// ---- what lies where a file belongs ---------------------------------------------------------

TEST(Hostile, AFolderOrLinkLoopWhereAFileBelongsIsNamedForWhatItIs) {
  const fs::path dir = scratch("kinds");
  const fs::path asl = small_phantom(dir / "bids");
  const fs::path perf = asl.parent_path();
  const std::string cbf = " --backend cpu -o " + (dir / "out").string();
  auto swap_for_folder = [](const fs::path& file) {
    fs::rename(file, file.string() + ".kept");
    fs::create_directories(file / "inside");
  };
  auto restore = [](const fs::path& file) {
    fs::remove_all(file);
    fs::rename(file.string() + ".kept", file);
  };
  for (const char* name : {"sub-01_asl.json", "sub-01_aslcontext.tsv", "sub-01_m0scan.nii.gz",
                           "sub-01_m0scan.json"}) {
    swap_for_folder(perf / name);
    const Result r = run("cbf " + asl.string() + cbf);
    expect_refused(r, perf / name, "is a folder", dir / "out");
    restore(perf / name);
  }
  // A symbolic link loop as the series, and as the sidecar.
  const fs::path loop = perf / "sub-02_asl.nii.gz";
  fs::create_symlink(loop.filename(), loop);
  expect_refused(run("cbf " + loop.string() + cbf), loop, "symbolic link loop", dir / "out");
  const fs::path sidecar = perf / "sub-01_asl.json";
  fs::rename(sidecar, sidecar.string() + ".kept");
  fs::create_symlink("sub-01_asl.json", sidecar);
  expect_refused(run("cbf " + asl.string() + cbf), sidecar, "symbolic link loop", dir / "out");
  fs::remove(sidecar);
  // A link to nothing.
  fs::create_symlink("elsewhere.json", sidecar);
  expect_refused(run("cbf " + asl.string() + cbf), sidecar, "which does not exist", dir / "out");
}

// ---- metadata messages ---------------------------------------------------------------------

TEST(Hostile, ATinyLabelingDurationIsNamedAsTheCause) {
  const fs::path dir = scratch("tiny-duration");
  const fs::path asl = small_phantom(dir / "bids");
  const fs::path sidecar = asl.parent_path() / "sub-01_asl.json";
  edit_json(sidecar, [](nlohmann::json& j) { j["LabelingDuration"] = 1e-320; });
  const Result r = run("cbf " + asl.string() + " --backend cpu -o " + (dir / "out").string());
  expect_refused(r, sidecar, "LabelingDuration", dir / "out");
  EXPECT_TRUE(contains(r.output, "too short")) << r.output;
  EXPECT_FALSE(contains(r.output, "delay")) << r.output;
}

TEST(Hostile, AnAslcontextWithoutControlsNamesTheAslcontext) {
  const fs::path dir = scratch("labels-only");
  const fs::path asl = small_phantom(dir / "bids");
  const fs::path context = asl.parent_path() / "sub-01_aslcontext.tsv";
  write_text(context, "volume_type\nlabel\nlabel\n");
  const Result r = run("cbf " + asl.string() + " --backend cpu -o " + (dir / "out").string());
  expect_refused(r, context, "volume_type", dir / "out");
  EXPECT_FALSE(contains(r.output, asl.string())) << r.output;
}

// ---- headers checked before voxels are read -------------------------------------------------

TEST(Hostile, AHeaderThatDoesNotMatchTheAslcontextIsRefusedBeforeItsVoxelsAreRead) {
  // The header claims 30,000 volumes (1.6 GB of voxels) in a file that holds two: the
  // aslcontext's two rows tell the mismatch before any voxel is read.
  const fs::path dir = scratch("header-first");
  const fs::path gz = small_phantom(dir / "bids");
  const fs::path asl = gz.parent_path() / "sub-01_asl.nii";
  perfq::io::write_nifti(asl.string(), perfq::io::read_nifti(gz.string()).view());
  fs::remove(gz);
  {
    std::fstream f(asl, std::ios::in | std::ios::out | std::ios::binary);
    const std::int16_t volumes = 30000;
    f.seekp(48);  // dim[4]
    f.write(reinterpret_cast<const char*>(&volumes), sizeof volumes);
  }
  const Result r = run("cbf " + asl.string() + " --backend cpu -o " + (dir / "out").string());
  expect_refused(r, asl.parent_path() / "sub-01_aslcontext.tsv", "2 rows but", dir / "out");
  EXPECT_TRUE(contains(r.output, "30000 volumes")) << r.output;
}

// ---- a full disk ----------------------------------------------------------------------------

TEST(Hostile, AFailedWriteNamesTheOutputNotTheStagingFolder) {
  // A file size limit (with SIGXFSZ ignored, as a shell's trap '' leaves it) makes writes fail
  // as a full disk does.
  const fs::path dir = scratch("full");
  const fs::path asl = small_phantom(dir / "bids");
  const fs::path out = dir / "out";
  const std::string command = "bash -c \"ulimit -f 1; trap '' XFSZ; exec " +
                              std::string(PERFQ_CLI_PATH) + " cbf " + asl.string() +
                              " --backend cpu -o " + out.string() + "\" 2>&1";
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
  const int raw = pclose(pipe);
  ASSERT_TRUE(WIFEXITED(raw)) << output;
  EXPECT_EQ(WEXITSTATUS(raw), 1) << output;
  EXPECT_TRUE(contains(output, out.string() + "/sub-01_")) << output;
  EXPECT_FALSE(contains(output, ".perfq-staging")) << output;
  EXPECT_FALSE(folder_has_files(out)) << output;
}

}  // namespace
