// Helpers shared by the perfq tool's subcommands: option parsing and staged outputs.
#pragma once

#include "commands.hpp"
#include "interrupt.hpp"

#include <perfq/errors.hpp>
#include <perfq/execution.hpp>
#include <perfq/io/outputs.hpp>
#include <perfq/io/text.hpp>


#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
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
          // A forgotten value: `-o --overwrite` must not make a folder called --overwrite.
          const std::string& next = raw[k + 1];
          if (next.empty()) throw UsageError{a + " needs a value, got an empty one"};
          if (flags.count(next) || with_value.count(next) || aliases.count(next)) {
            throw UsageError{a + " needs a value, got the option " + next};
          }
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
    const std::optional<double> v = perfq::io::parse_number(t);
    if (!v) throw UsageError{name + ": expected a number, got '" + t + "'"};
    return *v;
  }

 private:
  static bool is_number(const std::string& a) {
    return a.size() > 1 && (std::isdigit(static_cast<unsigned char>(a[1])) || a[1] == '.');
  }
  std::vector<std::string> positional_;
  std::set<std::string> flags_;
  std::map<std::string, std::string> values_;
};

/// The largest --threads accepted (a larger request is a mistake, not a machine).
constexpr long kMaxThreadsOption = 4096;

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
  if (auto d = args.integer("--device")) {
    if (*d < 0 || *d > 1023) throw UsageError{"--device: expected a device number, 0 to 1023"};
    execution.device = static_cast<int>(*d);
  }
  if (auto t = args.integer("--threads")) {
    // Runs use at most as many threads as there are processors (perfq::Execution::threads).
    if (*t < 0 || *t > kMaxThreadsOption) {
      throw UsageError{"--threads: expected 0 (OpenMP's default) to " +
                       std::to_string(kMaxThreadsOption) + ", got " + *args.text("--threads")};
    }
    execution.threads = static_cast<int>(*t);
  }
  return execution;
}

/// What `auto` says when it falls back to the CPU because the CUDA backend failed: a note
/// on `err`, once per message (for Execution::on_fallback; one per command run).
inline std::function<void(const std::string&)> fallback_notes(std::ostream& err) {
  auto said = std::make_shared<std::set<std::string>>();
  return [said, &err](const std::string& message) {
    if (said->insert(message).second) err << "perfq: note: " << message << "\n";
  };
}

/// Refuses to replace existing outputs unless --overwrite was given: throws naming the first
/// existing one (before any work; the commit checks again before anything is moved).
inline void refuse_existing(const fs::path& dir, const std::vector<std::string>& names,
                            bool overwrite) {
  perfq::io::refuse_existing_outputs(dir.string(), names, overwrite);
}

/// The staging folders of this process with the output folders they stand for (in that
/// order), so that a message naming a staged file can name its final place instead.
/// Guarded by staging_names_mutex (the BIDS-App runs steps on several threads).
inline std::vector<std::pair<std::string, std::string>>& staging_names() {
  static std::vector<std::pair<std::string, std::string>> names;
  return names;
}
inline std::mutex staging_names_mutex;

/// `message` with every staging folder of this process replaced by its output folder: a
/// failure to write a staged file (a full disk) names the output the user asked for.
inline std::string name_final_outputs(std::string message) {
  const std::lock_guard<std::mutex> lock(staging_names_mutex);
  for (const auto& [staging, final_dir] : staging_names()) {
    message = perfq::io::name_final_outputs(std::move(message), staging, final_dir);
  }
  return message;
}

/// The library's staged outputs (perfq::io::StagedOutputs: all or nothing, refused or
/// replaced as asked, commits into one folder taking turns, stale staging folders removed)
/// with the tool's signal handling: while the staging folder exists, the signals that end a
/// process remove it (interrupt.hpp), and the commit runs with those signals deferred, so
/// that an interrupted run leaves all outputs or none, never a part. Messages naming a staged
/// file name its final place (name_final_outputs).
class StagedOutputs {
 public:
  StagedOutputs(const fs::path& dir, bool overwrite) : outputs_(dir.string(), overwrite) {
    interrupt::install();
    std::error_code ec;
    const fs::path staging(outputs_.staging());
    slot_ = interrupt::add(fs::absolute(staging, ec).string());
    const std::lock_guard<std::mutex> lock(staging_names_mutex);
    staging_names().emplace_back(staging.string(), dir.string());
  }
  ~StagedOutputs() { interrupt::remove(slot_); }  // the library removes the folder
  StagedOutputs(const StagedOutputs&) = delete;
  StagedOutputs& operator=(const StagedOutputs&) = delete;

  /// Where to write `name` now; it reaches `dir/name` on commit().
  std::string stage(const std::string& name) { return outputs_.stage(name); }
  /// Like stage(), but an existing `dir/name` is kept as it is.
  std::string stage_shared(const std::string& name) { return outputs_.stage_shared(name); }
  /// The staging folder (for writers that fill a whole tree).
  fs::path staging() const { return outputs_.staging(); }

  std::vector<std::string> commit() {
    const interrupt::Deferred deferred;  // all or nothing, even under a signal
    return outputs_.commit();
  }

 private:
  perfq::io::StagedOutputs outputs_;
  int slot_ = -1;
};

}  // namespace perfq_cli
