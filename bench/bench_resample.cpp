// Resampling through transforms (perfq::io::resample*), target voxels per second:
//
// - Atlas: a 2 mm MNI-sized label image (91x109x91, 8 territories) onto an oblique 64x64x20
//   ASL grid (3.44 x 3.44 x 6 mm) by majority vote (footprint chosen: 2x2x3), through a rigid
//   transform, and through a displacement field composed with it (the fMRIPrep MNI-to-T1w
//   .h5 and the inverse of the ASL-to-T1w rigid: Transform::map per sub-point).
// - Probability map: a 1 mm map (182x218x182) onto a 3 mm grid (61x73x61), linear with
//   partial-volume averaging (footprint 3x3x3), through a rigid transform.
// One and two threads; wall-clock time; every call allocates its output, as users call it.
#include <benchmark/benchmark.h>

#include <perfq/io/resample.hpp>
#include <perfq/io/transform.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

using perfq::Geometry;
using perfq::Image;
using perfq::io::Transform;

Geometry mni_2mm() {
  Geometry g;
  g.dims = {91, 109, 91};
  g.spacing = {2.0, 2.0, 2.0};
  g.origin = {90.0, 126.0, -72.0};  // MNI152 2 mm in LPS: x and y axes point left/posterior
  g.direction = {-1, 0, 0, 0, -1, 0, 0, 0, 1};
  return g;
}

/// 8 territories: octants of an ellipsoid brain centred in the box, 0 outside.
const Image<std::int32_t>& atlas() {
  static const Image<std::int32_t> a = [] {
    Image<std::int32_t> img(mni_2mm());
    for (std::size_t k = 0; k < 91; ++k) {
      for (std::size_t j = 0; j < 109; ++j) {
        for (std::size_t i = 0; i < 91; ++i) {
          const double x = (i - 45.0) / 34.0, y = (j - 54.0) / 42.0, z = (k - 45.0) / 32.0;
          if (x * x + y * y + z * z > 1.0) continue;
          img.at(i, j, k) = 1 + (x > 0) + 2 * (y > 0) + 4 * (z > 0);
        }
      }
    }
    return img;
  }();
  return a;
}

/// An oblique 64x64x20 ASL grid over the brain.
Geometry asl_grid() {
  Geometry g;
  g.dims = {64, 64, 20};
  g.spacing = {3.4375, 3.4375, 6.0};
  const double c = std::cos(0.12), s = std::sin(0.12);
  g.direction = {1, 0, 0, 0, c, -s, 0, s, c};
  g.origin = {-108.0, -100.0, -45.0};
  return g;
}

const Transform& rigid() {
  static const Transform t = Transform::rigid({0.05, -0.03, 0.08}, {2.0, -3.0, 4.0});
  return t;
}

/// A smooth displacement field on a 4 mm grid over the MNI box, written in ITK's text format
/// and read back (as fMRIPrep's .h5 would be), composed with the rigid: MNI <- T1w <- ASL.
const Transform& warped() {
  static const Transform t = [] {
    const std::size_t n[3] = {46, 55, 46};
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("perfq-bench-field-" + std::to_string(getpid()) + ".txt"))
                                 .string();
    {
      std::ofstream out(path);
      out << "#Insight Transform File V1.0\n#Transform 0\n"
             "Transform: DisplacementFieldTransform_double_3_3\nParameters:";
      for (std::size_t k = 0; k < n[2]; ++k)
        for (std::size_t j = 0; j < n[1]; ++j)
          for (std::size_t i = 0; i < n[0]; ++i)
            out << ' ' << 2.0 * std::sin(0.2 * i) << ' ' << 1.5 * std::cos(0.15 * j) << ' '
                << std::sin(0.1 * (i + k));
      out << "\nFixedParameters: " << n[0] << ' ' << n[1] << ' ' << n[2]
          << " -92 -128 -74 4 4 4 1 0 0 0 1 0 0 0 1\n";
    }
    const Transform field = perfq::io::read_transform(path);
    std::remove(path.c_str());
    return perfq::io::compose({field, rigid()});
  }();
  return t;
}

void atlas_majority(benchmark::State& state, const Transform& transform) {
  perfq::io::ResampleOptions o;
  o.threads = static_cast<int>(state.range(0));
  const Geometry target = asl_grid();
  for (auto _ : state) {
    auto out =
        perfq::io::resample_labels(atlas(), target, transform, perfq::io::LabelRule::Majority, o);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * target.voxel_count());
}

void BM_AtlasMajorityRigid(benchmark::State& state) { atlas_majority(state, rigid()); }
void BM_AtlasMajorityField(benchmark::State& state) { atlas_majority(state, warped()); }

/// A smooth 1 mm probability map in [0, 1].
const Image<float>& probability_1mm() {
  static const Image<float> p = [] {
    Geometry g;
    g.dims = {182, 218, 182};
    g.origin = {-91.0, -126.0, -72.0};
    Image<float> img(g);
    for (std::size_t k = 0; k < 182; ++k)
      for (std::size_t j = 0; j < 218; ++j)
        for (std::size_t i = 0; i < 182; ++i)
          img.at(i, j, k) = static_cast<float>(0.5 + 0.5 * std::sin(0.11 * i) * std::cos(0.07 * j) *
                                                         std::sin(0.05 * k + 0.3));
    return img;
  }();
  return p;
}

void BM_ProbabilityMap1mmTo3mm(benchmark::State& state) {
  perfq::io::ResampleOptions o;
  o.threads = static_cast<int>(state.range(0));
  Geometry target;
  target.dims = {61, 73, 61};
  target.spacing = {3.0, 3.0, 3.0};
  target.origin = {-90.0, -125.0, -71.0};
  for (auto _ : state) {
    auto out = perfq::io::resample(probability_1mm(), target, rigid(), o);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * target.voxel_count());
}

}  // namespace

BENCHMARK(BM_AtlasMajorityRigid)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AtlasMajorityField)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ProbabilityMap1mmTo3mm)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
