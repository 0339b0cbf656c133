// Outputs written all together or not at all (include/perfq/io/outputs.hpp): a private
// staging folder, locks (flock) on it and on the output folder, and a checked commit that
// undoes itself when a move fails.
#include <perfq/errors.hpp>
#include <perfq/io/outputs.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

PERFQ_NAMESPACE_BEGIN
namespace io {

struct StagedOutputs::State {
  fs::path dir, staging;
  std::string dir_text, staging_text;
  bool overwrite = false;
  std::vector<std::string> names, shared;
  int lock_fd = -1;  ///< the staging folder's lock, held while the object lives
};

namespace {

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

/// Removes the staging folders in `dir` that writers no longer own: each holds a lock on its
/// own until it ends, however it ends (even SIGKILL), so a folder whose lock is free and
/// whose process is gone was left by a process that was killed.
void remove_stale_staging(const fs::path& dir) {
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

/// Throws unless the staged `name` can be moved to `dir/name`: the folders on the way are
/// folders (or absent), and an output in the way is of the same kind (overwrite replaces
/// files with files, and output folders with folders, never a folder of the user's with a
/// file).
void check_target(const fs::path& dir, const fs::path& staging, const std::string& name) {
  const fs::path target = dir / name;
  std::error_code ec;
  fs::path at = dir;
  for (const auto& part : fs::path(name).parent_path()) {
    at /= part;
    const fs::file_status st = fs::status(at, ec);
    if (fs::exists(st) && !fs::is_directory(st)) {
      throw Error(at.string() + ": is a file; a folder of that name is needed for " +
                         target.string());
    }
    if (!fs::exists(st)) break;
  }
  const fs::file_status there = fs::symlink_status(target, ec);
  if (!fs::exists(there)) return;
  const bool staged_folder = fs::is_directory(fs::symlink_status(staging / name, ec));
  if (fs::is_directory(there) && !staged_folder) {
    throw Error(target.string() + ": is a folder; the output file of that name would "
                       "replace it (--overwrite replaces files only): move the folder away");
  }
  if (!fs::is_directory(there) && staged_folder) {
    throw Error(target.string() + ": is a file; the output folder of that name would "
                       "replace it: move the file away");
  }
}

/// Creates `folder` and the folders above it that are missing, recording each one made.
bool make_parents(const fs::path& folder, std::vector<fs::path>& made,
                         std::error_code& ec) {
  if (folder.empty() || fs::is_directory(folder, ec)) return true;
  if (!make_parents(folder.parent_path(), made, ec)) return false;
  if (!fs::create_directory(folder, ec)) return ec ? false : true;
  made.push_back(folder);
  return true;
}


}  // namespace

void refuse_existing_outputs(const std::string& dir, const std::vector<std::string>& names,
                             bool overwrite) {
  if (overwrite) return;
  for (const auto& name : names) {
    std::error_code ec;
    const fs::path path = fs::path(dir) / name;
    if (fs::exists(fs::symlink_status(path, ec))) {
      throw Error(path.string() + ": output exists; not overwritten (pass --overwrite to "
                  "replace it)");
    }
  }
}

StagedOutputs::StagedOutputs(const std::string& dir, bool overwrite) : state_(new State) {
  State& s = *state_;
  s.dir = dir;
  s.dir_text = dir;
  s.overwrite = overwrite;
  std::error_code ec;
  fs::create_directories(s.dir, ec);
  if (ec) {
    delete state_;
    throw Error(dir + ": cannot create the output folder: " + ec.message());
  }
  remove_stale_staging(s.dir);
  // Unique per process and per instance: several writers may share an output folder.
  static std::atomic<unsigned> instances{0};
  s.staging = s.dir / (".perfq-staging-" + std::to_string(::getpid()) + "-" +
                       std::to_string(instances++));
  s.staging_text = s.staging.string();
  fs::create_directories(s.staging, ec);
  if (ec) {
    const std::string message = s.staging_text + ": cannot create: " + ec.message();
    delete state_;
    throw Error(message);
  }
  // Held until the object (or the process, however it ends) goes.
  s.lock_fd = ::open(s.staging.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (s.lock_fd >= 0) ::flock(s.lock_fd, LOCK_EX);
}

StagedOutputs::~StagedOutputs() {
  std::error_code ec;
  fs::remove_all(state_->staging, ec);
  if (state_->lock_fd >= 0) ::close(state_->lock_fd);
  delete state_;
}

std::string StagedOutputs::stage(const std::string& name) {
  state_->names.push_back(name);
  return (state_->staging / name).string();
}

std::string StagedOutputs::stage_shared(const std::string& name) {
  state_->shared.push_back(name);
  return (state_->staging / name).string();
}

const std::string& StagedOutputs::staging() const noexcept { return state_->staging_text; }

const std::string& StagedOutputs::directory() const noexcept { return state_->dir_text; }

std::string name_final_outputs(std::string message, const std::string& staging,
                               const std::string& dir) {
  std::error_code ec;
  const std::string absolute_staging = fs::absolute(staging, ec).string();
  const std::string absolute_dir = ec ? dir : fs::absolute(dir, ec).string();
  const std::pair<std::string, std::string> forms[] = {{staging, dir},
                                                       {absolute_staging, absolute_dir}};
  for (const auto& [from, to] : forms) {
    if (from.empty()) continue;
    for (std::size_t at = message.find(from); at != std::string::npos;
         at = message.find(from, at + to.size())) {
      message.replace(at, from.size(), to);
    }
  }
  return message;
}

std::string StagedOutputs::final_names(std::string message) const {
  return name_final_outputs(std::move(message), state_->staging_text, state_->dir_text);
}

std::vector<std::string> StagedOutputs::commit() {
  State& s = *state_;
  const FileLock serialized(s.dir, /*wait=*/true);
  refuse_existing_outputs(s.dir.string(), s.names, s.overwrite);
  std::vector<std::pair<std::string, bool>> moves;  // name, replaces (false: shared)
  for (const auto& name : s.names) moves.emplace_back(name, true);
  for (const auto& name : s.shared) {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(s.dir / name, ec))) moves.emplace_back(name, false);
  }
  for (const auto& [name, replaces] : moves) check_target(s.dir, s.staging, name);

  std::vector<fs::path> made_folders;
  std::vector<std::pair<fs::path, fs::path>> done;      // staged ← target, to undo
  std::vector<std::pair<fs::path, fs::path>> replaced;  // target → kept aside, to undo
  const fs::path aside = s.staging / ".replaced";
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
    const fs::path target = s.dir / name;
    std::error_code ec;
    if (!make_parents(target.parent_path(), made_folders, ec)) {
      undo();
      throw Error(target.parent_path().string() + ": cannot create: " + ec.message());
    }
    if (replaces && fs::exists(fs::symlink_status(target, ec))) {
      const fs::path kept = aside / std::to_string(replaced.size());
      fs::create_directories(aside, ec);
      fs::rename(target, kept, ec);
      if (ec) {
        undo();
        throw Error(target.string() + ": cannot replace: " + ec.message());
      }
      replaced.emplace_back(target, kept);
    }
    fs::rename(s.staging / name, target, ec);
    if (ec) {
      undo();
      throw Error(target.string() + ": cannot move into place: " + ec.message());
    }
    done.emplace_back(s.staging / name, target);
    final_paths.push_back(target.string());
  }
  return final_paths;
}

}  // namespace io
PERFQ_NAMESPACE_END
