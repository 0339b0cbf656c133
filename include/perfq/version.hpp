/// @file
/// @brief perfq's version: the single source CMake reads, and the versioned namespace.
#pragma once

/// Major version: incompatible API or ABI changes (the inline namespace `perfq::v<major>`).
#define PERFQ_VERSION_MAJOR 0
/// Minor version: additions that keep the API and ABI.
#define PERFQ_VERSION_MINOR 1
/// Patch version: fixes.
#define PERFQ_VERSION_PATCH 0
/// The version as "major.minor.patch".
#define PERFQ_VERSION_STRING "0.1.0"
/// The version as one integer for `#if`: major × 10000 + minor × 100 + patch (0.1.0: 100).
#define PERFQ_VERSION \
  (PERFQ_VERSION_MAJOR * 10000 + PERFQ_VERSION_MINOR * 100 + PERFQ_VERSION_PATCH)

/// Every public entity lives in `perfq::v0` (an inline namespace), so that objects built
/// against incompatible major versions fail to link instead of misbehaving at run time.
#define PERFQ_NAMESPACE_BEGIN \
  namespace perfq {           \
  inline namespace v0 {
/// Closes PERFQ_NAMESPACE_BEGIN.
#define PERFQ_NAMESPACE_END \
  }                         \
  }

#include <perfq/export.hpp>

PERFQ_NAMESPACE_BEGIN
/// @brief The library's version string ("major.minor.patch") as compiled into the binary.
/// Compare with PERFQ_VERSION_STRING to detect a header/library mismatch.
PERFQ_API const char* version() noexcept;
PERFQ_NAMESPACE_END
