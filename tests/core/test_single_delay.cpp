// Single-delay quantification against hand-computed white-paper numbers.
//
// Reference values were computed by hand (with a calculator) from
//   PCASL: CBF = 6000 λ ΔM e^(PLD/T1b) / (2 α T1b M0 (1 − e^(−τ/T1b)))
//   PASL:  CBF = 6000 λ ΔM e^(TI/T1b) / (2 α TI1 M0)
// e.g. ΔM 10, M0 1000, PLD = τ = 1.8 s, λ 0.9, T1b 1.65 s, α 0.85:
//   e^(1.8/1.65) = 2.97672, 1 − e^(−1.8/1.65) = 0.664062
//   CBF = 6000·0.9·10·2.97672 / (2·0.85·1.65·1000·0.664062) = 86.2999 ml/100 g/min
#include <perfq/calibration.hpp>
#include <perfq/cbf.hpp>
#include <perfq/errors.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <limits>
#include <random>

namespace {

using perfq::AslProtocol;
using perfq::Backend;
using perfq::Execution;
using perfq::Geometry;
using perfq::LabelingType;
using perfq::M0Source;
using perfq::Physiology;
using perfq::Volume;
using perfq::VoxelStatus;

Geometry grid(std::size_t nx, std::size_t ny, std::size_t nz) {
  Geometry g;
  g.dims = {nx, ny, nz};
  g.spacing = {3.0, 3.0, 4.0};
  return g;
}

AslProtocol pcasl(double pld = 1.8, double tau = 1.8) {
  AslProtocol p;
  p.labeling_type = LabelingType::Pcasl;
  p.post_labeling_delay = {pld};
  p.labeling_duration = {tau};
  return p;
}

Execution cpu() {
  Execution e;
  e.backend = Backend::Cpu;
  return e;
}

/// Quantifies a uniform ΔM/M0 image and returns voxel 0 (all voxels must agree).
double uniform_cbf(const AslProtocol& protocol, const Physiology& physiology, float delta_m,
                   float m0, std::size_t nz = 1) {
  const Geometry g = grid(2, 2, nz);
  Volume<float> dm(g, 1, delta_m), m(g, 1, m0);
  const auto maps = perfq::quantify_cbf(dm, M0Source::from_image(m), protocol, physiology,
                                        std::nullopt, cpu());
  EXPECT_EQ(maps.backend, Backend::Cpu);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(maps.cbf[i], maps.cbf[0]);
  return maps.cbf[0];
}

constexpr double kRel = 2e-6;  // float arithmetic on a double-precision factor

TEST(SingleDelay, PcaslMatchesHandComputedValue) {
  EXPECT_NEAR(uniform_cbf(pcasl(), Physiology{}, 10.0f, 1000.0f), 86.29992, 86.3 * kRel);
}

TEST(SingleDelay, PcaslScalesLinearlyWithDeltaMAndInverselyWithM0) {
  const double base = uniform_cbf(pcasl(), Physiology{}, 10.0f, 1000.0f);
  EXPECT_NEAR(uniform_cbf(pcasl(), Physiology{}, 20.0f, 1000.0f), 2 * base, 2 * base * kRel);
  EXPECT_NEAR(uniform_cbf(pcasl(), Physiology{}, 10.0f, 2000.0f), base / 2, base * kRel);
}

TEST(SingleDelay, PaslQuipssIIMatchesHandComputedValue) {
  // TI 1.8 s, TI1 0.8 s, α 0.98: 6000·0.9·10·2.97672 / (2·0.98·0.8·1000) = 102.5235
  AslProtocol p;
  p.labeling_type = LabelingType::Pasl;
  p.post_labeling_delay = {1.8};
  p.bolus_cutoff_delay = 0.8;
  EXPECT_NEAR(uniform_cbf(p, Physiology{}, 10.0f, 1000.0f), 102.52352, 102.5 * kRel);
}

TEST(SingleDelay, CaslUsesItsOwnDefaultEfficiency) {
  AslProtocol p = pcasl();
  p.labeling_type = LabelingType::Casl;
  // Same formula as PCASL with α 0.68 instead of 0.85.
  EXPECT_NEAR(uniform_cbf(p, Physiology{}, 10.0f, 1000.0f), 86.29992 * 0.85 / 0.68,
              107.9 * kRel);
}

TEST(SingleDelay, TwoDReadoutAddsSliceTimeToTheDelay) {
  AslProtocol p = pcasl();
  p.readout = perfq::Readout::TwoD;
  p.slice_timing = {0.0, 0.04, 0.08};
  const Geometry g = grid(2, 2, 3);
  Volume<float> dm(g, 1, 10.0f), m0(g, 1, 1000.0f);
  const auto maps = perfq::quantify_cbf(dm, M0Source::from_image(m0), p, Physiology{},
                                        std::nullopt, cpu());
  // PLD 1.80, 1.84, 1.88 s: e^(PLD/1.65) grows by e^(0.04/1.65) = 1.024542 per slice.
  EXPECT_NEAR(maps.cbf.at(1, 1, 0), 86.29992, 86.3 * kRel);
  EXPECT_NEAR(maps.cbf.at(0, 1, 1), 88.41760, 88.4 * kRel);
  EXPECT_NEAR(maps.cbf.at(1, 0, 2), 90.58725, 90.6 * kRel);
}

TEST(SingleDelay, BackgroundSuppressionPulsesLowerTheEfficiency) {
  AslProtocol p = pcasl();
  p.background_suppression.enabled = true;
  p.background_suppression.pulses = 4;
  // α = 0.85 · 0.95^4 = 0.85 · 0.81450625 = 0.6923303: 86.29992 · 0.85 / 0.6923303 = 105.9537
  EXPECT_NEAR(uniform_cbf(p, Physiology{}, 10.0f, 1000.0f), 105.95366, 106.0 * kRel);
  const auto c = perfq::resolve_constants(p, Physiology{});
  EXPECT_EQ(c.background_suppression_source, "pulses");
  EXPECT_NEAR(c.effective_labeling_efficiency, 0.6923303125, 1e-12);
}

TEST(SingleDelay, GivenBackgroundSuppressionEfficiencyWinsOverPulses) {
  AslProtocol p = pcasl();
  p.background_suppression.enabled = true;
  p.background_suppression.pulses = 4;
  p.background_suppression.efficiency = 0.5;
  EXPECT_NEAR(uniform_cbf(p, Physiology{}, 10.0f, 1000.0f), 2 * 86.29992, 172.6 * kRel);
}

TEST(SingleDelay, LabelingEfficiencyPrecedence) {
  AslProtocol p = pcasl();
  p.labeling_efficiency = 0.425;  // sidecar: half the default doubles CBF
  EXPECT_NEAR(uniform_cbf(p, Physiology{}, 10.0f, 1000.0f), 2 * 86.29992, 172.6 * kRel);
  Physiology override;
  override.labeling_efficiency = 0.85;  // user override beats the sidecar
  EXPECT_NEAR(uniform_cbf(p, override, 10.0f, 1000.0f), 86.29992, 86.3 * kRel);
  EXPECT_EQ(perfq::resolve_constants(p, override).labeling_efficiency_source, "override");
  EXPECT_EQ(perfq::resolve_constants(p, Physiology{}).labeling_efficiency_source, "sidecar");
}

TEST(SingleDelay, ShortRepetitionTimeM0IsCorrected) {
  // TR 2 s, T1 tissue 1.3 s: M0 is divided by 1 − e^(−2/1.3) = 0.785290, so CBF scales by it:
  // 86.29992 · 0.785290 = 67.7704
  AslProtocol p = pcasl();
  p.m0_repetition_time = 2.0;
  EXPECT_NEAR(uniform_cbf(p, Physiology{}, 10.0f, 1000.0f), 67.77036, 67.8 * kRel);
  p.m0_repetition_time = 5.0;  // long enough: no correction
  EXPECT_NEAR(uniform_cbf(p, Physiology{}, 10.0f, 1000.0f), 86.29992, 86.3 * kRel);
}

TEST(SingleDelay, FieldStrengthDefaults) {
  EXPECT_DOUBLE_EQ(Physiology::at_field(3.0).t1_blood, 1.65);
  EXPECT_DOUBLE_EQ(Physiology::at_field(1.5).t1_blood, 1.35);
  // T1b 1.35 s: 6000·0.9·10·e^(1.8/1.35) / (2·0.85·1.35·1000·(1 − e^(−1.8/1.35))) = 121.2146
  EXPECT_NEAR(uniform_cbf(pcasl(), Physiology::at_field(1.5), 10.0f, 1000.0f), 121.21459,
              121.2 * kRel);
}

TEST(SingleDelay, SingleM0ValueEqualsUniformImage) {
  const Geometry g = grid(3, 2, 2);
  Volume<float> dm(g, 1, 10.0f);
  const auto maps = perfq::quantify_cbf(dm, M0Source::from_value(1000.0), pcasl(), Physiology{},
                                        std::nullopt, cpu());
  for (std::size_t i = 0; i < g.voxel_count(); ++i) EXPECT_NEAR(maps.cbf[i], 86.29992, 2e-4);
}

TEST(SingleDelay, ARelaxedM0GetsNoShortTrCorrection) {
  // An M0 at TR 2 s has recovered 1 − e^(−2/1.3) = 0.785289 of itself (T1 tissue 1.3 s):
  // divided by that, it lowers CBF to 0.785289 × the relaxed 86.29992 (hand-computed above).
  // An M0 already corrected to full relaxation (reference-region calibration) is not.
  const Geometry g = grid(3, 2, 2);
  Volume<float> dm(g, 1, 10.0f);
  AslProtocol short_tr = pcasl();
  short_tr.m0_repetition_time = 2.0;
  const auto corrected = perfq::quantify_cbf(dm, M0Source::from_value(1000.0), short_tr,
                                             Physiology{}, std::nullopt, cpu());
  const auto relaxed = perfq::quantify_cbf(dm, M0Source::relaxed_value(1000.0), short_tr,
                                           Physiology{}, std::nullopt, cpu());
  EXPECT_NEAR(corrected.constants.m0_scale, 1.0 - std::exp(-2.0 / 1.3), 1e-12);
  EXPECT_EQ(relaxed.constants.m0_scale, 1.0);
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    EXPECT_NEAR(corrected.cbf[i], 86.29992 * 0.785289, 2e-4);
    EXPECT_NEAR(relaxed.cbf[i], 86.29992, 2e-4);
  }
}

TEST(SingleDelay, ImagesOffTheGridAreRefusedInOneWording) {
  // Every entry point that takes several images says the same: which image, whose grid, and
  // what is wrong with it.
  const Geometry g = grid(3, 2, 2);
  Geometry shifted = g;
  shifted.origin[0] = 1.5;
  Volume<float> dm(g, 1, 10.0f), m0_off(shifted, 1, 1000.0f);
  perfq::Mask two_volumes(g, 2, 1);
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const perfq::InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message([&] {
              perfq::quantify_cbf(dm, M0Source::from_image(m0_off), pcasl(), Physiology{},
                                  std::nullopt, cpu());
            }),
            "M0 must be one volume on the grid of the ΔM image; its grid differs (dimensions, "
            "voxel size, origin or orientation)");
  EXPECT_EQ(message([&] {
              perfq::quantify_cbf(dm, M0Source::from_value(1000.0), pcasl(), Physiology{},
                                  two_volumes.view(), cpu());
            }),
            "the mask must be one volume on the grid of the ΔM image; it has 2 volumes");
  EXPECT_EQ(message([&] { perfq::smooth_m0(dm, 4.0, two_volumes.view()); }),
            "smooth_m0: the region must be one volume on the grid of M0; it has 2 volumes");
}

TEST(SingleDelay, BadVoxelsGetStatusAndZero) {
  const Geometry g = grid(6, 1, 1);
  Volume<float> dm(g, 1, 10.0f), m0(g, 1, 1000.0f);
  perfq::Mask mask(g, 1, 1);
  m0[0] = 0.0f;                                             // M0 zero
  m0[1] = -5.0f;                                            // M0 negative
  dm[2] = std::numeric_limits<float>::quiet_NaN();          // NaN ΔM
  m0[3] = std::numeric_limits<float>::infinity();           // Inf M0
  mask[4] = 0;                                              // outside mask
  m0[5] = 1e-38f;                                           // overflow to Inf
  dm[5] = 1e38f;
  const auto maps = perfq::quantify_cbf(dm, M0Source::from_image(m0), pcasl(), Physiology{},
                                        mask.view(), cpu());
  const VoxelStatus expected[6] = {VoxelStatus::M0NotPositive, VoxelStatus::M0NotPositive,
                                   VoxelStatus::NonFiniteInput, VoxelStatus::NonFiniteInput,
                                   VoxelStatus::OutsideMask, VoxelStatus::NonFiniteResult};
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(maps.status[i], static_cast<std::uint8_t>(expected[i])) << "voxel " << i;
    EXPECT_EQ(maps.cbf[i], 0.0f) << "voxel " << i;
  }
}

TEST(SingleDelay, RefusesContradictoryArguments) {
  const Geometry g = grid(2, 2, 2);
  Volume<float> dm(g, 1, 10.0f), m0(g, 1, 1000.0f);
  Geometry other = g;
  other.spacing[0] = 2.0;
  Volume<float> m0_other(other, 1, 1000.0f);
  const auto run = [&](const AslProtocol& p, const M0Source& m) {
    return perfq::quantify_cbf(dm, m, p, Physiology{}, std::nullopt, cpu());
  };
  AslProtocol multi = pcasl();
  multi.post_labeling_delay = {1.0, 1.5};
  EXPECT_THROW(run(multi, M0Source::from_image(m0)), perfq::InvalidArgument);
  AslProtocol no_tau = pcasl();
  no_tau.labeling_duration.clear();
  EXPECT_THROW(run(no_tau, M0Source::from_image(m0)), perfq::InvalidArgument);
  AslProtocol pasl_no_ti1 = pcasl();
  pasl_no_ti1.labeling_type = LabelingType::Pasl;
  EXPECT_THROW(run(pasl_no_ti1, M0Source::from_image(m0)), perfq::InvalidArgument);
  AslProtocol two_d = pcasl();
  two_d.readout = perfq::Readout::TwoD;
  EXPECT_THROW(run(two_d, M0Source::from_image(m0)), perfq::InvalidArgument);
  EXPECT_THROW(run(pcasl(), M0Source::from_image(m0_other)), perfq::InvalidArgument);
  EXPECT_THROW(run(pcasl(), M0Source::from_value(0.0)), perfq::InvalidArgument);
  EXPECT_THROW(run(pcasl(), M0Source::from_value(std::nan(""))), perfq::InvalidArgument);
  Physiology bad;
  bad.t1_blood = -1.0;
  EXPECT_THROW(perfq::quantify_cbf(dm, M0Source::from_image(m0), pcasl(), bad), perfq::InvalidArgument);
}

TEST(SingleDelay, CpuResultIsBitwiseIdenticalAcrossThreadCounts) {
  Geometry g = grid(37, 23, 11);
  Volume<float> dm(g), m0(g);
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    dm[i] = static_cast<float>((i * 7919) % 101) - 20.0f;
    m0[i] = 500.0f + static_cast<float>((i * 104729) % 997);
  }
  Execution one = cpu(), two = cpu();
  one.threads = 1;
  two.threads = 2;
  const auto a = perfq::quantify_cbf(dm, M0Source::from_image(m0), pcasl(), Physiology{},
                                     std::nullopt, one);
  const auto b = perfq::quantify_cbf(dm, M0Source::from_image(m0), pcasl(), Physiology{},
                                     std::nullopt, two);
  EXPECT_EQ(a.cbf.values(), b.cbf.values());
  EXPECT_EQ(a.status.values(), b.status.values());
}

TEST(Backend, CudaRequestWithoutDeviceIsAClearError) {
  if (perfq::cuda_available()) GTEST_SKIP() << "a CUDA device is present";
  Execution e;
  e.backend = Backend::Cuda;
  try {
    perfq::resolve_backend(e);
    FAIL() << "expected BackendError";
  } catch (const perfq::BackendError& error) {
    EXPECT_NE(std::string(error.what()).find("CUDA"), std::string::npos) << error.what();
  }
  EXPECT_EQ(perfq::resolve_backend(Execution{}), Backend::Cpu);
  EXPECT_FALSE(perfq::cuda_unavailable_reason().empty());
}

// ---- reference-region calibration ------------------------------------------------------

TEST(ReferenceCalibration, MatchesHandComputedBloodM0) {
  // CSF region of M0 2000 (and 1e9 outside it, ignored), TR 4 s, TE 20 ms, defaults
  // T1 4.3 s, T2 0.75 s, λ 1.15, blood T2 0.15 s; by hand:
  //   1 − e^(−4/4.3) = 0.605538, e^(−0.02/0.75) = 0.973686, e^(−0.02/0.15) = 0.875173
  //   M0_ref = 2000 / 0.605538 / 0.973686 = 3392.11
  //   M0_blood = 3392.11 / 1.15 · 0.875173 = 2581.46
  const Geometry g = grid(4, 4, 2);
  Volume<float> m0(g, 1, 1e9f);
  perfq::Volume<std::uint8_t> region(g, 1, 0);
  for (std::size_t i = 0; i < 8; ++i) {
    m0[i] = i % 2 == 0 ? 1900.0f : 2100.0f;  // mean 2000
    region[i] = 1;
  }
  perfq::ReferenceCalibrationOptions o;
  o.repetition_time = 4.0;
  o.echo_time = 0.02;
  const perfq::ReferenceCalibration r = perfq::reference_region_m0(m0, region, o);
  EXPECT_EQ(r.voxels, 8u);
  EXPECT_DOUBLE_EQ(r.region_mean, 2000.0);
  EXPECT_NEAR(r.m0_reference, 3392.11, 0.01);
  EXPECT_NEAR(r.m0_blood, 2581.46, 0.01);
  EXPECT_DOUBLE_EQ(r.constants.t1, 4.3);
  EXPECT_DOUBLE_EQ(r.constants.partition, 1.15);

  // White matter, fully relaxed (TR 0), TE 0: M0_blood = mean / 0.82.
  o.tissue = perfq::ReferenceTissue::WhiteMatter;
  o.repetition_time = 0.0;
  o.echo_time = 0.0;
  EXPECT_NEAR(perfq::reference_region_m0(m0, region, o).m0_blood, 2000.0 / 0.82, 1e-9);
  // Overrides beat the defaults: T1 1 s at TR 1 s: 2000 / (1 − e^(−1)) / 0.5 = 6327.91.
  o.t1 = 1.0;
  o.partition = 0.5;
  o.repetition_time = 1.0;
  EXPECT_NEAR(perfq::reference_region_m0(m0, region, o).m0_blood, 6327.91, 0.01);

  // Used as documented: a WM region of M0 820 (λ_ref 0.82, fully relaxed, TE 0) is blood M0
  // 1000; quantified with the single M0 λ·1000 = 900 and no M0 TR, ΔM 10 gives the header's
  // hand value for M0 1000 scaled by 1000/900: 86.2999 · 1.11111 = 95.8888.
  Volume<float> wm(g, 1, 820.0f);
  perfq::ReferenceCalibrationOptions wm_options;
  wm_options.tissue = perfq::ReferenceTissue::WhiteMatter;
  const double blood = perfq::reference_region_m0(wm, region, wm_options).m0_blood;
  EXPECT_NEAR(blood, 1000.0, 1e-9);
  Volume<float> dm(g, 1, 10.0f);
  const auto maps = perfq::quantify_cbf(dm, M0Source::from_value(0.9 * blood), pcasl(),
                                        Physiology{}, std::nullopt, cpu());
  EXPECT_NEAR(maps.cbf[0], 95.8888, 95.8888 * kRel);

  // Names, and errors that say what is wrong.
  EXPECT_EQ(perfq::parse_reference_tissue("CSF"), perfq::ReferenceTissue::Csf);
  EXPECT_EQ(perfq::parse_reference_tissue("gm"), perfq::ReferenceTissue::GreyMatter);
  EXPECT_STREQ(perfq::to_string(perfq::ReferenceTissue::WhiteMatter), "wm");
  EXPECT_THROW(perfq::parse_reference_tissue("bone"), perfq::InvalidArgument);
  perfq::Volume<std::uint8_t> empty(g, 1, 0);
  EXPECT_THROW(perfq::reference_region_m0(m0, empty, {}), perfq::InvalidArgument);
  perfq::ReferenceCalibrationOptions bad;
  bad.partition = 0.0;
  EXPECT_THROW(perfq::reference_region_m0(m0, region, bad), perfq::InvalidArgument);
  bad = {};
  bad.echo_time = -0.01;
  EXPECT_THROW(perfq::reference_region_m0(m0, region, bad), perfq::InvalidArgument);
  Volume<float> negative(g, 1, -5.0f);
  EXPECT_THROW(perfq::reference_region_m0(negative, region, {}), perfq::InvalidArgument);
  perfq::Volume<std::uint8_t> other(grid(4, 4, 3), 1, 1);
  EXPECT_THROW(perfq::reference_region_m0(m0, other, {}), perfq::InvalidArgument);
}

TEST(M0Smoothing, KeepsUniformM0AndEdgesAndLowersNoise) {
  // 24×24×24 grid of 2 mm voxels; the region a 16-voxel cube in the middle.
  Geometry g;
  g.dims = {24, 24, 24};
  g.spacing = {2.0, 2.0, 2.0};
  perfq::Volume<std::uint8_t> cube(g, 1, 0);
  for (std::size_t z = 4; z < 20; ++z)
    for (std::size_t y = 4; y < 20; ++y)
      for (std::size_t x = 4; x < 20; ++x) cube[g.index(x, y, z)] = 1;

  // Uniform M0 inside, 0 outside: unchanged everywhere, the cube's edge included (plain
  // smoothing would halve its faces).
  Volume<float> flat(g, 1, 0.0f);
  for (std::size_t i = 0; i < flat.size(); ++i) flat[i] = cube[i] ? 1000.0f : 0.0f;
  const Volume<float> kept = perfq::smooth_m0(flat, 6.0, cube.view());
  for (std::size_t i = 0; i < kept.size(); ++i) ASSERT_NEAR(kept[i], flat[i], 1e-3) << i;

  // A gradient along x is kept in the middle of the cube (a symmetric kernel).
  Volume<float> ramp(g, 1, 0.0f);
  for (std::size_t z = 0; z < 24; ++z)
    for (std::size_t y = 0; y < 24; ++y)
      for (std::size_t x = 0; x < 24; ++x) ramp[g.index(x, y, z)] = 1000.0f + 10.0f * x;
  const Volume<float> ramp_s = perfq::smooth_m0(ramp, 4.0, cube.view());
  EXPECT_NEAR(ramp_s[g.index(12, 12, 12)], ramp[g.index(12, 12, 12)], 1e-2);

  // Noise of SD 100: a Gaussian of σ s voxels keeps, per axis, Σw²/(Σw)² ≈ 1/(2 s √π) of the
  // variance; FWHM 6 mm over 2 mm voxels is s = 1.274: 0.2214 per axis, SD × 0.1042 in 3D.
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.0f, 100.0f);
  Volume<float> noisy(g, 1, 0.0f);
  for (std::size_t i = 0; i < noisy.size(); ++i) noisy[i] = 1000.0f + noise(rng);
  const Volume<float> smooth = perfq::smooth_m0(noisy, 6.0, cube.view());
  double sum = 0, sum2 = 0;
  std::size_t count = 0;
  for (std::size_t z = 8; z < 16; ++z)  // the cube's core, away from its faces
    for (std::size_t y = 8; y < 16; ++y)
      for (std::size_t x = 8; x < 16; ++x) {
        const double v = smooth[g.index(x, y, z)];
        sum += v;
        sum2 += v * v;
        ++count;
      }
  const double mean = sum / count;
  const double sd = std::sqrt(sum2 / count - mean * mean);
  EXPECT_NEAR(mean, 1000.0, 5.0);
  EXPECT_GT(sd, 100.0 * 0.1042 * 0.75);
  EXPECT_LT(sd, 100.0 * 0.1042 * 1.25);
  // Outside the region nothing changes; FWHM 0 is a copy.
  EXPECT_EQ(smooth[g.index(1, 1, 1)], noisy[g.index(1, 1, 1)]);
  const Volume<float> copy = perfq::smooth_m0(noisy, 0.0, cube.view());
  for (std::size_t i = 0; i < copy.size(); ++i) ASSERT_EQ(copy[i], noisy[i]);
  // Without a region: the bright part of M0 (here the cube).
  const Volume<float> own = perfq::smooth_m0(flat, 6.0);
  for (std::size_t i = 0; i < own.size(); ++i) ASSERT_NEAR(own[i], flat[i], 1e-3) << i;
  EXPECT_THROW(perfq::smooth_m0(flat, -1.0), perfq::InvalidArgument);
  EXPECT_THROW(perfq::smooth_m0(flat, std::nan("")), perfq::InvalidArgument);
}

TEST(M0Smoothing, MatchesABruteForceGaussianOnAnAnisotropicGrid) {
  // 7×9×5 voxels of 1×2×3 mm, a ragged region, random M0: every region voxel against the
  // normalised Gaussian summed directly over the region in 3D (σ from the FWHM in mm, cut at
  // 3σ per axis), written here independently of the separable implementation.
  Geometry g;
  g.dims = {7, 9, 5};
  g.spacing = {1.0, 2.0, 3.0};
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> value(500.0f, 1500.0f);
  std::bernoulli_distribution inside(0.7);
  Volume<float> m0(g, 1, 0.0f);
  perfq::Volume<std::uint8_t> region(g, 1, 0);
  for (std::size_t i = 0; i < m0.size(); ++i) {
    m0[i] = value(rng);
    region[i] = inside(rng) ? 1 : 0;
  }
  const double fwhm = 5.0;
  const double sigma = fwhm / (2.0 * std::sqrt(2.0 * std::log(2.0)));  // mm
  const Volume<float> smooth = perfq::smooth_m0(m0, fwhm, region.view());
  double worst = 0.0;
  for (std::size_t z = 0; z < 5; ++z)
    for (std::size_t y = 0; y < 9; ++y)
      for (std::size_t x = 0; x < 7; ++x) {
        const std::size_t i = g.index(x, y, z);
        if (!region[i]) {
          EXPECT_EQ(smooth[i], m0[i]);
          continue;
        }
        double num = 0.0, den = 0.0;
        for (std::size_t c = 0; c < 5; ++c)
          for (std::size_t b = 0; b < 9; ++b)
            for (std::size_t a = 0; a < 7; ++a) {
              const double d[3] = {(double(a) - double(x)) * 1.0, (double(b) - double(y)) * 2.0,
                                   (double(c) - double(z)) * 3.0};
              bool reach = true;
              for (int k = 0; k < 3; ++k) {
                const double sp = g.spacing[k];
                reach = reach && std::abs(d[k]) / sp <= std::ceil(3.0 * sigma / sp);
              }
              const std::size_t j = g.index(a, b, c);
              if (!reach || !region[j]) continue;
              const double w =
                  std::exp(-0.5 * (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]) / (sigma * sigma));
              num += w * m0[j];
              den += w;
            }
        worst = std::max(worst, std::abs(smooth[i] - num / den) / (num / den));
      }
  EXPECT_LT(worst, 1e-6);
  // An FWHM far beyond the grid is the region's mean everywhere in it (not an overflow).
  const Volume<float> wide = perfq::smooth_m0(m0, 1e300, region.view());
  double sum = 0.0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < m0.size(); ++i) {
    if (region[i]) {
      sum += m0[i];
      ++n;
    }
  }
  for (std::size_t i = 0; i < m0.size(); ++i) {
    if (region[i]) ASSERT_NEAR(wide[i], sum / n, 1e-3 * sum / n) << i;
  }
}

TEST(Backend, ParsesNames) {
  EXPECT_EQ(perfq::parse_backend("cuda"), Backend::Cuda);
  EXPECT_EQ(perfq::parse_backend("cpu"), Backend::Cpu);
  EXPECT_EQ(perfq::parse_backend("auto"), Backend::Auto);
  EXPECT_THROW(perfq::parse_backend("gpu"), perfq::InvalidArgument);
  EXPECT_STREQ(perfq::version(), PERFQ_VERSION_STRING);
  static_assert(PERFQ_VERSION ==
                    PERFQ_VERSION_MAJOR * 10000 + PERFQ_VERSION_MINOR * 100 + PERFQ_VERSION_PATCH,
                "PERFQ_VERSION is the version as one integer");
#if PERFQ_VERSION < 100
#error "PERFQ_VERSION must be usable in #if"
#endif
}

}  // namespace
