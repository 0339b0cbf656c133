// The CPU executor: an OpenMP loop over voxels.
#pragma once

#include <omp.h>

#include <cstddef>

namespace perfq {
namespace cpu {

/// Calls `f(i)` for i in [0, count) on `threads` OpenMP threads (0: OpenMP's default).
/// Static scheduling keeps results identical whatever the thread count.
template <class F>
void parallel_for(std::size_t count, int threads, const F& f) {
  const int team = threads > 0 ? threads : omp_get_max_threads();
  const auto n = static_cast<std::ptrdiff_t>(count);
#pragma omp parallel for schedule(static) num_threads(team)
  for (std::ptrdiff_t i = 0; i < n; ++i) f(static_cast<std::size_t>(i));
}

/// Calls `f(begin, end, z)` over [0, count) cut into runs that stay within one slice of
/// `slice_voxels` voxels (z is the slice), in blocks spread over `threads` OpenMP threads.
/// Lets per-slice constants be hoisted out of the inner loop.
template <class F>
void parallel_for_slices(std::size_t count, std::size_t slice_voxels, int threads, const F& f) {
  parallel_for_slices(0, count, slice_voxels, threads, f);
}

/// The same over [first, last) (one chunk of a larger run).
template <class F>
void parallel_for_slices(std::size_t first, std::size_t last, std::size_t slice_voxels,
                         int threads, const F& f) {
  constexpr std::size_t kBlock = 16384;
  const std::size_t count = last - first;
  const std::size_t blocks = (count + kBlock - 1) / kBlock;
  parallel_for(blocks, threads, [&](std::size_t b) {
    std::size_t i = first + b * kBlock;
    const std::size_t end = i + kBlock < last ? i + kBlock : last;
    while (i < end) {
      const std::size_t z = i / slice_voxels;
      const std::size_t stop = (z + 1) * slice_voxels < end ? (z + 1) * slice_voxels : end;
      f(i, stop, z);
      i = stop;
    }
  });
}

}  // namespace cpu
}  // namespace perfq
