// Internal to perfq::io: what lies where a file was expected, said plainly.
#pragma once

#include <perfq/errors.hpp>

#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace detail {

/// Throws InputError naming `path` unless it is a regular file (or a link to one); the
/// message says what is there instead: nothing, a folder, a link loop, a link to nothing, a
/// device or pipe (reading one could block forever). `what` names the expected file, e.g.
/// "ASL sidecar (.json)"; `not_found` is the message when nothing is there.
inline void require_regular_file(const std::string& path, const std::string& what,
                                 const std::string& not_found) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status target = fs::status(path, ec);
  if (!ec && fs::is_regular_file(target)) return;
  if (ec && ec.value() == ELOOP) {
    throw InputError(path, "", "is a symbolic link loop (the links never reach a file); expected the " +
                                   what);
  }
  std::error_code link_ec;
  const fs::file_status link = fs::symlink_status(path, link_ec);
  if (fs::is_symlink(link) && !fs::exists(target)) {
    std::error_code read_ec;
    const fs::path to = fs::read_symlink(path, read_ec);
    throw InputError(path, "",
                     "is a symbolic link to " + (read_ec ? std::string("a missing file")
                                                        : to.string() + ", which does not exist") +
                         "; expected the " + what);
  }
  if (fs::is_directory(target)) {
    throw InputError(path, "", "is a folder; expected the " + what + " (a file)");
  }
  if (fs::exists(target)) {
    throw InputError(path, "", "is not a regular file (a device, pipe or socket); expected the " +
                                   what);
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    throw InputError(path, "", "cannot be examined (" + ec.message() + "); expected the " + what);
  }
  throw InputError(path, "", not_found);
}

}  // namespace detail
}  // namespace io
PERFQ_NAMESPACE_END
