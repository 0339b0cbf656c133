// Rigid registration (perfq::io::register_rigid): known transforms recovered from synthetic
// images of the phantom's anatomy in two contrasts and resolutions, determinism, bad input,
// and a real M0 against its T1w (skipped without ../shared/data).
#include <perfq/perfq_io.h>
#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/registration.hpp>

#include "registration_data.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>

namespace {

using perfq::io::register_rigid;
using perfq::io::RegistrationOptions;
using perfq::io::Transform;
using perfq_test::Anatomy;

constexpr double kDeg = M_PI / 180.0;

const Anatomy& anatomy() {
  static const Anatomy a = perfq_test::make_anatomy();
  return a;
}

/// Largest distance between where `a` and `b` map the brain's voxels (every 4th along each
/// axis), mm.
double max_displacement(const Transform& a, const Transform& b, const perfq::Mask& brain) {
  const perfq::Geometry& g = brain.geometry();
  double worst = 0.0;
  for (std::size_t z = 0; z < g.dims[2]; z += 4) {
    for (std::size_t y = 0; y < g.dims[1]; y += 4) {
      for (std::size_t x = 0; x < g.dims[0]; x += 4) {
        if (brain.at(x, y, z) == 0) continue;
        const std::array<double, 3> p{g.origin[0] + x * g.spacing[0],
                                      g.origin[1] + y * g.spacing[1],
                                      g.origin[2] + z * g.spacing[2]};
        const auto pa = a.map(p);
        const auto pb = b.map(p);
        worst = std::max(worst, std::hypot(pa[0] - pb[0], pa[1] - pb[1], pa[2] - pb[2]));
      }
    }
  }
  return worst;
}

/// Rotation angle of R_a · R_bᵀ, degrees.
double rotation_difference_deg(const Transform& a, const Transform& b) {
  const auto ma = a.matrix();
  const auto mb = b.matrix();
  double trace = 0.0;
  for (int i = 0; i < 3; ++i) {
    for (int k = 0; k < 3; ++k) trace += ma[4 * i + k] * mb[4 * i + k];
  }
  return std::acos(std::clamp((trace - 1.0) / 2.0, -1.0, 1.0)) / kDeg;
}

struct Case {
  const char* name;
  std::array<double, 3> angles_deg;
  std::array<double, 3> shift_mm;
  std::array<std::size_t, 3> dims;
  std::array<double, 3> spacing;
  double tilt_deg;
};

class KnownTransform : public ::testing::TestWithParam<Case> {};

TEST_P(KnownTransform, RecoveredWithinHalfMillimetreAndHalfDegree) {
  const Case& c = GetParam();
  const Anatomy& a = anatomy();
  const Transform truth =
      Transform::rigid({c.angles_deg[0] * kDeg, c.angles_deg[1] * kDeg, c.angles_deg[2] * kDeg},
                       c.shift_mm, {4.0, -6.0, 10.0});
  const perfq::Volume<float> m0 =
      perfq_test::make_m0(a, perfq_test::epi_grid(c.dims, c.spacing, c.tilt_deg), truth, 0.03);
  RegistrationOptions options;
  options.threads = 2;
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = register_rigid(m0, a.t1w, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double mm = max_displacement(r.transform, truth, a.brain);
  const double deg = rotation_difference_deg(r.transform, truth);
  std::cout << c.name << ": max brain displacement error " << mm << " mm, rotation error " << deg
            << " deg, metric " << r.initial_metric << " -> " << r.final_metric << ", iterations "
            << r.iterations[0] << "+" << r.iterations.back() << ", " << r.samples << " samples, "
            << seconds << " s\n";
  const auto e = r.transform.map({0, 0, 0});
  const auto t = truth.map({0, 0, 0});
  std::cout << "  error at the centre " << e[0] - t[0] << " " << e[1] - t[1] << " " << e[2] - t[2]
            << "\n";
  EXPECT_LT(mm, 0.5);
  EXPECT_LT(deg, 0.5);
  EXPECT_LT(r.final_metric, r.initial_metric);
  EXPECT_EQ(r.sampled_image, "moving");
  // The Euler parameters are those of the transform.
  const Transform same = Transform::rigid(r.angles, r.translation, r.center);
  EXPECT_LT(max_displacement(same, r.transform, a.brain), 1e-9);
}

INSTANTIATE_TEST_SUITE_P(
    Synthetic, KnownTransform,
    ::testing::Values(
        Case{"rotation_x", {10, 0, 0}, {0, 0, 0}, {64, 72, 28}, {3, 3, 5}, 0},
        Case{"shift", {0, 0, 0}, {10, -6, 4}, {64, 72, 28}, {3, 3, 5}, 0},
        Case{"mixed", {-6, 4, 8}, {-7, 6, 5}, {64, 72, 28}, {3, 3, 5}, 0},
        Case{"oblique_64x64x20", {3, -10, 2}, {2, -9, -6}, {64, 64, 20}, {3.4, 3.4, 6}, 12},
        Case{"rotation_z", {0, 0, -10}, {5, 5, -5}, {72, 72, 20}, {3, 3, 6}, 0}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

// A receive-coil bias (intensity rising by 5 % per 100 mm front to back, uncorrected) pulls
// mutual information along the bias: about 0.3 mm here, so the tolerance is 1 mm. Correct the
// bias (N4) first where it matters.
TEST(Registration, CoilBiasShiftsLittle) {
  const Anatomy& a = anatomy();
  const Transform truth = Transform::rigid({-6 * kDeg, 4 * kDeg, 8 * kDeg}, {-7.0, 6.0, 5.0});
  const perfq::Volume<float> m0 =
      perfq_test::make_m0(a, perfq_test::epi_grid({64, 72, 28}, {3, 3, 5}), truth, 0.03, 0.05);
  RegistrationOptions options;
  options.threads = 2;
  const auto r = register_rigid(m0, a.t1w, options);
  const double mm = max_displacement(r.transform, truth, a.brain);
  std::cout << "with a coil bias: " << mm << " mm\n";
  EXPECT_LT(mm, 1.0);
  EXPECT_LT(rotation_difference_deg(r.transform, truth), 0.5);
}

TEST(Registration, FixedImageSampledWhenItHasTheLargerVoxels) {
  // T1w as the moving image, M0 as the fixed: the same transform, the other way round.
  const Anatomy& a = anatomy();
  const Transform truth = Transform::rigid({0.0, 5 * kDeg, 0.0}, {3.0, 0.0, -4.0});
  const perfq::Volume<float> m0 =
      perfq_test::make_m0(a, perfq_test::epi_grid({64, 72, 28}, {3, 3, 5}), truth, 0.03);
  RegistrationOptions options;
  options.threads = 2;
  const auto r = register_rigid(a.t1w, m0, options);
  EXPECT_EQ(r.sampled_image, "fixed");
  EXPECT_LT(max_displacement(r.transform.inverse(), truth, a.brain), 0.5);
}

// One thread: bit for bit. Several: ITK's Mattes metric adds the threads' derivative parts
// under locks, in the order they finish, so runs agree to rounding only.
TEST(Registration, Deterministic) {
  const Anatomy& a = anatomy();
  const Transform truth = Transform::rigid({4 * kDeg, 0.0, -3 * kDeg}, {2.0, 5.0, 1.0});
  const perfq::Volume<float> m0 =
      perfq_test::make_m0(a, perfq_test::epi_grid({64, 64, 20}, {3.4, 3.4, 6}), truth, 0.03);
  RegistrationOptions options;
  options.threads = 1;
  const auto r1 = register_rigid(m0, a.t1w, options);
  const auto r2 = register_rigid(m0, a.t1w, options);
  EXPECT_EQ(r1.angles, r2.angles);
  EXPECT_EQ(r1.translation, r2.translation);
  EXPECT_EQ(r1.final_metric, r2.final_metric);
  EXPECT_EQ(r1.iterations, r2.iterations);
  // (Two runs on 2 threads agree as closely; one such run is enough to keep the test short
  // under the sanitizers.)
  options.threads = 2;
  const auto r3 = register_rigid(m0, a.t1w, options);
  const double mm13 = max_displacement(r1.transform, r3.transform, a.brain);
  std::cout << "1 vs 2 threads: " << mm13 << " mm apart\n";
  EXPECT_LT(mm13, 1e-6);
  // Another seed jitters the sample points differently: a different, equally good answer.
  options.seed = 2;
  const auto r5 = register_rigid(m0, a.t1w, options);
  EXPECT_LT(max_displacement(r5.transform, truth, a.brain), 0.5);
}

TEST(Registration, CApiAsTheLibrary) {
  const Anatomy& a = anatomy();
  const Transform truth = Transform::rigid({0.0, 0.0, 6 * kDeg}, {-3.0, 2.0, 4.0});
  const perfq::Volume<float> m0 =
      perfq_test::make_m0(a, perfq_test::epi_grid({64, 64, 20}, {3.4, 3.4, 6}), truth, 0.03);
  const auto grid = [](const perfq::Geometry& g) {
    perfq_grid c{};
    std::copy(g.dims.begin(), g.dims.end(), c.dims);
    std::copy(g.spacing.begin(), g.spacing.end(), c.spacing);
    std::copy(g.origin.begin(), g.origin.end(), c.origin);
    std::copy(g.direction.begin(), g.direction.end(), c.direction);
    return c;
  };
  const perfq_grid mg = grid(m0.geometry());
  const perfq_grid fg = grid(a.t1w.geometry());
  perfq_rigid_registration* result = nullptr;
  ASSERT_EQ(perfq_register_rigid(m0.data(), &mg, a.t1w.data(), &fg, nullptr, nullptr, 1, &result),
            PERFQ_OK)
      << perfq_last_error();
  double angles[3], translation[3], center[3], initial = 0, final = 0;
  ASSERT_EQ(
      perfq_rigid_registration_parameters(result, angles, translation, center, &initial, &final),
      PERFQ_OK);
  RegistrationOptions options;
  options.threads = 1;
  const auto r = register_rigid(m0, a.t1w, options);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(angles[k], r.angles[k]);
    EXPECT_EQ(translation[k], r.translation[k]);
    EXPECT_EQ(center[k], r.center[k]);
  }
  EXPECT_EQ(final, r.final_metric);
  const std::string path =
      std::string(PERFQ_TEST_TMP) + "/c_api_from-asl_to-T1w_mode-image_xfm.txt";
  std::filesystem::create_directories(PERFQ_TEST_TMP);
  ASSERT_EQ(perfq_rigid_registration_write(result, path.c_str()), PERFQ_OK) << perfq_last_error();
  const auto p = perfq::io::read_transform(path).map({10.0, 20.0, 30.0});
  const auto q = r.transform.map({10.0, 20.0, 30.0});
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(p[k], q[k], 1e-9);
  perfq_rigid_registration_destroy(result);
  EXPECT_EQ(perfq_register_rigid(nullptr, &mg, a.t1w.data(), &fg, nullptr, nullptr, 1, &result),
            PERFQ_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(perfq_last_error()).find("moving"), std::string::npos);
}

perfq::Volume<float> small_image(const perfq::Geometry& g) {
  perfq::Volume<float> image(g, 1, 0.0f);
  for (std::size_t i = 0; i < image.size(); ++i) image[i] = static_cast<float>(i % 7);
  return image;
}

template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const perfq::InvalidArgument& e) {
    return e.what();
  }
  return "no error";
}

TEST(Registration, BadInputNamed) {
  perfq::Geometry g;
  g.dims = {20, 20, 10};
  g.spacing = {3, 3, 5};
  const perfq::Volume<float> image = small_image(g);
  const perfq::Series<float> series(g, 3, 1.0f);
  EXPECT_NE(message_of([&] { register_rigid(series, image); }).find("moving image has 3 volumes"),
            std::string::npos);
  EXPECT_NE(message_of([&] { register_rigid(image, series); }).find("pass one volume"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              register_rigid(perfq::View<const float>{}, image);
            }).find("moving image is empty"),
            std::string::npos);

  const perfq::Mask empty(g, 1, 0);
  RegistrationOptions options;
  options.moving_mask = &empty;
  EXPECT_NE(message_of([&] { register_rigid(image, image, options); }).find("moving mask is empty"),
            std::string::npos);
  perfq::Geometry other = g;
  other.origin[0] = 10.0;
  const perfq::Mask off_grid(other, 1, 1);
  options.moving_mask = nullptr;
  options.fixed_mask = &off_grid;
  EXPECT_NE(message_of([&] {
              register_rigid(image, image, options);
            }).find("fixed mask does not lie on the fixed image's grid"),
            std::string::npos);
  options.fixed_mask = nullptr;
  options.smoothing_sigmas_mm = {1.0};
  EXPECT_NE(message_of([&] { register_rigid(image, image, options); }).find("sigma per level"),
            std::string::npos);
}

// A real M0 (2D EPI, 3.4 × 3.4 × 6 mm) against the 1 mm MPRAGE of the same volunteer, which is
// not skull-stripped: the metric is restricted to the M0's head (its voxels above a fifth of
// its 99th percentile), which includes the scalp's edge but not the air around it.
TEST(Registration, RealM0ToT1w) {
  const std::string dir = std::string(PERFQ_SHARED_DATA) + "/real/siemens-prisma/";
  if (!std::filesystem::exists(dir + "T1_5.nii.gz")) GTEST_SKIP() << "no real data in " << dir;
  const perfq::Image<float> m0 = perfq::io::read_nifti(dir + "10_pcasl_2d_m0_10.nii.gz");
  const perfq::Image<float> t1w = perfq::io::read_nifti(dir + "T1_5.nii.gz");
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = register_rigid(m0.volume(0), t1w, {});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "real M0 -> T1w: metric " << r.initial_metric << " -> " << r.final_metric
            << ", angles (deg) " << r.angles[0] / kDeg << " " << r.angles[1] / kDeg << " "
            << r.angles[2] / kDeg << ", translation (mm) " << r.translation[0] << " "
            << r.translation[1] << " " << r.translation[2] << ", iterations " << r.iterations[0]
            << "+" << r.iterations.back() << ", " << seconds << " s (" << r.stop_condition << ")\n";
  EXPECT_LT(r.final_metric, r.initial_metric);
  for (int a = 0; a < 3; ++a) {
    EXPECT_LT(std::abs(r.angles[a]), 15 * kDeg);
    EXPECT_LT(std::abs(r.translation[a]), 30.0);
  }
}

}  // namespace
