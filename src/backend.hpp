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

/// Number of usable devices; on any runtime error, 0 with the error's text in `reason`.
int cuda_device_count(std::string* reason);
std::vector<std::string> cuda_device_names();

/// Runs `voxel` (host pointers, `count` voxels, `slices` slice factors) on device `device`:
/// copies inputs over, launches one thread per voxel, copies cbf and status back.
/// Throws BackendError on any CUDA error (with the call and the runtime's message).
void cuda_single_delay(const detail::SingleDelayVoxel& voxel, std::size_t count,
                       std::size_t slices, int device);

/// Fits `count` voxels on device `device`: `y` holds `settings.delays` values per voxel
/// (ΔM/M0), `slice` each voxel's slice; the settings' basis (for `slices` slices) and slice
/// offsets are host arrays, copied over. Results are copied back into `results`.
/// Throws BackendError on any CUDA error.
void cuda_kinetic(const detail::KineticSettings<float>& settings, int slices, const float* y,
                  const int* slice, std::size_t count, detail::KineticVoxelResult<float>* results,
                  int device);

}  // namespace backend
}  // namespace perfq
