// Private interface of the multi-delay fit (src/kinetic.cpp) with its CUDA path
// (cuda/kinetic.cu), or the stand-in (src/backend/no_cuda.cpp) in builds without CUDA.
#pragma once

#include "backend/device.hpp"

#include <perfq/detail/kinetic_fit.hpp>

#include <cstddef>

namespace perfq {
namespace backend {

/// Fits `count` voxels on `limits.device`, in chunks that fit its memory: `y` holds
/// `settings.delays` values per voxel (ΔM/M0), `slice` each voxel's slice, `noise_scale` each
/// voxel's factor on the settings' noise variance (nullptr: 1); the settings' basis (for
/// `slices` slices) and slice offsets are host arrays, copied over. Results are copied back
/// into `results`. Throws BackendError on any CUDA error.
void cuda_kinetic(const detail::KineticSettings<float>& settings, int slices, const float* y,
                  const int* slice, const float* noise_scale, std::size_t count,
                  detail::KineticVoxelResult<float>* results, const DeviceLimits& limits);

}  // namespace backend
}  // namespace perfq
