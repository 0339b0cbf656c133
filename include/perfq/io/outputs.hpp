/// @file
/// @brief Outputs written all together or not at all: a private staging folder in the output
/// folder, moved into place in one checked commit. What every perfq command and
/// write_series_outputs write through. Part of perfq::io.
#pragma once

#include <perfq/export.hpp>
#include <perfq/version.hpp>

#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {

/// @brief Throws Error naming the first of `names` (files or folders, relative to `dir`) that
/// exists, unless `overwrite`: "<path>: output exists; not overwritten (pass --overwrite to
/// replace it)".
PERFQ_IO_API void refuse_existing_outputs(const std::string& dir,
                                          const std::vector<std::string>& names, bool overwrite);

/// @brief `message` with the staging folder `staging` (as given, and as an absolute path)
/// replaced by the output folder `dir`: StagedOutputs::final_names, for a message that
/// outlives its StagedOutputs (an error reported after the outputs were discarded).
PERFQ_IO_API std::string name_final_outputs(std::string message, const std::string& staging,
                                            const std::string& dir);

/// @brief Files written into a private staging folder in `dir` (`.perfq-staging-<pid>-<n>`),
/// moved into place together by commit(), so that a failure leaves none of them behind.
///
/// - Existing outputs are replaced only with `overwrite`; otherwise commit() refuses before
///   moving anything.
/// - commit() is all or nothing: everything that can refuse it is checked before anything
///   moves (existing outputs, a file where a folder must be made, a folder of the user's where
///   an output file goes — never removed, even with `overwrite`), and a move that still fails
///   undoes the ones before it, putting replaced outputs back.
/// - Commits into one folder take turns (a lock on the folder), so that of two writers of the
///   same outputs without `overwrite` one commits and the other is refused.
/// - The staging folder is locked while the object lives; a writer created later in the
///   same folder removes staging folders whose lock is free and whose process is gone (left
///   by a process that was killed). The destructor removes the staging folder.
class PERFQ_IO_API StagedOutputs {
 public:
  /// @brief Creates `dir` when needed and a staging folder in it.
  /// @throws Error naming the folder when it cannot be created.
  StagedOutputs(const std::string& dir, bool overwrite);
  ~StagedOutputs();
  StagedOutputs(const StagedOutputs&) = delete;
  StagedOutputs& operator=(const StagedOutputs&) = delete;

  /// @brief Where to write `name` (a file or folder, possibly under subfolders) now; it
  /// reaches `dir/name` on commit().
  std::string stage(const std::string& name);
  /// @brief Like stage(), but an existing `dir/name` is kept as it is (shared files such as a
  /// dataset_description.json), never refused or replaced.
  std::string stage_shared(const std::string& name);
  /// @brief The staging folder (for writers that fill a whole tree).
  const std::string& staging() const noexcept;
  /// @brief The output folder.
  const std::string& directory() const noexcept;
  /// @brief Moves every staged output into place, all or none (see the class).
  /// @return the final paths, in the order staged (shared files last)
  /// @throws Error naming the output at fault; nothing has moved then.
  std::vector<std::string> commit();
  /// @brief `message` with the staging folder replaced by the output folder: a failure to
  /// write a staged file (a full disk) names the output asked for.
  std::string final_names(std::string message) const;

 private:
  struct State;
  State* state_;
};

}  // namespace io
PERFQ_NAMESPACE_END
