// perfq register --figure (registration_figure.hpp).
#include "registration_figure.hpp"

#include <perfq/errors.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

namespace perfq_cli {
namespace {

using Point = std::array<double, 3>;

/// Trilinear value of `image` at physical point p; NaN outside its grid.
double sample(const perfq::View<const float>& image, const Point& p) {
  const perfq::Geometry& g = image.geometry;
  double u[3];
  for (int c = 0; c < 3; ++c) {  // index = Dᵀ (p − origin) / spacing (D orthonormal)
    double d = 0.0;
    for (int r = 0; r < 3; ++r) d += g.direction[3 * r + c] * (p[r] - g.origin[r]);
    u[c] = d / g.spacing[c];
    if (u[c] < 0.0 || u[c] > static_cast<double>(g.dims[c] - 1)) return std::nan("");
  }
  std::size_t i0[3];
  double f[3];
  for (int c = 0; c < 3; ++c) {
    i0[c] = std::min(static_cast<std::size_t>(u[c]), g.dims[c] > 1 ? g.dims[c] - 2 : 0);
    f[c] = g.dims[c] > 1 ? u[c] - i0[c] : 0.0;
  }
  double v = 0.0;
  for (int k = 0; k < 8; ++k) {
    const std::size_t x = std::min(i0[0] + (k & 1), g.dims[0] - 1);
    const std::size_t y = std::min(i0[1] + ((k >> 1) & 1), g.dims[1] - 1);
    const std::size_t z = std::min(i0[2] + ((k >> 2) & 1), g.dims[2] - 1);
    const double w = ((k & 1) ? f[0] : 1 - f[0]) * (((k >> 1) & 1) ? f[1] : 1 - f[1]) *
                     (((k >> 2) & 1) ? f[2] : 1 - f[2]);
    const float value = image.at(x, y, z);
    if (std::isfinite(value)) v += w * value;
  }
  return v;
}

double percentile99(const perfq::View<const float>& image) {
  std::vector<float> v;
  const std::size_t n = image.voxel_count();
  const std::size_t stride = std::max<std::size_t>(1, n / 500000);
  for (std::size_t i = 0; i < n; i += stride) {
    if (std::isfinite(image.data[i]) && image.data[i] > 0.0f) v.push_back(image.data[i]);
  }
  if (v.empty()) return 1.0;
  auto k = v.begin() + static_cast<std::ptrdiff_t>(0.99 * (v.size() - 1));
  std::nth_element(v.begin(), k, v.end());
  return *k > 0.0f ? *k : 1.0;
}

std::uint8_t byte(double t) {
  return static_cast<std::uint8_t>(std::lround(255.0 * std::clamp(t, 0.0, 1.0)));
}

}  // namespace

perfq::Volume<float> registration_volume(const perfq::Image<float>& image,
                                         std::optional<long> which, const std::string& path) {
  if (which) {
    if (*which < 0 || static_cast<std::size_t>(*which) >= image.volumes()) {
      throw perfq::InputError(path, "",
                              "has " + std::to_string(image.volumes()) + " volumes; --volume " +
                                  std::to_string(*which) + " is not one of them");
    }
    const auto v = image.volume(static_cast<std::size_t>(*which));
    return perfq::Volume<float>(v.geometry, 1, std::vector<float>(v.data, v.data + v.size()));
  }
  perfq::Volume<float> mean(image.geometry(), 1, 0.0f);
  const std::size_t n = image.voxel_count();
  for (std::size_t t = 0; t < image.volumes(); ++t) {
    const float* v = image.data() + t * n;
    for (std::size_t i = 0; i < n; ++i) mean[i] += std::isfinite(v[i]) ? v[i] : 0.0f;
  }
  for (std::size_t i = 0; i < n; ++i) mean[i] /= static_cast<float>(image.volumes());
  return mean;
}

report::Canvas registration_checkerboard(perfq::View<const float> moving,
                                         perfq::View<const float> fixed,
                                         const perfq::io::Transform& transform) {
  constexpr int kSize = 200;   // pixels (mm) per plane
  constexpr int kSquare = 10;  // mm
  constexpr int kGap = 8;
  constexpr int kLabel = 14;
  const double fixed_scale = percentile99(fixed);
  const double moving_scale = percentile99(moving);
  // The centre: the moving grid's middle, in the fixed image's space.
  const perfq::Geometry& mg = moving.geometry;
  Point mid{};
  for (int r = 0; r < 3; ++r) {
    mid[r] = mg.origin[r];
    for (int c = 0; c < 3; ++c) {
      mid[r] += mg.direction[3 * r + c] * mg.spacing[c] * 0.5 * (mg.dims[c] - 1);
    }
  }
  Point centre = mid;
  if (transform.linear()) centre = transform.inverse().map(mid);

  report::Canvas canvas(3 * kSize + 4 * kGap, kSize + 2 * kGap + kLabel, report::kBackground);
  const char* names[3] = {"axial", "coronal", "sagittal"};
  for (int plane = 0; plane < 3; ++plane) {
    const int left = kGap + plane * (kSize + kGap);
    report::draw_text(canvas, left, kGap / 2, names[plane], report::kText, 1);
    for (int row = 0; row < kSize; ++row) {
      for (int col = 0; col < kSize; ++col) {
        const double a = col - kSize / 2.0;  // screen right, mm
        const double b = row - kSize / 2.0;  // screen down, mm
        Point p = centre;
        if (plane == 0) {  // axial: x (patient's left) to the right, anterior (−y) at the top
          p[0] += a;
          p[1] += b;
        } else if (plane == 1) {  // coronal: superior (+z) at the top
          p[0] += a;
          p[2] -= b;
        } else {  // sagittal: anterior on the left
          p[1] += a;
          p[2] -= b;
        }
        const double f = sample(fixed, p) / fixed_scale;
        const double m = sample(moving, transform.map(p)) / moving_scale;
        const bool moving_square = ((col / kSquare) + (row / kSquare)) % 2 == 1;
        report::Rgb colour{0, 0, 0};
        if (moving_square && std::isfinite(m)) {
          colour = {byte(m), byte(0.8 * m), byte(0.55 * m)};
        } else if (std::isfinite(f)) {
          colour = {byte(f), byte(f), byte(f)};
        }
        canvas.set(left + col, kGap + kLabel + row, colour);
      }
    }
  }
  return canvas;
}

}  // namespace perfq_cli
