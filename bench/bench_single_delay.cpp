// Single-delay CBF quantification throughput (voxels/s and bytes/s), set against two
// references measured in the same run: a naive double-precision loop that calls exp() per
// voxel, as a script would, and a memcpy moving the same bytes (the memory roofline).
//
// Bytes per voxel, read + written: ΔM 4 + M0 4 + mask 1 + cbf 4 + status 1 = 14. Grids:
// 3 mm (64x76x64) and 1 mm (182x218x182), both filled by perfq::make_phantom.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <perfq/asl_series.hpp>
#include <perfq/cbf.hpp>
#include <perfq/execution.hpp>
#include <perfq/phantom.hpp>
#include <perfq/quality.hpp>
#include <string>
#include <vector>

namespace {

constexpr std::int64_t kBytesPerVoxel = 14;

struct Inputs {
  perfq::Volume<float> delta_m, m0;
  perfq::Mask brain;
  perfq::Volume<float> gm, wm, csf;  // the phantom's tissue classes as 0/1 probabilities
  perfq::AslProtocol protocol;
  perfq::Physiology physiology;
  std::size_t voxels() const { return delta_m.voxel_count(); }
};

// The phantom's mean ΔM, M0 and brain mask (24% of the grid) on an isotropic grid; one noisy
// pair, so ΔM changes sign as in real data. Takes about 0.6 s at 1 mm, once per grid.
Inputs phantom_inputs(std::array<std::size_t, 3> dims, double voxel_mm) {
  perfq::PhantomOptions o;
  o.dims = dims;
  o.voxel_mm = voxel_mm;
  o.repeats = 1;
  o.snr = 5.0;
  perfq::Phantom p = perfq::make_phantom(o);
  perfq::PreparedAsl prepared = perfq::prepare_asl(p.asl, p.context, p.protocol);
  perfq::Volume<float> gm(p.tissue.geometry()), wm(p.tissue.geometry()), csf(p.tissue.geometry());
  for (std::size_t i = 0; i < gm.size(); ++i) {
    gm[i] = p.tissue[i] == perfq::kGreyMatter ? 1.0f : 0.0f;
    wm[i] = p.tissue[i] == perfq::kWhiteMatter ? 1.0f : 0.0f;
    csf[i] = p.tissue[i] == perfq::kCsf ? 1.0f : 0.0f;
  }
  return Inputs{std::move(prepared.delta_m), std::move(p.m0),        std::move(p.brain),
                std::move(gm),               std::move(wm),          std::move(csf),
                std::move(prepared.protocol), p.physiology};
}

// Built on first use, outside any timed region: 3 mm whole brain, and 1 mm (MNI-sized).
const Inputs& inputs(std::int64_t mm) {
  if (mm == 3) {
    static const Inputs three = phantom_inputs({64, 76, 64}, 3.0);
    return three;
  }
  static const Inputs one = phantom_inputs({182, 218, 182}, 1.0);
  return one;
}

void set_throughput(benchmark::State& state, std::size_t voxels) {
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(voxels));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(voxels) * kBytesPerVoxel);
}

// The public API call as users make it, output allocation included.
void quantify_loop(benchmark::State& state, const perfq::Execution& execution) {
  const Inputs& in = inputs(state.range(0));
  auto run = [&] {
    return perfq::quantify_cbf(in.delta_m, perfq::M0Source::from_image(in.m0), in.protocol,
                               in.physiology, in.brain.view(), execution);
  };
  run();  // warm-up: starts the OpenMP team or the CUDA context outside the timing
  for (auto _ : state) {
    perfq::CbfMaps maps = run();
    benchmark::DoNotOptimize(maps.cbf.data());
  }
  set_throughput(state, in.voxels());
}

void BM_QuantifyCpu(benchmark::State& state) {
  perfq::Execution e;
  e.backend = perfq::Backend::Cpu;
  e.threads = static_cast<int>(state.range(1));
  quantify_loop(state, e);
}

// End to end: quantify_cbf copies inputs to the device and results back on every call, so
// this measures PCIe transfers plus the kernel, not the kernel alone.
void BM_QuantifyCuda_EndToEnd(benchmark::State& state) {
  if (!perfq::cuda_available()) {
    state.SkipWithError(("no CUDA device: " + perfq::cuda_unavailable_reason()).c_str());
    return;
  }
  perfq::Execution e;
  e.backend = perfq::Backend::Cuda;
  quantify_loop(state, e);
}

// The quality indices of the CBF map (perfq cbf computes them for every series): brain, GM
// and WM statistics and the QEI with its 5 mm smoothing (tissue maps given), or the brain's
// indices alone (none given). Beside BM_QuantifyCpu on the same grid: the cost of QC
// relative to the quantification it judges.
void quality_loop(benchmark::State& state, bool tissue_maps) {
  const Inputs& in = inputs(state.range(0));
  perfq::Execution e;
  e.backend = perfq::Backend::Cpu;
  e.threads = static_cast<int>(state.range(1));
  const perfq::CbfMaps maps = perfq::quantify_cbf(in.delta_m, perfq::M0Source::from_image(in.m0),
                                                  in.protocol, in.physiology, in.brain.view(), e);
  perfq::TissueMaps tissue;
  if (tissue_maps) tissue = {in.gm.view(), in.wm.view(), in.csf.view()};
  perfq::QualityOptions options;
  options.brain = in.brain.view();
  options.status = maps.status.view();
  omp_set_num_threads(e.threads);
  for (auto _ : state) {
    const perfq::QualityReport r = perfq::quality_indices(maps.cbf.view(), tissue, options);
    benchmark::DoNotOptimize(r.indices.data());
  }
  set_throughput(state, in.voxels());
}

void BM_QualityIndices(benchmark::State& state) { quality_loop(state, true); }
void BM_QualityIndicesBrainOnly(benchmark::State& state) { quality_loop(state, false); }

// The white-paper formula transcribed literally: double precision, both exp() per voxel,
// every voxel computed and masked afterwards, fresh outputs per call, one thread.
void BM_NaiveExpLoop(benchmark::State& state) {
  const Inputs& in = inputs(state.range(0));
  const perfq::ResolvedConstants c = perfq::resolve_constants(in.protocol, in.physiology);
  const double pld = in.protocol.post_labeling_delay.front();
  const double tau = in.protocol.labeling_duration.front();
  const std::size_t n = in.voxels();
  std::vector<float> cbf;
  std::vector<std::uint8_t> status;
  for (auto _ : state) {
    cbf = std::vector<float>(n);
    status = std::vector<std::uint8_t>(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double m0 = in.m0[i] / c.m0_scale;
      const double value = 6000.0 * c.blood_brain_partition * in.delta_m[i] *
                           std::exp(pld / c.t1_blood) /
                           (2.0 * c.effective_labeling_efficiency * c.t1_blood * m0 *
                            (1.0 - std::exp(-tau / c.t1_blood)));
      const bool ok = in.brain[i] != 0 && m0 > 0.0 && std::isfinite(value);
      cbf[i] = ok ? static_cast<float>(value) : 0.0f;
      status[i] = ok ? 0 : 1;
    }
    benchmark::DoNotOptimize(cbf.data());
    benchmark::DoNotOptimize(status.data());
  }
  set_throughput(state, n);
  // Guards the comparison: the baseline must compute what perfq computes.
  const perfq::CbfMaps ref =
      perfq::quantify_cbf(in.delta_m, perfq::M0Source::from_image(in.m0), in.protocol,
                          in.physiology, in.brain.view(), perfq::Execution{perfq::Backend::Cpu});
  for (std::size_t i = 0; i < n; ++i) {
    if (std::abs(cbf[i] - ref.cbf[i]) > 1e-5f * std::max(1.0f, std::abs(ref.cbf[i]))) {
      state.SkipWithError("naive loop disagrees with perfq::quantify_cbf");
      break;
    }
  }
}

// Roofline: memcpy of half the 14 bytes/voxel, so that bytes read + written (7 + 7) equal
// quantify's traffic; items are voxels, so items/s compares directly with the lines above.
void BM_MemcpyRoofline(benchmark::State& state) {
  const std::size_t bytes = inputs(state.range(0)).voxels() * kBytesPerVoxel / 2;
  const int threads = static_cast<int>(state.range(1));
  std::vector<char> src(bytes, 1), dst(bytes, 0);  // touched now: no page faults when timed
  for (auto _ : state) {
#pragma omp parallel num_threads(threads)
    {
      const std::size_t k = omp_get_thread_num(), team = omp_get_num_threads();
      const std::size_t begin = bytes * k / team, end = bytes * (k + 1) / team;
      std::memcpy(dst.data() + begin, src.data() + begin, end - begin);
    }
    benchmark::ClobberMemory();
  }
  set_throughput(state, bytes * 2 / kBytesPerVoxel);
}

// Real time throughout: CPU time of the main thread undercounts multi-threaded and GPU work.
void per_grid(benchmark::internal::Benchmark* b) {
  b->ArgName("mm")->Arg(3)->Arg(1)->UseRealTime()->Unit(benchmark::kMicrosecond);
}

// 1 thread and every thread OpenMP offers (OMP_NUM_THREADS or the cores), on both grids.
void per_grid_and_threads(benchmark::internal::Benchmark* b) {
  b->ArgNames({"mm", "threads"})->UseRealTime()->Unit(benchmark::kMicrosecond);
  for (int mm : {3, 1}) {
    b->Args({mm, 1});
    if (omp_get_max_threads() > 1) b->Args({mm, omp_get_max_threads()});
  }
}

BENCHMARK(BM_QuantifyCpu)->Apply(per_grid_and_threads);
BENCHMARK(BM_NaiveExpLoop)->Apply(per_grid);
BENCHMARK(BM_QualityIndices)->Apply(per_grid_and_threads);
BENCHMARK(BM_QualityIndicesBrainOnly)->Apply(per_grid_and_threads);
BENCHMARK(BM_MemcpyRoofline)->Apply(per_grid_and_threads);
BENCHMARK(BM_QuantifyCuda_EndToEnd)->Apply(per_grid);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("perfq_version", perfq::version());
  benchmark::AddCustomContext("omp_max_threads", std::to_string(omp_get_max_threads()));
  benchmark::AddCustomContext("cuda", perfq::cuda_available()
                                          ? perfq::cuda_device_names().front()
                                          : "unavailable: " + perfq::cuda_unavailable_reason());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
