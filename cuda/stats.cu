// The CUDA path of the regional statistics: a segmented reduction over voxels sorted by
// (region, value). Each voxel becomes one 64-bit key, region index above and an
// order-preserving encoding of its value below (all ones for a non-finite value, so that a
// region's non-finite voxels close its segment); one radix sort then makes every region a
// contiguous, value-sorted segment. Segment bounds come from binary searches, sums from two
// reduce-by-key passes over the shared detail/ terms, and order statistics are gathered at
// the ranks the host asks for.
#include "backend/stats.hpp"

#include <perfq/errors.hpp>

#include <thrust/binary_search.h>
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/functional.h>
#include <thrust/gather.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/reduce.h>
#include <thrust/sequence.h>
#include <thrust/sort.h>

#include <cuda_runtime.h>

#include <exception>
#include <string>

namespace perfq {
namespace backend {
namespace {

constexpr std::uint64_t kExcluded = ~std::uint64_t{0};  // outside every region: sorts last
constexpr std::uint32_t kNonFinite = 0xffffffffu;       // above every finite value's key

void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) {
    throw BackendError(std::string("CUDA error in ") + call + ": " + cudaGetErrorString(status));
  }
}

template <class T>
thrust::device_vector<T> upload(const T* host, std::size_t count) {
  if (host == nullptr) return thrust::device_vector<T>();
  return thrust::device_vector<T>(host, host + count);
}

template <class T>
const T* raw(const thrust::device_vector<T>& v) {
  return v.empty() ? nullptr : thrust::raw_pointer_cast(v.data());
}

}  // namespace

// Device-side types and kernels live in a named namespace (PERFQ_KERNEL: hidden visibility).
namespace kernels {

/// Device pointers of the inputs (null when absent).
struct Inputs {
  const float* map;
  const std::int32_t* labels;
  const std::uint8_t* mask;
  const float* weights;
  const float* baseline;
  const std::int32_t* regions;
  std::size_t region_count;
};

struct RegionOfKey {
  PERFQ_HD std::uint32_t operator()(std::uint64_t key) const {
    return static_cast<std::uint32_t>(key >> 32);
  }
};

/// The value, weight and baseline of sorted element j (a low word of all ones: non-finite).
struct Element {
  const std::uint64_t* keys;
  const std::uint32_t* voxel;
  Inputs in;
  PERFQ_HD bool finite(std::size_t j) const {
    return static_cast<std::uint32_t>(keys[j]) != kNonFinite;
  }
  PERFQ_HD float value(std::size_t j) const {
    return detail::float_from_order_key(static_cast<std::uint32_t>(keys[j]));
  }
  PERFQ_HD float weight(std::size_t j) const {
    return in.weights != nullptr ? in.weights[voxel[j]] : 1.0f;
  }
  PERFQ_HD float base(std::size_t j) const {
    return in.baseline != nullptr ? in.baseline[voxel[j]] : 0.0f;
  }
};

struct FirstPass {
  Element e;
  PERFQ_HD detail::StatsSums operator()(std::size_t j) const {
    if (!e.finite(j)) return detail::StatsSums{};
    return detail::first_pass_terms(e.value(j), e.weight(j), e.base(j), e.in.baseline != nullptr);
  }
};

struct SecondPass {
  Element e;
  const detail::StatsMeans* means;  // per region
  PERFQ_HD detail::StatsSquares operator()(std::size_t j) const {
    if (!e.finite(j)) return detail::StatsSquares{};
    return detail::second_pass_terms(e.value(j), e.weight(j), e.base(j), e.in.baseline != nullptr,
                                     means[e.keys[j] >> 32]);
  }
};

struct AddSums {
  PERFQ_HD detail::StatsSums operator()(const detail::StatsSums& a,
                                        const detail::StatsSums& b) const {
    return a + b;
  }
};

struct AddSquares {
  PERFQ_HD detail::StatsSquares operator()(const detail::StatsSquares& a,
                                           const detail::StatsSquares& b) const {
    return a + b;
  }
};

/// One thread per voxel: its sort key and its own index.
PERFQ_KERNEL void stats_keys(Inputs in, std::size_t count, std::uint64_t* keys,
                             std::uint32_t* voxel) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= count) return;
  voxel[i] = static_cast<std::uint32_t>(i);
  const bool inside = in.mask == nullptr || in.mask[i] != 0;
  const std::int64_t r =
      inside ? detail::find_region(in.labels[i], in.regions, in.region_count) : -1;
  if (r < 0) {
    keys[i] = kExcluded;
    return;
  }
  const float v = in.map[i];
  const std::uint32_t low = detail::is_finite(v) ? detail::float_order_key(v) : kNonFinite;
  keys[i] = (static_cast<std::uint64_t>(r) << 32) | low;
}
}  // namespace kernels

namespace {

std::vector<RegionSums> run(const StatsProblem& p) {
  const std::size_t n = p.voxels, regions = p.regions.size();
  if (n >= (std::size_t{1} << 32)) {
    throw BackendError("the CUDA statistics handle images of fewer than 2^32 voxels");
  }
  const auto map = upload(p.map, n);
  const auto labels = upload(p.labels, n);
  const auto mask = upload(p.mask, n);
  const auto weights = upload(p.weights, n);
  const auto baseline = upload(p.baseline, n);
  const auto region_labels = upload(p.regions.data(), regions);
  const kernels::Inputs in{raw(map),      raw(labels),        raw(mask), raw(weights),
                           raw(baseline), raw(region_labels), regions};

  thrust::device_vector<std::uint64_t> keys(n);
  thrust::device_vector<std::uint32_t> voxel(n);
  constexpr unsigned threads = 256;
  kernels::stats_keys<<<static_cast<unsigned>((n + threads - 1) / threads), threads>>>(
      in, n, thrust::raw_pointer_cast(keys.data()), thrust::raw_pointer_cast(voxel.data()));
  check(cudaGetLastError(), "stats_keys<<<>>>");
  thrust::sort_by_key(thrust::device, keys.begin(), keys.end(), voxel.begin());

  // Segment bounds: region r spans [bound(r, 0), bound(r + 1, 0)), its finite values
  // [bound(r, 0), bound(r, kNonFinite)).
  std::vector<std::uint64_t> probes(2 * regions + 1);
  for (std::size_t r = 0; r <= regions; ++r) probes[2 * r] = static_cast<std::uint64_t>(r) << 32;
  for (std::size_t r = 0; r < regions; ++r) probes[2 * r + 1] = probes[2 * r] | kNonFinite;
  const auto probes_d = upload(probes.data(), probes.size());
  thrust::device_vector<std::uint64_t> bounds_d(probes.size());
  thrust::lower_bound(thrust::device, keys.begin(), keys.end(), probes_d.begin(), probes_d.end(),
                      bounds_d.begin());
  std::vector<std::uint64_t> bounds(probes.size());
  thrust::copy(bounds_d.begin(), bounds_d.end(), bounds.begin());
  std::vector<RegionSums> out(regions);
  for (std::size_t r = 0; r < regions; ++r) {
    out[r].voxels = bounds[2 * r + 2] - bounds[2 * r];
    out[r].count = bounds[2 * r + 1] - bounds[2 * r];
  }
  const std::size_t used = bounds[2 * regions];  // elements in some region
  if (used == 0) return out;

  const kernels::Element element{thrust::raw_pointer_cast(keys.data()),
                                 thrust::raw_pointer_cast(voxel.data()), in};
  const auto region_of = thrust::make_transform_iterator(keys.begin(), kernels::RegionOfKey{});
  const thrust::counting_iterator<std::size_t> first(0);
  thrust::device_vector<std::uint32_t> segment(regions);
  thrust::device_vector<detail::StatsSums> sums_d(regions);
  const auto ends = thrust::reduce_by_key(
      thrust::device, region_of, region_of + used,
      thrust::make_transform_iterator(first, kernels::FirstPass{element}), segment.begin(),
      sums_d.begin(), thrust::equal_to<std::uint32_t>(), kernels::AddSums{});
  const std::size_t segments = static_cast<std::size_t>(ends.first - segment.begin());
  std::vector<std::uint32_t> segment_h(segments);
  std::vector<detail::StatsSums> sums_h(segments);
  thrust::copy(segment.begin(), segment.begin() + segments, segment_h.begin());
  thrust::copy(sums_d.begin(), sums_d.begin() + segments, sums_h.begin());
  std::vector<detail::StatsMeans> means(regions);
  for (std::size_t k = 0; k < segments; ++k) {
    RegionSums& s = out[segment_h[k]];
    s.sums = sums_h[k];
    means[segment_h[k]] = detail::stats_means(s.sums, static_cast<double>(s.count));
  }

  const auto means_d = upload(means.data(), regions);
  thrust::device_vector<detail::StatsSquares> squares_d(regions);
  thrust::reduce_by_key(
      thrust::device, region_of, region_of + used,
      thrust::make_transform_iterator(first, kernels::SecondPass{element, raw(means_d)}),
      segment.begin(), squares_d.begin(), thrust::equal_to<std::uint32_t>(), kernels::AddSquares{});
  std::vector<detail::StatsSquares> squares_h(segments);
  thrust::copy(squares_d.begin(), squares_d.begin() + segments, squares_h.begin());
  for (std::size_t k = 0; k < segments; ++k) out[segment_h[k]].squares = squares_h[k];

  // Order statistics: gather the keys at the requested ranks of each segment.
  std::vector<std::uint64_t> positions;
  for (std::size_t r = 0; r < regions; ++r) {
    if (out[r].count == 0) continue;
    for (std::size_t rank : order_ranks(out[r].count, p.quantiles)) {
      positions.push_back(bounds[2 * r] + rank);
    }
  }
  const auto positions_d = upload(positions.data(), positions.size());
  thrust::device_vector<std::uint64_t> picked_d(positions.size());
  thrust::gather(thrust::device, positions_d.begin(), positions_d.end(), keys.begin(),
                 picked_d.begin());
  std::vector<std::uint64_t> picked(positions.size());
  thrust::copy(picked_d.begin(), picked_d.end(), picked.begin());
  std::size_t k = 0;
  for (std::size_t r = 0; r < regions; ++r) {
    if (out[r].count == 0) continue;
    const std::size_t wanted = 2 + 2 * p.quantiles.size();
    for (std::size_t j = 0; j < wanted; ++j, ++k) {
      out[r].order.push_back(detail::float_from_order_key(static_cast<std::uint32_t>(picked[k])));
    }
  }
  return out;
}

}  // namespace

std::vector<RegionSums> cuda_region_sums(const StatsProblem& problem, int device) {
  check(cudaSetDevice(device), "cudaSetDevice");
  try {
    return run(problem);
  } catch (const BackendError&) {
    throw;
  } catch (const std::exception& e) {
    // Thrust reports CUDA failures (including out of memory) as its own exceptions.
    throw BackendError(std::string("CUDA regional statistics failed: ") + e.what());
  }
}

}  // namespace backend
}  // namespace perfq
