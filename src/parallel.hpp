// The CPU executor: an OpenMP loop over voxels.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace perfq {
namespace cpu {

/// How many more tasks (threads) the process's cgroup lets it start (pids.max less
/// pids.current, cgroup v2); a large number when there is no such limit or it cannot be read.
inline long task_headroom() {
  auto read = [](const char* path) -> long {
    std::FILE* file = std::fopen(path, "r");
    if (file == nullptr) return -1;
    char text[32] = {};
    const bool ok = std::fgets(text, sizeof text, file) != nullptr;
    std::fclose(file);
    if (!ok) return -1;
    char* end = nullptr;
    const long value = std::strtol(text, &end, 10);
    return end == text ? -1 : value;  // "max" reads as no number: no limit
  };
  const long limit = read("/sys/fs/cgroup/pids.max");
  const long current = read("/sys/fs/cgroup/pids.current");
  if (limit < 0 || current < 0) return std::numeric_limits<long>::max();
  return limit > current ? limit - current : 0;
}

/// The OpenMP team for `threads` (0: OpenMP's default, which OMP_NUM_THREADS sets): never
/// more threads than processors available to the process, nor more than its cgroup still lets
/// it start (read once per process, keeping a few tasks spare), so that no request makes the
/// OpenMP runtime fail to start threads. Results do not depend on the team's size.
inline int team_size(int threads) {
  static const long headroom = task_headroom();
  long team = threads > 0 ? threads : omp_get_max_threads();
  team = std::min<long>(team, std::max(1, omp_get_num_procs()));
  if (headroom < std::numeric_limits<long>::max()) team = std::min(team, headroom - 4);
  return static_cast<int>(std::max(1L, team));
}

/// Calls `f(i)` for i in [0, count) on `threads` OpenMP threads (0: OpenMP's default; see
/// team_size). Static scheduling keeps results identical whatever the thread count.
template <class F>
void parallel_for(std::size_t count, int threads, const F& f) {
  const int team = team_size(threads);
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
