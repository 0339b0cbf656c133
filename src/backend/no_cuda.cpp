// Stand-ins for the CUDA backend in builds without a CUDA compiler: no device, and every
// launcher refuses. They are never reached through the public API (resolve_backend refuses
// Cuda first), but keep the library linking.
#include "backend/device.hpp"
#include "backend/kinetic.hpp"
#include "backend/masks.hpp"
#include "backend/single_delay.hpp"
#include "backend/stats.hpp"

#include <perfq/errors.hpp>

namespace perfq {
namespace {

[[noreturn]] void not_built() { throw BackendError("the CUDA backend is not built into this perfq"); }

}  // namespace

namespace backend {

int cuda_device_count(std::string* reason) {
  if (reason != nullptr) *reason = "perfq was built without CUDA (PERFQ_CUDA=OFF or no nvcc)";
  return 0;
}

std::vector<std::string> cuda_device_names() { return {}; }

void cuda_single_delay(const detail::SingleDelayVoxel&, std::size_t, std::size_t,
                       const DeviceLimits&) {
  not_built();
}

void cuda_kinetic(const detail::KineticSettings<float>&, int, const float*, const int*,
                  const float*, std::size_t, detail::KineticVoxelResult<float>*,
                  const DeviceLimits&) {
  not_built();
}

std::vector<RegionSums> cuda_region_sums(const StatsProblem&, int) { not_built(); }

}  // namespace backend

namespace masks {

void cuda_squared_edt(const std::uint8_t*, const EdtGrid&, double*, int) { not_built(); }

void cuda_distance_map(const std::uint8_t*, const EdtGrid&, bool, float*, int) { not_built(); }

void cuda_border_zones(const std::int32_t*, const std::uint8_t*, const EdtGrid&,
                       const std::vector<std::int32_t>&, double, std::uint8_t*, std::int32_t*,
                       int) {
  not_built();
}

}  // namespace masks
}  // namespace perfq
