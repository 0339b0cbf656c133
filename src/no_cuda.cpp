// Stand-in for the CUDA backend in builds without a CUDA compiler.
#include "backend.hpp"

#include <perfq/errors.hpp>

namespace perfq {
namespace backend {

int cuda_device_count(std::string* reason) {
  if (reason != nullptr) *reason = "perfq was built without CUDA (PERFQ_CUDA=OFF or no nvcc)";
  return 0;
}

std::vector<std::string> cuda_device_names() { return {}; }

void cuda_single_delay(const detail::SingleDelayVoxel&, std::size_t, std::size_t, const DeviceLimits&) {
  throw BackendError("the CUDA backend is not built into this perfq");
}

void cuda_kinetic(const detail::KineticSettings<float>&, int, const float*, const int*,
                  const float*, std::size_t, detail::KineticVoxelResult<float>*,
                  const DeviceLimits&) {
  throw BackendError("the CUDA backend is not built into this perfq");
}

}  // namespace backend
}  // namespace perfq
