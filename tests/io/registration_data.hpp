// Synthetic data for the rigid registration tests and benchmark: a T1w-like image at 1 mm
// and an ASL M0-like image at low resolution made from the same phantom anatomy through a
// known rigid transform.
#pragma once

#include <perfq/image.hpp>
#include <perfq/io/transform.hpp>
#include <perfq/phantom.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <random>

namespace perfq_test {

/// The phantom's anatomy at 1 mm (tissue labels and an asymmetric lesion), with two contrasts.
struct Anatomy {
  perfq::Volume<float> t1w;  ///< WM > GM > CSF (T1-weighted), lesion dark
  perfq::Volume<float> m0;   ///< CSF > GM > WM (proton density), lesion bright
  perfq::Mask brain;         ///< grey or white matter
};

/// The phantom's tissue at 1 mm (a 3 mm phantom of 60×72×56 voxels scaled to 1 mm: an
/// ellipsoidal brain of 140×168×128 mm with cortex, white matter, ventricles, CSF).
///
/// The phantom is mirror-symmetric (left/right, and nearly so front/back and up/down), so a
/// registration could in principle settle on a flip; rotations of at most 10° never reach
/// one, but a real head is not symmetric either: a white-matter lesion in one hemisphere,
/// front and top (dark on T1w, bright on M0), and a bright "eye" in front of the brain on the
/// T1w only (structure present in one image alone, as the skull and eyes of a real T1w) make
/// the problem well-posed and a little less ideal.
inline Anatomy make_anatomy() {
  perfq::PhantomOptions options;
  options.dims = {180, 216, 168};
  options.voxel_mm = 1.0;
  options.repeats = 1;
  const perfq::Phantom phantom = perfq::make_phantom(options);
  const perfq::Geometry& g = phantom.tissue.geometry();
  Anatomy a{perfq::Volume<float>(g), perfq::Volume<float>(g), phantom.brain};
  const float t1w[4] = {0.0f, 0.25f, 0.6f, 1.0f};  // background, CSF, GM, WM
  const float m0[4] = {0.0f, 1.0f, 0.8f, 0.6f};
  for (std::size_t z = 0; z < g.dims[2]; ++z) {
    for (std::size_t y = 0; y < g.dims[1]; ++y) {
      for (std::size_t x = 0; x < g.dims[0]; ++x) {
        const std::size_t i = g.index(x, y, z);
        const std::uint8_t t = phantom.tissue[i];
        a.t1w[i] = t1w[t];
        a.m0[i] = m0[t];
        const double px = g.origin[0] + x;
        const double py = g.origin[1] + y;
        const double pz = g.origin[2] + z;
        if (std::hypot(px - 25.0, py + 30.0, pz - 20.0) < 9.0 && t >= 2) {
          a.t1w[i] = 0.35f;
          a.m0[i] = 0.95f;
        }
        if (std::hypot(px + 25.0, py + 95.0, pz + 5.0) < 10.0) a.t1w[i] = 0.8f;
      }
    }
  }
  return a;
}

/// Trilinear interpolation of `image` at physical point p (identity direction); 0 outside.
inline float sample(const perfq::Volume<float>& image, const std::array<double, 3>& p) {
  const perfq::Geometry& g = image.geometry();
  double f[3];
  long i0[3];
  for (int a = 0; a < 3; ++a) {
    const double u = (p[a] - g.origin[a]) / g.spacing[a];
    if (u < 0.0 || u > static_cast<double>(g.dims[a] - 1)) return 0.0f;
    i0[a] = std::min(static_cast<long>(u), static_cast<long>(g.dims[a]) - 2);
    f[a] = u - i0[a];
  }
  double v = 0.0;
  for (int c = 0; c < 8; ++c) {
    const long x = i0[0] + (c & 1), y = i0[1] + ((c >> 1) & 1), z = i0[2] + ((c >> 2) & 1);
    const double w = ((c & 1) ? f[0] : 1 - f[0]) * (((c >> 1) & 1) ? f[1] : 1 - f[1]) *
                     (((c >> 2) & 1) ? f[2] : 1 - f[2]);
    v += w * image.at(x, y, z);
  }
  return static_cast<float>(v);
}

/// An M0-like image on `grid`: each voxel the mean of the anatomy's M0 contrast over 3×3×3
/// points of the voxel (partial volume), taken through `truth` (which maps points of the
/// anatomy's space to the M0's: M0(truth(p)) = anatomy(p)), plus Gaussian noise of SD `noise`
/// (on a signal of about 1) and, optionally, a receive-coil bias: the intensity rising by
/// `bias` per 100 mm towards the back.
inline perfq::Volume<float> make_m0(const Anatomy& a, const perfq::Geometry& grid,
                                    const perfq::io::Transform& truth, double noise,
                                    double bias = 0.0, std::uint64_t seed = 7) {
  const perfq::io::Transform back = truth.inverse();
  perfq::Volume<float> m0(grid);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> gauss(0.0, noise);
  const perfq::Geometry& g = grid;
  for (std::size_t z = 0; z < g.dims[2]; ++z) {
    for (std::size_t y = 0; y < g.dims[1]; ++y) {
      for (std::size_t x = 0; x < g.dims[0]; ++x) {
        double sum = 0.0;
        std::array<double, 3> q{};
        for (int s = 0; s < 27; ++s) {
          const double u[3] = {x + (s % 3 - 1) / 3.0, y + ((s / 3) % 3 - 1) / 3.0,
                               z + (s / 9 - 1) / 3.0};
          for (int r = 0; r < 3; ++r) {
            q[r] = g.origin[r];
            for (int c = 0; c < 3; ++c) q[r] += g.direction[3 * r + c] * g.spacing[c] * u[c];
          }
          sum += sample(a.m0, back.map(q));
        }
        const double gain = 1.0 + bias * q[1] / 100.0;
        m0.at(x, y, z) = static_cast<float>(gain * sum / 27.0 + gauss(rng));
      }
    }
  }
  return m0;
}

/// A low-resolution EPI-like grid centred on the anatomy, rotated by `tilt_deg` about x
/// (an oblique acquisition).
inline perfq::Geometry epi_grid(const std::array<std::size_t, 3>& dims,
                                const std::array<double, 3>& spacing, double tilt_deg = 0.0) {
  perfq::Geometry g;
  g.dims = dims;
  g.spacing = spacing;
  const double t = tilt_deg * M_PI / 180.0;
  g.direction = {1, 0, 0, 0, std::cos(t), -std::sin(t), 0, std::sin(t), std::cos(t)};
  for (int r = 0; r < 3; ++r) {
    g.origin[r] = 0.0;
    for (int c = 0; c < 3; ++c) {
      g.origin[r] -= g.direction[3 * r + c] * 0.5 * (dims[c] - 1) * spacing[c];
    }
  }
  return g;
}

}  // namespace perfq_test
