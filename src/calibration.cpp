// M0 calibration: reference-region M0 of arterial blood and smoothing of a voxelwise M0 (see
// include/perfq/calibration.hpp).
#include <perfq/asl_series.hpp>
#include <perfq/calibration.hpp>
#include <perfq/errors.hpp>

#include "grid_checks.hpp"
#include "text_util.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <sstream>
#include <vector>

PERFQ_NAMESPACE_BEGIN

ReferenceTissue parse_reference_tissue(const std::string& text) {
  const std::string t = strings::lower(text);
  if (t == "csf") return ReferenceTissue::Csf;
  if (t == "wm") return ReferenceTissue::WhiteMatter;
  if (t == "gm") return ReferenceTissue::GreyMatter;
  throw InvalidArgument("unknown reference tissue '" + text + "' (expected csf, wm or gm)");
}

const char* to_string(ReferenceTissue tissue) noexcept {
  switch (tissue) {
    case ReferenceTissue::Csf: return "csf";
    case ReferenceTissue::WhiteMatter: return "wm";
    case ReferenceTissue::GreyMatter: return "gm";
  }
  return "unknown";
}

ReferenceTissueConstants reference_tissue_defaults(ReferenceTissue tissue) noexcept {
  switch (tissue) {
    case ReferenceTissue::Csf: return {4.3, 0.750, 1.15};
    case ReferenceTissue::WhiteMatter: return {1.0, 0.050, 0.82};
    case ReferenceTissue::GreyMatter: return {1.3, 0.100, 0.98};
  }
  return {};
}

namespace {

void check(double value, double low, double high, bool low_open, const char* what) {
  const bool above_low = low_open ? value > low : value >= low;
  if (!(std::isfinite(value) && above_low && value <= high)) {
    std::ostringstream m;
    m << "reference-region calibration: " << what << " is " << value << "; expected a value in "
      << (low_open ? "(" : "[") << low << ", " << high << "]";
    throw InvalidArgument(m.str());
  }
}

}  // namespace

ReferenceCalibration reference_region_m0(View<const float> m0, View<const std::uint8_t> region,
                                         const ReferenceCalibrationOptions& o) {
  if (m0.empty() || m0.volumes != 1) {
    throw InvalidArgument("reference-region calibration: M0 must be one volume");
  }
  checks::one_volume_on_grid(region, m0.geometry, "reference-region calibration: the region",
                             "M0");
  ReferenceCalibration r;
  r.constants = reference_tissue_defaults(o.tissue);
  if (o.t1) r.constants.t1 = *o.t1;
  if (o.t2) r.constants.t2 = *o.t2;
  if (o.partition) r.constants.partition = *o.partition;
  r.t2_blood = o.t2_blood;
  r.echo_time = o.echo_time;
  r.repetition_time = o.repetition_time;
  check(r.constants.t1, 0.0, 10.0, true, "the reference tissue's T1 (s)");
  check(r.constants.t2, 0.0, 10.0, true, "the reference tissue's T2 (s)");
  check(r.constants.partition, 0.0, 2.0, true, "the reference tissue's partition coefficient");
  check(r.t2_blood, 0.0, 10.0, true, "the T2 of blood (s)");
  check(r.echo_time, 0.0, 1.0, false, "the echo time (s)");
  check(r.repetition_time, 0.0, 100.0, false, "the repetition time (s)");

  double sum = 0.0;
  for (std::size_t i = 0; i < m0.voxel_count(); ++i) {
    if (region.data[i] == 0 || !std::isfinite(m0.data[i])) continue;
    sum += m0.data[i];
    ++r.voxels;
  }
  if (r.voxels == 0) {
    throw InvalidArgument("reference-region calibration: no voxel of the region has a finite M0");
  }
  r.region_mean = sum / static_cast<double>(r.voxels);
  if (!(r.region_mean > 0.0)) {
    std::ostringstream m;
    m << "reference-region calibration: the mean M0 in the region is " << r.region_mean
      << "; expected a positive value";
    throw InvalidArgument(m.str());
  }
  // Saturation recovery at TR (none when fully relaxed), then transverse decay at TE undone.
  const double recovery =
      r.repetition_time > 0.0 ? 1.0 - std::exp(-r.repetition_time / r.constants.t1) : 1.0;
  r.m0_reference = r.region_mean / recovery / std::exp(-r.echo_time / r.constants.t2);
  // Per unit of water: the tissue's partition coefficient; blood decays at TE as well.
  r.m0_blood = r.m0_reference / r.constants.partition * std::exp(-r.echo_time / r.t2_blood);
  return r;
}

namespace {

/// One pass of a truncated Gaussian (weights `kernel`, centre at index radius) along axis
/// `axis` of `values`, voxels beyond the grid left out.
void convolve_axis(std::vector<double>& values, const std::array<std::size_t, 3>& dims, int axis,
                   const std::vector<double>& kernel) {
  const std::size_t n = dims[axis];
  const std::size_t stride = axis == 0 ? 1 : axis == 1 ? dims[0] : dims[0] * dims[1];
  const auto radius = static_cast<std::ptrdiff_t>(kernel.size() / 2);
  std::vector<double> line(n);
  const std::size_t lines = dims[0] * dims[1] * dims[2] / n;
  for (std::size_t l = 0; l < lines; ++l) {
    // The first voxel of line l: lines are indexed over the other two axes.
    std::size_t start = 0;
    if (axis == 0) {
      start = l * dims[0];
    } else if (axis == 1) {
      start = (l / dims[0]) * dims[0] * dims[1] + l % dims[0];
    } else {
      start = l;
    }
    for (std::size_t k = 0; k < n; ++k) line[k] = values[start + k * stride];
    for (std::size_t k = 0; k < n; ++k) {
      double sum = 0.0;
      const auto lo = std::max<std::ptrdiff_t>(0, static_cast<std::ptrdiff_t>(k) - radius);
      const auto hi = std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(n) - 1,
                                               static_cast<std::ptrdiff_t>(k) + radius);
      for (std::ptrdiff_t j = lo; j <= hi; ++j) {
        sum += kernel[static_cast<std::size_t>(j - static_cast<std::ptrdiff_t>(k) + radius)] *
               line[static_cast<std::size_t>(j)];
      }
      values[start + k * stride] = sum;
    }
  }
}

}  // namespace

Volume<float> smooth_m0(View<const float> m0, double fwhm_mm,
                        std::optional<View<const std::uint8_t>> region) {
  if (m0.empty() || m0.volumes != 1) throw InvalidArgument("smooth_m0: M0 must be one volume");
  if (!(std::isfinite(fwhm_mm) && fwhm_mm >= 0.0)) {
    std::ostringstream m;
    m << "smooth_m0: the FWHM must be finite and >= 0 mm, got " << fwhm_mm;
    throw InvalidArgument(m.str());
  }
  if (region) checks::one_volume_on_grid(*region, m0.geometry, "smooth_m0: the region", "M0");
  const std::size_t n = m0.voxel_count();
  Volume<float> out(m0.geometry, 1, std::vector<float>(m0.data, m0.data + n));
  if (fwhm_mm == 0.0) return out;
  std::optional<Mask> bright;
  if (!region) bright = m0_brain_region(m0);
  const std::uint8_t* in_region = region ? region->data : bright->data();

  // Normalised convolution: smooth(M0 · R) / smooth(R), R the region's finite voxels.
  std::vector<double> weighted(n), weight(n);
  for (std::size_t i = 0; i < n; ++i) {
    const bool use = in_region[i] != 0 && std::isfinite(m0.data[i]);
    weight[i] = use ? 1.0 : 0.0;
    weighted[i] = use ? m0.data[i] : 0.0;
  }
  const std::array<std::size_t, 3> dims = m0.geometry.dims;
  const double sigma_mm = fwhm_mm / (2.0 * std::sqrt(2.0 * std::log(2.0)));
  for (int axis = 0; axis < 3; ++axis) {
    const double sigma = sigma_mm / m0.geometry.spacing[axis];  // voxels
    // Cut at 3σ, and at the grid's extent (a kernel wider than the grid adds only zeros).
    const double reach = std::min(std::ceil(3.0 * sigma), static_cast<double>(dims[axis] - 1));
    const auto radius = static_cast<std::size_t>(reach);
    if (radius == 0) continue;
    std::vector<double> kernel(2 * radius + 1);
    for (std::size_t k = 0; k < kernel.size(); ++k) {
      const double d = static_cast<double>(k) - static_cast<double>(radius);
      kernel[k] = std::exp(-0.5 * d * d / (sigma * sigma));
    }
    convolve_axis(weighted, dims, axis, kernel);
    convolve_axis(weight, dims, axis, kernel);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (in_region[i] != 0 && std::isfinite(m0.data[i]) && weight[i] > 0.0) {
      out[i] = static_cast<float>(weighted[i] / weight[i]);
    }
  }
  return out;
}

PERFQ_NAMESPACE_END
