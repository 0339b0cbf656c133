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
/// of a compile-time path (kDeviceDelayKernel), else 0 (any count).
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

/// The delay count with a kernel of its own (a compile-time path of fit_voxel_n, per-thread
/// arrays of 6 entries instead of kMaxDelays); every other count runs the generic kernel
/// (N = 0). Only one: each instantiation of the fully unrolled fit costs about five minutes of
/// nvcc per architecture on two cores (all eight counts of detail::dispatch_delays took the
/// library's CUDA build from 1.4 to 12 minutes), and what it gains on a GPU has not been
/// measured yet — 6 is the issue's benchmark count, and perfq_bench_kinetic_cuda runs both
/// kernels at 6 delays so that a lent GPU can tell.
constexpr int kDeviceDelayKernel = 6;

/// Launches fit_kinetic on the default stream for any `settings.delays` from 1 to
/// detail::kMaxDelays: the kDeviceDelayKernel instantiation when the count is that one and
/// `generic` is false, else the generic one (the same results; the benchmark compares them).
inline void launch_fit_kinetic(unsigned blocks, unsigned threads,
                               const detail::KineticSettings<float>& settings, const float* y,
                               const int* slice, const float* noise_scale, std::size_t count,
                               detail::KineticVoxelResult<float>* results, bool generic = false) {
  if (settings.delays == kDeviceDelayKernel && !generic) {
    fit_kinetic<kDeviceDelayKernel>
        <<<blocks, threads>>>(settings, y, slice, noise_scale, count, results);
  } else {
    fit_kinetic<0><<<blocks, threads>>>(settings, y, slice, noise_scale, count, results);
  }
}

}  // namespace kernels
}  // namespace backend
}  // namespace perfq
