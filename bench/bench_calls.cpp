// The C++ side of the Python package's benchmark (bench/python/bench_python.py, which runs
// this program and times the same calls from Python on the same files): single-delay CBF on a
// 2x2x2 grid (what one call costs), the multi-delay fit of a whole-brain ΔM series, and the
// pipeline on an ASL-BIDS series. The inputs are files the script writes into the folder
// named by PERFQ_BENCH_DATA: deltam.nii.gz (one volume per delay), m0.nii.gz, mask.nii.gz,
// asl.json (the series' sidecar) and series.txt (the path of the _asl.nii.gz).
#include <benchmark/benchmark.h>

#include <perfq/cbf.hpp>
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/kinetic.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace {

std::string data_file(const std::string& name) {
  const char* dir = std::getenv("PERFQ_BENCH_DATA");
  if (dir == nullptr) throw std::runtime_error("PERFQ_BENCH_DATA is not set (see bench_python.py)");
  return std::string(dir) + "/" + name;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Inputs {
  perfq::Image<float> delta_m, m0;
  perfq::Mask mask;
  perfq::AslProtocol protocol;
  perfq::Physiology physiology;
  std::string series;
};

const Inputs& inputs() {
  static const Inputs in = [] {
    Inputs i;
    i.delta_m = perfq::io::read_nifti(data_file("deltam.nii.gz"));
    i.m0 = perfq::io::read_nifti(data_file("m0.nii.gz"));
    i.mask = perfq::io::read_nifti_mask(data_file("mask.nii.gz"));
    i.protocol = perfq::io::parse_asl_sidecar(read_text(data_file("asl.json")), "asl.json");
    i.physiology = perfq::Physiology::at_field(i.protocol.magnetic_field_strength);
    i.series = read_text(data_file("series.txt"));
    while (!i.series.empty() && i.series.back() == '\n') i.series.pop_back();
    return i;
  }();
  return in;
}

perfq::Execution cpu() {
  perfq::Execution e;
  e.backend = perfq::Backend::Cpu;
  return e;
}

void BM_CbfTwoCubed(benchmark::State& state) {
  perfq::Geometry g;
  g.dims = {2, 2, 2};
  const perfq::Image<float> dm(g, 1, 10.0f);
  perfq::AslProtocol p;
  p.post_labeling_delay = {1.8};
  p.labeling_duration = {1.8};
  const perfq::Physiology physiology;
  for (auto _ : state) {
    benchmark::DoNotOptimize(perfq::quantify_cbf(dm, perfq::M0Source::relaxed_value(1000.0), p,
                                                 physiology, std::nullopt, cpu()));
  }
}

void BM_FitKineticWholeBrain(benchmark::State& state) {
  const Inputs& in = inputs();
  perfq::KineticOptions o;
  o.att_prior = true;
  for (auto _ : state) {
    benchmark::DoNotOptimize(perfq::fit_kinetic(in.delta_m, perfq::M0Source::from_image(in.m0),
                                                in.protocol, in.physiology, o, in.mask.view(),
                                                cpu()));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(in.m0.voxel_count()));
}

void BM_QuantifySeries(benchmark::State& state) {
  const Inputs& in = inputs();
  perfq::io::SeriesRequest r = perfq::io::parse_series_options({"--att-prior"});
  r.execution = cpu();
  for (auto _ : state) benchmark::DoNotOptimize(perfq::io::quantify_series(in.series, r));
}

}  // namespace

BENCHMARK(BM_CbfTwoCubed)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_FitKineticWholeBrain)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_QuantifySeries)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
