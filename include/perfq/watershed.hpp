/// @file
/// @brief Watershed (vascular border-zone) masks: where arterial territories meet.
///
/// Three ways to build them (docs/physics.md, "Watershed masks"):
/// 1. **From a territory atlas** already in subject space: a voxel of the brain mask is in
///    the border zone of width `w` mm when its distance (voxel centre to the nearest voxel
///    centre of a territory, exact Euclidean, in mm) to at least two different territories is
///    ≤ w/2; its own territory is at distance 0. From probabilistic territories: the two
///    largest probabilities are both ≥ a threshold.
/// 2. **From perfusion timing**: arterial transit time (or, for single-delay data, the local
///    spatial coefficient of variation of CBF, an ATT surrogate) at or above a threshold or a
///    percentile inside a tissue mask, cleaned of small connected components.
/// 3. **Combined** (union or intersection), split into internal (deep white matter) and
///    external (cortical grey matter) zones, and periventricular caps.
///
/// Every image passed together must be on one grid (Geometry::same_grid); masks are nonzero
/// inside. Distances use the grid's spacing (mm), never its direction cosines.
#pragma once

#include <perfq/execution.hpp>
#include <perfq/image.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

PERFQ_NAMESPACE_BEGIN

/// @brief Territory pairs are coded `a × kPairCodeBase + b` with a < b (e.g. 1002: territories
/// 1 and 2), which is why territory labels must be 1 … kPairCodeBase − 1.
constexpr std::int32_t kPairCodeBase = 1000;

/// @brief The code of the pair of territories `a` and `b` (in either order).
constexpr std::int32_t pair_code(std::int32_t a, std::int32_t b) noexcept {
  return a < b ? a * kPairCodeBase + b : b * kPairCodeBase + a;
}
/// @brief The smaller territory of a pair code.
constexpr std::int32_t pair_first(std::int32_t code) noexcept { return code / kPairCodeBase; }
/// @brief The larger territory of a pair code.
constexpr std::int32_t pair_second(std::int32_t code) noexcept { return code % kPairCodeBase; }

/// @brief Border zones between territories.
struct BorderZones {
  Mask mask;  ///< 1 in the border zone, 0 elsewhere
  /// Which territories meet there: pair_code() of the voxel's two nearest territories
  /// (atlas; the smaller label wins distance ties) or of its two most probable territories
  /// (probabilities; the earlier volume wins ties). 0 outside the border zone. A voxel within
  /// reach of three or more territories names its two nearest.
  Volume<std::int32_t> pairs;
  std::vector<std::int32_t> territories;  ///< territory labels used, ascending
  Backend backend = Backend::Cpu;         ///< backend that ran the distance transforms
};

/// @brief A label → group mapping; group 0 removes a label (it becomes background).
using TerritoryGroups = std::map<std::int32_t, std::int32_t>;

/// @brief Relabels territories by group (e.g. left and right ACA into one ACA).
/// @param labels territory labels; 0 is background and stays 0
/// @param groups every nonzero label of the image must be a key
/// @throws InvalidArgument for a nonzero label without a group, a negative group, or a
///         label of the mapping with no voxel in the image (an empty territory)
PERFQ_API Volume<std::int32_t> group_territories(View<const std::int32_t> labels,
                                                 const TerritoryGroups& groups);

/// @brief Border zones from a territory label image.
///
/// A voxel of `brain` (every voxel when absent) is in the border zone when at least two
/// territories lie within `width_mm / 2` of it, centre to centre, inclusive (up to a relative
/// rounding of 1e-12). Territories are the nonzero labels of the whole image, inside the brain
/// mask or not. One exact distance transform per territory (CPU or CUDA).
/// @param territories labels 0 (none) or 1 … 999, one volume
/// @param brain optional brain mask on the same grid
/// @param width_mm border-zone width w, > 0
/// @param execution backend and threads
/// @throws InvalidArgument for an empty or 4D image, a grid mismatch, a label outside
///         0 … 999, fewer than two territories, a territory with no voxel in the brain mask,
///         or a width that is not positive and finite
/// @throws BackendError when the requested backend cannot run
PERFQ_API BorderZones border_zones(View<const std::int32_t> territories,
                                   std::optional<View<const std::uint8_t>> brain, double width_mm,
                                   const Execution& execution = {});

/// @brief Border zones from probabilistic territories: voxels of `brain` where the two
/// largest probabilities are both ≥ `threshold`. Runs on the CPU (one pass over memory).
/// @param probabilities one volume per territory (a 4D view), values in any consistent unit
/// @param brain optional brain mask on the same grid
/// @param threshold the smallest probability both territories must reach
/// @param labels territory label of each volume (1 … 999, distinct); empty: 1, 2, 3, …
/// @param execution CPU threads (this function always runs on the CPU)
/// @throws InvalidArgument for fewer than two volumes, a grid mismatch, a non-finite value
///         inside the brain mask (anywhere without one), a threshold that is not positive and
///         finite, or labels that do not fit the volumes
PERFQ_API BorderZones border_zones_from_probabilities(View<const float> probabilities,
                                                      std::optional<View<const std::uint8_t>> brain,
                                                      double threshold,
                                                      std::vector<std::int32_t> labels = {},
                                                      const Execution& execution = {});

/// @brief Which neighbours make voxels connected: the 6 sharing a face, or all 26 sharing a
/// face, an edge or a corner.
enum class Connectivity { Faces6 = 6, Full26 = 26 };

/// @brief A mask without its small connected components.
struct CleanedMask {
  Mask mask;                       ///< the components kept
  std::size_t kept = 0;            ///< components kept
  std::size_t dropped = 0;         ///< components dropped
  std::size_t voxels_dropped = 0;  ///< voxels of the dropped components
};

/// @brief Drops the connected components whose volume (voxels × voxel volume) is below
/// `min_volume_ml` millilitres (1 ml = 1000 mm³).
/// @throws InvalidArgument for an empty or 4D mask, or a negative or non-finite volume
PERFQ_API CleanedMask drop_small_components(View<const std::uint8_t> mask, double min_volume_ml,
                                            Connectivity connectivity = Connectivity::Full26);

/// @brief Options of timing_border_zones(): exactly one of `threshold` and `percentile`.
struct TimingOptions {
  std::optional<double> threshold;  ///< keep voxels whose value is ≥ this (e.g. ATT in s)
  /// Keep voxels at or above this percentile (0 … 100) of the values inside the tissue mask
  /// (linear interpolation between order statistics, numpy's default).
  std::optional<double> percentile;
  double min_volume_ml = 0.0;  ///< then drop connected components smaller than this (ml)
  Connectivity connectivity = Connectivity::Full26;  ///< connectivity of the components
};

/// @brief Border zones from a timing map, with what was applied.
struct TimingZones {
  Mask mask;                           ///< the border zone (inside the tissue mask)
  double cut = 0.0;                    ///< the value applied: the threshold or the percentile's
  std::size_t tissue_voxels = 0;       ///< voxels of the tissue mask
  std::size_t components_kept = 0;     ///< connected components kept
  std::size_t components_dropped = 0;  ///< connected components below min_volume_ml
  std::size_t voxels_dropped = 0;      ///< voxels of the dropped components
};

/// @brief Border zones from a timing map (ATT, or local_cov() of CBF): voxels of `tissue`
/// whose value is ≥ the threshold or the percentile, then small components dropped.
/// @throws InvalidArgument for a grid mismatch, an empty tissue mask, a non-finite value of
///         `timing` inside the tissue mask, neither or both of threshold and percentile, a
///         percentile outside 0 … 100, or a bad minimum volume
PERFQ_API TimingZones timing_border_zones(View<const float> timing, View<const std::uint8_t> tissue,
                                          const TimingOptions& options,
                                          const Execution& execution = {});

/// @brief Local spatial coefficient of variation of CBF, a single-delay surrogate of arrival
/// time (late arrival leaves patchy, vessel-dominated signal).
///
/// Kernel: for each voxel of `tissue`, the CBF values of the `tissue` voxels whose centres lie
/// within `radius_mm` of its centre (a sphere in mm, the voxel included) give
/// `CoV = SD / mean`, SD the sample standard deviation (n − 1), as a ratio (not %). 0 outside
/// the tissue mask, and where fewer than 2 voxels are in reach or the mean is ≤ 0. Runs on
/// the CPU.
/// @throws InvalidArgument for a grid mismatch, an empty tissue mask, a non-finite CBF value
///         inside the tissue mask, or a radius that is not positive and finite
PERFQ_API Volume<float> local_cov(View<const float> cbf, View<const std::uint8_t> tissue,
                                  double radius_mm, const Execution& execution = {});

/// @brief How two masks combine.
enum class Combination { Union, Intersection };

/// @brief Union or intersection of two masks on one grid.
/// @throws InvalidArgument for a grid mismatch or an empty mask
PERFQ_API Mask combine_masks(View<const std::uint8_t> a, View<const std::uint8_t> b,
                             Combination combination);

/// @brief A mask from a map: voxels whose value is ≥ `minimum` (NaN is outside), e.g. white
/// matter from a WM probability map.
/// @throws InvalidArgument for an empty or 4D map or a non-finite minimum
PERFQ_API Mask threshold_map(View<const float> map, double minimum);

/// @brief Border zones split by tissue.
struct SplitZones {
  Mask internal;  ///< in deep white matter: zone ∩ WM
  Mask external;  ///< cortical: zone ∩ GM \ WM (zone \ WM without a GM mask)
};

/// @brief Splits border zones into internal (white matter) and external (grey matter) parts.
/// @throws InvalidArgument for a grid mismatch or an empty mask
PERFQ_API SplitZones
split_internal_external(View<const std::uint8_t> zones, View<const std::uint8_t> white_matter,
                        std::optional<View<const std::uint8_t>> grey_matter = std::nullopt);

/// @brief Labels of periventricular_caps().
enum PeriventricularCap : std::uint8_t { kNoCap = 0, kFrontalCap = 1, kOccipitalCap = 2 };

/// @brief Options of periventricular_caps().
struct CapOptions {
  double distance_mm = 10.0;    ///< reach from the ventricles, centre to centre, inclusive
  double horn_fraction = 0.25;  ///< share of the ventricles' AP extent taken by each horn
};

/// @brief Periventricular caps: voxels within `distance_mm` of the ventricles, in front of the
/// frontal horns or behind the occipital horns.
///
/// Rule: with y the voxel centre's anterior–posterior coordinate in mm (LPS: y grows
/// posterior; direction cosines applied) and [y0, y1] the ventricle voxels' extent, a voxel
/// (of the brain mask when given, never a ventricle voxel) within reach is frontal when
/// y ≤ y0 + f (y1 − y0) and occipital when y ≥ y1 − f (y1 − y0), f = horn_fraction.
/// @return kFrontalCap, kOccipitalCap or kNoCap per voxel
/// @throws InvalidArgument for an empty ventricle mask, a grid mismatch, a negative or
///         non-finite distance, or a horn fraction outside (0, 0.5]
PERFQ_API Volume<std::uint8_t> periventricular_caps(View<const std::uint8_t> ventricles,
                                                    std::optional<View<const std::uint8_t>> brain,
                                                    const CapOptions& options = {},
                                                    const Execution& execution = {});

/// @brief Dice coefficient 2|A ∩ B| / (|A| + |B|) of two masks (1 when both are empty).
/// @throws InvalidArgument for a grid mismatch or an empty mask
PERFQ_API double dice(View<const std::uint8_t> a, View<const std::uint8_t> b);

PERFQ_NAMESPACE_END
