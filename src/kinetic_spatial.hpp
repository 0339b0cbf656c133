// The spatially regularised multi-delay fit (KineticOptions::spatial): the sweeps of
// detail::spatial_update over the voxels and the estimate of the spatial precisions, on the
// CPU. fit_kinetic (kinetic.cpp) calls it after the voxelwise fit.
#pragma once

#include <perfq/kinetic.hpp>

#include <perfq/detail/kinetic_settings.hpp>

#include <array>
#include <cstddef>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace spatial {

/// The voxels being fitted and their data, as fit_kinetic holds them.
struct Problem {
  std::array<std::size_t, 3> dims{};       ///< grid size (x fastest)
  const std::vector<std::size_t>* active;  ///< linear index of each fitted voxel
  /// Each fitted voxel's settings (one per tissue T1 group), with the pooled noise variance.
  const std::vector<const detail::KineticSettings<float>*>* settings;
  const float* y;            ///< ΔM/M0, `delays` values per fitted voxel
  std::size_t delays = 0;    ///< values per voxel in `y`
  const int* slice;          ///< each fitted voxel's slice (2D timing)
  const float* noise_scale;  ///< each voxel's factor on the noise variance; nullptr: 1
};

/// What the sweeps found.
struct Outcome {
  double precision_cbf = 0;  ///< φ of CBF, (ml/100 g/min)⁻²
  double precision_att = 0;  ///< φ of ATT, s⁻² (0 without spatial_att)
  int iterations = 0;        ///< sweeps made
  bool converged = false;    ///< the stopping rule met
};

/// Refines `results` (the voxelwise fit, one per fitted voxel) into the spatially regularised
/// fit, on `threads` OpenMP threads (the result does not depend on their number).
Outcome refine(const Problem& problem, const KineticOptions& options,
               std::vector<detail::KineticVoxelResult<float>>& results, int threads);

}  // namespace spatial
PERFQ_NAMESPACE_END
