// M0 calibration: reference-region M0 of arterial blood (see include/perfq/calibration.hpp).
#include <perfq/calibration.hpp>
#include <perfq/errors.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

PERFQ_NAMESPACE_BEGIN

ReferenceTissue parse_reference_tissue(const std::string& text) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
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
  if (region.empty() || region.volumes != 1 || !region.geometry.same_grid(m0.geometry)) {
    throw InvalidArgument(
        "reference-region calibration: the region must be one volume on the grid of M0");
  }
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

PERFQ_NAMESPACE_END
