// Multi-delay fit throughput (voxel fits per second) for 4, 6 and 10 PCASL delays, beside a
// naive generic fit in the same run: Eigen's (unsupported) Levenberg–Marquardt with a
// forward-difference Jacobian, started from a fixed guess, on the same voxels. Counters
// report each method's median absolute CBF error (%) against the truth.
//
// Voxels: CBF uniform in 10–100 ml/100 g/min, ATT uniform in 0.5–2.5 s, M0 1000, noise SD
// one tenth of the largest ΔM of a CBF-60 voxel (SNR 10), Buxton model (T1app from the
// voxel's own flow), τ 1.8 s.
#include "kinetic_voxels.hpp"

#include <benchmark/benchmark.h>

#include <perfq/detail/kinetic_fit.hpp>
#include <perfq/execution.hpp>
#include <perfq/kinetic.hpp>

#include <unsupported/Eigen/LevenbergMarquardt>
#include <unsupported/Eigen/NumericalDiff>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

namespace {

constexpr std::size_t kVoxels = 1 << 15;

struct Data {
  perfq::Series<float> delta_m;
  perfq::AslProtocol protocol;
  std::vector<double> cbf, att;
  perfq::detail::KineticSettings<double> settings;  // for the model in the naive fit
};

const Data& data(int n) {
  static std::vector<std::unique_ptr<Data>> cache(11);
  if (cache[n]) return *cache[n];
  auto d = std::make_unique<Data>();
  for (int k = 0; k < n; ++k) d->protocol.post_labeling_delay.push_back(bench_kinetic::delay(k, n));
  d->protocol.labeling_duration = {1.8};
  d->settings = bench_kinetic::pcasl_settings<double>(n);
  perfq::Geometry g;
  g.dims = {kVoxels, 1, 1};
  d->delta_m = perfq::Series<float>(g, n);
  bench_kinetic::draw_voxels(n, kVoxels, 7, 1000.0, d->cbf, d->att,
                             [&](std::size_t v, int k, double value) {
                               d->delta_m.at(v, 0, 0, k) = static_cast<float>(value);
                             });
  cache[n] = std::move(d);
  return *cache[n];
}

/// The same voxels 64 times over (2^21 voxels): a size at which a GPU is busy.
const Data& large_data(int n) {
  static std::vector<std::unique_ptr<Data>> cache(11);
  if (cache[n]) return *cache[n];
  const Data& small = data(n);
  auto d = std::make_unique<Data>(small);
  perfq::Geometry g;
  g.dims = {kVoxels, 64, 1};
  d->delta_m = perfq::Series<float>(g, n);
  const std::size_t voxels = g.voxel_count();
  for (int k = 0; k < n; ++k) {
    for (std::size_t i = 0; i < voxels; ++i) {
      d->delta_m.values()[k * voxels + i] = small.delta_m.values()[k * kVoxels + i % kVoxels];
    }
  }
  cache[n] = std::move(d);
  return *cache[n];
}

/// Median absolute error (%); `truth` repeats when shorter than `estimate`.
double median_error_percent(const std::vector<double>& estimate, const std::vector<double>& truth) {
  std::vector<double> e;
  for (std::size_t i = 0; i < estimate.size(); ++i) {
    const double t = truth[i % truth.size()];
    e.push_back(100.0 * std::abs(estimate[i] - t) / t);
  }
  std::nth_element(e.begin(), e.begin() + e.size() / 2, e.end());
  return e[e.size() / 2];
}

void fit_loop(benchmark::State& state, perfq::Backend backend, int threads, bool dispersion = false,
              bool large = false, int max_starts = 0) {
  const int n = static_cast<int>(state.range(0));
  const Data& d = large ? large_data(n) : data(n);
  const std::size_t voxels = d.delta_m.geometry().voxel_count();
  perfq::Execution e;
  e.backend = backend;
  e.threads = threads;
  perfq::KineticOptions options;
  if (dispersion) options.dispersion = perfq::Dispersion::Gamma;
  if (max_starts > 0) options.max_starts = max_starts;
  perfq::KineticFit fit;
  for (auto _ : state) {
    fit = perfq::fit_kinetic(d.delta_m, perfq::M0Source::from_value(1000.0), d.protocol,
                             perfq::Physiology{}, options, std::nullopt, e);
    benchmark::DoNotOptimize(fit.cbf.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(voxels));
  state.counters["median_cbf_error_pct"] = median_error_percent(
      std::vector<double>(fit.cbf.values().begin(), fit.cbf.values().end()), d.cbf);
  double iterations = 0;
  for (std::uint8_t it : fit.iterations.values()) iterations += it;
  state.counters["mean_iterations"] = iterations / voxels;
}

void BM_PerfqCpu(benchmark::State& state) {
  fit_loop(state, perfq::Backend::Cpu, static_cast<int>(state.range(1)));
}

void BM_PerfqCuda(benchmark::State& state) {
  if (!perfq::cuda_available()) {
    state.SkipWithError(("no CUDA device: " + perfq::cuda_unavailable_reason()).c_str());
    return;
  }
  fit_loop(state, perfq::Backend::Cuda, 0, state.range(1) != 0, state.range(2) != 0);
}

/// The cost of the gamma dispersion kernel (closed form with incomplete gamma functions):
/// the same fits with dispersion off (0) and on (1), one thread. The data are undispersed,
/// so the CBF error counter of the dispersed fit shows the model mismatch, not accuracy.
void BM_PerfqCpuDispersion(benchmark::State& state) {
  fit_loop(state, perfq::Backend::Cpu, 1, state.range(1) != 0);
}

/// The cost of the multi-start polishing (KineticOptions::max_starts): the same fits with one
/// start and with 2, 3 (the default) or 5, one thread, in one run (compare the ratios).
void BM_PerfqCpuStarts(benchmark::State& state) {
  fit_loop(state, perfq::Backend::Cpu, 1, false, false, static_cast<int>(state.range(1)));
}

/// Residuals of one voxel for Eigen's solver: parameters (CBF ml/100 g/min, ATT s).
struct VoxelResiduals : Eigen::DenseFunctor<double> {
  const perfq::detail::KineticSettings<double>* s;
  const double* y;  // ΔM/M0
  VoxelResiduals(const perfq::detail::KineticSettings<double>* settings, const double* data, int n)
      : Eigen::DenseFunctor<double>(2, n), s(settings), y(data) {}
  int operator()(const Eigen::VectorXd& p, Eigen::VectorXd& r) const {
    const double f = p[0] / 6000.0;
    for (int k = 0; k < values(); ++k) {
      r[k] = y[k] - perfq::detail::tissue_signal<double, double>(*s, k, 0.0, f, f, p[1]);
    }
    return 0;
  }
};

void BM_NaiveEigenLm(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const Data& d = data(n);
  constexpr std::size_t kSubset = 4096;  // the naive fit is slow: time a subset
  std::vector<double> cbf(kSubset), y(n);
  for (auto _ : state) {
    for (std::size_t v = 0; v < kSubset; ++v) {
      for (int k = 0; k < n; ++k) y[k] = d.delta_m.at(v, 0, 0, k) / 1000.0;
      VoxelResiduals residuals(&d.settings, y.data(), n);
      Eigen::NumericalDiff<VoxelResiduals> numeric(residuals);
      Eigen::LevenbergMarquardt<Eigen::NumericalDiff<VoxelResiduals>> lm(numeric);
      Eigen::VectorXd p(2);
      p << 60.0, 1.3;  // a fixed guess, as a generic fit starts
      lm.minimize(p);
      cbf[v] = p[0];
    }
    benchmark::DoNotOptimize(cbf.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kSubset));
  state.counters["median_cbf_error_pct"] =
      median_error_percent(cbf, std::vector<double>(d.cbf.begin(), d.cbf.begin() + kSubset));
}

BENCHMARK(BM_PerfqCpu)
    ->ArgNames({"delays", "threads"})
    ->ArgsProduct({{4, 6, 10}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PerfqCpuDispersion)
    ->ArgNames({"delays", "dispersion"})
    ->ArgsProduct({{6}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PerfqCpuStarts)
    ->ArgNames({"delays", "starts"})
    ->ArgsProduct({{4, 6, 10}, {1, 2, 3, 5}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
// The whole fit_kinetic call on the GPU (compaction, transfers, maps included); large = 1:
// 2^21 voxels instead of 2^15. perfq_bench_kinetic_cuda times the kernel alone.
BENCHMARK(BM_PerfqCuda)
    ->ArgNames({"delays", "dispersion", "large"})
    ->ArgsProduct({{4, 6, 10}, {0, 1}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_NaiveEigenLm)
    ->ArgName("delays")
    ->Arg(4)
    ->Arg(6)
    ->Arg(10)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
