/// @file
/// @brief The per-voxel status codes as integers, for device code: the one numbering that
/// perfq::VoxelStatus (cbf.hpp) and the C API's perfq_voxel_status (perfq.h, checked at
/// compile time in src/c_api/core.cpp) take their values from.
#pragma once

#include <perfq/version.hpp>

#include <cstdint>

PERFQ_NAMESPACE_BEGIN
namespace detail {

/// Status codes (perfq::VoxelStatus).
enum : std::uint8_t {
  kStatusOk = 0,
  kStatusOutsideMask = 1,
  kStatusM0NotPositive = 2,
  kStatusNonFiniteInput = 3,
  kStatusNonFiniteResult = 4,
  kStatusMaxIterations = 5,
  kStatusSingular = 6,
  kStatusAtBound = 7,
  kStatusM0TooLow = 8,  ///< set by perfq::io's pipeline, after the quantification
  kStatusCount = 9      ///< the number of codes
};

}  // namespace detail
PERFQ_NAMESPACE_END
