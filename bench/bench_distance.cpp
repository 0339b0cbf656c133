// Exact Euclidean distance transforms and atlas border zones (voxels/s) on a 1 mm whole-brain
// grid (182x218x182, the phantom at 1 mm), set against ITK's SignedMaurerDistanceMapImageFilter
// with the same number of threads in the same run.
//
// - Signed EDT of the brain mask, in mm: perfq::distance_map (signed) vs ITK's filter
//   (UseImageSpacing, not squared). Conventions differ on the mask (perfq: distance to the
//   nearest voxel off the mask; ITK: to the mask's contour), not the work.
// - Border zones (10 mm) of the phantom's three territories within its brain: perfq::
//   border_zones vs the same algorithm built on ITK's filter (one transform per territory,
//   folded into the two nearest territories by a plain loop).
// Wall-clock time (UseRealTime); every call allocates its outputs, as users call it.
#include <benchmark/benchmark.h>
#include <itkImage.h>
#include <itkSignedMaurerDistanceMapImageFilter.h>

#include <perfq/distance.hpp>
#include <perfq/execution.hpp>
#include <perfq/phantom.hpp>
#include <perfq/watershed.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace {

using ItkMask = itk::Image<unsigned char, 3>;
using ItkDistance = itk::Image<float, 3>;
using Maurer = itk::SignedMaurerDistanceMapImageFilter<ItkMask, ItkDistance>;

constexpr double kWidthMm = 10.0;

struct Inputs {
  perfq::Mask brain;
  perfq::Volume<std::int32_t> territories;
  std::size_t voxels() const { return brain.voxel_count(); }
};

// The phantom at 1 mm: brain 1.6 M voxels of 7.2 M, three territories. Built once, untimed.
const Inputs& inputs() {
  static const Inputs in = [] {
    perfq::PhantomOptions o;
    o.dims = {182, 218, 182};
    o.voxel_mm = 1.0;
    o.repeats = 1;
    perfq::Phantom p = perfq::make_phantom(o);
    return Inputs{std::move(p.brain), std::move(p.territories)};
  }();
  return in;
}

ItkMask::Pointer to_itk(const perfq::Mask& mask) {
  const perfq::Geometry& g = mask.geometry();
  ItkMask::RegionType region;
  ItkMask::SizeType size;
  ItkMask::SpacingType spacing;
  for (unsigned a = 0; a < 3; ++a) {
    size[a] = g.dims[a];
    spacing[a] = g.spacing[a];
  }
  region.SetSize(size);
  auto image = ItkMask::New();
  image->SetRegions(region);
  image->SetSpacing(spacing);
  image->Allocate();
  std::memcpy(image->GetBufferPointer(), mask.data(), mask.size());
  return image;
}

ItkDistance::Pointer itk_signed_distance(const ItkMask::Pointer& mask, int threads) {
  auto filter = Maurer::New();
  filter->SetInput(mask);
  filter->SetUseImageSpacing(true);
  filter->SetSquaredDistance(false);
  filter->SetInsideIsPositive(false);
  filter->SetBackgroundValue(0);
  filter->SetNumberOfWorkUnits(threads);
  filter->GetMultiThreader()->SetMaximumNumberOfThreads(threads);
  filter->Update();
  return filter->GetOutput();
}

perfq::Execution cpu(int threads) {
  perfq::Execution e;
  e.backend = perfq::Backend::Cpu;
  e.threads = threads;
  return e;
}

perfq::Execution cuda() {
  perfq::Execution e;
  e.backend = perfq::Backend::Cuda;
  return e;
}

bool skip_without_gpu(benchmark::State& state) {
  if (perfq::cuda_available()) return false;
  state.SkipWithError(("no CUDA device: " + perfq::cuda_unavailable_reason()).c_str());
  return true;
}

void finish(benchmark::State& state) {
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(inputs().voxels()));
}

// ---- signed EDT of the brain mask ---------------------------------------------------------

void signed_edt_perfq(benchmark::State& state, const perfq::Execution& execution) {
  const Inputs& in = inputs();
  perfq::DistanceOptions o;
  o.signed_distance = true;
  benchmark::DoNotOptimize(perfq::distance_map(in.brain, o, execution).data());  // warm-up
  for (auto _ : state) {
    perfq::Volume<float> d = perfq::distance_map(in.brain, o, execution);
    benchmark::DoNotOptimize(d.data());
  }
  finish(state);
}

void BM_SignedEdt_PerfqCpu(benchmark::State& state) {
  signed_edt_perfq(state, cpu(static_cast<int>(state.range(0))));
}

void BM_SignedEdt_PerfqCuda(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  signed_edt_perfq(state, cuda());
}

void BM_SignedEdt_ItkMaurer(benchmark::State& state) {
  const ItkMask::Pointer mask = to_itk(inputs().brain);
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) {
    ItkDistance::Pointer d = itk_signed_distance(mask, threads);
    benchmark::DoNotOptimize(d->GetBufferPointer());
  }
  finish(state);
}

// ---- border zones ---------------------------------------------------------------------------

void border_zones_perfq(benchmark::State& state, const perfq::Execution& execution) {
  const Inputs& in = inputs();
  perfq::border_zones(in.territories, in.brain.view(), kWidthMm, execution);  // warm-up
  for (auto _ : state) {
    perfq::BorderZones z =
        perfq::border_zones(in.territories, in.brain.view(), kWidthMm, execution);
    benchmark::DoNotOptimize(z.mask.data());
  }
  finish(state);
}

void BM_BorderZones_PerfqCpu(benchmark::State& state) {
  border_zones_perfq(state, cpu(static_cast<int>(state.range(0))));
}

void BM_BorderZones_PerfqCuda(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  border_zones_perfq(state, cuda());
}

// The same algorithm on ITK's transform: per territory, a binary image and its signed map;
// the two nearest territories folded per voxel.
void BM_BorderZones_ItkMaurer(benchmark::State& state) {
  const Inputs& in = inputs();
  const int threads = static_cast<int>(state.range(0));
  const std::size_t n = in.voxels();
  const double radius = 0.5 * kWidthMm;
  for (auto _ : state) {
    std::vector<float> first(n, std::numeric_limits<float>::infinity()), second(first);
    std::vector<std::int32_t> first_label(n, 0), second_label(n, 0);
    for (std::int32_t t = 1; t <= 3; ++t) {
      perfq::Mask sites(in.brain.geometry());
      for (std::size_t i = 0; i < n; ++i) sites[i] = in.territories[i] == t;
      const ItkDistance::Pointer d = itk_signed_distance(to_itk(sites), threads);
      const float* v = d->GetBufferPointer();
      for (std::size_t i = 0; i < n; ++i) {
        const float di = std::max(v[i], 0.0f);
        if (di < first[i]) {
          second[i] = first[i];
          second_label[i] = first_label[i];
          first[i] = di;
          first_label[i] = t;
        } else if (di < second[i]) {
          second[i] = di;
          second_label[i] = t;
        }
      }
    }
    perfq::Mask mask(in.brain.geometry());
    perfq::Volume<std::int32_t> pairs(in.brain.geometry());
    for (std::size_t i = 0; i < n; ++i) {
      if (in.brain[i] && second[i] <= radius) {
        mask[i] = 1;
        pairs[i] = perfq::pair_code(first_label[i], second_label[i]);
      }
    }
    benchmark::DoNotOptimize(mask.data());
    benchmark::DoNotOptimize(pairs.data());
  }
  finish(state);
}

void thread_counts(benchmark::internal::Benchmark* b) {
  const int all = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  b->ArgName("threads")->Arg(1);
  if (all > 1) b->Arg(all);
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

void gpu(benchmark::internal::Benchmark* b) { b->UseRealTime()->Unit(benchmark::kMillisecond); }

}  // namespace

BENCHMARK(BM_SignedEdt_PerfqCpu)->Apply(thread_counts);
BENCHMARK(BM_SignedEdt_ItkMaurer)->Apply(thread_counts);
BENCHMARK(BM_SignedEdt_PerfqCuda)->Apply(gpu);
BENCHMARK(BM_BorderZones_PerfqCpu)->Apply(thread_counts);
BENCHMARK(BM_BorderZones_ItkMaurer)->Apply(thread_counts);
BENCHMARK(BM_BorderZones_PerfqCuda)->Apply(gpu);

BENCHMARK_MAIN();
