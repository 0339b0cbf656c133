// The CUDA backend of the multi-delay fit: the shared tables, chunks that fit device memory,
// and launches of the fit kernel (kinetic_kernel.cuh).
#include "backend/kinetic.hpp"
#include "chunking.hpp"
#include "cuda_util.cuh"
#include "kinetic_kernel.cuh"

#include <perfq/detail/kinetic_fit.hpp>

#include <cuda_runtime.h>

namespace perfq {
namespace backend {

void cuda_kinetic(const detail::KineticSettings<float>& settings, int slices, const float* y,
                  const int* slice, const float* noise_scale, std::size_t count,
                  detail::KineticVoxelResult<float>* results, const DeviceLimits& limits) {
  if (count == 0) return;
  PERFQ_CUDA_TRY(cudaSetDevice(limits.device));
  const std::size_t n = static_cast<std::size_t>(settings.delays);
  const std::size_t grid = static_cast<std::size_t>(settings.grid);

  // The shared tables: search basis, its norms, slice offsets.
  detail::KineticSettings<float> on_device = settings;
  cuda_util::DeviceBuffer<float> basis(slices * grid * n), norm(slices * grid),
      offsets(settings.slice_offset != nullptr ? slices : 0);
  basis.upload(settings.basis);
  norm.upload(settings.basis_norm);
  on_device.basis = basis.get();
  on_device.basis_norm = norm.get();
  if (settings.slice_offset != nullptr) {
    offsets.upload(settings.slice_offset);
    on_device.slice_offset = offsets.get();
  }

  // Chunks bound device memory whatever the image size: as many voxels as the free memory
  // (or the caller's cap) holds after the shared tables, at most 2^22 per launch.
  constexpr std::size_t kLaunchMax = std::size_t(1) << 22;
  const std::size_t per_voxel = n * sizeof(float) + sizeof(int) +
                                (noise_scale != nullptr ? sizeof(float) : 0) +
                                sizeof(detail::KineticVoxelResult<float>);
  const std::size_t max_chunk =
      limits.max_chunk > 0 && limits.max_chunk < kLaunchMax ? limits.max_chunk : kLaunchMax;
  const std::size_t chunk =
      chunking::chunk_voxels(count, per_voxel, cuda_util::usable_bytes(limits.bytes_limit), 0,
                             max_chunk);
  if (chunk == 0) {
    throw BackendError("out of device memory: not even one voxel's buffers fit on device " +
                       std::to_string(limits.device));
  }
  cuda_util::DeviceBuffer<float> d_y(chunk * n);
  cuda_util::DeviceBuffer<int> d_slice(chunk);
  cuda_util::DeviceBuffer<float> d_scale(noise_scale != nullptr ? chunk : 0);
  cuda_util::DeviceBuffer<detail::KineticVoxelResult<float>> d_results(chunk);
  for (const chunking::Range range : chunking::plan(count, chunk)) {
    const std::size_t begin = range.begin, size = range.size();
    PERFQ_CUDA_TRY(cudaMemcpy(d_y.get(), y + begin * n, size * n * sizeof(float),
                              cudaMemcpyHostToDevice));
    PERFQ_CUDA_TRY(cudaMemcpy(d_slice.get(), slice + begin, size * sizeof(int),
                              cudaMemcpyHostToDevice));
    if (noise_scale != nullptr) {
      PERFQ_CUDA_TRY(cudaMemcpy(d_scale.get(), noise_scale + begin, size * sizeof(float),
                                cudaMemcpyHostToDevice));
    }
    constexpr unsigned threads = kernels::kFitThreads;
    kernels::launch_fit_kinetic(cuda_util::blocks_for(size, threads), threads, on_device,
                                d_y.get(), d_slice.get(),
                                noise_scale != nullptr ? d_scale.get() : nullptr, size,
                                d_results.get());
    PERFQ_CUDA_TRY(cudaGetLastError());
    PERFQ_CUDA_TRY(cudaDeviceSynchronize());
    PERFQ_CUDA_TRY(cudaMemcpy(results + begin, d_results.get(),
                              size * sizeof(detail::KineticVoxelResult<float>),
                              cudaMemcpyDeviceToHost));
  }
}

}  // namespace backend
}  // namespace perfq
