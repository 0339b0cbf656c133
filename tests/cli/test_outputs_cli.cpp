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
#include <sys/resource.h>
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

TEST(Outputs, CbfUncompressedWritesNiiWithTheSameContent) {
  const fs::path dir = scratch("uncompressed");
  const fs::path asl = small_phantom(dir / "bids", {0.5, 1.0, 1.5, 2.0});
  const std::string args = "cbf " + asl.string() + " --backend cpu -o ";
  const Result gz = run(args + (dir / "gz").string());
  ASSERT_EQ(gz.status, 0) << gz.output;
  const Result nii = run(args + (dir / "nii").string() + " --uncompressed");
  ASSERT_EQ(nii.status, 0) << nii.output;
  // The same files but for the images' extension; the same images and sidecar.
  std::vector<std::string> expected;
  for (std::string name : listing(dir / "gz")) {
    if (name.size() > 7 && name.compare(name.size() - 7, 7, ".nii.gz") == 0)
      name.resize(name.size() - 3);
    expected.push_back(name);
  }
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(listing(dir / "nii"), expected);
  for (const std::string suffix : {"_cbf", "_att", "_cbf_se", "_att_se", "_fitstatus"}) {
    const fs::path plain = dir / "nii" / ("sub-01" + suffix + ".nii");
    SCOPED_TRACE(plain.string());
    ASSERT_TRUE(fs::is_regular_file(plain));
    const perfq::Image<float> a =
        perfq::io::read_nifti((dir / "gz" / ("sub-01" + suffix + ".nii.gz")).string());
    const perfq::Image<float> b = perfq::io::read_nifti(plain.string());
    EXPECT_EQ(a.geometry().dims, b.geometry().dims);
    EXPECT_EQ(a.geometry().spacing, b.geometry().spacing);
    EXPECT_EQ(a.geometry().origin, b.geometry().origin);
    EXPECT_EQ(a.geometry().direction, b.geometry().direction);
    EXPECT_TRUE(std::equal(a.data(), a.data() + a.size(), b.data(), b.data() + b.size()));
    EXPECT_NE(read_text(plain).substr(0, 2), "\x1f\x8b");  // not gzip
  }
  EXPECT_EQ(read_text(dir / "nii" / "sub-01_cbf.json"), read_text(dir / "gz" / "sub-01_cbf.json"));
  EXPECT_NE(nii.output.find((dir / "nii" / "sub-01_cbf.nii").string()), std::string::npos)
      << nii.output;

  // Existing outputs are refused by their .nii names; the later tools read the .nii maps.
  const Result again = run(args + (dir / "nii").string() + " --uncompressed");
  EXPECT_EQ(again.status, 1) << again.output;
  EXPECT_NE(again.output.find("sub-01_cbf.nii"), std::string::npos) << again.output;
  const Result report = run("report " + (dir / "nii" / "sub-01_cbf.nii").string());
  ASSERT_EQ(report.status, 0) << report.output;
  EXPECT_TRUE(fs::is_regular_file(dir / "nii" / "sub-01_report.html"));
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

/// A multi-delay run into `out`, started with `ignored` signals ignored (as nohup or a
/// script's background job starts it); returns once its staging folder exists, a little into
/// the computation. Core dumps are off (SIGQUIT, SIGXCPU and SIGXFSZ would write one).
pid_t start_staged_run(const fs::path& asl, const fs::path& out,
                       const std::vector<int>& ignored = {}) {
  const rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  std::vector<struct sigaction> before(ignored.size());
  for (std::size_t k = 0; k < ignored.size(); ++k) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigaction(ignored[k], &ignore, &before[k]);
  }
  const pid_t pid = spawn({"cbf", asl.string(), "-o", out.string(), "--backend", "cpu",
                           "--att-prior", "--threads", "1"});
  for (std::size_t k = 0; k < ignored.size(); ++k) sigaction(ignored[k], &before[k], nullptr);
  if (pid <= 0) return pid;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (has_staging(out)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // into the computation
      return pid;
    }
    if (waitpid(pid, &status, WNOHANG) == pid) return -1;  // ended early
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

/// Multi-delay on a larger grid: a second or more of fitting after the staging folder
/// appears (the fit got faster, so the grid grew with it).
fs::path slow_phantom(const fs::path& dir) {
  return small_phantom(dir / "bids", {0.5, 1.0, 1.5, 2.0, 2.5}, {96, 114, 84});
}

void interrupt_cbf(const std::vector<int>& signals) {
  const fs::path dir = scratch("signal-" + std::to_string(signals.front()));
  const fs::path asl = slow_phantom(dir);
  for (int sig : signals) {
    const fs::path out = dir / ("out-" + std::to_string(sig));
    const pid_t pid = start_staged_run(asl, out);
    ASSERT_GT(pid, 0) << "the run never created its staging folder";
    ASSERT_EQ(kill(pid, sig), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status)) << "signal " << sig << ": exit status " << status;
    if (WIFSIGNALED(status)) EXPECT_EQ(WTERMSIG(status), sig);
    EXPECT_EQ(listing(out), std::vector<std::string>{}) << "left behind in " << out;
  }
}

TEST(Outputs, SigtermLeavesNoPartialOutput) { interrupt_cbf({SIGTERM}); }

TEST(Outputs, SigintLeavesNoPartialOutput) { interrupt_cbf({SIGINT}); }

TEST(Outputs, EveryCatchableTerminatingSignalLeavesNoPartialOutput) {
  interrupt_cbf({SIGQUIT, SIGUSR1, SIGALRM, SIGXCPU, SIGXFSZ});
}

TEST(Outputs, SignalsIgnoredAtStartStayIgnored) {
  // nohup perfq …: a logout's SIGHUP, or a Ctrl-C meant for the terminal's foreground job,
  // must not end the run.
  const fs::path dir = scratch("nohup");
  const fs::path asl = slow_phantom(dir);
  const fs::path out = dir / "out";
  const pid_t pid = start_staged_run(asl, out, {SIGHUP, SIGINT});
  ASSERT_GT(pid, 0) << "the run never created its staging folder";
  ASSERT_EQ(kill(pid, SIGHUP), 0);
  ASSERT_EQ(kill(pid, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "ended by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(fs::exists(out / "sub-01_cbf.nii.gz"));
}

TEST(Outputs, TheNextRunRemovesTheStagingFolderOfAKilledOne) {
  const fs::path dir = scratch("sigkill");
  const fs::path asl = slow_phantom(dir);
  const fs::path out = dir / "out";
  const pid_t pid = start_staged_run(asl, out);
  ASSERT_GT(pid, 0) << "the run never created its staging folder";
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(has_staging(out));  // SIGKILL cannot be caught
  // A staging folder of a live run is left alone: this one is the test's own (its pid lives).
  const fs::path live = out / (".perfq-staging-" + std::to_string(getpid()) + "-0");
  fs::create_directories(live);
  const fs::path small = small_phantom(dir / "small");
  const Result r = run("stats " + (small.parent_path().parent_path().parent_path() /
                                   "derivatives" / "truth" / "sub-01" / "perf" /
                                   "sub-01_cbf.nii.gz").string() +
                       " --labels " +
                       (small.parent_path().parent_path().parent_path() / "derivatives" /
                        "truth" / "sub-01" / "perf" / "sub-01_territories.nii.gz").string() +
                       " -o " + (out / "t.tsv").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(listing(out), (std::vector<std::string>{live.filename().string(), "t.json", "t.tsv"}));
}

// ---- commits -------------------------------------------------------------------------------

TEST(Outputs, OfTwoRunsIntoOneFolderExactlyOneWins) {
  const fs::path dir = scratch("race");
  const fs::path asl = small_phantom(dir / "bids");
  for (int trial = 0; trial < 8; ++trial) {
    const fs::path out = dir / ("out-" + std::to_string(trial));
    const std::vector<std::string> args = {"cbf", asl.string(), "-o", out.string(), "--backend",
                                           "cpu", "--threads", "1"};
    const pid_t first = spawn(args), second = spawn(args);
    ASSERT_GT(first, 0);
    ASSERT_GT(second, 0);
    int a = 0, b = 0;
    ASSERT_EQ(waitpid(first, &a, 0), first);
    ASSERT_EQ(waitpid(second, &b, 0), second);
    ASSERT_TRUE(WIFEXITED(a) && WIFEXITED(b));
    const int wins = (WEXITSTATUS(a) == 0) + (WEXITSTATUS(b) == 0);
    const int refused = (WEXITSTATUS(a) == 1) + (WEXITSTATUS(b) == 1);
    EXPECT_EQ(wins, 1) << "trial " << trial;
    EXPECT_EQ(refused, 1) << "trial " << trial;
    for (const auto& entry : listing(out)) {
      EXPECT_EQ(entry.find(".perfq-staging"), std::string::npos) << entry;
    }
  }
}

TEST(Outputs, OverwriteNeverReplacesAFolderWithAFile) {
  const fs::path dir = scratch("folder-in-the-way");
  const fs::path asl = small_phantom(dir / "bids");
  const fs::path out = dir / "out";
  const fs::path folder = out / "sub-01_cbf.nii.gz";
  fs::create_directories(folder);
  write_text(folder / "notes.txt", "mine");
  const Result r = run("cbf " + asl.string() + " --backend cpu --overwrite -o " + out.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(folder.string() + ": is a folder"), std::string::npos) << r.output;
  EXPECT_EQ(read_text(folder / "notes.txt"), "mine");
  EXPECT_EQ(listing(out), (std::vector<std::string>{"sub-01_cbf.nii.gz",
                                                    "sub-01_cbf.nii.gz/notes.txt"}));
}

TEST(Outputs, APhantomIsCommittedWholeOrNotAtAll) {
  const fs::path dir = scratch("phantom-blocked");
  const fs::path ds = dir / "ds";
  fs::create_directories(ds / "derivatives");
  write_text(ds / "derivatives" / "truth", "a file where a folder goes");
  const Result r = run("phantom -o " + ds.string() + " --repeats 1");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find((ds / "derivatives" / "truth").string() + ": is a file"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(listing(ds), (std::vector<std::string>{"derivatives", "derivatives/truth"}));
  fs::remove(ds / "derivatives" / "truth");
  const Result again = run("phantom -o " + ds.string() + " --repeats 1");
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_TRUE(fs::exists(ds / "dataset_description.json"));
  EXPECT_TRUE(fs::exists(ds / "derivatives" / "truth" / "dataset_description.json"));
  EXPECT_TRUE(fs::exists(ds / "sub-01" / "perf" / "sub-01_asl.nii.gz"));
}

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
