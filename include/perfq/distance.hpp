/// @file
/// @brief Exact Euclidean distance transforms of masks (linear-time, separable), with
/// anisotropic spacing, on CPU or CUDA; and dilation by a radius in mm built on them.
#pragma once

#include <perfq/execution.hpp>
#include <perfq/image.hpp>

#include <cstdint>

PERFQ_NAMESPACE_BEGIN

/// @brief How distances are reported.
struct DistanceOptions {
  /// Unsigned (false): each voxel gets the distance from its centre to the nearest centre of a
  /// nonzero voxel of the mask (0 on the mask). Signed (true): voxels off the mask get that
  /// distance (positive); voxels on the mask get minus the distance to the nearest voxel off
  /// the mask (negative).
  bool signed_distance = false;
  /// Millimetres using the grid's spacing (true), or voxel units (false).
  bool use_spacing = true;
};

/// @brief Euclidean distance map of `mask` (nonzero = inside), exact (no chamfer
/// approximation). Where no voxel to measure to exists, the value is infinite: +infinity for
/// a mask with no nonzero voxel; for a signed map of a mask with no zero voxel, −infinity on
/// the mask.
/// @throws InvalidArgument for an empty view or more than one volume
/// @throws BackendError when the requested backend cannot run
PERFQ_API Volume<float> distance_map(View<const std::uint8_t> mask,
                                     const DistanceOptions& options = {},
                                     const Execution& execution = {});

/// @brief Exact squared distances (unsigned) in double precision: in mm² with spacing, or
/// integers in voxel units without. Useful for exact comparisons and for tools that need the
/// squared form.
PERFQ_API Volume<double> squared_distance_map(View<const std::uint8_t> mask, bool use_spacing = true,
                                              const Execution& execution = {});

/// @brief Voxels within `radius_mm` (centre to centre, inclusive) of the mask.
/// @throws InvalidArgument for a negative or non-finite radius
PERFQ_API Mask dilate(View<const std::uint8_t> mask, double radius_mm,
                      const Execution& execution = {});

PERFQ_NAMESPACE_END
