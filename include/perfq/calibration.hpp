/// @file
/// @brief M0 calibration beyond the voxelwise default: the M0 of arterial blood from a
/// reference region of one tissue (CSF, white or grey matter), and smoothing of a voxelwise M0
/// image inside the brain.
///
/// Voxelwise calibration (the white paper's, perfq's default) divides ΔM by each voxel's own
/// M0 and takes blood's M0 as `M0 / λ`. Reference-region calibration instead measures one M0
/// in a region of a single, known tissue and converts it to blood:
///
///     M0_ref   = mean M0 in the region / (1 − e^(−TR/T1_ref)) / e^(−TE/T2_ref)
///     M0_blood = M0_ref / λ_ref · e^(−TE/T2_blood)
///
/// (saturation recovery of the reference tissue at the M0 scan's repetition time TR, its
/// transverse decay at the echo time TE undone, its partition coefficient λ_ref, and blood's
/// decay at TE). One M0_blood then serves every voxel: quantifying with a single M0 of
/// `λ · M0_blood` gives CBF exactly as if each voxel's `M0 / λ` were M0_blood — with the
/// protocol's `m0_repetition_time` unset: the saturation recovery is in M0_blood already, and
/// a TR below 5 s left set would be corrected a second time (with the tissue T1).
///
/// The tissue defaults are spin-echo T2 values at 3 T (BASIL's); for a gradient-echo readout
/// give T2* values instead (BASIL: CSF 0.4 s, blood 0.05 s), and at other fields the values
/// measured there.
#pragma once

#include <perfq/execution.hpp>
#include <perfq/image.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

PERFQ_NAMESPACE_BEGIN

/// @brief The tissue of a calibration reference region.
enum class ReferenceTissue { Csf, WhiteMatter, GreyMatter };

/// @brief Parses "csf", "wm" or "gm" (any letter case).
/// @throws InvalidArgument for any other text.
PERFQ_API ReferenceTissue parse_reference_tissue(const std::string& text);
/// @brief "csf", "wm" or "gm".
PERFQ_API const char* to_string(ReferenceTissue tissue) noexcept;

/// @brief Relaxation times and partition coefficient of a reference tissue.
struct ReferenceTissueConstants {
  double t1 = 0;         ///< s
  double t2 = 0;         ///< s
  double partition = 0;  ///< ml/g, tissue water relative to blood water
};

/// @brief Defaults at 3 T, as BASIL/oxasl use them: CSF T1 4.3 s, T2 0.75 s, λ 1.15; white
/// matter 1.0 s, 0.05 s, 0.82; grey matter 1.3 s, 0.1 s, 0.98 (partition coefficients after
/// Herscovitch and Raichle 1985 with a blood water density of 0.87).
PERFQ_API ReferenceTissueConstants reference_tissue_defaults(ReferenceTissue tissue) noexcept;

/// @brief Options of reference-region calibration.
struct ReferenceCalibrationOptions {
  ReferenceTissue tissue = ReferenceTissue::Csf;  ///< the region's tissue
  std::optional<double> t1;         ///< overrides the tissue's T1 (s)
  std::optional<double> t2;         ///< overrides the tissue's T2 (s)
  std::optional<double> partition;  ///< overrides the tissue's partition coefficient (ml/g)
  double t2_blood = 0.150;  ///< T2 of arterial blood, s (BASIL's 0.15 s at 3 T; Lu et al. 2012 measured 154 ms)
  double echo_time = 0.0;   ///< TE of the M0 scan, s; 0: no transverse-decay correction
  /// TR of the M0 scan, s; 0: taken as fully relaxed (no saturation-recovery correction).
  /// Unlike the voxelwise short-TR rule this applies at any TR: CSF's long T1 leaves it
  /// 25 % short of full recovery even at TR 6 s.
  double repetition_time = 0.0;
};

/// @brief What reference-region calibration measured and used.
struct ReferenceCalibration {
  std::size_t voxels = 0;       ///< region voxels with a finite M0
  double region_mean = 0;       ///< mean M0 over them (scanner units)
  double m0_reference = 0;      ///< corrected to full relaxation and TE 0
  double m0_blood = 0;          ///< arterial blood's M0 (scanner units)
  ReferenceTissueConstants constants;  ///< the tissue constants used
  double t2_blood = 0;         ///< T2 of blood used, s
  double echo_time = 0;        ///< TE used, s
  double repetition_time = 0;  ///< TR used, s (0: fully relaxed)
};

/// @brief Arterial blood's M0 from the mean M0 in a region of one tissue (formula above).
/// @param m0 the M0 image (one volume)
/// @param region the reference region, on the same grid (nonzero: in it)
/// @param options tissue, constant overrides, T2 of blood, TE and TR of the M0 scan
/// @throws InvalidArgument for a grid mismatch, a region without a voxel of finite M0, a
///         non-positive mean, or a constant outside its range (T1, T2 in (0, 10] s, λ in
///         (0, 2], TE and TR ≥ 0 and finite)
PERFQ_API ReferenceCalibration reference_region_m0(View<const float> m0,
                                                   View<const std::uint8_t> region,
                                                   const ReferenceCalibrationOptions& options = {});

/// @brief Smooths a voxelwise M0 image inside a region, against the noise that dividing ΔM by
/// M0 would carry into CBF (ExploreASL's advice; the white paper's M0 is a low-resolution
/// proton-density image anyway).
///
/// A Gaussian of full width at half maximum `fwhm_mm` (voxel sizes taken into account, cut at
/// 3 standard deviations), normalised within the region: each region voxel becomes the
/// Gaussian-weighted mean of the region's voxels around it, so the brain's edge is neither
/// darkened by background nor brightened by CSF left outside the region, and a uniform M0
/// stays exactly uniform. Voxels outside the region, and those with a non-finite M0, keep
/// their value.
/// @param m0 the M0 image (one volume)
/// @param fwhm_mm the kernel's FWHM in mm, ≥ 0 (0: a copy)
/// @param region where to smooth, on the same grid; absent: m0_brain_region(m0)
/// @throws InvalidArgument for a negative or non-finite FWHM, or a grid mismatch
PERFQ_API Volume<float> smooth_m0(View<const float> m0, double fwhm_mm,
                                  std::optional<View<const std::uint8_t>> region = std::nullopt);

PERFQ_NAMESPACE_END
