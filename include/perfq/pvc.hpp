/// @file
/// @brief Partial-volume correction by local linear regression (Asllani et al. 2008, MRM
/// 60:1362): grey- and white-matter CBF maps from a CBF map and tissue fractions.
///
/// Within a small neighbourhood around each voxel the tissue CBFs are taken as constant, so
/// every voxel j of it satisfies `CBF_j = p_gm,j · CBF_gm + p_wm,j · CBF_wm`; the two unknowns
/// are the least-squares solution over the neighbourhood's usable voxels. Applied here to the
/// quantified CBF (single- or multi-delay), which is linear in ΔM.
#pragma once

#include <perfq/execution.hpp>
#include <perfq/image.hpp>

#include <cstdint>
#include <optional>

PERFQ_NAMESPACE_BEGIN

/// @brief Options of the regression.
struct PvcOptions {
  int kernel_xy = 5;  ///< neighbourhood width in x and y (odd voxels), Asllani's 5×5
  int kernel_z = 1;   ///< neighbourhood depth in z (odd voxels); 1 = in-plane only
  /// A voxel gets a GM (WM) value only when its own GM (WM) fraction is at least this.
  double min_fraction = 0.1;
};

/// @brief Grey- and white-matter CBF. Voxels without a value hold 0 (see `valid`).
struct PvcMaps {
  Volume<float> cbf_gm;  ///< same units as the input map
  Volume<float> cbf_wm;  ///< same units as the input map
  /// Bit 0: cbf_gm is valid; bit 1: cbf_wm is valid. A neighbourhood whose fractions cannot
  /// separate the two tissues (e.g. pure grey matter) solves for the tissue present only.
  Volume<std::uint8_t> valid;
};

/// @brief Local linear-regression partial-volume correction.
/// @param cbf the map to correct (one volume)
/// @param gm, wm tissue fractions in [0, 1] on the same grid
/// @param usable optional: only voxels where it is nonzero enter the regressions (e.g. a fit
///        status of 0); non-finite CBF values never do
/// @param options kernel size and minimum fractions
/// @param execution backend and threads
/// @throws InvalidArgument for grid mismatches, even or non-positive kernel sizes, fractions
///         outside [0, 1] (beyond 1e-3) or non-finite, or min_fraction outside (0, 1]
PERFQ_API PvcMaps partial_volume_correct(View<const float> cbf, View<const float> gm,
                                         View<const float> wm,
                                         std::optional<View<const std::uint8_t>> usable = {},
                                         const PvcOptions& options = {},
                                         const Execution& execution = {});

PERFQ_NAMESPACE_END
