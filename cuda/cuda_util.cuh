// Helpers shared by the CUDA translation units: error checks and an owning device buffer.
#pragma once

#include <perfq/errors.hpp>

#include <cuda_runtime.h>

#include <cstddef>
#include <string>

namespace perfq {
namespace backend {
namespace cuda_util {

/// What a failed CUDA call means for the user: out of memory, a device that is gone or
/// broken, or another error (the runtime's text follows in every case).
inline const char* failure_kind(cudaError_t status) {
  switch (status) {
    case cudaErrorMemoryAllocation:
      return "out of device memory";
    case cudaErrorDevicesUnavailable:
    case cudaErrorNoDevice:
    case cudaErrorLaunchFailure:
    case cudaErrorIllegalAddress:
    case cudaErrorECCUncorrectable:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorLaunchTimeout:
      return "the CUDA device failed or was lost";
    default:
      return "CUDA error";
  }
}

inline void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so that later calls start clean
    throw BackendError(std::string(failure_kind(status)) + " in " + call + ": " +
                       cudaGetErrorString(status));
  }
}
#define PERFQ_CUDA_TRY(call) ::perfq::backend::cuda_util::check((call), #call)

/// Device buffer that frees itself (never throws from the destructor).
template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    if (count_ > 0) PERFQ_CUDA_TRY(cudaMalloc(&data_, count_ * sizeof(T)));
  }
  ~DeviceBuffer() {
    if (data_ != nullptr) cudaFree(data_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return data_; }
  void upload(const T* host) {
    if (count_ > 0) PERFQ_CUDA_TRY(cudaMemcpy(data_, host, count_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  void download(T* host) const {
    if (count_ > 0) PERFQ_CUDA_TRY(cudaMemcpy(host, data_, count_ * sizeof(T), cudaMemcpyDeviceToHost));
  }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};


/// Device memory a run may use on the current device: the free memory (less a margin for
/// the runtime and other users), capped by `bytes_limit` when nonzero.
inline std::size_t usable_bytes(std::size_t bytes_limit) {
  std::size_t free_bytes = 0, total_bytes = 0;
  check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  std::size_t usable = free_bytes / 10 * 9;
  if (bytes_limit > 0 && bytes_limit < usable) usable = bytes_limit;
  return usable;
}

/// Grid size for one thread per item.
inline unsigned blocks_for(std::size_t count, unsigned threads) {
  return static_cast<unsigned>((count + threads - 1) / threads);
}

}  // namespace cuda_util
}  // namespace backend
}  // namespace perfq
