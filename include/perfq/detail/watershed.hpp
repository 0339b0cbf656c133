/// @file
/// @brief Per-voxel steps of the border-zone masks, shared by the CPU and CUDA backends.
#pragma once

#include <perfq/version.hpp>

#include <perfq/detail/macros.hpp>

#include <cstddef>
#include <cstdint>

PERFQ_NAMESPACE_BEGIN
namespace detail {

/// Pair codes: territories a < b meet → a × kPairBase + b (perfq::kPairCodeBase).
constexpr std::int32_t kPairBase = 1000;

PERFQ_HD inline std::int32_t pair_code_of(std::int32_t a, std::int32_t b) {
  return a < b ? a * kPairBase + b : b * kPairBase + a;
}

/// Keeps, per voxel, the two nearest territories and their squared distances. Called once
/// per territory in ascending label order; a strict comparison keeps the smaller label on
/// ties, so the result does not depend on the backend or the thread count.
struct NearestTwoVoxel {
  const double* squared;  ///< squared distance map of territory `label`
  std::int32_t label;
  double* first_distance;
  std::int32_t* first_label;
  double* second_distance;
  std::int32_t* second_label;
  PERFQ_HD void operator()(std::size_t i) const { fold(i, squared[i]); }
  /// Folds squared distance `d` of voxel `i` in.
  PERFQ_HD void fold(std::size_t i, double d) const {
    if (d < first_distance[i]) {
      second_distance[i] = first_distance[i];
      second_label[i] = first_label[i];
      first_distance[i] = d;
      first_label[i] = label;
    } else if (d < second_distance[i]) {
      second_distance[i] = d;
      second_label[i] = label;
    }
  }
};

/// A voxel is in the border zone when it is in the brain (no mask: everywhere) and its
/// second-nearest territory is within the radius (squared, mm²); the pair code names the two
/// nearest territories.
struct BorderZoneVoxel {
  const std::uint8_t* brain;  ///< nullptr: every voxel
  const double* second_distance;
  const std::int32_t* first_label;
  const std::int32_t* second_label;
  double radius_squared;
  std::uint8_t* mask;
  std::int32_t* pairs;
  PERFQ_HD void operator()(std::size_t i) const {
    const bool inside = (brain == nullptr || brain[i] != 0) && second_distance[i] <= radius_squared;
    mask[i] = inside ? 1 : 0;
    pairs[i] = inside ? pair_code_of(first_label[i], second_label[i]) : 0;
  }
};

/// Border zones from probabilistic territories: the two largest of `count` probabilities
/// (volumes `count` apart) are both at least `threshold`. Ties keep the earlier volume.
struct ProbabilityBorderVoxel {
  const float* probabilities;  ///< `count` volumes of `volume_voxels` voxels
  std::size_t volume_voxels;
  std::size_t count;
  const std::int32_t* labels;  ///< territory label of each volume
  const std::uint8_t* brain;   ///< nullptr: every voxel
  float threshold;
  std::uint8_t* mask;
  std::int32_t* pairs;
  PERFQ_HD void operator()(std::size_t i) const {
    float p1 = -1.0f, p2 = -1.0f;
    std::size_t k1 = 0, k2 = 0;
    for (std::size_t k = 0; k < count; ++k) {
      const float p = probabilities[k * volume_voxels + i];
      if (p > p1) {
        p2 = p1;
        k2 = k1;
        p1 = p;
        k1 = k;
      } else if (p > p2) {
        p2 = p;
        k2 = k;
      }
    }
    const bool inside = (brain == nullptr || brain[i] != 0) && p2 >= threshold;
    mask[i] = inside ? 1 : 0;
    pairs[i] = inside ? pair_code_of(labels[k1], labels[k2]) : 0;
  }
};

}  // namespace detail
PERFQ_NAMESPACE_END
