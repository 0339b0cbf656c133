// Private interface between the host code and the CUDA backend (cuda/backend.cu), or its
// stand-in (src/no_cuda.cpp) in builds without CUDA.
#pragma once

#include <perfq/detail/kinetic_fit.hpp>
#include <perfq/detail/single_delay.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace perfq {
namespace backend {

/// Where and how much: the device, a cap on the device memory used (0: what is free) and a
/// forced chunk size (0: as memory allows). See chunking.hpp.
struct DeviceLimits {
  int device = 0;
  std::size_t bytes_limit = 0;
  std::size_t max_chunk = 0;
};

/// Number of usable devices; on any runtime error, 0 with the error's text in `reason`.
int cuda_device_count(std::string* reason);
std::vector<std::string> cuda_device_names();

/// Runs `voxel` (host pointers, `count` voxels, `slices` slice factors) on `limits.device`,
/// in chunks that fit its memory: copies inputs over, launches one thread per voxel, copies
/// cbf and status back. Throws BackendError on any CUDA error (with the call and the
/// runtime's message; out of memory and a lost device say so).
void cuda_single_delay(const detail::SingleDelayVoxel& voxel, std::size_t count,
                       std::size_t slices, const DeviceLimits& limits);

/// Fits `count` voxels on `limits.device`, in chunks that fit its memory: `y` holds `settings.delays` values per voxel
/// (ΔM/M0), `slice` each voxel's slice, `noise_scale` each voxel's factor on the settings'
/// noise variance (nullptr: 1); the settings' basis (for `slices` slices) and slice
/// offsets are host arrays, copied over. Results are copied back into `results`.
/// Throws BackendError on any CUDA error.
void cuda_kinetic(const detail::KineticSettings<float>& settings, int slices, const float* y,
                  const int* slice, const float* noise_scale, std::size_t count,
                  detail::KineticVoxelResult<float>* results, const DeviceLimits& limits);

}  // namespace backend
}  // namespace perfq
