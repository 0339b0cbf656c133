// Exact Euclidean distance transforms and dilation against brute force; CPU-vs-GPU parity
// (skipped without a device).
#include <perfq/distance.hpp>
#include <perfq/errors.hpp>
#include <perfq/execution.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

namespace {

const double kInf = std::numeric_limits<double>::infinity();

perfq::Geometry grid(std::size_t nx, std::size_t ny, std::size_t nz,
                     std::array<double, 3> spacing = {1, 1, 1}) {
  perfq::Geometry g;
  g.dims = {nx, ny, nz};
  g.spacing = spacing;
  g.origin = {-3.0, 7.0, 1.5};  // irrelevant to distances
  return g;
}

perfq::Mask random_mask(const perfq::Geometry& g, double density, unsigned seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution inside(density);
  perfq::Mask m(g);
  for (auto& v : m.values()) v = inside(rng) ? 1 : 0;
  return m;
}

/// Squared distance from every voxel to the nearest voxel whose mask value is `site`, by
/// trying them all. Voxel units when `spacing` is false.
std::vector<double> brute_squared(const perfq::Mask& m, bool spacing, std::uint8_t site = 1) {
  const auto& g = m.geometry();
  const auto& d = g.dims;
  std::vector<double> out(g.voxel_count(), kInf);
  for (std::size_t z = 0; z < d[2]; ++z)
    for (std::size_t y = 0; y < d[1]; ++y)
      for (std::size_t x = 0; x < d[0]; ++x) {
        double best = kInf;
        for (std::size_t k = 0; k < d[2]; ++k)
          for (std::size_t j = 0; j < d[1]; ++j)
            for (std::size_t i = 0; i < d[0]; ++i) {
              if ((m.at(i, j, k) != 0) != (site != 0)) continue;
              const double dx = (double(x) - double(i)) * (spacing ? g.spacing[0] : 1.0);
              const double dy = (double(y) - double(j)) * (spacing ? g.spacing[1] : 1.0);
              const double dz = (double(z) - double(k)) * (spacing ? g.spacing[2] : 1.0);
              best = std::min(best, dx * dx + dy * dy + dz * dz);
            }
        out[g.index(x, y, z)] = best;
      }
  return out;
}

perfq::Execution cpu(int threads = 0) {
  perfq::Execution e;
  e.backend = perfq::Backend::Cpu;
  e.threads = threads;
  return e;
}

struct Case {
  std::size_t nx, ny, nz;
  double density;
  unsigned seed;
};
const Case kCases[] = {{1, 1, 1, 0.5, 1},    {9, 1, 1, 0.2, 2},      {1, 11, 1, 0.2, 3},
                       {1, 1, 10, 0.2, 4},   {12, 9, 7, 0.01, 5},    {12, 9, 7, 0.1, 6},
                       {12, 9, 7, 0.5, 7},   {12, 9, 7, 0.97, 8},    {17, 5, 13, 0.03, 9},
                       {6, 19, 11, 0.3, 10}, {21, 14, 3, 0.005, 11}, {2, 2, 2, 0.5, 12}};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.nx << "x" << c.ny << "x" << c.nz << ", density " << c.density << ", seed " << c.seed;
}

/// One random mask of kCases per test instance (named by its seed).
class DistanceOnRandomMask : public ::testing::TestWithParam<Case> {};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return "seed" + std::to_string(info.param.seed);
}

TEST_P(DistanceOnRandomMask, SquaredVoxelUnitsEqualBruteForceExactly) {
  const Case& c = GetParam();
  const auto m = random_mask(grid(c.nx, c.ny, c.nz, {0.8, 1.7, 2.5}), c.density, c.seed);
  const auto expected = brute_squared(m, false);
  const auto got = perfq::squared_distance_map(m, false, cpu());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(got[i], expected[i]) << "case seed " << c.seed << ", voxel " << i;
  }
}

TEST_P(DistanceOnRandomMask, SquaredMillimetresWithAnisotropicSpacingMatchBruteForce) {
  const Case& c = GetParam();
  const std::array<double, 3> spacings[] = {{0.7, 1.3, 2.1}, {3.0, 1.0, 0.5}, {1.1, 1.1, 4.4}};
  for (const auto& spacing : spacings) {
    const auto m = random_mask(grid(c.nx, c.ny, c.nz, spacing), c.density, c.seed + 100);
    const auto expected = brute_squared(m, true);
    const auto got = perfq::squared_distance_map(m, true, cpu());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      if (std::isinf(expected[i])) {
        ASSERT_EQ(got[i], kInf);
      } else {
        ASSERT_NEAR(got[i], expected[i], 1e-9 * expected[i]) << "seed " << c.seed << " voxel " << i;
      }
    }
  }
}

TEST_P(DistanceOnRandomMask, SignedAndUnsignedMapsMatchBruteForce) {
  const Case& c = GetParam();
  const auto m = random_mask(grid(c.nx, c.ny, c.nz, {0.9, 1.4, 2.0}), c.density, c.seed + 200);
  const auto to_mask = brute_squared(m, true, 1);
  const auto to_rest = brute_squared(m, true, 0);
  perfq::DistanceOptions o;
  const auto unsigned_map = perfq::distance_map(m, o, cpu());
  o.signed_distance = true;
  const auto signed_map = perfq::distance_map(m, o, cpu());
  for (std::size_t i = 0; i < m.size(); ++i) {
    const double outside = std::sqrt(to_mask[i]);
    EXPECT_FLOAT_EQ(unsigned_map[i], static_cast<float>(outside));
    const double expected = m[i] ? -std::sqrt(to_rest[i]) : outside;
    EXPECT_FLOAT_EQ(signed_map[i], static_cast<float>(expected)) << "voxel " << i;
    if (m[i]) {
      EXPECT_EQ(unsigned_map[i], 0.0f);
      EXPECT_LT(signed_map[i], 0.0f);  // on the mask: at least one voxel from the rest
    }
  }
}

TEST(Distance, SignedMapOfACompactMaskMatchesBruteForce) {
  // The inside half is computed over the mask's bounding box grown by one voxel only.
  for (unsigned seed : {21u, 22u, 23u}) {
    const auto g = grid(20, 15, 13, {1.2, 0.7, 2.3});
    perfq::Mask m(g);
    std::mt19937 rng(seed);
    std::bernoulli_distribution inside(0.7);
    for (std::size_t z = 4; z < 9; ++z)
      for (std::size_t y = 3; y < 10; ++y)
        for (std::size_t x = 5; x < 13; ++x) m.at(x, y, z) = inside(rng);
    const auto to_mask = brute_squared(m, true, 1);
    const auto to_rest = brute_squared(m, true, 0);
    perfq::DistanceOptions o;
    o.signed_distance = true;
    const auto d = perfq::distance_map(m, o, cpu());
    for (std::size_t i = 0; i < m.size(); ++i) {
      const double expected = m[i] ? -std::sqrt(to_rest[i]) : std::sqrt(to_mask[i]);
      ASSERT_FLOAT_EQ(d[i], static_cast<float>(expected)) << "seed " << seed << " voxel " << i;
    }
  }
}

TEST(Distance, VoxelUnitsIgnoreSpacing) {
  const auto m = random_mask(grid(10, 8, 6, {0.5, 2.0, 3.0}), 0.1, 42);
  perfq::DistanceOptions o;
  o.use_spacing = false;
  const auto d = perfq::distance_map(m, o, cpu());
  const auto expected = brute_squared(m, false);
  for (std::size_t i = 0; i < m.size(); ++i) {
    EXPECT_FLOAT_EQ(d[i], static_cast<float>(std::sqrt(expected[i])));
  }
}

TEST(Distance, EmptyAndFullMasksGiveInfinity) {
  const auto g = grid(5, 4, 3);
  const perfq::Mask empty(g, 1, 0), full(g, 1, 1);
  perfq::DistanceOptions o;
  auto all = [](const auto& image, double value) {
    for (auto v : image.values()) {
      if (v != value) return false;
    }
    return true;
  };
  EXPECT_TRUE(all(perfq::distance_map(empty, o, cpu()), INFINITY));
  EXPECT_TRUE(all(perfq::squared_distance_map(empty, true, cpu()), kInf));
  EXPECT_TRUE(all(perfq::distance_map(full, o, cpu()), 0.0));
  o.signed_distance = true;
  // No voxel on the mask: +inf everywhere. No voxel off it: -inf (inside, negative) everywhere.
  EXPECT_TRUE(all(perfq::distance_map(empty, o, cpu()), INFINITY));
  EXPECT_TRUE(all(perfq::distance_map(full, o, cpu()), -INFINITY));
}

TEST(Distance, OneVoxelMaskGivesEuclideanDistances) {
  const auto g = grid(9, 8, 7, {1.5, 0.5, 2.0});
  perfq::Mask m(g);
  m.at(2, 5, 3) = 1;
  const auto d = perfq::distance_map(m, {}, cpu());
  for (std::size_t z = 0; z < 7; ++z)
    for (std::size_t y = 0; y < 8; ++y)
      for (std::size_t x = 0; x < 9; ++x) {
        const double e =
            std::hypot((double(x) - 2) * 1.5, (double(y) - 5) * 0.5, (double(z) - 3) * 2.0);
        ASSERT_FLOAT_EQ(d.at(x, y, z), static_cast<float>(e));
      }
  perfq::DistanceOptions o;
  o.signed_distance = true;
  EXPECT_FLOAT_EQ(perfq::distance_map(m, o, cpu()).at(2, 5, 3), -0.5f);  // nearest: along y
}

TEST(Distance, ResultsDoNotDependOnThreadCount) {
  const auto m = random_mask(grid(33, 27, 19, {0.9, 1.1, 1.3}), 0.02, 9);
  const auto one = perfq::squared_distance_map(m, true, cpu(1));
  for (int threads : {2, 3, 0}) {
    EXPECT_EQ(perfq::squared_distance_map(m, true, cpu(threads)).values(), one.values());
  }
}

TEST_P(DistanceOnRandomMask, DilateMatchesBruteForceInclusive) {
  const Case& c = GetParam();
  const auto m = random_mask(grid(c.nx, c.ny, c.nz, {1.0, 2.0, 1.5}), c.density, c.seed + 300);
  const auto squared = brute_squared(m, true);
  for (double r : {0.0, 1.0, 2.0, 2.5, 3.0}) {
    const auto d = perfq::dilate(m, r, cpu());
    for (std::size_t i = 0; i < m.size(); ++i) {
      ASSERT_EQ(d[i], squared[i] <= r * r ? 1 : 0) << "radius " << r << " voxel " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Distance, DistanceOnRandomMask, ::testing::ValuesIn(kCases), case_name);

TEST(Distance, DilationIncludesVoxelsExactlyOnTheRadius) {
  // Exactly on the radius counts (2 mm along x with 1 mm voxels).
  perfq::Mask one(grid(7, 1, 1));
  one[3] = 1;
  const auto d = perfq::dilate(one, 2.0, cpu());
  EXPECT_EQ(d.values(), (std::vector<std::uint8_t>{0, 1, 1, 1, 1, 1, 0}));
}

TEST(Distance, BadArgumentsAreRefused) {
  const perfq::Mask m(grid(4, 4, 4), 1, 1);
  EXPECT_THROW(perfq::distance_map(perfq::View<const std::uint8_t>{}), perfq::InvalidArgument);
  const perfq::Image<std::uint8_t> two(grid(4, 4, 4), 2);
  EXPECT_THROW(perfq::distance_map(two), perfq::InvalidArgument);
  EXPECT_THROW(perfq::dilate(m, -1.0), perfq::InvalidArgument);
  EXPECT_THROW(perfq::dilate(m, NAN), perfq::InvalidArgument);
  auto bad = grid(4, 4, 4, {1.0, 0.0, 1.0});
  const perfq::Mask flat(bad, 1, 1);
  EXPECT_THROW(perfq::squared_distance_map(flat), perfq::InvalidArgument);
  if (!perfq::cuda_available()) {
    perfq::Execution e;
    e.backend = perfq::Backend::Cuda;
    EXPECT_THROW(perfq::distance_map(m, {}, e), perfq::BackendError);
  }
}

// ---- GPU parity ---------------------------------------------------------------------------

class DistanceGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!perfq::cuda_available()) {
      GTEST_SKIP() << "no CUDA device, GPU test skipped (" << perfq::cuda_unavailable_reason()
                   << ")";
    }
  }
  static perfq::Execution gpu() {
    perfq::Execution e;
    e.backend = perfq::Backend::Cuda;
    return e;
  }
};

TEST_F(DistanceGpu, SquaredDistancesMatchCpu) {
  for (const Case& c : kCases) {
    const auto m = random_mask(grid(c.nx, c.ny, c.nz, {0.7, 1.3, 2.1}), c.density, c.seed);
    EXPECT_EQ(perfq::squared_distance_map(m, false, gpu()).values(),
              perfq::squared_distance_map(m, false, cpu()).values());
    const auto a = perfq::squared_distance_map(m, true, cpu());
    const auto b = perfq::squared_distance_map(m, true, gpu());
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (std::isinf(a[i])) {
        ASSERT_EQ(b[i], a[i]);
      } else {
        ASSERT_NEAR(b[i], a[i], 1e-12 * a[i]) << "voxel " << i;  // FMA may round differently
      }
    }
  }
}

TEST_F(DistanceGpu, LargeSignedMapAndDilationMatchCpu) {
  const auto m = random_mask(grid(96, 110, 80, {1.0, 1.2, 1.5}), 0.001, 77);
  perfq::DistanceOptions o;
  o.signed_distance = true;
  const auto a = perfq::distance_map(m, o, cpu());
  const auto b = perfq::distance_map(m, o, gpu());
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_NEAR(b[i], a[i], 1e-6f * std::abs(a[i])) << "voxel " << i;
  }
  EXPECT_EQ(perfq::dilate(m, 4.0, gpu()).values(), perfq::dilate(m, 4.0, cpu()).values());
  const perfq::Mask empty(m.geometry(), 1, 0);
  const auto none = perfq::squared_distance_map(empty, true, gpu());
  for (double v : none.values()) ASSERT_EQ(v, kInf);
}

}  // namespace
