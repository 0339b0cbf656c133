// Private interface of the CUDA backend (cuda/), or its stand-in (src/backend/no_cuda.cpp) in
// builds without CUDA: the devices, and the limits every CUDA computation runs under.
#pragma once

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

}  // namespace backend
}  // namespace perfq
