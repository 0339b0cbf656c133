// Helpers shared by the CUDA translation units: error checks and an owning device buffer.
#pragma once

#include <perfq/errors.hpp>

#include <cuda_runtime.h>

#include <cstddef>
#include <string>

namespace perfq {
namespace backend {
namespace cuda_util {

inline void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) {
    throw BackendError(std::string("CUDA error in ") + call + ": " + cudaGetErrorString(status));
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


/// Grid size for one thread per item.
inline unsigned blocks_for(std::size_t count, unsigned threads) {
  return static_cast<unsigned>((count + threads - 1) / threads);
}

}  // namespace cuda_util
}  // namespace backend
}  // namespace perfq
