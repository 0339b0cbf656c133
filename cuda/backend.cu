// The CUDA backend: thin launchers around the voxel functors of include/perfq/detail/.
#include "../src/backend.hpp"
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
                       std::size_t slices, int device) {
  PERFQ_CUDA_TRY(cudaSetDevice(device));
  DeviceBuffer<float> delta_m(count), m0(voxel.m0 != nullptr ? count : 0), factors(slices),
      cbf(count);
  DeviceBuffer<std::uint8_t> mask(voxel.mask != nullptr ? count : 0), status(count);
  delta_m.upload(voxel.delta_m);
  if (voxel.m0 != nullptr) m0.upload(voxel.m0);
  if (voxel.mask != nullptr) mask.upload(voxel.mask);
  factors.upload(voxel.slice_factor);

  detail::SingleDelayVoxel on_device = voxel;
  on_device.delta_m = delta_m.get();
  on_device.m0 = voxel.m0 != nullptr ? m0.get() : nullptr;
  on_device.mask = voxel.mask != nullptr ? mask.get() : nullptr;
  on_device.slice_factor = factors.get();
  on_device.cbf = cbf.get();
  on_device.status = status.get();

  constexpr unsigned threads = 256;
  const unsigned blocks = static_cast<unsigned>((count + threads - 1) / threads);
  if (blocks > 0) {
    kernels::for_each_voxel<<<blocks, threads>>>(on_device, count);
    PERFQ_CUDA_TRY(cudaGetLastError());
    PERFQ_CUDA_TRY(cudaDeviceSynchronize());
  }
  cbf.download(voxel.cbf);
  status.download(voxel.status);
}

}  // namespace backend
}  // namespace perfq
