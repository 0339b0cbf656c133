// The spatial prior (KineticOptions::spatial, issue #20) beside the voxelwise fit on the same
// data: the phantom's whole brain at 3 mm (60 × 72 × 56 voxels, its GM/WM brain mask: about
// 58 k voxels), PCASL, 6 PLDs 0.25–1.5 s, one pair each, SNR 5 per pair (make_phantom). Each
// benchmark fits the prepared ΔM with the phantom's M0 and mask on the CPU, 1 or 2 threads,
// with or without the ATT prior; counters: the median |CBF| and |ATT| errors against the
// truth over the mask's voxels with CBF > 0, and for the spatial fit its sweeps and φ_CBF.
// Items per second are the mask's voxels fitted per second.
#include <benchmark/benchmark.h>

#include <perfq/asl_series.hpp>
#include <perfq/kinetic.hpp>
#include <perfq/phantom.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

namespace {

struct Data {
  perfq::Phantom phantom;
  perfq::PreparedAsl prepared;
  std::size_t voxels = 0;  // in the mask
};

const Data& data() {
  static std::unique_ptr<Data> d;
  if (d) return *d;
  d = std::make_unique<Data>();
  perfq::PhantomOptions o;
  o.delays = {0.25, 0.5, 0.75, 1.0, 1.25, 1.5};
  o.repeats = 1;
  o.snr = 5.0;
  o.seed = 11;
  d->phantom = perfq::make_phantom(o);
  d->prepared = perfq::prepare_asl(d->phantom.asl, d->phantom.context, d->phantom.protocol);
  for (const std::uint8_t b : d->phantom.brain.values()) d->voxels += b != 0;
  return *d;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

/// range(0): 0 voxelwise, 1 spatial; range(1): threads; range(2): 1 with the ATT prior.
void BM_SpatialPhantom(benchmark::State& state) {
  const Data& d = data();
  perfq::KineticOptions options;
  options.spatial = state.range(0) != 0;
  options.att_prior = state.range(2) != 0;
  options.variant = perfq::KineticVariant::WhitePaper;  // the phantom's signal: T1app = T1 blood
  perfq::Execution e;
  e.backend = perfq::Backend::Cpu;
  e.threads = static_cast<int>(state.range(1));
  perfq::KineticFit fit;
  for (auto _ : state) {
    fit = perfq::fit_kinetic(d.prepared.delta_m, perfq::M0Source::from_image(d.phantom.m0),
                             d.prepared.protocol, d.phantom.physiology, options,
                             d.phantom.brain.view(), e);
    benchmark::DoNotOptimize(fit.cbf.data());
  }
  std::vector<double> cbf_error, att_error;
  for (std::size_t i = 0; i < fit.cbf.size(); ++i) {
    const double truth = d.phantom.cbf[i];
    if (d.phantom.brain[i] == 0 || !(truth > 0)) continue;
    cbf_error.push_back(100.0 * std::abs(fit.cbf[i] - truth) / truth);
    att_error.push_back(std::abs(fit.att[i] - d.phantom.att[i]));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(d.voxels));
  state.counters["median_cbf_error_pct"] = median(cbf_error);
  state.counters["median_att_error_s"] = median(att_error);
  state.counters["sweeps"] = fit.spatial_iterations;
  state.counters["phi_cbf"] = fit.spatial_precision_cbf;
}

}  // namespace

BENCHMARK(BM_SpatialPhantom)
    ->ArgNames({"spatial", "threads", "att_prior"})
    ->ArgsProduct({{0, 1}, {1, 2}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
