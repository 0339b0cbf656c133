// Outputs of the perfq tool (issue #6 §4-§5): existing outputs are not replaced without
// --overwrite, an interrupted run (SIGTERM/SIGINT) leaves no partial file or staging folder,
// and `auto` says so when it falls back from CUDA to the CPU.
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/phantom.hpp>

#include <gtest/gtest.h>

#include "cli_test_util.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace cli_test;  // run, Result, read_text, write_text, scratch_dir

fs::path scratch(const std::string& name) { return scratch_dir("outputs-" + name); }

fs::path small_phantom(const fs::path& root, std::vector<double> delays = {1.8},
                       std::array<std::size_t, 3> dims = {24, 28, 20}) {
  perfq::PhantomOptions o;
  o.dims = dims;
  o.repeats = 1;
  o.delays = std::move(delays);
  return perfq::io::write_phantom_bids(perfq::make_phantom(o), root.string());
}

/// Every entry under `dir` (files and folders), as relative paths.
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    out.push_back(fs::relative(e.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// Refused with exit 1 naming `first`, and `file`'s content unchanged.
void expect_kept(const Result& r, const fs::path& file, const std::string& before) {
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(file.string()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--overwrite"), std::string::npos) << r.output;
  EXPECT_EQ(read_text(file), before);
}

TEST(Outputs, CbfRefusesToOverwriteWithoutTheFlag) {
  const fs::path dir = scratch("cbf");
  const fs::path asl = small_phantom(dir / "bids");
  const std::string args = "cbf " + asl.string() + " -o " + (dir / "out").string() + " --backend cpu";
  ASSERT_EQ(run(args).status, 0);
  const fs::path map = dir / "out" / "sub-01_cbf.nii.gz";
  write_text(map, "precious");
  const auto before = listing(dir / "out");
  expect_kept(run(args), map, "precious");
  EXPECT_EQ(listing(dir / "out"), before);  // no staging folder left either
  const Result again = run(args + " --overwrite");
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_NE(read_text(map), "precious");
  EXPECT_EQ(listing(dir / "out"), before);
}

TEST(Outputs, WatershedStatsAndPhantomRefuseToOverwriteWithoutTheFlag) {
  const fs::path dir = scratch("others");
  const fs::path asl = small_phantom(dir / "bids");
  const fs::path truth = dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
  const std::string ws = "watershed --territories " + (truth / "sub-01_territories.nii.gz").string() +
                         " --width 6 -o " + (dir / "ws" / "bz.nii.gz").string();
  ASSERT_EQ(run(ws).status, 0);
  write_text(dir / "ws" / "bz.nii.gz", "mine");
  expect_kept(run(ws), dir / "ws" / "bz.nii.gz", "mine");
  EXPECT_EQ(run(ws + " --overwrite").status, 0);
  EXPECT_NE(read_text(dir / "ws" / "bz.nii.gz"), "mine");

  const std::string st = "stats " + (truth / "sub-01_cbf.nii.gz").string() + " --labels " +
                         (truth / "sub-01_territories.nii.gz").string() + " -o " +
                         (dir / "st" / "t.tsv").string();
  ASSERT_EQ(run(st).status, 0);
  write_text(dir / "st" / "t.tsv", "mine");
  expect_kept(run(st), dir / "st" / "t.tsv", "mine");
  EXPECT_EQ(run(st + " --overwrite").status, 0);
  EXPECT_NE(read_text(dir / "st" / "t.tsv"), "mine");

  const std::string ph = "phantom -o " + (dir / "ph").string() + " --repeats 1";
  ASSERT_EQ(run(ph).status, 0);
  const fs::path context = dir / "ph" / "sub-01" / "perf" / "sub-01_aslcontext.tsv";
  write_text(context, "mine");
  const Result refused = run(ph);
  EXPECT_EQ(refused.status, 1) << refused.output;
  EXPECT_NE(refused.output.find((dir / "ph" / "sub-01").string()), std::string::npos)
      << refused.output;
  EXPECT_EQ(read_text(context), "mine");
  EXPECT_EQ(run(ph + " --subject 02").status, 0);  // another subject in the same dataset
  EXPECT_EQ(run(ph + " --overwrite").status, 0);
  EXPECT_NE(read_text(context), "mine");
  for (const auto& entry : listing(dir / "ph")) {
    EXPECT_EQ(entry.find(".perfq-staging"), std::string::npos) << entry;
  }
}

/// Starts `perfq <args>` as a child process (stdout and stderr to /dev/null).
pid_t spawn(const std::vector<std::string>& args) {
  std::vector<std::string> all = {PERFQ_CLI_PATH};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

bool has_staging(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind(".perfq-staging-", 0) == 0) return true;
  }
  return false;
}

void interrupt_cbf(int sig) {
  const fs::path dir = scratch("signal-" + std::to_string(sig));
  // Multi-delay on a larger grid: a second or more of fitting after the staging folder
  // appears (the fit got faster, so the grid grew with it).
  const fs::path asl = small_phantom(dir / "bids", {0.5, 1.0, 1.5, 2.0, 2.5}, {96, 114, 84});
  const fs::path out = dir / "out";
  const pid_t pid = spawn({"cbf", asl.string(), "-o", out.string(), "--backend", "cpu",
                           "--att-prior", "--threads", "1"});
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  bool staged = false;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (has_staging(out)) {
      staged = true;
      break;
    }
    if (waitpid(pid, &status, WNOHANG) == pid) break;  // ended early: a failure below
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(staged) << "the run never created its staging folder";
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // into the computation
  ASSERT_EQ(kill(pid, sig), 0);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status)) << "exit status " << status;
  if (WIFSIGNALED(status)) EXPECT_EQ(WTERMSIG(status), sig);
  EXPECT_EQ(listing(out), std::vector<std::string>{}) << "left behind in " << out;
}

TEST(Outputs, SigtermLeavesNoPartialOutput) { interrupt_cbf(SIGTERM); }

TEST(Outputs, SigintLeavesNoPartialOutput) { interrupt_cbf(SIGINT); }

TEST(Outputs, AutoBackendFallbackIsAnnounced) {
  // PERFQ_TEST_FAIL_CUDA makes `auto` behave as if CUDA had been chosen and failed.
  const fs::path dir = scratch("fallback");
  const fs::path asl = small_phantom(dir / "bids");
  ::setenv("PERFQ_TEST_FAIL_CUDA", "1", 1);
  const Result r = run("cbf " + asl.string() + " -o " + (dir / "out").string());
  const Result cpu = run("cbf " + asl.string() + " -o " + (dir / "cpu").string() + " --backend cpu");
  ::unsetenv("PERFQ_TEST_FAIL_CUDA");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("CUDA backend failed ("), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("); falling back to CPU"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" on cpu"), std::string::npos) << r.output;
  EXPECT_EQ(cpu.output.find("falling back"), std::string::npos) << cpu.output;
  EXPECT_NE(read_text(dir / "out" / "sub-01_cbf.json").find("\"Backend\": \"cpu\""),
            std::string::npos);
}

}  // namespace
