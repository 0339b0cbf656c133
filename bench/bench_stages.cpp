// The stages of a whole `perfq cbf` run, each timed on its own through the library (issue #22):
// reading the ASL-BIDS series (read_asl_bids: inflating and parsing the images, the sidecars),
// quantifying it (quantify_series, 1 and 2 CPU threads), writing the outputs
// (write_series_outputs: uncompressed .nii, and .nii.gz deflated in 1 MiB gzip members on 1 or 2
// threads), one map alone the same three ways, beside it the map's file deflated by zlib at
// level 1 in one stream (how perfq wrote .nii.gz before: the peer of the members), and the
// rename into place (two renames per iteration: there and back). Two phantom series,
// written once as ASL-BIDS datasets in $PERFQ_BENCH_STAGES_DIR (default: <temp>/perfq_bench_stages;
// reused when present):
//   md1m: 100 x 120 x 84 voxels of 1.8 mm (1.008 M), PCASL, 6 delays (0.25-1.5 s), 1 pair each
//   wb1mm: 182 x 218 x 182 voxels of 1 mm (7.2 M), PCASL, one delay (1.8 s), 8 pairs
// Times are wall-clock (UseRealTime) with the process's CPU time (every thread) beside. The
// breakdown (deflating = the .nii.gz write less the .nii write) and the figures:
// docs/performance.md, "A whole perfq cbf run, stage by stage".
#include <benchmark/benchmark.h>

#include <perfq/execution.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/phantom.hpp>

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
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

// Reading: read_asl_bids, everything perfq cbf reads before quantifying, on 1 and 2 threads
// (the series as perfq writes it: gzip members that record their sizes, inflated side by side).
void BM_Read(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  const std::string& path = series_path(d);
  for (auto _ : state) benchmark::DoNotOptimize(perfq::io::read_asl_bids(path, threads));
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

// Writing every output of the series (staged, checked, renamed): uncompressed (gz 0), or
// compressed on gz threads (1 or 2).
void BM_WriteOutputs(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const perfq::io::SeriesMaps& m = maps(d);
  perfq::io::SeriesOutputOptions options;
  options.compressed = state.range(1) != 0;
  options.threads = static_cast<int>(std::max<int64_t>(1, state.range(1)));
  const fs::path out = scratch(std::string("outputs-") + dataset_name(d));
  for (auto _ : state) {
    benchmark::DoNotOptimize(perfq::io::write_series_outputs(m, out.string(), true, options));
  }
}

// One CBF map as perfq cbf writes it (write_series_output: ITK's header and voxels, deflated
// in members on gz threads, the size check, the rename), or uncompressed (gz 0).
void BM_WriteCbfMap(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const perfq::io::SeriesMaps& m = maps(d);
  const std::string ext = state.range(1) != 0 ? ".nii.gz" : ".nii";
  const std::string path =
      (scratch("map") / (std::string(dataset_name(d)) + "_cbf" + ext)).string();
  perfq::io::SeriesOutput output;
  output.name = fs::path(path).filename().string();
  output.map = &m.cbf;
  output.threads = static_cast<int>(std::max<int64_t>(1, state.range(1)));
  for (auto _ : state) perfq::io::write_series_output(output, path);
}

// The peer of the members: the CBF map's .nii file deflated by zlib at level 1 in one gzip
// stream, in memory (one thread; how perfq wrote its .nii.gz images before, through ITK).
void BM_ZlibLevel1CbfMap(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const std::string nii = (scratch("map") / (std::string(dataset_name(d)) + "_zlib.nii")).string();
  perfq::io::write_nifti(nii, maps(d).cbf.view());
  std::ifstream in(nii, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<unsigned char> out(compressBound(static_cast<uLong>(bytes.size())) + 64);
  for (auto _ : state) {
    z_stream z{};
    deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    z.avail_in = static_cast<uInt>(bytes.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate failed");
    benchmark::DoNotOptimize(z.total_out);
    deflateEnd(&z);
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
    // threads: 1, 2; gz: 0 (uncompressed), then 1 and 2 threads deflating.
    for (int v : {1, 2}) b->Args({d, v});
    if (name[0] == 'g') b->Args({d, 0});
  }
}

void datasets_threads(benchmark::internal::Benchmark* b) { datasets_by(b, "threads"); }
void datasets_gz(benchmark::internal::Benchmark* b) { datasets_by(b, "gz"); }

void setup(benchmark::internal::Benchmark* b) {
  b->UseRealTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_Read)->Apply(datasets_threads)->Apply(setup);
BENCHMARK(BM_ReadInflateOnly)->Apply(datasets)->Apply(setup);
BENCHMARK(BM_Quantify)->Apply(datasets_threads)->Apply(setup);
BENCHMARK(BM_WriteOutputs)->Apply(datasets_gz)->Apply(setup);
BENCHMARK(BM_WriteCbfMap)->Apply(datasets_gz)->Apply(setup);
BENCHMARK(BM_ZlibLevel1CbfMap)->Apply(datasets)->Apply(setup);
BENCHMARK(BM_Rename)->Apply(setup)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
