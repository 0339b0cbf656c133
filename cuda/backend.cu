// The CUDA backend: thin launchers around the voxel functors of include/perfq/detail/.
#include "backend/single_delay.hpp"
#include "chunking.hpp"
#include "cuda_util.cuh"

#include <perfq/errors.hpp>

#include <cuda_runtime.h>

#include <string>

namespace perfq {
namespace backend {
using cuda_util::DeviceBuffer;

namespace kernels {
/// One thread per voxel: the same functor the CPU backend loops over.
template <class Functor>
PERFQ_KERNEL void for_each_voxel(Functor functor, std::size_t count) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) functor(i);
}

/// One voxel of a chunk that starts at voxel `first` of the image: the chunk's buffers are
/// indexed from 0, the slice factors by the voxel's place in the whole image.
struct SingleDelayChunk {
  detail::SingleDelayVoxel voxel;  // device pointers to the chunk's buffers
  std::size_t first = 0;
  __device__ void operator()(std::size_t j) const {
    const std::size_t z = (first + j) / voxel.slice_voxels;
    detail::single_delay_run(voxel, voxel.slice_factor[z], j, j + 1);  // the CPU's body
  }
};
}  // namespace kernels

int cuda_device_count(std::string* reason) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    // With no GPU or driver the runtime reports an error rather than 0 devices.
    if (reason != nullptr) *reason = std::string("no usable CUDA device: ") + cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky error state
    return 0;
  }
  if (count == 0 && reason != nullptr) *reason = "no CUDA device present";
  return count;
}

std::vector<std::string> cuda_device_names() {
  std::vector<std::string> names;
  const int count = cuda_device_count(nullptr);
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, d) == cudaSuccess) names.emplace_back(prop.name);
  }
  return names;
}

void cuda_single_delay(const detail::SingleDelayVoxel& voxel, std::size_t count,
                       std::size_t slices, const DeviceLimits& limits) {
  if (count == 0) return;
  PERFQ_CUDA_TRY(cudaSetDevice(limits.device));
  // Per voxel: ΔM, CBF (floats), M0 when voxelwise, mask and status (bytes).
  const std::size_t per_voxel = 2 * sizeof(float) + (voxel.m0 != nullptr ? sizeof(float) : 0) +
                                (voxel.mask != nullptr ? 1 : 0) + 1;
  const std::size_t chunk =
      chunking::chunk_voxels(count, per_voxel, cuda_util::usable_bytes(limits.bytes_limit),
                             slices * sizeof(float), limits.max_chunk);
  if (chunk == 0) {
    throw BackendError("out of device memory: not even one voxel's buffers fit on device " +
                       std::to_string(limits.device));
  }
  DeviceBuffer<float> delta_m(chunk), m0(voxel.m0 != nullptr ? chunk : 0), factors(slices),
      cbf(chunk);
  DeviceBuffer<std::uint8_t> mask(voxel.mask != nullptr ? chunk : 0), status(chunk);
  factors.upload(voxel.slice_factor);

  constexpr unsigned threads = 256;
  for (const chunking::Range range : chunking::plan(count, chunk)) {
    const std::size_t n = range.size();
    PERFQ_CUDA_TRY(cudaMemcpy(delta_m.get(), voxel.delta_m + range.begin, n * sizeof(float),
                              cudaMemcpyHostToDevice));
    if (voxel.m0 != nullptr) {
      PERFQ_CUDA_TRY(cudaMemcpy(m0.get(), voxel.m0 + range.begin, n * sizeof(float),
                                cudaMemcpyHostToDevice));
    }
    if (voxel.mask != nullptr) {
      PERFQ_CUDA_TRY(cudaMemcpy(mask.get(), voxel.mask + range.begin, n, cudaMemcpyHostToDevice));
    }
    kernels::SingleDelayChunk on_device;
    on_device.voxel = voxel;
    on_device.voxel.delta_m = delta_m.get();
    on_device.voxel.m0 = voxel.m0 != nullptr ? m0.get() : nullptr;
    on_device.voxel.mask = voxel.mask != nullptr ? mask.get() : nullptr;
    on_device.voxel.slice_factor = factors.get();
    on_device.voxel.cbf = cbf.get();
    on_device.voxel.status = status.get();
    on_device.first = range.begin;
    kernels::for_each_voxel<<<cuda_util::blocks_for(n, threads), threads>>>(on_device, n);
    PERFQ_CUDA_TRY(cudaGetLastError());
    PERFQ_CUDA_TRY(cudaDeviceSynchronize());
    PERFQ_CUDA_TRY(cudaMemcpy(voxel.cbf + range.begin, cbf.get(), n * sizeof(float),
                              cudaMemcpyDeviceToHost));
    PERFQ_CUDA_TRY(cudaMemcpy(voxel.status + range.begin, status.get(), n,
                              cudaMemcpyDeviceToHost));
  }
}

}  // namespace backend
}  // namespace perfq
