// Private interface between the regional statistics (src/stats.cpp) and their CUDA path
// (cuda/stats.cu), or its stand-in (src/backend/no_cuda.cpp) in builds without CUDA. Both paths
// produce the same raw per-region sums and order statistics; src/stats.cpp turns them into
// RegionStats with one piece of host arithmetic.
#pragma once

#include <perfq/detail/stats.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace perfq {
namespace backend {

/// One statistics run: host pointers (null for absent optional inputs), all on one grid.
struct StatsProblem {
  const float* map = nullptr;
  const std::int32_t* labels = nullptr;
  const std::uint8_t* mask = nullptr;  ///< null: every voxel
  const float* weights = nullptr;      ///< null: weight 1
  const float* baseline = nullptr;     ///< null: no paired change
  std::size_t voxels = 0;
  std::vector<std::int32_t> regions;  ///< labels of the regions, ascending, no duplicates
  std::vector<double> quantiles;      ///< percentiles whose order statistics are needed
};

/// The raw result for one region (index into StatsProblem::regions).
struct RegionSums {
  std::uint64_t voxels = 0;      ///< voxels of the region (inside the mask)
  std::uint64_t count = 0;       ///< of which finite
  detail::StatsSums sums;        ///< first pass, over the finite voxels
  detail::StatsSquares squares;  ///< second pass, centred on detail::stats_means(sums, count)
  /// Order statistics at order_ranks(count, quantiles), in that order (empty when count is 0).
  std::vector<double> order;
};

/// The 0-based ranks, in a sorted sample of n ≥ 1, whose values the statistics need:
/// minimum, maximum, then the lower and upper rank of each quantile.
inline std::vector<std::size_t> order_ranks(std::size_t n, const std::vector<double>& quantiles) {
  std::vector<std::size_t> ranks{0, n - 1};
  for (double q : quantiles) {
    const detail::PercentileRank r = detail::percentile_rank(q, n);
    ranks.push_back(r.lo);
    ranks.push_back(r.hi);
  }
  return ranks;
}

/// Runs the statistics on CUDA device `device`: voxels sorted by (region, value) with a radix
/// sort, segment bounds by binary search, sums by segmented reductions, order statistics
/// gathered from the sorted segments. Throws BackendError on any CUDA error.
std::vector<RegionSums> cuda_region_sums(const StatsProblem& problem, int device);

}  // namespace backend
}  // namespace perfq
