// The multi-delay fit kernel: one thread per voxel running detail::fit_voxel, the same
// function the CPU backend runs. Shared by the backend (cuda/kinetic.cu) and the kernel-only
// benchmark (bench/bench_kinetic_cuda.cu), so that the benchmark times the library's kernel.
#pragma once

#include <perfq/detail/kinetic_fit.hpp>

#include <cstddef>

namespace perfq {
namespace backend {
namespace kernels {

/// Threads per block of every fit launch.
constexpr unsigned kFitThreads = 128;

/// Fits `count` voxels: `y` holds each voxel's `settings.delays` values contiguously,
/// `slice` its slice (an index into the per-slice tables of `settings`), `noise_scale` its
/// factor on the settings' noise variance (nullptr: 1 for every voxel). N: the delay count
/// when it has a compile-time path (detail::dispatch_delays; per-thread arrays of N entries
/// instead of kMaxDelays), else 0 (any count).
template <int N>
PERFQ_KERNEL void fit_kinetic(detail::KineticSettings<float> settings, const float* y,
                              const int* slice, const float* noise_scale, std::size_t count,
                              detail::KineticVoxelResult<float>* results) {
  const std::size_t v = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (v < count) {
    results[v] = detail::fit_voxel_n<N>(settings, y + v * settings.delays, slice[v],
                                        noise_scale != nullptr ? noise_scale[v] : 1.0f);
  }
}

/// Launches fit_kinetic on the default stream, instantiated for `settings.delays` (any count
/// from 1 to detail::kMaxDelays).
inline void launch_fit_kinetic(unsigned blocks, unsigned threads,
                               const detail::KineticSettings<float>& settings, const float* y,
                               const int* slice, const float* noise_scale, std::size_t count,
                               detail::KineticVoxelResult<float>* results) {
  detail::dispatch_delays(settings.delays, [&](auto delays) {
    fit_kinetic<decltype(delays)::value>
        <<<blocks, threads>>>(settings, y, slice, noise_scale, count, results);
  });
}

}  // namespace kernels
}  // namespace backend
}  // namespace perfq
