// Helpers of the tests that run the perfq tool as a separate process (PERFQ_CLI_PATH) in
// scratch folders (under PERFQ_TEST_TMP).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

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

/// Whether `dir` holds any regular file (at any depth); false when it does not exist.
inline bool folder_has_files(const fs::path& dir) {
  if (!fs::exists(dir)) return false;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) return true;
  }
  return false;
}

/// Rewrites the JSON file at `path` after `edit` changed it (e.g. to spoil a sidecar).
inline void edit_json(const fs::path& path, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j = nlohmann::json::parse(read_text(path));
  edit(j);
  write_text(path, j.dump(2));
}

}  // namespace cli_test
