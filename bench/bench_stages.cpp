// The stages of a whole `perfq cbf` run, each timed on its own through the library (issue #22):
// reading the ASL-BIDS series (read_asl_bids: inflating and parsing the images, the sidecars),
// quantifying it (quantify_series, 1 and 2 CPU threads), writing the outputs
// (write_series_outputs, .nii.gz and uncompressed .nii), and inside writing one map: ITK's
// write with gzip level 1, the re-reading (inflating) that checks a written .nii.gz is whole,
// and the rename into place (two renames per iteration: there and back). Two phantom series,
// written once as ASL-BIDS datasets in $PERFQ_BENCH_STAGES_DIR (default: <temp>/perfq_bench_stages;
// reused when present):
//   md1m: 100 x 120 x 84 voxels of 1.8 mm (1.008 M), PCASL, 6 delays (0.25-1.5 s), 1 pair each
//   wb1mm: 182 x 218 x 182 voxels of 1 mm (7.2 M), PCASL, one delay (1.8 s), 8 pairs
// Times are wall-clock (UseRealTime) with the process's CPU time (every thread) beside. The
// breakdown (deflating = the .nii.gz write less the .nii write and BM_VerifyOutputs) and the
// figures: docs/performance.md, "A whole perfq cbf run, stage by stage".
#include <benchmark/benchmark.h>

#include <perfq/execution.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/phantom.hpp>

#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

enum Dataset { kMultiDelay1M = 0, kWholeBrain1mm = 1 };

const char* dataset_name(int d) { return d == kMultiDelay1M ? "md1m" : "wb1mm"; }

fs::path data_root() {
  const char* dir = std::getenv("PERFQ_BENCH_STAGES_DIR");
  return dir != nullptr ? fs::path(dir) : fs::temp_directory_path() / "perfq_bench_stages";
}

/// The `_asl.nii.gz` of dataset `d`, written on first use (and kept for later runs).
const std::string& series_path(int d) {
  static std::map<int, std::string> paths;
  auto found = paths.find(d);
  if (found != paths.end()) return found->second;
  const fs::path root = data_root() / dataset_name(d);
  const fs::path asl = root / "sub-01" / "perf" / "sub-01_asl.nii.gz";
  std::error_code ec;
  if (!fs::is_regular_file(asl, ec)) {
    perfq::PhantomOptions o;
    o.snr = 10.0;
    if (d == kMultiDelay1M) {
      o.dims = {100, 120, 84};
      o.voxel_mm = 1.8;
      o.delays = {0.25, 0.5, 0.75, 1.0, 1.25, 1.5};
      o.repeats = 1;
    } else {
      o.dims = {182, 218, 182};
      o.voxel_mm = 1.0;
      o.delays = {1.8};
      o.repeats = 8;
    }
    fs::create_directories(root);
    const std::string written =
        perfq::io::write_phantom_bids(perfq::make_phantom(o), root.string());
    if (fs::path(written) != asl) throw std::runtime_error("unexpected series path " + written);
  }
  return paths.emplace(d, asl.string()).first->second;
}

const perfq::io::AslDataset& dataset(int d) {
  static std::map<int, perfq::io::AslDataset> cache;
  auto found = cache.find(d);
  if (found == cache.end())
    found = cache.emplace(d, perfq::io::read_asl_bids(series_path(d))).first;
  return found->second;
}

perfq::io::SeriesRequest request(int threads) {
  perfq::io::SeriesRequest r;  // perfq cbf's defaults: no mask given, the brain mask computed
  r.execution.backend = perfq::Backend::Cpu;
  r.execution.threads = threads;
  return r;
}

const perfq::io::SeriesMaps& maps(int d) {
  static std::map<int, perfq::io::SeriesMaps> cache;
  auto found = cache.find(d);
  if (found == cache.end())
    found = cache.emplace(d, perfq::io::quantify_series(dataset(d), request(0))).first;
  return found->second;
}

fs::path scratch(const std::string& name) {
  const fs::path dir = data_root() / "out" / name;
  fs::create_directories(dir);
  return dir;
}

/// Inflates a .nii.gz in 1 MiB reads, as write_nifti's check of a written file does.
std::size_t inflate_file(const std::string& path) {
  gzFile in = gzopen(path.c_str(), "rb");
  if (in == nullptr) throw std::runtime_error("cannot open " + path);
  std::vector<unsigned char> buffer(1 << 20);
  std::size_t total = 0;
  while (true) {
    const int got = gzread(in, buffer.data(), static_cast<unsigned>(buffer.size()));
    if (got < 0) throw std::runtime_error("corrupt " + path);
    if (got == 0) break;
    total += static_cast<std::size_t>(got);
  }
  gzclose(in);
  return total;
}

// Reading: read_asl_bids, everything perfq cbf reads before quantifying.
void BM_Read(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const std::string& path = series_path(d);
  for (auto _ : state) benchmark::DoNotOptimize(perfq::io::read_asl_bids(path));
}

// The inflating part of reading: the series and its M0 image, zlib alone (one thread).
void BM_ReadInflateOnly(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const perfq::io::AslDataset& data = dataset(d);
  for (auto _ : state) {
    std::size_t bytes = inflate_file(data.asl_path);
    if (!data.m0_path.empty()) bytes += inflate_file(data.m0_path);
    benchmark::DoNotOptimize(bytes);
  }
}

// Quantifying the series already read, on `threads` CPU threads.
void BM_Quantify(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const perfq::io::AslDataset& data = dataset(d);
  const perfq::io::SeriesRequest r = request(static_cast<int>(state.range(1)));
  for (auto _ : state) benchmark::DoNotOptimize(perfq::io::quantify_series(data, r));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(data.asl.geometry().voxel_count()));
}

// Writing every output of the series (staged, checked, renamed), compressed (1) or not (0).
void BM_WriteOutputs(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const perfq::io::SeriesMaps& m = maps(d);
  perfq::io::SeriesOutputOptions options;
  options.compressed = state.range(1) != 0;
  const fs::path out = scratch(std::string("outputs-") + dataset_name(d));
  for (auto _ : state) {
    benchmark::DoNotOptimize(perfq::io::write_series_outputs(m, out.string(), true, options));
  }
}

// One CBF map through write_nifti: ITK's write (gzip level 1 for .nii.gz), the check of the
// written file (inflating it again for .nii.gz; its size for .nii) and the rename.
void BM_WriteCbfMap(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const perfq::io::SeriesMaps& m = maps(d);
  const std::string ext = state.range(1) != 0 ? ".nii.gz" : ".nii";
  const std::string path =
      (scratch("map") / (std::string(dataset_name(d)) + "_cbf" + ext)).string();
  for (auto _ : state) perfq::io::write_nifti(path, m.cbf.view());
}

// The check alone: inflating the written CBF map, as complete_on_disk does.
void BM_VerifyCbfMap(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const std::string path =
      (scratch("map") / (std::string(dataset_name(d)) + "_cbf.nii.gz")).string();
  perfq::io::write_nifti(path, maps(d).cbf.view());
  for (auto _ : state) benchmark::DoNotOptimize(inflate_file(path));
}

// The checks of every written output together: each .nii.gz of BM_WriteOutputs inflated.
void BM_VerifyOutputs(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const fs::path out = scratch(std::string("outputs-") + dataset_name(d));
  perfq::io::SeriesOutputOptions options;
  std::vector<std::string> images;
  for (const auto& path : perfq::io::write_series_outputs(maps(d), out.string(), true, options)) {
    if (path.size() > 7 && path.compare(path.size() - 7, 7, ".nii.gz") == 0) images.push_back(path);
  }
  for (auto _ : state) {
    for (const auto& path : images) benchmark::DoNotOptimize(inflate_file(path));
  }
}

// The rename into place (same folder), back and forth.
void BM_Rename(benchmark::State& state) {
  const fs::path dir = scratch("rename");
  const fs::path a = dir / "a.nii.gz", b = dir / "b.nii.gz";
  perfq::io::write_text_atomic(a.string(), std::string(1 << 20, 'x'));
  for (auto _ : state) {
    fs::rename(a, b);
    fs::rename(b, a);
  }
}

void datasets(benchmark::internal::Benchmark* b) {
  b->ArgNames({"data"})->Arg(kMultiDelay1M)->Arg(kWholeBrain1mm);
}

void datasets_by(benchmark::internal::Benchmark* b, const char* name) {
  b->ArgNames({"data", name});
  for (int d : {kMultiDelay1M, kWholeBrain1mm}) {
    for (int v : {1, 2}) b->Args({d, name[0] == 't' ? v : v - 1});
  }
}

void datasets_threads(benchmark::internal::Benchmark* b) { datasets_by(b, "threads"); }
void datasets_gz(benchmark::internal::Benchmark* b) { datasets_by(b, "gz"); }

void setup(benchmark::internal::Benchmark* b) {
  b->UseRealTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_Read)->Apply(datasets)->Apply(setup);
BENCHMARK(BM_ReadInflateOnly)->Apply(datasets)->Apply(setup);
BENCHMARK(BM_Quantify)->Apply(datasets_threads)->Apply(setup);
BENCHMARK(BM_WriteOutputs)->Apply(datasets_gz)->Apply(setup);
BENCHMARK(BM_WriteCbfMap)->Apply(datasets_gz)->Apply(setup);
BENCHMARK(BM_VerifyCbfMap)->Apply(datasets)->Apply(setup);
BENCHMARK(BM_VerifyOutputs)->Apply(datasets)->Apply(setup);
BENCHMARK(BM_Rename)->Apply(setup)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
