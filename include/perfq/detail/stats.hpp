/// @file
/// @brief Building blocks of the regional statistics shared by the CPU and CUDA paths:
/// percentile ranks, order-preserving float keys and the per-voxel accumulation terms.
#pragma once

#include <perfq/version.hpp>

#include <perfq/detail/macros.hpp>
#include <perfq/detail/single_delay.hpp>  // is_finite

#include <cstddef>
#include <cstdint>
#include <cstring>

PERFQ_NAMESPACE_BEGIN
namespace detail {

/// @brief The two order statistics (0-based ranks in a sorted sample of n) that percentile p
/// interpolates between, and the interpolation weight of the upper one.
struct PercentileRank {
  std::size_t lo = 0;
  std::size_t hi = 0;
  double frac = 0.0;
};

/// @brief numpy's default ("linear") percentile rank: h = (n − 1) p / 100. Needs n ≥ 1 and
/// p in [0, 100].
PERFQ_HD inline PercentileRank percentile_rank(double p, std::size_t n) {
  PercentileRank r;
  const double h = static_cast<double>(n - 1) * p / 100.0;
  r.lo = static_cast<std::size_t>(h);  // h ≥ 0: truncation is the floor
  if (r.lo > n - 1) r.lo = n - 1;
  r.hi = r.lo + 1 < n ? r.lo + 1 : r.lo;
  r.frac = h - static_cast<double>(r.lo);
  return r;
}

/// @brief Linear interpolation between the order statistics `lo` and `hi`. Computed on the
/// host only (both backends hand over the order statistics), so that the result does not
/// depend on the device's fused multiply-add.
inline double interpolate(double lo, double hi, double frac) {
  return frac == 0.0 ? lo : lo + frac * (hi - lo);
}

/// @brief A 32-bit key whose unsigned order is the numeric order of finite floats (negative
/// values have every bit flipped, others only the sign bit). −0 and +0 get one key.
PERFQ_HD inline std::uint32_t float_order_key(float v) {
  if (v == 0.0f) v = 0.0f;  // −0 → +0: equal values sort as one
  std::uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

/// @brief Inverse of float_order_key().
PERFQ_HD inline float float_from_order_key(std::uint32_t key) {
  const std::uint32_t bits = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

/// @brief Position of `label` in the ascending, duplicate-free array `labels[0, n)`, or −1.
PERFQ_HD inline std::int64_t find_region(std::int32_t label, const std::int32_t* labels,
                                         std::size_t n) {
  std::size_t lo = 0, hi = n;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (labels[mid] < label) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < n && labels[lo] == label ? static_cast<std::int64_t>(lo) : -1;
}

/// @brief First-pass sums of one region (or one voxel's contribution to them): the sample's
/// values, the partial-volume weights and the paired baseline.
struct StatsSums {
  double x = 0.0;       ///< Σx
  double w = 0.0;       ///< Σw
  double ww = 0.0;      ///< Σw²
  double wx = 0.0;      ///< Σwx
  double paired = 0.0;  ///< number of voxels finite in both sessions
  double base = 0.0;    ///< Σ baseline over those voxels
  double diff = 0.0;    ///< Σ (follow-up − baseline) over those voxels
};

PERFQ_HD inline StatsSums operator+(const StatsSums& a, const StatsSums& b) {
  StatsSums s;
  s.x = a.x + b.x;
  s.w = a.w + b.w;
  s.ww = a.ww + b.ww;
  s.wx = a.wx + b.wx;
  s.paired = a.paired + b.paired;
  s.base = a.base + b.base;
  s.diff = a.diff + b.diff;
  return s;
}

/// @brief One voxel's first-pass terms: value x (finite), weight w (1 without weights), and
/// baseline b (ignored unless `has_baseline` and finite).
PERFQ_HD inline StatsSums first_pass_terms(float x, float w, float b, bool has_baseline) {
  StatsSums s;
  s.x = x;
  s.w = w;
  s.ww = static_cast<double>(w) * w;
  s.wx = static_cast<double>(w) * x;
  if (has_baseline && is_finite(b)) {
    s.paired = 1.0;
    s.base = b;
    s.diff = static_cast<double>(x) - static_cast<double>(b);
  }
  return s;
}

/// @brief Second-pass (centred) sums of one region.
struct StatsSquares {
  double x = 0.0;     ///< Σ(x − mean)²
  double w = 0.0;     ///< Σw(x − weighted mean)²
  double diff = 0.0;  ///< Σ(d − mean d)² over the paired voxels
};

PERFQ_HD inline StatsSquares operator+(const StatsSquares& a, const StatsSquares& b) {
  StatsSquares s;
  s.x = a.x + b.x;
  s.w = a.w + b.w;
  s.diff = a.diff + b.diff;
  return s;
}

/// @brief The region means that centre the second pass.
struct StatsMeans {
  double x = 0.0;     ///< mean
  double w = 0.0;     ///< weighted mean
  double diff = 0.0;  ///< mean difference
};

/// @brief The means that centre the second pass; the same host arithmetic for both backends.
/// Each is 0 when its denominator is.
PERFQ_HD inline StatsMeans stats_means(const StatsSums& s, double count) {
  StatsMeans m;
  m.x = count > 0.0 ? s.x / count : 0.0;
  m.w = s.w > 0.0 ? s.wx / s.w : 0.0;
  m.diff = s.paired > 0.0 ? s.diff / s.paired : 0.0;
  return m;
}

/// @brief One voxel's second-pass terms (same conventions as first_pass_terms()).
PERFQ_HD inline StatsSquares second_pass_terms(float x, float w, float b, bool has_baseline,
                                               const StatsMeans& m) {
  StatsSquares s;
  const double dx = static_cast<double>(x) - m.x;
  s.x = dx * dx;
  const double dw = static_cast<double>(x) - m.w;
  s.w = static_cast<double>(w) * dw * dw;
  if (has_baseline && is_finite(b)) {
    const double dd = (static_cast<double>(x) - static_cast<double>(b)) - m.diff;
    s.diff = dd * dd;
  }
  return s;
}

}  // namespace detail
PERFQ_NAMESPACE_END
