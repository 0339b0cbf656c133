/// @file
/// @brief The exact Euclidean distance transform, one line at a time, shared by the CPU and
/// CUDA backends.
///
/// A 3D squared distance transform is three 1D passes (Felzenszwalb & Huttenlocher 2012,
/// "Distance transforms of sampled functions", Theory of Computing 8:415): along x the
/// distance to the nearest site of the line; along y, then z, the lower envelope of the
/// parabolas `g(q) + w (p − q)²` left by the previous pass, with `w` the squared spacing of
/// the axis. Each pass is linear in the line's length, so the transform is linear in voxels.
#pragma once

#include <perfq/version.hpp>

#include <perfq/detail/macros.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>

PERFQ_NAMESPACE_BEGIN
namespace detail {

/// +∞ as a double, usable in device code.
PERFQ_HD inline double edt_infinity() { return static_cast<double>(INFINITY); }

/// A strided array: element k is `data[k * stride]`. Lets one line routine serve contiguous
/// CPU buffers and the coalesced `[k][line]` layouts of the GPU.
template <class T>
struct Strided {
  T* data;
  std::ptrdiff_t stride;
  PERFQ_HD T& operator[](std::ptrdiff_t k) const { return data[k * stride]; }
};

/// Sites of a mask: voxels whose value is nonzero, or zero when `invert` (the complement,
/// for the inside half of a signed transform).
struct MaskSites {
  const std::uint8_t* mask;
  bool invert;
  PERFQ_HD bool operator()(std::size_t i) const { return (mask[i] != 0) != invert; }
};

/// Sites of one territory: voxels whose label equals `label`.
struct LabelSites {
  const std::int32_t* labels;
  std::int32_t label;
  PERFQ_HD bool operator()(std::size_t i) const { return labels[i] == label; }
};

/// First pass, along one line of `n` voxels starting at voxel `first` with voxel stride
/// `step`: out[p] = weight × (index distance to the nearest site)², +∞ without a site.
/// Two scans (forward, backward); integer distances, so voxel units (weight 1) stay exact.
template <class Sites>
PERFQ_HD void edt_first_pass(const Sites& is_site, std::size_t first, std::size_t step,
                             std::ptrdiff_t n, double weight, Strided<double> out) {
  std::ptrdiff_t last = -1;
  for (std::ptrdiff_t p = 0; p < n; ++p) {
    if (is_site(first + static_cast<std::size_t>(p) * step)) last = p;
    out[p] = last >= 0 ? static_cast<double>(p - last) : edt_infinity();
  }
  last = -1;
  for (std::ptrdiff_t p = n - 1; p >= 0; --p) {
    const double forward = out[p];
    if (forward == 0.0) last = p;
    double d = forward;
    if (last >= 0 && static_cast<double>(last - p) < d) d = static_cast<double>(last - p);
    out[p] = d < edt_infinity() ? weight * d * d : d;
  }
}

/// Scratch of one line for edt_envelope_pass: `n` site indices, `n` site values and `n + 1`
/// parabola boundaries.
struct EnvelopeScratch {
  Strided<int> site;
  Strided<double> value;
  Strided<double> boundary;
};

/// Later passes: replaces line `f` (n values, +∞ = no site) by
/// `min_q f[q] + weight (p − q)²` for every p, in place. The sites' values are copied to the
/// scratch first, so reading and writing the same line is safe. `inverse_gap[d]` must hold
/// 1 / (weight d) for d = 1 … n − 1: a multiplication instead of a division per site (the
/// envelope's parabolas can only swap where two of them tie at a voxel, where either value
/// is the minimum).
PERFQ_HD inline void edt_envelope_pass(Strided<double> f, std::ptrdiff_t n, double weight,
                                       const double* inverse_gap, const EnvelopeScratch& s) {
  // A line of zeros (sites of the mask all along) stays as it is; common inside masks.
  std::ptrdiff_t nonzero = 0;
  while (nonzero < n && f[nonzero] == 0.0) ++nonzero;
  if (nonzero == n) return;
  std::ptrdiff_t k = -1;  // index of the envelope's last parabola
  for (std::ptrdiff_t q = 0; q < n; ++q) {
    const double fq = f[q];
    if (!(fq < edt_infinity())) continue;  // not a site
    if (k < 0) {
      k = 0;
      s.site[0] = static_cast<int>(q);
      s.value[0] = fq;
      s.boundary[0] = -edt_infinity();
      s.boundary[1] = edt_infinity();
      continue;
    }
    double cut = 0.0;
    for (;;) {
      const std::ptrdiff_t v = s.site[k];
      // Where the parabolas of q and v meet, written around (q + v) / 2 so that no large
      // squares are subtracted from each other.
      cut = 0.5 * (static_cast<double>(q + v) + (fq - s.value[k]) * inverse_gap[q - v]);
      if (cut > s.boundary[k]) break;
      --k;  // never below 0: boundary[0] is −∞
    }
    ++k;
    s.site[k] = static_cast<int>(q);
    s.value[k] = fq;
    s.boundary[k] = cut;
    s.boundary[k + 1] = edt_infinity();
  }
  if (k < 0) return;  // no site: the line stays +∞
  std::ptrdiff_t j = 0;
  for (std::ptrdiff_t p = 0; p < n; ++p) {
    while (s.boundary[j + 1] < static_cast<double>(p)) ++j;
    const double d = static_cast<double>(p - s.site[j]);
    f[p] = s.value[j] + weight * d * d;
  }
}

/// The inside half of a signed map, from the transform to the mask's complement: voxels of
/// the mask get minus their distance; the others keep theirs.
struct InsideDistanceVoxel {
  const std::uint8_t* mask;
  const double* inside;
  float* out;
  PERFQ_HD void operator()(std::size_t i) const { set(i, inside[i]); }
  /// Writes voxel `i` given its squared distance to the complement.
  PERFQ_HD void set(std::size_t i, double squared) const {
    using std::sqrt;
    if (mask[i] != 0) out[i] = -static_cast<float>(sqrt(squared));
  }
};

/// Unsigned distance: the square root of the squared transform, as float.
struct UnsignedDistanceVoxel {
  const double* squared;
  float* out;
  PERFQ_HD void operator()(std::size_t i) const {
    using std::sqrt;
    out[i] = static_cast<float>(sqrt(squared[i]));
  }
};

}  // namespace detail
PERFQ_NAMESPACE_END
