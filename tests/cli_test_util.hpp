// Helpers of the tests that run the perfq tool as a separate process (PERFQ_CLI_PATH) in
// scratch folders (under PERFQ_TEST_TMP).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace cli_test {

namespace fs = std::filesystem;

struct Result {
  int status;          ///< exit status (-1 when the process did not exit normally)
  std::string output;  ///< stdout and stderr
};

/// Runs `perfq <arguments>` through the shell.
inline Result run(const std::string& arguments) {
  const std::string command = std::string(PERFQ_CLI_PATH) + " " + arguments + " 2>&1";
  Result r{-1, {}};
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) r.output += buffer.data();
  const int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

/// A fresh, empty folder `name` under the test scratch area.
inline fs::path scratch_dir(const std::string& name) {
  const fs::path dir = fs::path(PERFQ_TEST_TMP) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace cli_test
