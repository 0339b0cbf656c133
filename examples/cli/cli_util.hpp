// Helpers shared by the perfq tool's subcommands: option parsing and staged outputs.
#pragma once

#include "commands.hpp"
#include "interrupt.hpp"

#include <perfq/errors.hpp>
#include <perfq/execution.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
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
    for (std::size_t at = message.find(staging); at != std::string::npos;
         at = message.find(staging, at + final_dir.size())) {
      message.replace(at, staging.size(), final_dir);
    }
  }
  return message;
}

/// An exclusive flock(2) on a file or folder, held for the object's lifetime.
class FileLock {
 public:
  FileLock() = default;
  /// Locks `path` (a folder or file that exists); waits for the lock when `wait`, else
  /// held() says whether it was free.
  FileLock(const fs::path& path, bool wait) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd_ < 0) return;
    int r;
    do {
      r = ::flock(fd_, LOCK_EX | (wait ? 0 : LOCK_NB));
    } while (r != 0 && errno == EINTR);
    if (r != 0) release();
  }
  ~FileLock() { release(); }
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept {
    if (this != &other) {
      release();
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
  bool held() const { return fd_ >= 0; }

 private:
  void release() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
    fd_ = -1;
  }
  int fd_ = -1;
};

/// Removes the staging folders in `dir` that runs no longer own: each run holds a lock on its
/// own (StagedOutputs) until it ends, however it ends (even SIGKILL), so a folder whose lock
/// is free and whose process is gone was left by a run that was killed.
inline void remove_stale_staging(const fs::path& dir) {
  const std::string prefix = ".perfq-staging-";
  std::error_code ec;
  std::vector<fs::path> stale;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const std::size_t dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos ||
        rest.find_first_not_of("0123456789") != dash) {
      continue;  // not a name perfq gives
    }
    const long pid = std::strtol(rest.substr(0, dash).c_str(), nullptr, 10);
    if (pid <= 0 || pid == static_cast<long>(::getpid())) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM) continue;  // still there
    std::error_code kind;
    if (!fs::is_directory(fs::symlink_status(it->path(), kind))) continue;
    if (!FileLock(it->path(), /*wait=*/false).held()) continue;  // owned (another pid space)
    stale.push_back(it->path());
  }
  for (const auto& path : stale) fs::remove_all(path, ec);
}

/// Files written into a private staging folder, moved into place together at the end, so
/// that a failure leaves none of them behind. Existing outputs are replaced only with
/// `overwrite`; otherwise commit() refuses before moving anything. While the staging folder
/// exists, the signals that end a process remove it (interrupt.hpp), and the moves into place
/// run with those signals deferred: an interrupted run leaves all outputs or none, never a
/// part. Commits into one folder are serialized (a lock on the folder), so that of two runs
/// writing the same outputs without `overwrite`, one commits and the other is refused.
class StagedOutputs {
 public:
  StagedOutputs(const fs::path& dir, bool overwrite) : dir_(dir), overwrite_(overwrite) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw perfq::Error(dir_.string() + ": cannot create the output folder: " + ec.message());
    remove_stale_staging(dir_);
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
    owner_ = FileLock(staging_, /*wait=*/true);  // released when the process ends, however
    const std::lock_guard<std::mutex> lock(staging_names_mutex);
    staging_names().emplace_back(staging_.string(), dir_.string());
    const fs::path absolute_staging = fs::absolute(staging_, ec);
    if (!ec && absolute_staging != staging_) {
      staging_names().emplace_back(absolute_staging.string(), fs::absolute(dir_, ec).string());
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

  /// Moves every staged output into place, all or none: everything that can refuse the
  /// commit is checked first (existing outputs without `overwrite`, a folder where a file
  /// goes or the reverse, a file where a folder must be made), and a move that still fails
  /// undoes the ones before it, putting replaced outputs back. Returns the final paths.
  std::vector<std::string> commit() {
    const FileLock serialized(dir_, /*wait=*/true);
    refuse_existing(dir_, names_, overwrite_);
    std::vector<std::pair<std::string, bool>> moves;  // name, replaces (false: shared)
    for (const auto& name : names_) moves.emplace_back(name, true);
    for (const auto& name : shared_) {
      std::error_code ec;
      if (!fs::exists(fs::symlink_status(dir_ / name, ec))) moves.emplace_back(name, false);
    }
    for (const auto& [name, replaces] : moves) check_target(name);

    const interrupt::Deferred deferred;  // all or nothing, even under a signal
    std::vector<fs::path> made_folders;
    std::vector<std::pair<fs::path, fs::path>> done;      // staged ← target, to undo
    std::vector<std::pair<fs::path, fs::path>> replaced;  // target → kept aside, to undo
    const fs::path aside = staging_ / ".replaced";
    auto undo = [&] {
      std::error_code ec;
      for (auto it = done.rbegin(); it != done.rend(); ++it) fs::rename(it->second, it->first, ec);
      for (auto it = replaced.rbegin(); it != replaced.rend(); ++it) {
        fs::rename(it->second, it->first, ec);
      }
      for (auto it = made_folders.rbegin(); it != made_folders.rend(); ++it) fs::remove(*it, ec);
    };
    std::vector<std::string> final_paths;
    for (const auto& [name, replaces] : moves) {
      const fs::path target = dir_ / name;
      std::error_code ec;
      if (!make_parents(target.parent_path(), made_folders, ec)) {
        undo();
        throw perfq::Error(target.parent_path().string() + ": cannot create: " + ec.message());
      }
      if (replaces && fs::exists(fs::symlink_status(target, ec))) {
        const fs::path kept = aside / std::to_string(replaced.size());
        fs::create_directories(aside, ec);
        fs::rename(target, kept, ec);
        if (ec) {
          undo();
          throw perfq::Error(target.string() + ": cannot replace: " + ec.message());
        }
        replaced.emplace_back(target, kept);
      }
      fs::rename(staging_ / name, target, ec);
      if (ec) {
        undo();
        throw perfq::Error(target.string() + ": cannot move into place: " + ec.message());
      }
      done.emplace_back(staging_ / name, target);
      final_paths.push_back(target.string());
    }
    return final_paths;
  }

 private:
  /// Throws unless the staged `name` can be moved to `dir/name`: the folders on the way are
  /// folders (or absent), and an output in the way is of the same kind (overwrite replaces
  /// files with files, and perfq's own output folders with folders, never a folder of the
  /// user's with a file).
  void check_target(const std::string& name) const {
    const fs::path target = dir_ / name;
    std::error_code ec;
    fs::path at = dir_;
    for (const auto& part : fs::path(name).parent_path()) {
      at /= part;
      const fs::file_status s = fs::status(at, ec);
      if (fs::exists(s) && !fs::is_directory(s)) {
        throw perfq::Error(at.string() + ": is a file; a folder of that name is needed for " +
                           target.string());
      }
      if (!fs::exists(s)) break;
    }
    const fs::file_status there = fs::symlink_status(target, ec);
    if (!fs::exists(there)) return;
    const bool staged_folder = fs::is_directory(fs::symlink_status(staging_ / name, ec));
    if (fs::is_directory(there) && !staged_folder) {
      throw perfq::Error(target.string() + ": is a folder; the output file of that name would "
                         "replace it (--overwrite replaces files only): move the folder away");
    }
    if (!fs::is_directory(there) && staged_folder) {
      throw perfq::Error(target.string() + ": is a file; the output folder of that name would "
                         "replace it: move the file away");
    }
  }

  /// Creates `folder` and the folders above it that are missing, recording each one made.
  static bool make_parents(const fs::path& folder, std::vector<fs::path>& made,
                           std::error_code& ec) {
    if (folder.empty() || fs::is_directory(folder, ec)) return true;
    if (!make_parents(folder.parent_path(), made, ec)) return false;
    if (!fs::create_directory(folder, ec)) return ec ? false : true;
    made.push_back(folder);
    return true;
  }

  fs::path dir_, staging_;
  bool overwrite_ = false;
  int slot_ = -1;
  FileLock owner_;
  std::vector<std::string> names_, shared_;
};

}  // namespace perfq_cli
