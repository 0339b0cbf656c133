// Rigid registration (perfq::io::register_rigid) of a 64×64×20 M0-like image (3.4×3.4×6 mm,
// oblique) to a 1 mm T1w-like image (180×216×168), both made from the phantom's anatomy as in
// tests/io/test_registration.cpp, with 1 and 2 threads. Wall-clock time per registration
// (UseRealTime), preparation (the T1w's smoothing to the M0's resolution) included.
#include <benchmark/benchmark.h>

#include <perfq/io/registration.hpp>

#include "../tests/io/registration_data.hpp"

#include <cmath>

namespace {

struct Inputs {
  perfq_test::Anatomy anatomy = perfq_test::make_anatomy();
  perfq::Volume<float> m0 =
      perfq_test::make_m0(anatomy, perfq_test::epi_grid({64, 64, 20}, {3.4, 3.4, 6}, 12.0),
                          perfq::io::Transform::rigid({0.05, -0.1, 0.03}, {4.0, -6.0, 3.0}), 0.03);
};

const Inputs& inputs() {
  static const Inputs in;
  return in;
}

void BM_RegisterRigid(benchmark::State& state) {
  const Inputs& in = inputs();
  perfq::io::RegistrationOptions options;
  options.threads = static_cast<int>(state.range(0));
  for (auto _ : state) {
    const auto r = perfq::io::register_rigid(in.m0, in.anatomy.t1w, options);
    benchmark::DoNotOptimize(r.final_metric);
  }
}

}  // namespace

BENCHMARK(BM_RegisterRigid)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
