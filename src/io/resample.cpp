// Resampling through transforms (include/perfq/io/resample.hpp): each target voxel's
// footprint sub-points are taken to the source's continuous indices (one affine map when the
// transform is linear, Transform::map otherwise), then interpolated there.
#include <perfq/errors.hpp>
#include <perfq/io/resample.hpp>

#include "parallel.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace {

using Mat3 = std::array<double, 9>;
using Vec3 = std::array<double, 3>;

Mat3 multiply(const Mat3& a, const Mat3& b) {
  Mat3 m{};
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      for (int k = 0; k < 3; ++k) m[3 * r + c] += a[3 * r + k] * b[3 * k + c];
    }
  }
  return m;
}

Vec3 mul(const Mat3& m, const Vec3& v) {
  return {m[0] * v[0] + m[1] * v[1] + m[2] * v[2], m[3] * v[0] + m[4] * v[1] + m[5] * v[2],
          m[6] * v[0] + m[7] * v[1] + m[8] * v[2]};
}

double determinant(const Mat3& m) {
  return m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
         m[2] * (m[3] * m[7] - m[4] * m[6]);
}

Mat3 invert(const Mat3& m) {
  const double d = determinant(m);
  return {(m[4] * m[8] - m[5] * m[7]) / d, (m[2] * m[7] - m[1] * m[8]) / d,
          (m[1] * m[5] - m[2] * m[4]) / d, (m[5] * m[6] - m[3] * m[8]) / d,
          (m[0] * m[8] - m[2] * m[6]) / d, (m[2] * m[3] - m[0] * m[5]) / d,
          (m[3] * m[7] - m[4] * m[6]) / d, (m[1] * m[6] - m[0] * m[7]) / d,
          (m[0] * m[4] - m[1] * m[3]) / d};
}

/// direction · diag(spacing): voxel index steps to mm (LPS).
Mat3 index_to_physical(const Geometry& g) {
  Mat3 m{};
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) m[3 * r + c] = g.direction[3 * r + c] * g.spacing[c];
  }
  return m;
}

void check_grid(const Geometry& g, const std::string& what) {
  for (int a = 0; a < 3; ++a) {
    if (g.dims[a] == 0) throw InvalidArgument(what + ": a grid dimension is 0");
    if (!std::isfinite(g.spacing[a]) || g.spacing[a] <= 0.0) {
      throw InvalidArgument(what + ": spacing must be positive and finite");
    }
    if (!std::isfinite(g.origin[a])) throw InvalidArgument(what + ": origin must be finite");
  }
  for (double c : g.direction) {
    if (!std::isfinite(c)) throw InvalidArgument(what + ": direction must be finite");
  }
  if (std::abs(determinant(g.direction)) < 1e-6) {
    throw InvalidArgument(what + ": direction matrix is singular");
  }
}

/// Target continuous index → source continuous index.
class IndexMap {
 public:
  IndexMap(const Geometry& source, const Geometry& target, const Transform& transform)
      : transform_(transform),
        linear_(transform.linear()),
        target_steps_(index_to_physical(target)),
        target_origin_(target.origin),
        source_inverse_(invert(index_to_physical(source))),
        source_origin_(source.origin) {
    if (!linear_) return;
    // source index = S⁻¹ (T (O_t + D_t i) + b − O_s) = A i + c
    const std::array<double, 16> m = transform.matrix();
    const Mat3 t = {m[0], m[1], m[2], m[4], m[5], m[6], m[8], m[9], m[10]};
    a_ = multiply(source_inverse_, multiply(t, target_steps_));
    Vec3 q = mul(t, target_origin_);
    for (int r = 0; r < 3; ++r) q[r] += m[4 * r + 3] - source_origin_[r];
    c_ = mul(source_inverse_, q);
  }

  Vec3 operator()(const Vec3& index) const {
    if (linear_) {
      Vec3 s = mul(a_, index);
      for (int r = 0; r < 3; ++r) s[r] += c_[r];
      return s;
    }
    Vec3 p = mul(target_steps_, index);
    for (int r = 0; r < 3; ++r) p[r] += target_origin_[r];
    Vec3 q = transform_.map(p);
    for (int r = 0; r < 3; ++r) q[r] -= source_origin_[r];
    return mul(source_inverse_, q);
  }

  /// Source index steps per target index step (the transform's linear part; the identity
  /// for a displacement field).
  Mat3 steps() const { return linear_ ? a_ : multiply(source_inverse_, target_steps_); }

 private:
  const Transform& transform_;
  bool linear_;
  Mat3 target_steps_;
  Vec3 target_origin_;
  Mat3 source_inverse_;
  Vec3 source_origin_;
  Mat3 a_{};
  Vec3 c_{};
};

/// A continuous index within 1e-6 of a whole or half voxel, put on it.
inline double snap(double x) {
  const double h = std::round(2.0 * x) * 0.5;
  return std::abs(x - h) < 1e-6 ? h : x;
}

/// Whether a continuous index lies in the source's voxel boxes along an axis of n voxels.
inline bool inside(double x, std::size_t n) {
  return x >= -0.5 && x <= static_cast<double>(n) - 0.5;  // false for NaN
}

inline std::size_t nearest(double x, std::size_t n) {
  const double i = std::floor(x + 0.5);
  return i <= 0.0 ? 0 : std::min(static_cast<std::size_t>(i), n - 1);
}

/// Up to 8 voxels (offsets into one volume) and their trilinear weights.
struct Taps {
  std::size_t offset[8];
  double weight[8];
  int count = 0;
};

/// The trilinear taps of continuous index c, or false when c is outside the source.
bool linear_taps(const Vec3& c, const Geometry& g, Taps& taps) {
  std::size_t lo[3], hi[3];
  double f[3];
  for (int a = 0; a < 3; ++a) {
    const double x = snap(c[a]);
    if (!inside(x, g.dims[a])) return false;
    const double x0 = std::floor(x);
    f[a] = x - x0;
    const long last = static_cast<long>(g.dims[a]) - 1;
    const long i0 = static_cast<long>(x0);
    lo[a] = static_cast<std::size_t>(std::clamp(i0, 0L, last));
    hi[a] = static_cast<std::size_t>(std::clamp(i0 + 1, 0L, last));
  }
  taps.count = 0;
  // Zero weights are skipped: a point on a voxel centre reads that voxel alone (exact, and
  // a NaN neighbour does not leak in).
  for (int corner = 0; corner < 8; ++corner) {
    double w = 1.0;
    std::size_t idx[3];
    for (int a = 0; a < 3; ++a) {
      const bool up = (corner >> a) & 1;
      w *= up ? f[a] : 1.0 - f[a];
      idx[a] = up ? hi[a] : lo[a];
    }
    if (w == 0.0) continue;
    taps.offset[taps.count] = g.index(idx[0], idx[1], idx[2]);
    taps.weight[taps.count] = w;
    ++taps.count;
  }
  return true;
}

/// The voxel (offset into one volume) whose box holds continuous index c, or false.
bool nearest_tap(const Vec3& c, const Geometry& g, std::size_t& offset) {
  std::size_t idx[3];
  for (int a = 0; a < 3; ++a) {
    const double x = snap(c[a]);
    if (!inside(x, g.dims[a])) return false;
    idx[a] = nearest(x, g.dims[a]);
  }
  offset = g.index(idx[0], idx[1], idx[2]);
  return true;
}

/// The footprint's sub-point offsets (in target voxels) from the voxel centre.
std::vector<Vec3> sub_points(const std::array<std::size_t, 3>& n) {
  std::vector<Vec3> points;
  points.reserve(n[0] * n[1] * n[2]);
  auto at = [](std::size_t s, std::size_t count) {
    return (static_cast<double>(s) + 0.5) / static_cast<double>(count) - 0.5;
  };
  for (std::size_t z = 0; z < n[2]; ++z) {
    for (std::size_t y = 0; y < n[1]; ++y) {
      for (std::size_t x = 0; x < n[0]; ++x)
        points.push_back({at(x, n[0]), at(y, n[1]), at(z, n[2])});
    }
  }
  return points;
}

template <class T>
void check_input(View<const T> image, const Geometry& target, const char* what) {
  if (image.empty()) throw InvalidArgument(std::string(what) + ": the source image is empty");
  check_grid(image.geometry, std::string(what) + ": source grid");
  check_grid(target, std::string(what) + ": target grid");
}

}  // namespace

std::array<std::size_t, 3> resample_footprint(const Geometry& source, const Geometry& target,
                                              const Transform& transform, std::size_t footprint) {
  check_grid(source, "resample: source grid");
  check_grid(target, "resample: target grid");
  if (footprint > kMaxFootprint) {
    throw InvalidArgument("resample: footprint " + std::to_string(footprint) +
                          " exceeds the most sub-points per axis, " +
                          std::to_string(kMaxFootprint));
  }
  if (footprint > 0) return {footprint, footprint, footprint};
  const Mat3 steps = IndexMap(source, target, transform).steps();
  std::array<std::size_t, 3> n{};
  for (int c = 0; c < 3; ++c) {
    double span = 0.0;
    for (int r = 0; r < 3; ++r) span = std::max(span, std::abs(steps[3 * r + c]));
    const double count = std::ceil(span - 1e-6);
    n[c] = count < 1.0 ? 1 : std::min(kMaxFootprint, static_cast<std::size_t>(count));
  }
  return n;
}

Image<float> resample(View<const float> image, const Geometry& target, const Transform& transform,
                      const ResampleOptions& options) {
  check_input(image, target, "resample");
  const auto n = resample_footprint(image.geometry, target, transform, options.footprint);
  const std::vector<Vec3> subs = sub_points(n);
  const IndexMap to_source(image.geometry, target, transform);
  const Geometry& g = image.geometry;
  const std::size_t volumes = image.volumes, source_voxels = g.voxel_count(),
                    target_voxels = target.voxel_count();
  Image<float> out(target, volumes, 0.0f);
  float* result = out.data();
  const bool linear = options.interpolation == Interpolation::Linear;
  const double outside = options.outside;
  const double share = 1.0 / static_cast<double>(subs.size());

  cpu::parallel_for(target.dims[1] * target.dims[2], options.threads, [&](std::size_t row) {
    std::vector<double> sum(volumes);
    Taps taps;
    const std::size_t y = row % target.dims[1], z = row / target.dims[1];
    for (std::size_t x = 0; x < target.dims[0]; ++x) {
      std::fill(sum.begin(), sum.end(), 0.0);
      for (const Vec3& s : subs) {
        const Vec3 c = to_source({static_cast<double>(x) + s[0], static_cast<double>(y) + s[1],
                                  static_cast<double>(z) + s[2]});
        bool found;
        if (linear) {
          found = linear_taps(c, g, taps);
        } else {
          taps.count = 1;
          taps.weight[0] = 1.0;
          found = nearest_tap(c, g, taps.offset[0]);
        }
        for (std::size_t v = 0; v < volumes; ++v) {
          if (!found) {
            sum[v] += outside;
            continue;
          }
          const float* volume = image.data + v * source_voxels;
          double value = 0.0;
          for (int k = 0; k < taps.count; ++k) value += taps.weight[k] * volume[taps.offset[k]];
          sum[v] += value;
        }
      }
      const std::size_t i = target.index(x, y, z);
      for (std::size_t v = 0; v < volumes; ++v) {
        result[v * target_voxels + i] =
            static_cast<float>(subs.size() == 1 ? sum[v] : sum[v] * share);
      }
    }
  });
  return out;
}

Image<std::int32_t> resample_labels(View<const std::int32_t> labels, const Geometry& target,
                                    const Transform& transform, LabelRule rule,
                                    const ResampleOptions& options) {
  check_input(labels, target, "resample_labels");
  if (labels.volumes != 1) {
    throw InvalidArgument("resample_labels: a label image has one volume, got " +
                          std::to_string(labels.volumes));
  }
  const std::array<std::size_t, 3> n =
      rule == LabelRule::Nearest
          ? std::array<std::size_t, 3>{1, 1, 1}
          : resample_footprint(labels.geometry, target, transform, options.footprint);
  const std::vector<Vec3> subs = sub_points(n);
  const IndexMap to_source(labels.geometry, target, transform);
  const Geometry& g = labels.geometry;
  Image<std::int32_t> out(target, 1, 0);
  std::int32_t* result = out.data();

  auto label_at = [&](const Vec3& index) -> std::int32_t {
    std::size_t offset = 0;
    return nearest_tap(to_source(index), g, offset) ? labels.data[offset] : 0;
  };

  cpu::parallel_for(target.dims[1] * target.dims[2], options.threads, [&](std::size_t row) {
    std::vector<std::int32_t> votes(subs.size());
    std::vector<std::int32_t> leaders;
    const std::size_t y = row % target.dims[1], z = row / target.dims[1];
    for (std::size_t x = 0; x < target.dims[0]; ++x) {
      const Vec3 centre{static_cast<double>(x), static_cast<double>(y), static_cast<double>(z)};
      std::int32_t chosen;
      if (subs.size() == 1) {
        chosen = label_at({centre[0] + subs[0][0], centre[1] + subs[0][1], centre[2] + subs[0][2]});
      } else {
        for (std::size_t k = 0; k < subs.size(); ++k) {
          votes[k] =
              label_at({centre[0] + subs[k][0], centre[1] + subs[k][1], centre[2] + subs[k][2]});
        }
        std::sort(votes.begin(), votes.end());
        // Runs of equal labels, the longest wins; among equally long runs the smallest label
        // (the first found), unless the centre's label is one of them.
        std::size_t best = 0;
        chosen = votes[0];
        for (std::size_t i = 0; i < votes.size();) {
          std::size_t j = i;
          while (j < votes.size() && votes[j] == votes[i]) ++j;
          const std::size_t count = j - i;
          if (count > best) {
            best = count;
            chosen = votes[i];
            leaders.assign(1, votes[i]);
          } else if (count == best) {
            leaders.push_back(votes[i]);
          }
          i = j;
        }
        if (leaders.size() > 1) {
          const std::int32_t at_centre = label_at(centre);
          if (std::find(leaders.begin(), leaders.end(), at_centre) != leaders.end()) {
            chosen = at_centre;
          }
        }
      }
      result[target.index(x, y, z)] = chosen;
    }
  });
  return out;
}

Mask resample_mask(View<const std::uint8_t> mask, const Geometry& target,
                   const Transform& transform, double min_fraction,
                   const ResampleOptions& options) {
  check_input(mask, target, "resample_mask");
  if (mask.volumes != 1) {
    throw InvalidArgument("resample_mask: a mask has one volume, got " +
                          std::to_string(mask.volumes));
  }
  if (!(min_fraction > 0.0 && min_fraction <= 1.0)) {
    throw InvalidArgument("resample_mask: min_fraction must be in (0, 1], got " +
                          std::to_string(min_fraction));
  }
  std::vector<float> binary(mask.size());
  for (std::size_t i = 0; i < binary.size(); ++i) binary[i] = mask.data[i] != 0 ? 1.0f : 0.0f;
  ResampleOptions linear = options;
  linear.interpolation = Interpolation::Linear;
  linear.outside = 0.0f;
  const Image<float> fraction =
      resample(View<const float>{binary.data(), mask.geometry, 1}, target, transform, linear);
  Mask out(target, 1, 0);
  // Fractions are means of sub-points: allow for their rounding at the threshold.
  const double threshold = min_fraction - 1e-6;
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = fraction[i] >= threshold ? 1 : 0;
  return out;
}

}  // namespace io
PERFQ_NAMESPACE_END
