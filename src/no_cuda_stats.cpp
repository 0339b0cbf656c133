// Stand-in for the CUDA path of the regional statistics in builds without a CUDA compiler.
#include "backend_stats.hpp"

#include <perfq/errors.hpp>

namespace perfq {
namespace backend {

std::vector<RegionSums> cuda_region_sums(const StatsProblem&, int) {
  throw BackendError("the CUDA backend is not built into this perfq");
}

}  // namespace backend
}  // namespace perfq
