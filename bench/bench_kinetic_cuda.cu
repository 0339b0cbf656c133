// The multi-delay fit kernel alone on the GPU: voxel fits per second of the library's own
// kernel (cuda/kinetic_kernel.cuh) with the data already on the device, timed with CUDA
// events, for 4, 6 and 10 PCASL delays and gamma dispersion off/on. `perfq_bench_kinetic`
// times the whole `fit_kinetic` call (compaction, transfers, maps) on the same kind of
// voxels; the difference between the two is what the host side and PCIe cost.
//
// Voxels as in bench_kinetic.cpp (kinetic_voxels.hpp; another seed, 2^21 of them); the
// library's default search (ATT 0–3 s, 24 grid points) and polishing settings. Skips
// without a device.
#include "cuda_util.cuh"
#include "kinetic_kernel.cuh"
#include "kinetic_voxels.hpp"

#include <perfq/detail/kinetic_fit.hpp>

#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace {

namespace detail = perfq::detail;
namespace cuda_util = perfq::backend::cuda_util;
using Settings = detail::KineticSettings<float>;
using Result = detail::KineticVoxelResult<float>;

constexpr std::size_t kVoxels = std::size_t(1) << 21;

bool have_device(std::string& why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    why = status != cudaSuccess ? cudaGetErrorString(status) : "no CUDA device";
    cudaGetLastError();
    return false;
  }
  return true;
}

Settings settings_for(int n, bool dispersion) {
  Settings s = bench_kinetic::pcasl_settings<float>(n);
  if (dispersion) {  // perfq's defaults: s = 7.4 /s, p = 0.1 s
    const double rate = 7.4, shape = 1.0 + rate * 0.1;
    s.dispersion = true;
    s.kernel.shape = static_cast<float>(shape);
    s.kernel.rate = static_cast<float>(rate);
    s.kernel.log_rate = static_cast<float>(std::log(rate));
    s.kernel.log_gamma = static_cast<float>(std::lgamma(shape));
  }
  return s;
}

/// ΔM/M0 of kVoxels voxels (undispersed Buxton data) and their true CBF and ATT.
struct Data {
  std::vector<float> y;
  std::vector<double> cbf, att;
};

const Data& data(int n) {
  static std::vector<Data> cache(11);
  Data& d = cache[n];
  if (!d.y.empty()) return d;
  d.y.resize(kVoxels * n);
  bench_kinetic::draw_voxels(
      n, kVoxels, 11, 1.0, d.cbf, d.att,
      [&](std::size_t v, int k, double value) { d.y[v * n + k] = static_cast<float>(value); });
  return d;
}

void BM_FitKernel(benchmark::State& state) {
  std::string why;
  if (!have_device(why)) {
    state.SkipWithError(("no CUDA device: " + why).c_str());
    return;
  }
  const int n = static_cast<int>(state.range(0));
  const bool dispersion = state.range(1) != 0;
  const unsigned threads = static_cast<unsigned>(state.range(2));
  const bool generic = state.range(3) != 0;  // the generic kernel even where a count has its own
  const Data& d = data(n);
  Settings s = settings_for(n, dispersion);
  std::vector<float> basis(std::size_t(s.grid) * n), norm(s.grid);
  detail::fill_basis(s, 1, basis.data(), norm.data());

  cuda_util::DeviceBuffer<float> d_basis(basis.size()), d_norm(norm.size()), d_y(d.y.size());
  cuda_util::DeviceBuffer<int> d_slice(kVoxels);
  cuda_util::DeviceBuffer<Result> d_results(kVoxels);
  d_basis.upload(basis.data());
  d_norm.upload(norm.data());
  d_y.upload(d.y.data());
  PERFQ_CUDA_TRY(cudaMemset(d_slice.get(), 0, kVoxels * sizeof(int)));
  s.basis = d_basis.get();
  s.basis_norm = d_norm.get();

  cudaEvent_t start, stop;
  PERFQ_CUDA_TRY(cudaEventCreate(&start));
  PERFQ_CUDA_TRY(cudaEventCreate(&stop));
  const unsigned blocks = cuda_util::blocks_for(kVoxels, threads);
  perfq::backend::kernels::launch_fit_kinetic(blocks, threads, s, d_y.get(), d_slice.get(),
                                              nullptr, kVoxels, d_results.get(),
                                              generic);  // warm-up
  PERFQ_CUDA_TRY(cudaDeviceSynchronize());
  for (auto _ : state) {
    PERFQ_CUDA_TRY(cudaEventRecord(start));
    perfq::backend::kernels::launch_fit_kinetic(blocks, threads, s, d_y.get(), d_slice.get(),
                                                nullptr, kVoxels, d_results.get(), generic);
    PERFQ_CUDA_TRY(cudaGetLastError());
    PERFQ_CUDA_TRY(cudaEventRecord(stop));
    PERFQ_CUDA_TRY(cudaEventSynchronize(stop));
    float ms = 0;
    PERFQ_CUDA_TRY(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(ms / 1000.0);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kVoxels));

  // The fits are real: their median CBF error (%) against the truth, and the mean iterations.
  std::vector<Result> results(kVoxels);
  d_results.download(results.data());
  std::vector<double> error(kVoxels);
  double iterations = 0;
  for (std::size_t v = 0; v < kVoxels; ++v) {
    error[v] = 100.0 * std::abs(6000.0 * results[v].flow - d.cbf[v]) / d.cbf[v];
    iterations += results[v].iterations;
  }
  std::nth_element(error.begin(), error.begin() + kVoxels / 2, error.end());
  state.counters["median_cbf_error_pct"] = error[kVoxels / 2];
  state.counters["mean_iterations"] = iterations / kVoxels;
  state.counters["voxels"] = static_cast<double>(kVoxels);
}

// Arguments: delays, dispersion (0/1), threads per block (the library launches
// perfq::backend::kernels::kFitThreads), generic (1: the generic kernel even at the delay
// count that has its own, kDeviceDelayKernel: what that kernel gains).
BENCHMARK(BM_FitKernel)
    ->ArgNames({"delays", "dispersion", "block", "generic"})
    ->Args({4, 0, perfq::backend::kernels::kFitThreads, 0})
    ->Args({6, 0, perfq::backend::kernels::kFitThreads, 0})
    ->Args({6, 0, perfq::backend::kernels::kFitThreads, 1})
    ->Args({10, 0, perfq::backend::kernels::kFitThreads, 0})
    ->Args({6, 1, perfq::backend::kernels::kFitThreads, 0})
    ->Args({6, 0, 64, 0})
    ->Args({6, 0, 256, 0})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
