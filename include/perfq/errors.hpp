/// @file
/// @brief Exceptions thrown by perfq. Numeric trouble inside a voxel never throws: it is
/// reported in a per-voxel status map instead.
#pragma once

#include <perfq/version.hpp>

#include <stdexcept>
#include <string>

PERFQ_NAMESPACE_BEGIN

/// @brief Base of every perfq exception.
class PERFQ_API Error : public std::runtime_error {
 public:
  /// @brief An error with this message (returned by `what()`).
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// @brief Misuse of the API: arguments that contradict each other (sizes, grids, options).
class PERFQ_API InvalidArgument : public Error {
 public:
  /// @brief An error with this message.
  explicit InvalidArgument(const std::string& message) : Error(message) {}
};

/// @brief Bad input data or metadata. `file()` and `field()` name where it was found, when
/// known (empty otherwise); `what()` gives the full message including both.
class PERFQ_API InputError : public Error {
 public:
  /// @brief An error in `file` (may be empty), at `field` (may be empty): `problem`.
  InputError(std::string file, std::string field, const std::string& problem)
      : Error(compose(file, field, problem)), file_(std::move(file)), field_(std::move(field)) {}
  /// @brief The file at fault, or empty.
  const std::string& file() const noexcept { return file_; }
  /// @brief The field (e.g. a BIDS sidecar key) at fault, or empty.
  const std::string& field() const noexcept { return field_; }

 private:
  static std::string compose(const std::string& file, const std::string& field,
                             const std::string& problem) {
    std::string m;
    if (!file.empty()) m += file + ": ";
    if (!field.empty()) m += field + ": ";
    return m + problem;
  }
  std::string file_;
  std::string field_;
};

/// @brief A requested backend is unavailable or failed (no CUDA device, out of device memory).
class PERFQ_API BackendError : public Error {
 public:
  /// @brief An error with this message.
  explicit BackendError(const std::string& message) : Error(message) {}
};

PERFQ_NAMESPACE_END
