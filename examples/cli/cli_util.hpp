// Helpers shared by the perfq tool's subcommands: option parsing and staged outputs.
#pragma once

#include "commands.hpp"
#include "interrupt.hpp"

#include <perfq/errors.hpp>
#include <perfq/execution.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace perfq_cli {

namespace fs = std::filesystem;

/// Whether `s` ends with `tail`.
inline bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

/// Whether `--help` or `-h` is among the arguments.
inline bool wants_help(const std::vector<std::string>& raw) {
  return std::find(raw.begin(), raw.end(), "--help") != raw.end() ||
         std::find(raw.begin(), raw.end(), "-h") != raw.end();
}

/// Command-line options: positional arguments, options with values and flags.
class Args {
 public:
  Args(const std::vector<std::string>& raw, const std::set<std::string>& with_value,
       const std::set<std::string>& flags, const std::map<std::string, std::string>& aliases) {
    for (std::size_t k = 0; k < raw.size(); ++k) {
      std::string a = raw[k];
      if (auto alias = aliases.find(a); alias != aliases.end()) a = alias->second;
      if (a.size() > 1 && a[0] == '-' && !is_number(a)) {
        if (flags.count(a)) {
          flags_.insert(a);
        } else if (with_value.count(a)) {
          if (k + 1 >= raw.size()) throw UsageError{a + " needs a value"};
          if (values_.count(a)) throw UsageError{a + " given twice"};
          values_[a] = raw[++k];
        } else {
          throw UsageError{"unknown option '" + raw[k] + "'"};
        }
      } else {
        positional_.push_back(raw[k]);
      }
    }
  }
  const std::vector<std::string>& positional() const { return positional_; }
  bool flag(const std::string& name) const { return flags_.count(name) > 0; }
  std::optional<std::string> text(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<double> number(const std::string& name) const {
    auto t = text(name);
    if (!t) return std::nullopt;
    return parse_number(*t, name);
  }
  std::optional<long> integer(const std::string& name) const {
    auto v = number(name);
    if (!v) return std::nullopt;
    if (*v != static_cast<double>(static_cast<long>(*v))) {
      throw UsageError{name + ": expected a whole number, got '" + *text(name) + "'"};
    }
    return static_cast<long>(*v);
  }

  static double parse_number(const std::string& t, const std::string& name) {
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != t.size() || !std::isfinite(v)) {
      throw UsageError{name + ": expected a number, got '" + t + "'"};
    }
    return v;
  }

 private:
  static bool is_number(const std::string& a) {
    return a.size() > 1 && (std::isdigit(static_cast<unsigned char>(a[1])) || a[1] == '.');
  }
  std::vector<std::string> positional_;
  std::set<std::string> flags_;
  std::map<std::string, std::string> values_;
};

/// The options every computing command shares: --backend, --device, --threads.
inline perfq::Execution parse_execution(const Args& args) {
  perfq::Execution execution;
  if (auto b = args.text("--backend")) {
    try {
      execution.backend = perfq::parse_backend(*b);
    } catch (const perfq::InvalidArgument& e) {
      throw UsageError{std::string("--backend: ") + e.what()};
    }
  }
  if (auto d = args.integer("--device")) execution.device = static_cast<int>(*d);
  if (auto t = args.integer("--threads")) {
    if (*t < 0) throw UsageError{"--threads: expected 0 or more"};
    execution.threads = static_cast<int>(*t);
  }
  // `auto` falls back to the CPU when the CUDA backend fails; say so (once per message).
  execution.on_fallback = [](const std::string& message) {
    static std::set<std::string> said;
    if (said.insert(message).second) std::cerr << "perfq: note: " << message << "\n";
  };
  return execution;
}

/// The first of `names` that exists in `dir` (empty when none does).
inline std::string first_existing(const fs::path& dir, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(dir / name, ec))) return (dir / name).string();
  }
  return {};
}

/// Refuses to replace existing outputs unless --overwrite was given: throws naming the first
/// existing one (before any work, or at commit before anything is moved).
inline void refuse_existing(const fs::path& dir, const std::vector<std::string>& names,
                            bool overwrite) {
  if (overwrite) return;
  const std::string existing = first_existing(dir, names);
  if (!existing.empty()) {
    throw perfq::Error(existing + ": output exists; not overwritten (pass --overwrite to "
                       "replace it)");
  }
}

/// Files written into a private staging folder, moved into place together at the end, so
/// that a failure leaves none of them behind. Existing outputs are replaced only with
/// `overwrite`; otherwise commit() refuses before moving anything. While the staging folder
/// exists, SIGINT/SIGTERM/SIGHUP remove it (interrupt.hpp), and the moves into place run with
/// those signals deferred: an interrupted run leaves all outputs or none, never a part.
class StagedOutputs {
 public:
  StagedOutputs(const fs::path& dir, bool overwrite) : dir_(dir), overwrite_(overwrite) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw perfq::Error(dir_.string() + ": cannot create the output folder: " + ec.message());
    // Unique per process and per instance: several runs may share an output folder.
    static std::atomic<unsigned> instances{0};
    staging_ = dir_ / (".perfq-staging-" + std::to_string(::getpid()) + "-" +
                       std::to_string(instances++));
    interrupt::install();
    slot_ = interrupt::add(fs::absolute(staging_, ec).string());
    fs::create_directories(staging_, ec);
    if (ec) {
      interrupt::remove(slot_);
      throw perfq::Error(staging_.string() + ": cannot create: " + ec.message());
    }
  }
  ~StagedOutputs() {
    std::error_code ec;
    fs::remove_all(staging_, ec);
    interrupt::remove(slot_);
  }
  StagedOutputs(const StagedOutputs&) = delete;
  StagedOutputs& operator=(const StagedOutputs&) = delete;

  /// Where to write `name` (a file or folder, possibly under subfolders) now; it reaches
  /// `dir/name` on commit().
  std::string stage(const std::string& name) {
    names_.push_back(name);
    return (staging_ / name).string();
  }
  /// Like stage(), but an existing `dir/name` is kept as it is (shared files such as a
  /// dataset_description.json), never refused or replaced.
  std::string stage_shared(const std::string& name) {
    shared_.push_back(name);
    return (staging_ / name).string();
  }
  /// The staging folder (for writers that fill a whole tree).
  const fs::path& staging() const { return staging_; }

  std::vector<std::string> commit() {
    refuse_existing(dir_, names_, overwrite_);
    const interrupt::Deferred deferred;  // all or nothing, even under SIGINT/SIGTERM
    std::vector<std::string> final_paths;
    for (const auto& name : names_) {
      const fs::path target = dir_ / name;
      std::error_code ec;
      if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
      if (fs::is_directory(fs::symlink_status(target, ec))) fs::remove_all(target, ec);
      ec.clear();
      fs::rename(staging_ / name, target, ec);
      if (ec) throw perfq::Error(target.string() + ": cannot move into place: " + ec.message());
      final_paths.push_back(target.string());
    }
    for (const auto& name : shared_) {
      const fs::path target = dir_ / name;
      std::error_code ec;
      if (fs::exists(fs::symlink_status(target, ec))) continue;
      if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
      fs::rename(staging_ / name, target, ec);
      if (ec) throw perfq::Error(target.string() + ": cannot move into place: " + ec.message());
      final_paths.push_back(target.string());
    }
    return final_paths;
  }

 private:
  fs::path dir_, staging_;
  bool overwrite_ = false;
  int slot_ = -1;
  std::vector<std::string> names_, shared_;
};

}  // namespace perfq_cli
