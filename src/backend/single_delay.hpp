// Private interface of the single-delay quantification (src/cbf.cpp) with its CUDA path
// (cuda/backend.cu), or the stand-in (src/backend/no_cuda.cpp) in builds without CUDA.
#pragma once

#include "backend/device.hpp"

#include <perfq/detail/single_delay.hpp>

#include <cstddef>

namespace perfq {
namespace backend {

/// Runs `voxel` (host pointers, `count` voxels, `slices` slice factors) on `limits.device`,
/// in chunks that fit its memory: copies inputs over, launches one thread per voxel, copies
/// cbf and status back. Throws BackendError on any CUDA error (with the call and the
/// runtime's message; out of memory and a lost device say so).
void cuda_single_delay(const detail::SingleDelayVoxel& voxel, std::size_t count,
                       std::size_t slices, const DeviceLimits& limits);

}  // namespace backend
}  // namespace perfq
