/// @file
/// @brief Quality indices of a CBF map, as ASL users judge a map before they trust it: CBF in
/// grey and white matter, the spatial coefficient of variation, the share of implausible
/// values, and the quality evaluation index QEI with its three components.
///
/// Voxels: a voxel counts when its CBF is finite and, with a status map, its status says a
/// value was computed (VoxelStatus Ok, MaxIterations, Singular or AtBound; not OutsideMask,
/// M0NotPositive, NonFiniteInput, NonFiniteResult or any later code that marks a voxel
/// without a value). Tissue classes: grey matter (GM) are the voxels whose GM probability is
/// above `QualityOptions::tissue_threshold` (0.7, as ASLPrep and ExploreASL threshold their
/// tissue maps), likewise white matter (WM) and CSF; a binary mask (0/1) serves as a
/// probability map. The brain is the brain mask when one is given, else every counted voxel.
///
/// The indices (QualityIndex::name; every definition in docs/quality.md with its reference):
/// - `brain_voxels`, `brain_mean_cbf`, `brain_median_cbf`, `brain_scov`,
///   `brain_negative_fraction`: over the brain.
/// - `gm_voxels`, `wm_voxels`; `gm_mean_cbf`, `gm_median_cbf`, `wm_mean_cbf`, `wm_median_cbf`;
///   `gm_wm_ratio` (mean GM CBF / mean WM CBF).
/// - `gm_scov`: the spatial coefficient of variation of CBF in GM, 100 × SD / mean (%), the
///   single-delay surrogate of late arrival (Mutsaerts et al. 2017, JCBFM 37:3184).
/// - `gm_negative_fraction`; `gm_above_100_fraction`, `gm_above_150_fraction`,
///   `gm_above_200_fraction`: the share of GM voxels with CBF < 0, > 100, > 150, > 200
///   ml/100 g/min.
/// - `qei` and its components `qei_structural_similarity` (r), `qei_spatial_variability` (V),
///   `qei_negative_gm_fraction` (N): the quality evaluation index of Dolui et al. (ISMRM 2017;
///   JMRI 2024, doi:10.1002/jmri.29308), computed from the CBF map smoothed with a 5 mm FWHM
///   Gaussian: r the Pearson correlation (floored at 0) between the smoothed CBF and the
///   pseudo-CBF 2.5 × GM + WM over the brain; V the variance of the smoothed CBF pooled over
///   GM, WM and CSF, divided by |mean GM CBF|; N the share of GM voxels whose smoothed CBF is
///   negative; QEI = (exp(−0.054 V^0.9272) · exp(−2.8478 N^0.5196) · (1 − exp(−3.0126
///   r^2.4419)))^(1/3), in [0, 1], 1 the best.
///
/// An index that cannot be computed (no GM map, no voxel, a ratio over 0, CBF thresholds of
/// a relative CBF map) is not defined: `defined` false, `value` 0 and `why_not` saying why.
/// No index is ever NaN.
#pragma once

#include <perfq/image.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN

/// @brief Tissue probability maps on the grid of a CBF map, each value in [0, 1] (binary
/// masks as 0/1 serve too). Any may be absent: the indices that need it are then not defined.
struct TissueMaps {
  std::optional<View<const float>> gm;   ///< grey matter
  std::optional<View<const float>> wm;   ///< white matter
  std::optional<View<const float>> csf;  ///< cerebrospinal fluid
};

/// @brief Options of quality_indices().
struct QualityOptions {
  /// A voxel belongs to a tissue class when its probability is above this (0.7).
  double tissue_threshold = 0.7;
  /// The FWHM (mm) of the Gaussian that smooths CBF before the QEI's components (5 mm, as
  /// the QEI was calibrated); 0 leaves it unsmoothed.
  double qei_smoothing_fwhm_mm = 5.0;
  /// The brain (0/1, the map's grid): the region of the `brain_` indices and of the QEI's
  /// correlation. Absent: every counted voxel.
  std::optional<View<const std::uint8_t>> brain;
  /// VoxelStatus per voxel (the map's grid): voxels without a value are left out (see the
  /// file's description). Absent: every finite voxel counts.
  std::optional<View<const std::uint8_t>> status;
  /// The map is relative CBF (no absolute scale, e.g. M0Type Absent): the indices defined
  /// by absolute thresholds (above 100/150/200 ml/100 g/min) and the QEI (calibrated in
  /// ml/100 g/min) are not defined.
  bool relative = false;
  /// CPU threads of the QEI's smoothing (0: every processor, as Execution::threads). The
  /// indices do not depend on it.
  int threads = 0;
};

/// @brief One quality index.
struct QualityIndex {
  std::string name;         ///< e.g. "gm_scov" (see the file's description)
  bool defined = false;     ///< whether it could be computed
  double value = 0.0;       ///< its value (0 when not defined)
  std::string units;        ///< e.g. "mL/100g/min", "%", "fraction", "voxels", "" (unitless)
  std::string description;  ///< its definition, one sentence
  std::string why_not;      ///< when not defined: why (e.g. "no GM probability map")
};

/// @brief The quality indices of one CBF map, in a fixed order (the file's description).
struct QualityReport {
  std::vector<QualityIndex> indices;   ///< every index, defined or not
  double tissue_threshold = 0.7;       ///< the threshold used
  double qei_smoothing_fwhm_mm = 5.0;  ///< the QEI's smoothing used
  bool relative = false;               ///< the map was relative CBF (QualityOptions::relative)

  /// @brief The index named `name`.
  /// @throws InvalidArgument when there is none of that name.
  PERFQ_API const QualityIndex& at(const std::string& name) const;
};

/// @brief The names of the indices quality_indices() reports, in its order.
PERFQ_API std::vector<std::string> quality_index_names();

/// @brief Computes the quality indices of a CBF map (ml/100 g/min, or relative with
/// `options.relative`).
/// @param cbf the CBF map (one volume)
/// @param tissue GM, WM and CSF probability maps on the same grid (any may be absent)
/// @param options threshold, smoothing, brain, status
/// @throws InvalidArgument when a tissue map, the brain or the status is not one volume on
/// the grid of `cbf`, a tissue probability is outside [0, 1] (beyond rounding) or not
/// finite, or an option is out of range (threshold outside (0, 1), negative FWHM)
PERFQ_API QualityReport quality_indices(View<const float> cbf, const TissueMaps& tissue = {},
                                        const QualityOptions& options = {});

PERFQ_NAMESPACE_END
