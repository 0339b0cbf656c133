// CUDA backend: launch and CPU-vs-GPU parity. Skips with a clear message without a device.
#include <perfq/asl_series.hpp>
#include <perfq/cbf.hpp>
#include <perfq/errors.hpp>
#include <perfq/execution.hpp>
#include <perfq/kinetic.hpp>
#include <perfq/phantom.hpp>

#include <gtest/gtest.h>

#include <cmath>

namespace {

class Gpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!perfq::cuda_available()) {
      GTEST_SKIP() << "no CUDA device, GPU test skipped (" << perfq::cuda_unavailable_reason()
                   << ")";
    }
  }
};

TEST_F(Gpu, ListsDevices) {
  const auto names = perfq::cuda_device_names();
  ASSERT_EQ(static_cast<int>(names.size()), perfq::cuda_device_count());
  for (const auto& name : names) EXPECT_FALSE(name.empty());
  EXPECT_EQ(perfq::resolve_backend(perfq::Execution{}), perfq::Backend::Cuda);
}

TEST_F(Gpu, SingleDelayMatchesCpu) {
  perfq::PhantomOptions o;
  o.snr = 3.0;  // noisy: negative ΔM, low values, every branch
  const auto p = perfq::make_phantom(o);
  const auto prepared = perfq::prepare_asl(p.asl, p.context, p.protocol);
  const perfq::AslProtocol& protocol = prepared.protocol;
  perfq::Volume<float> m0 = p.m0;
  m0[0] = std::nanf("");  // a non-finite input, a zero and a negative M0 in the background
  m0[1] = -1.0f;
  for (bool with_mask : {false, true}) {
    perfq::Execution cpu, gpu;
    cpu.backend = perfq::Backend::Cpu;
    gpu.backend = perfq::Backend::Cuda;
    std::optional<perfq::View<const std::uint8_t>> mask;
    if (with_mask) mask = p.brain.view();
    const auto a = perfq::quantify_cbf(prepared.delta_m, perfq::M0Source::from_image(m0),
                                       protocol, p.physiology, mask, cpu);
    const auto b = perfq::quantify_cbf(prepared.delta_m, perfq::M0Source::from_image(m0),
                                       protocol, p.physiology, mask, gpu);
    EXPECT_EQ(b.backend, perfq::Backend::Cuda);
    ASSERT_EQ(a.cbf.size(), b.cbf.size());
    EXPECT_EQ(a.status.values(), b.status.values());
    for (std::size_t i = 0; i < a.cbf.size(); ++i) {
      ASSERT_NEAR(a.cbf[i], b.cbf[i], 1e-5 * std::abs(a.cbf[i]) + 1e-30) << "voxel " << i;
    }
  }
}

TEST_F(Gpu, MultiDelayFitMatchesCpu) {
  perfq::PhantomOptions o;
  o.snr = 8.0;
  o.delays = {0.25, 0.5, 0.75, 1.0, 1.25, 1.5};
  o.repeats = 1;
  o.dims = {40, 48, 36};
  const auto p = perfq::make_phantom(o);
  const auto prepared = perfq::prepare_asl(p.asl, p.context, p.protocol);
  const perfq::AslProtocol& protocol = prepared.protocol;
  for (int variant : {0, 1, 2, 3, 4}) {  // 4: both priors (ATT, arterial arrival)
    const bool prior = variant == 1 || variant == 4, arterial = variant == 2 || variant == 4;
    perfq::KineticOptions options;
    options.att_prior = prior;
    options.arterial = arterial;
    if (variant == 3) options.dispersion = perfq::Dispersion::Gamma;  // closed-form kernel
    perfq::Execution cpu, gpu;
    cpu.backend = perfq::Backend::Cpu;
    gpu.backend = perfq::Backend::Cuda;
    const auto a = perfq::fit_kinetic(prepared.delta_m, perfq::M0Source::from_image(p.m0),
                                      protocol, p.physiology, options, p.brain.view(), cpu);
    const auto b = perfq::fit_kinetic(prepared.delta_m, perfq::M0Source::from_image(p.m0),
                                      protocol, p.physiology, options, p.brain.view(), gpu);
    EXPECT_EQ(b.backend, perfq::Backend::Cuda);
    std::size_t status_differs = 0, checked = 0;
    for (std::size_t i = 0; i < a.cbf.size(); ++i) {
      if (a.status[i] != b.status[i]) {
        ++status_differs;
        continue;
      }
      if (a.status[i] != 0) continue;
      ++checked;
      ASSERT_NEAR(a.cbf[i], b.cbf[i], 1e-3 * std::abs(a.cbf[i]) + 1e-3) << "voxel " << i;
      ASSERT_NEAR(a.att[i], b.att[i], 1e-3 * std::abs(a.att[i]) + 1e-4) << "voxel " << i;
      if (arterial) {
        // Without a prior the cost is flat (to rounding) over the arterial arrivals between
        // two sample times, aBV trading off against e^(−Δt_a/T1b): compare what the data fix.
        // With the arrival's prior the arrival itself is determined.
        const double t1b = p.physiology.t1_blood;
        const double fixed_a = a.abv[i] * std::exp(-a.arterial_att[i] / t1b);
        const double fixed_b = b.abv[i] * std::exp(-b.arterial_att[i] / t1b);
        ASSERT_NEAR(fixed_a, fixed_b, 1e-3 * std::abs(fixed_a) + 1e-4) << i;
        if (prior) {
          ASSERT_NEAR(a.abv[i], b.abv[i], 1e-3 * std::abs(a.abv[i]) + 1e-4) << i;
          ASSERT_NEAR(a.arterial_att[i], b.arterial_att[i], 1e-4) << i;
        }
      }
    }
    EXPECT_EQ(status_differs, 0u) << "prior " << prior << " arterial " << arterial
                                  << " dispersion " << (variant == 3);
    EXPECT_GT(checked, 1000u);
  }
}

TEST_F(Gpu, BadDeviceOrdinalIsAClearError) {
  perfq::Execution e;
  e.backend = perfq::Backend::Cuda;
  e.device = perfq::cuda_device_count();
  EXPECT_THROW(perfq::resolve_backend(e), perfq::BackendError);
}

}  // namespace
