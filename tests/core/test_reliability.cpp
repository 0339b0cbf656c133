// Reliability of the computations (issue #6 §4-§5): chunk planning, chunked CPU runs bitwise
// identical to unchunked ones, the CUDA → CPU fallback decision of `auto` (exercised without a
// GPU through the PERFQ_TEST_FAIL_CUDA hook and the dispatch layer itself), and determinism
// across runs and thread counts of every output map.
#include <perfq/asl_series.hpp>
#include <perfq/cbf.hpp>
#include <perfq/distance.hpp>
#include <perfq/errors.hpp>
#include <perfq/execution.hpp>
#include <perfq/kinetic.hpp>
#include <perfq/phantom.hpp>
#include <perfq/stats.hpp>
#include <perfq/watershed.hpp>

#include "chunking.hpp"
#include "dispatch.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace {

using perfq::Backend;
using perfq::Execution;
namespace chunking = perfq::chunking;

Execution cpu(int threads = 0, std::size_t chunk = 0) {
  Execution e;
  e.backend = Backend::Cpu;
  e.threads = threads;
  e.max_chunk_voxels = chunk;
  return e;
}

/// Sets an environment variable for the lifetime of the guard.
class EnvGuard {
 public:
  EnvGuard(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    ::setenv(name, value, 1);
  }
  ~EnvGuard() { had_ ? ::setenv(name_, old_.c_str(), 1) : ::unsetenv(name_); }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

/// Bitwise equality of two float maps (NaN payloads included).
template <class T>
bool same_bits(const perfq::Volume<T>& a, const perfq::Volume<T>& b) {
  if (a.size() != b.size()) return false;
  return a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// ---- the planner ---------------------------------------------------------------------------

TEST(Chunking, PlanCoversTheRangeInOrderWithoutGapsOrOverlaps) {
  for (std::size_t count : {0u, 1u, 6u, 7u, 8u, 100u, 1001u}) {
    for (std::size_t chunk : {0u, 1u, 7u, 64u, 5000u}) {
      const auto ranges = chunking::plan(count, chunk);
      std::size_t next = 0;
      for (const auto& r : ranges) {
        EXPECT_EQ(r.begin, next);
        EXPECT_GT(r.size(), 0u);
        if (chunk > 0) EXPECT_LE(r.size(), chunk);
        next = r.end;
      }
      EXPECT_EQ(next, count) << count << " / " << chunk;
      const std::size_t expected =
          count == 0 ? 0 : (chunk == 0 || chunk >= count ? 1 : (count + chunk - 1) / chunk);
      EXPECT_EQ(ranges.size(), expected) << count << " / " << chunk;
    }
  }
  const auto r = chunking::plan(20, 7);  // 7 does not divide 20: 7, 7, 6
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[2].begin, 14u);
  EXPECT_EQ(r[2].end, 20u);
}

TEST(Chunking, ChunkSizeFollowsMemoryAndForcedLimit) {
  // 1000 voxels of 16 bytes; 8 KiB free of which 1 KiB shared tables: 448 voxels fit.
  EXPECT_EQ(chunking::chunk_voxels(1000, 16, 8192, 1024, 0), 448u);
  EXPECT_EQ(chunking::chunk_voxels(1000, 16, 8192, 1024, 100), 100u);  // forced smaller
  EXPECT_EQ(chunking::chunk_voxels(1000, 16, 1 << 30, 0, 0), 1000u);   // all fit
  EXPECT_EQ(chunking::chunk_voxels(1000, 16, 1 << 30, 0, 5000), 1000u);
  EXPECT_EQ(chunking::chunk_voxels(1000, 16, 1000, 1024, 0), 0u);  // not one voxel fits
  EXPECT_EQ(chunking::chunk_voxels(0, 16, 8192, 0, 0), 0u);
}

TEST(Chunking, ForcedSizeComesFromTheOptionThenTheEnvironment) {
  EXPECT_EQ(chunking::forced_max_chunk(5), 5u);
  {
    const EnvGuard env("PERFQ_MAX_CHUNK_VOXELS", "77");
    EXPECT_EQ(chunking::forced_max_chunk(0), 77u);
    EXPECT_EQ(chunking::forced_max_chunk(3), 3u);
  }
  for (const char* bad : {"", "abc", "-4", "12x"}) {
    const EnvGuard env("PERFQ_MAX_CHUNK_VOXELS", bad);
    EXPECT_EQ(chunking::forced_max_chunk(0), 0u) << bad;
  }
}

// ---- chunked CPU runs give the same bits ---------------------------------------------------

struct Data {
  perfq::Phantom phantom;
  perfq::PreparedAsl prepared;
  perfq::AslProtocol protocol;
};

Data make_data(std::vector<double> delays, double snr, bool two_d) {
  perfq::PhantomOptions o;
  o.dims = {20, 24, 16};
  o.snr = snr;
  o.repeats = 2;
  o.delays = std::move(delays);
  Data d{perfq::make_phantom(o), {}, {}};
  d.prepared = perfq::prepare_asl(d.phantom.asl, d.phantom.context, d.phantom.protocol);
  d.protocol = d.prepared.protocol;
  if (two_d) {
    // Per-slice delays: the slice factor must follow the voxel across chunk boundaries.
    d.protocol.readout = perfq::Readout::TwoD;
    d.protocol.slice_timing.clear();
    for (std::size_t z = 0; z < o.dims[2]; ++z) d.protocol.slice_timing.push_back(0.04 * z);
  }
  return d;
}

void expect_same_cbf(const perfq::CbfMaps& a, const perfq::CbfMaps& b, const std::string& what) {
  EXPECT_TRUE(same_bits(a.cbf, b.cbf)) << what;
  EXPECT_TRUE(same_bits(a.status, b.status)) << what;
}

void expect_same_fit(const perfq::KineticFit& a, const perfq::KineticFit& b,
                     const std::string& what) {
  EXPECT_TRUE(same_bits(a.cbf, b.cbf)) << what << " cbf";
  EXPECT_TRUE(same_bits(a.att, b.att)) << what << " att";
  EXPECT_TRUE(same_bits(a.cbf_se, b.cbf_se)) << what << " cbf_se";
  EXPECT_TRUE(same_bits(a.att_se, b.att_se)) << what << " att_se";
  EXPECT_TRUE(same_bits(a.residual_rms, b.residual_rms)) << what << " residual_rms";
  EXPECT_TRUE(same_bits(a.iterations, b.iterations)) << what << " iterations";
  EXPECT_TRUE(same_bits(a.status, b.status)) << what << " status";
  EXPECT_TRUE(same_bits(a.abv, b.abv)) << what << " abv";
  EXPECT_TRUE(same_bits(a.abv_se, b.abv_se)) << what << " abv_se";
  EXPECT_TRUE(same_bits(a.arterial_att, b.arterial_att)) << what << " arterial_att";
  EXPECT_EQ(a.noise_variance, b.noise_variance) << what;
}

TEST(Chunking, SingleDelayCpuChunksGiveIdenticalBits) {
  const Data d = make_data({1.8}, 5.0, true);
  perfq::Volume<float> m0 = d.phantom.m0;
  m0[3] = std::nanf("");  // every status on the way
  m0[4] = 0.0f;
  const std::size_t voxels = m0.size();  // 7680 = 2^9 · 15: 1000 does not divide it
  for (bool with_mask : {false, true}) {
    for (bool m0_image : {true, false}) {
      std::optional<perfq::View<const std::uint8_t>> mask;
      if (with_mask) mask = d.phantom.brain.view();
      const perfq::M0Source source = m0_image ? perfq::M0Source::from_image(m0.view())
                                              : perfq::M0Source::from_value(1000.0);
      const auto whole = perfq::quantify_cbf(d.prepared.delta_m.volume(0), source, d.protocol,
                                             d.phantom.physiology, mask, cpu());
      for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{1000}, voxels - 1}) {
        if (chunk == 1 && !(with_mask && m0_image)) continue;  // one case is enough (slow)
        const auto parts = perfq::quantify_cbf(d.prepared.delta_m.volume(0), source, d.protocol,
                                               d.phantom.physiology, mask, cpu(0, chunk));
        expect_same_cbf(whole, parts, "chunk " + std::to_string(chunk) + " mask " +
                                          std::to_string(with_mask) + " m0 image " +
                                          std::to_string(m0_image));
      }
    }
  }
  // The environment variable forces chunks as well.
  const EnvGuard env("PERFQ_MAX_CHUNK_VOXELS", "13");
  const auto whole = perfq::quantify_cbf(d.prepared.delta_m.volume(0),
                                         perfq::M0Source::from_image(m0.view()), d.protocol,
                                         d.phantom.physiology, std::nullopt, cpu(1));
  const auto again = perfq::quantify_cbf(d.prepared.delta_m.volume(0),
                                         perfq::M0Source::from_image(m0.view()), d.protocol,
                                         d.phantom.physiology, std::nullopt, cpu(0, 7680));
  expect_same_cbf(whole, again, "environment");
}

TEST(Chunking, MultiDelayCpuChunksGiveIdenticalBits) {
  const Data d = make_data({0.5, 1.0, 1.5, 2.0}, 8.0, true);
  for (int variant : {0, 1, 2}) {
    perfq::KineticOptions options;
    options.att_prior = variant == 1;
    options.arterial = variant == 2;
    const auto whole = perfq::fit_kinetic(d.prepared.delta_m, perfq::M0Source::from_image(d.phantom.m0.view()),
                                          d.protocol, d.phantom.physiology, options,
                                          d.phantom.brain.view(), cpu());
    for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{1000}}) {
      if (chunk == 1 && variant != 0) continue;  // one pass with single voxels is enough
      const auto parts = perfq::fit_kinetic(d.prepared.delta_m, perfq::M0Source::from_image(d.phantom.m0.view()),
                                            d.protocol, d.phantom.physiology, options,
                                            d.phantom.brain.view(), cpu(0, chunk));
      expect_same_fit(whole, parts,
                      "variant " + std::to_string(variant) + " chunk " + std::to_string(chunk));
    }
  }
}

// ---- the fallback of `auto` -------------------------------------------------------------------

TEST(Fallback, AutoFallsBackToCpuAndSaysSo) {
  Execution e;  // auto
  std::vector<std::string> notes;
  e.on_fallback = [&](const std::string& m) { notes.push_back(m); };
  bool cpu_ran = false;
  const Backend ran = perfq::dispatch::run(
      Backend::Cuda, e,
      [] { throw perfq::BackendError("out of device memory in cudaMalloc: out of memory"); },
      [&] { cpu_ran = true; });
  EXPECT_EQ(ran, Backend::Cpu);
  EXPECT_TRUE(cpu_ran);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0],
            "CUDA backend failed (out of device memory in cudaMalloc: out of memory); falling "
            "back to CPU");
}

TEST(Fallback, ExplicitCudaGetsTheBackendError) {
  Execution e;
  e.backend = Backend::Cuda;
  bool cpu_ran = false, told = false;
  e.on_fallback = [&](const std::string&) { told = true; };
  EXPECT_THROW(perfq::dispatch::run(
                   Backend::Cuda, e,
                   [] { throw perfq::BackendError("the CUDA device failed or was lost"); },
                   [&] { cpu_ran = true; }),
               perfq::BackendError);
  EXPECT_FALSE(cpu_ran);
  EXPECT_FALSE(told);
}

TEST(Fallback, OtherErrorsAreNotMaskedAndSuccessIsKept) {
  Execution e;
  bool cpu_ran = false;
  EXPECT_THROW(perfq::dispatch::run(
                   Backend::Cuda, e, [] { throw perfq::InvalidArgument("bad"); },
                   [&] { cpu_ran = true; }),
               perfq::InvalidArgument);
  EXPECT_FALSE(cpu_ran);
  EXPECT_EQ(perfq::dispatch::run(Backend::Cuda, e, [] {}, [&] { cpu_ran = true; }),
            Backend::Cuda);
  EXPECT_FALSE(cpu_ran);
}

TEST(Fallback, TestHookDrivesEveryPublicComputationThroughTheFallback) {
  const EnvGuard hook("PERFQ_TEST_FAIL_CUDA", "1");
  const Data d = make_data({1.8}, 0.0, false);
  std::vector<std::string> notes;
  Execution automatic;
  automatic.on_fallback = [&](const std::string& m) { notes.push_back(m); };

  const auto expected = perfq::quantify_cbf(d.prepared.delta_m.volume(0),
                                            perfq::M0Source::from_image(d.phantom.m0.view()),
                                            d.protocol, d.phantom.physiology, std::nullopt, cpu());
  const auto got = perfq::quantify_cbf(d.prepared.delta_m.volume(0),
                                       perfq::M0Source::from_image(d.phantom.m0.view()),
                                       d.protocol, d.phantom.physiology, std::nullopt, automatic);
  EXPECT_EQ(got.backend, Backend::Cpu);
  expect_same_cbf(expected, got, "fallback");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("CUDA backend failed ("), std::string::npos) << notes[0];
  EXPECT_NE(notes[0].find("); falling back to CPU"), std::string::npos) << notes[0];

  notes.clear();
  const Data m = make_data({0.5, 1.0, 1.5}, 0.0, false);
  perfq::KineticOptions options;
  options.att_prior = true;  // two passes: one fallback
  const auto fit = perfq::fit_kinetic(m.prepared.delta_m, perfq::M0Source::from_image(m.phantom.m0.view()),
                                      m.protocol, m.phantom.physiology, options,
                                      m.phantom.brain.view(), automatic);
  EXPECT_EQ(fit.backend, Backend::Cpu);
  EXPECT_EQ(notes.size(), 1u);

  notes.clear();
  const auto zones = perfq::border_zones(d.phantom.territories.view(), d.phantom.brain.view(),
                                         6.0, automatic);
  EXPECT_EQ(zones.backend, Backend::Cpu);
  EXPECT_EQ(zones.mask.values(),
            perfq::border_zones(d.phantom.territories.view(), d.phantom.brain.view(), 6.0, cpu())
                .mask.values());
  const auto distance = perfq::distance_map(d.phantom.brain.view(), {}, automatic);
  EXPECT_EQ(distance.values(), perfq::distance_map(d.phantom.brain.view(), {}, cpu()).values());
  perfq::StatsOptions so;
  const auto table = perfq::region_stats(expected.cbf.view(), d.phantom.territories.view(), so,
                                         automatic);
  EXPECT_EQ(table.backend, Backend::Cpu);
  EXPECT_EQ(notes.size(), 3u);

  // An explicit CPU request never consults the hook.
  notes.clear();
  Execution explicit_cpu = cpu();
  explicit_cpu.on_fallback = automatic.on_fallback;
  perfq::quantify_cbf(d.prepared.delta_m.volume(0), perfq::M0Source::from_image(d.phantom.m0.view()),
                      d.protocol, d.phantom.physiology, std::nullopt, explicit_cpu);
  EXPECT_TRUE(notes.empty());
}

// ---- determinism ------------------------------------------------------------------------------

TEST(Determinism, SingleDelayMapsAreBitwiseIdenticalAcrossRunsAndThreads) {
  const Data d = make_data({1.8}, 4.0, true);
  auto run = [&](int threads) {
    return perfq::quantify_cbf(d.prepared.delta_m.volume(0),
                               perfq::M0Source::from_image(d.phantom.m0.view()), d.protocol,
                               d.phantom.physiology, d.phantom.brain.view(), cpu(threads));
  };
  const auto first = run(1);
  for (int threads : {1, 2, 3}) {
    for (int repeat = 0; repeat < 2; ++repeat) {
      expect_same_cbf(first, run(threads), "threads " + std::to_string(threads));
    }
  }
}

TEST(Determinism, AThreadCountBeyondTheMachineRunsOnWhatItHas) {
  // More threads than the process may start (a container limited to some hundred tasks, or
  // --threads 100000) ran into the OpenMP runtime's failure to start them; the team is capped
  // at the processors available, with the same results.
  const Data d = make_data({1.8}, 4.0, true);
  auto run = [&](int threads) {
    return perfq::quantify_cbf(d.prepared.delta_m.volume(0),
                               perfq::M0Source::from_image(d.phantom.m0.view()), d.protocol,
                               d.phantom.physiology, d.phantom.brain.view(), cpu(threads));
  };
  expect_same_cbf(run(1), run(100000), "threads 100000");
  expect_same_cbf(run(1), run(std::numeric_limits<int>::max()), "threads INT_MAX");
}

TEST(Determinism, MultiDelayMapsAreBitwiseIdenticalAcrossRunsAndThreads) {
  const Data d = make_data({0.5, 1.0, 1.5, 2.0}, 6.0, false);
  for (int variant : {0, 1, 2}) {
    perfq::KineticOptions options;
    options.att_prior = variant == 1;
    options.arterial = variant == 2;
    auto run = [&](int threads) {
      return perfq::fit_kinetic(d.prepared.delta_m, perfq::M0Source::from_image(d.phantom.m0.view()),
                                d.protocol, d.phantom.physiology, options, d.phantom.brain.view(),
                                cpu(threads));
    };
    const auto first = run(1);
    for (int threads : {1, 2, 3}) {
      for (int repeat = 0; repeat < 2; ++repeat) {
        expect_same_fit(first, run(threads),
                        "variant " + std::to_string(variant) + " threads " + std::to_string(threads));
      }
    }
  }
}

}  // namespace
