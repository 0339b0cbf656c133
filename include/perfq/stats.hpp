/// @file
/// @brief Regional statistics of a map (CBF, ATT, ...) over a label image or a mask, on CPU or
/// CUDA: counts, volume, mean, SD, median, percentiles, CoV and the ASL spatial CoV, optional
/// partial-volume weights, paired change between two sessions; NAWM masks and the
/// lesion-in-watershed enrichment.
///
/// Definitions used throughout (x: the finite map values of a region's voxels, n of them):
/// - **mean** `Σx / n`; **SD** the sample standard deviation `sqrt(Σ(x − mean)² / (n − 1))`
///   (0 when n = 1), as MATLAB's `std` and ExploreASL report it.
/// - **percentile p** (0 ≤ p ≤ 100): linear interpolation between order statistics, numpy's
///   default (`method="linear"`): with x sorted ascending and `h = (n − 1) p / 100`,
///   `x[⌊h⌋] + (h − ⌊h⌋) (x[⌊h⌋ + 1] − x[⌊h⌋])`. The **median** is percentile 50 (the mean of
///   the two middle values when n is even); **min** and **max** are percentiles 0 and 100.
/// - **CoV** `SD / mean` (a ratio) and **spatial CoV** `100 × SD / mean` (%): the same quantity
///   in two units. The spatial CoV of the ASL literature (Mutsaerts et al. 2017, JCBFM
///   37:3184) is exactly this, the SD of CBF across a region's voxels over its mean, in percent;
///   it is a *spatial* variation (across voxels), not the temporal CoV across repeats, which
///   perfq does not compute here.
/// - **Non-finite** map values (NaN, ±Inf) inside a region are counted (`nonfinite`) and left
///   out of every statistic; they never turn a statistic into NaN.
/// - A region with no finite value has `count == 0` and every statistic set to 0 with
///   `has_values() == false`; likewise each derived quantity that would divide by zero has
///   its own `..._defined` flag and is 0 when the flag is false. No field is ever NaN.
///
/// Results do not depend on the number of CPU threads (bitwise), and the CUDA path agrees with
/// the CPU path (counts, median, percentiles, min and max exactly; sums to rounding).
#pragma once

#include <perfq/execution.hpp>
#include <perfq/image.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

PERFQ_NAMESPACE_BEGIN

/// @brief The status codes (VoxelStatus) that region_stats() leaves out by default when given
/// a status map: 1–4 (outside the mask, M0 ≤ 0, non-finite input or result: the maps hold 0
/// there, not a measurement), 5 (the fit stopped at its iteration limit: not converged), 6
/// (parameters not identifiable: e.g. the ATT of a CSF voxel, 0 or arbitrary) and 8 (M0 far
/// below the brain's: maps 0). Kept: 0 (fitted) and 7 (ATT at a bound of its range: its
/// values are the fit's best within the range; leaving them out would take the longest
/// arrival times, the border zones', out of the very regions that study them).
PERFQ_API std::vector<std::uint8_t> default_excluded_statuses();

/// @brief Options of region_stats().
struct StatsOptions {
  /// Percentiles to report, each in [0, 100], in the order given (the median is always
  /// reported on its own).
  std::vector<double> percentiles{5.0, 25.0, 75.0, 95.0};
  /// Labels to report, in this order (a label absent from the image gets an empty row).
  /// Empty: every label present in the image, ascending, except the background.
  std::vector<std::int32_t> labels;
  /// Whether label 0 counts as a region when `labels` is empty (by default it is background).
  bool include_background = false;
  /// Voxels where this mask is 0 are ignored altogether (same grid as the map).
  std::optional<View<const std::uint8_t>> mask;
  /// Partial-volume weights in [0, 1] (e.g. a GM probability map; same grid). Adds the
  /// weighted mean and SD (RegionStats::weighted); the other statistics stay unweighted.
  std::optional<View<const float>> weights;
  /// The same quantity at baseline, on the same grid: the map is then the follow-up and
  /// RegionStats::change gives the paired change.
  std::optional<View<const float>> baseline;
  /// Per-voxel status codes of the map (e.g. perfq cbf's `<prefix>_fitstatus`; same grid):
  /// voxels whose code is in `exclude_statuses` are left out of every statistic, as voxels
  /// outside the mask are, and counted per region in RegionStats::excluded.
  std::optional<View<const std::uint8_t>> status;
  /// The codes left out when `status` is given (default_excluded_statuses()).
  std::vector<std::uint8_t> exclude_statuses = default_excluded_statuses();
};

/// @brief Partial-volume-weighted statistics of one region, with weights w in [0, 1]:
/// mean `Σwx / Σw`; SD `sqrt(Σw(x − mean)² / (Σw − Σw²/Σw))`, the unbiased form for
/// reliability weights (it equals the sample SD when all weights are equal, and is 0 when a
/// single voxel has nonzero weight). Voxels with a non-finite map value are left out.
struct WeightedStats {
  bool defined = false;        ///< whether Σw > 0 (otherwise every field is 0)
  double weight_sum = 0.0;     ///< Σw: the region's partial volume in voxels
  double volume_ml = 0.0;      ///< Σw × voxel volume, ml
  double effective_count = 0;  ///< (Σw)² / Σw²: the number of equally weighted voxels alike
  double mean = 0.0;           ///< weighted mean
  double sd = 0.0;             ///< weighted SD (see above)
};

/// @brief Paired change of one region between baseline and follow-up, over the voxels whose
/// map values are finite in both sessions (`count` of them). Voxelwise difference
/// `d = follow-up − baseline`.
struct PairedChange {
  bool defined = false;          ///< whether count > 0 (otherwise every field is 0)
  std::size_t count = 0;         ///< voxels finite in both sessions
  double baseline_mean = 0.0;    ///< mean baseline value over those voxels
  double followup_mean = 0.0;    ///< mean follow-up value over those voxels
  double mean = 0.0;             ///< mean of d (= followup_mean − baseline_mean up to rounding)
  double sd = 0.0;               ///< sample SD of d (0 when count is 1)
  bool percent_defined = false;  ///< whether baseline_mean ≠ 0
  double percent = 0.0;          ///< 100 × mean / baseline_mean
};

/// @brief Statistics of one region (see the file comment for the definitions).
struct RegionStats {
  std::int32_t label = 0;  ///< the region's label
  /// Voxels of the region (inside the mask, if any), those `excluded` for their status
  /// included.
  std::size_t voxels = 0;
  /// Voxels left out for their status (StatsOptions::status); never in `count` or `nonfinite`.
  std::size_t excluded = 0;
  std::size_t count = 0;      ///< voxels with a finite map value: the statistics' sample
  std::size_t nonfinite = 0;  ///< voxels with a NaN or infinite map value, left out
  double volume_ml = 0.0;     ///< voxels × voxel volume, ml (the labelled size of the region)
  double mean = 0.0;          ///< mean
  double sd = 0.0;            ///< sample SD
  double median = 0.0;        ///< median (percentile 50)
  double min = 0.0;           ///< smallest value
  double max = 0.0;           ///< largest value
  std::vector<double> percentiles;  ///< one per StatsOptions::percentiles, same order
  bool cov_defined = false;         ///< whether count > 0 and mean ≠ 0
  double cov = 0.0;                 ///< SD / mean (ratio)
  double scov = 0.0;                ///< spatial CoV, 100 × SD / mean (%)
  WeightedStats weighted;           ///< when weights were given
  PairedChange change;              ///< when a baseline was given
  /// @brief Whether the region has at least one finite value (otherwise the statistics are 0).
  bool has_values() const noexcept { return count > 0; }
};

/// @brief The statistics of every region, and how they were computed.
struct RegionTable {
  std::vector<RegionStats> regions;  ///< one per region, in the order described by StatsOptions
  std::vector<double> percentiles;   ///< the percentiles reported, as requested
  double voxel_volume_ml = 0.0;      ///< volume of one voxel, ml
  bool weighted = false;             ///< whether RegionStats::weighted is filled
  bool paired = false;               ///< whether RegionStats::change is filled
  /// Whether a status map was given (RegionStats::excluded is filled).
  bool status_filtered = false;
  std::vector<std::uint8_t> excluded_statuses;  ///< the codes left out, when status_filtered
  Backend backend = Backend::Cpu;               ///< backend that ran
  /// @brief The region with this label, or nullptr.
  const RegionStats* find(std::int32_t label) const noexcept {
    for (const auto& r : regions) {
      if (r.label == label) return &r;
    }
    return nullptr;
  }
};

/// @brief Statistics of `map` in each region of `labels`.
/// @param map one volume of float values
/// @param labels integer label image on the map's grid; each distinct value is a region
/// @param options percentiles, regions, mask, weights, baseline
/// @param execution backend and threads; the CUDA path sorts voxels by region and value and
///        reduces segments on the device
/// @throws InvalidArgument for empty or 4D inputs, an input (the status map included) on
///         another grid, a percentile
///         outside [0, 100] or non-finite, a repeated label in `options.labels`, a weight
///         outside [0, 1] or non-finite in a region voxel, no region at all (every voxel
///         background or masked out, and no `options.labels`), or a map with no finite value
///         in any region
/// @throws BackendError when the requested backend cannot run
PERFQ_API RegionTable region_stats(View<const float> map, View<const std::int32_t> labels,
                                   const StatsOptions& options = {},
                                   const Execution& execution = {});

/// @brief Statistics of `map` inside a mask: a table with one region, label 1 (the nonzero
/// voxels of `mask`). `options.labels` and `options.include_background` are ignored.
/// @throws InvalidArgument and BackendError as the label-image overload
PERFQ_API RegionTable region_stats(View<const float> map, View<const std::uint8_t> mask,
                                   const StatsOptions& options = {},
                                   const Execution& execution = {});

/// @brief Normal-appearing white matter: white-matter voxels farther than `dilation_mm`
/// (centre to centre) from every lesion voxel, i.e. WM minus the lesions dilated by
/// `dilation_mm` (perfq::dilate). A radius of 0 removes the lesions alone.
/// @param white_matter WM mask (nonzero = WM)
/// @param lesions lesion mask on the same grid
/// @param dilation_mm lesion dilation radius (mm, ≥ 0)
/// @param execution backend and threads
/// @throws InvalidArgument for empty or 4D masks, masks on different grids, or a negative or
///         non-finite radius
/// @throws BackendError when the requested backend cannot run
PERFQ_API Mask normal_appearing_white_matter(View<const std::uint8_t> white_matter,
                                             View<const std::uint8_t> lesions, double dilation_mm,
                                             const Execution& execution = {});

/// @brief Where lesions lie relative to the watershed (border-zone) mask: the fraction of the
/// lesion volume inside the mask, beside the fraction expected if lesions fell anywhere in
/// WM with equal chance, the mask's fraction of WM. Their ratio is the enrichment (> 1:
/// lesions favour the border zones).
struct LesionEnrichment {
  std::size_t lesion_voxels = 0;        ///< |L|: every lesion voxel (WM or not)
  std::size_t lesion_in_watershed = 0;  ///< |L ∩ W|
  std::size_t wm_voxels = 0;            ///< |WM|
  std::size_t watershed_in_wm = 0;      ///< |W ∩ WM|
  double lesion_volume_ml = 0.0;        ///< |L| × voxel volume
  double lesion_in_watershed_ml = 0.0;  ///< |L ∩ W| × voxel volume
  double lesion_fraction = 0.0;         ///< |L ∩ W| / |L| (0 when there is no lesion)
  double watershed_fraction = 0.0;      ///< |W ∩ WM| / |WM| (0 when WM is empty)
  bool enrichment_defined = false;      ///< whether both denominators and |W ∩ WM| are > 0
  double enrichment = 0.0;              ///< lesion_fraction / watershed_fraction
};

/// @brief Lesion-in-watershed enrichment. Lesions are taken as given, not intersected with WM,
/// because WM segmentations often leave lesions out; intersect beforehand to restrict them.
/// @param lesions lesion mask
/// @param watershed border-zone mask
/// @param white_matter WM mask (the reference volume for the expected fraction)
/// @throws InvalidArgument for empty or 4D masks, or masks on different grids
PERFQ_API LesionEnrichment lesion_watershed_enrichment(View<const std::uint8_t> lesions,
                                                       View<const std::uint8_t> watershed,
                                                       View<const std::uint8_t> white_matter);

PERFQ_NAMESPACE_END
