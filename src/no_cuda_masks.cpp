// Stand-ins for the CUDA mask launchers in builds without a CUDA compiler. They are never
// reached through the public API (resolve_backend refuses Cuda first), but keep it linking.
#include "backend_masks.hpp"

#include <perfq/errors.hpp>

namespace perfq {
namespace masks {

namespace {
[[noreturn]] void not_built() {
  throw BackendError("the CUDA backend is not built into this perfq");
}
}  // namespace

void cuda_squared_edt(const std::uint8_t*, const EdtGrid&, double*, int) { not_built(); }

void cuda_distance_map(const std::uint8_t*, const EdtGrid&, bool, float*, int) { not_built(); }

void cuda_border_zones(const std::int32_t*, const std::uint8_t*, const EdtGrid&,
                       const std::vector<std::int32_t>&, double, std::uint8_t*, std::int32_t*,
                       int) {
  not_built();
}

}  // namespace masks
}  // namespace perfq
