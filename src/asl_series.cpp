// From an ASL series to mean ΔM images per delay: pairing, grouping, outlier rejection.
#include <perfq/asl_series.hpp>
#include <perfq/errors.hpp>

#include "grid_checks.hpp"
#include "outliers.hpp"
#include "parallel.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

PERFQ_NAMESPACE_BEGIN

VolumeType parse_volume_type(const std::string& text) {
  if (text == "control") return VolumeType::Control;
  if (text == "label") return VolumeType::Label;
  if (text == "m0scan") return VolumeType::M0Scan;
  if (text == "deltam") return VolumeType::DeltaM;
  if (text == "cbf") return VolumeType::Cbf;
  if (text == "noRF") return VolumeType::NoRf;
  throw InvalidArgument("unknown volume_type '" + text +
                        "' (expected control, label, m0scan, deltam, cbf or noRF)");
}

const char* to_string(VolumeType type) noexcept {
  switch (type) {
    case VolumeType::Control:
      return "control";
    case VolumeType::Label:
      return "label";
    case VolumeType::M0Scan:
      return "m0scan";
    case VolumeType::DeltaM:
      return "deltam";
    case VolumeType::Cbf:
      return "cbf";
    case VolumeType::NoRf:
      return "noRF";
  }
  return "unknown";
}

const char* to_string(OutlierRejection method) noexcept {
  switch (method) {
    case OutlierRejection::None:
      return "none";
    case OutlierRejection::Robust:
      return "robust";
    case OutlierRejection::Score:
      return "score";
    case OutlierRejection::Scrub:
      return "scrub";
  }
  return "unknown";
}

OutlierRejection parse_outlier_rejection(const std::string& text) {
  for (OutlierRejection m : {OutlierRejection::None, OutlierRejection::Robust,
                             OutlierRejection::Score, OutlierRejection::Scrub}) {
    if (text == to_string(m)) return m;
  }
  throw InvalidArgument("unknown outlier method '" + text +
                        "' (expected none, robust, score or scrub)");
}

namespace {

/// One perfusion-weighted repeat: control − label, or a deltam volume (label < 0).
struct Repeat {
  std::size_t control;
  std::ptrdiff_t label;
  double delay;
  double duration;
};

/// Mean of the given volumes, voxel by voxel.
Volume<float> mean_of(View<const float> series, const std::vector<std::size_t>& volumes) {
  Volume<float> out(series.geometry);
  const std::size_t n = series.voxel_count();
  const float scale = 1.0f / static_cast<float>(volumes.size());
  cpu::parallel_for(n, 0, [&](std::size_t i) {
    double sum = 0.0;
    for (std::size_t v : volumes) sum += series.volume(v)[i];
    out[i] = static_cast<float>(sum) * scale;
  });
  return out;
}

float repeat_value(View<const float> series, const Repeat& r, std::size_t i) {
  const float a = series.volume(r.control)[i];
  return r.label < 0 ? a : a - series.volume(static_cast<std::size_t>(r.label))[i];
}

/// Mean ΔM of one repeat over the summary region (mask, else all finite voxels).
double repeat_summary(View<const float> series, const Repeat& r, const AveragingOptions& options) {
  double sum = 0.0;
  std::size_t count = 0;
  const std::size_t n = series.voxel_count();
  for (std::size_t i = 0; i < n; ++i) {
    if (options.mask && options.mask->data[i] == 0) continue;
    const float v = repeat_value(series, r, i);
    if (!std::isfinite(v)) continue;
    sum += v;
    ++count;
  }
  return count > 0 ? sum / static_cast<double>(count) : 0.0;
}

/// Indices (into `group`) of the repeats kept by the documented outlier rule.
std::vector<std::size_t> robust_selection(View<const float> series,
                                          const std::vector<Repeat>& group,
                                          const AveragingOptions& options) {
  std::vector<std::size_t> keep(group.size());
  for (std::size_t k = 0; k < group.size(); ++k) keep[k] = k;
  const bool robust = options.robust || options.outliers == OutlierRejection::Robust;
  if (!robust || group.size() < 3) return keep;
  std::vector<double> means;
  for (const Repeat& r : group) means.push_back(repeat_summary(series, r, options));
  const outliers::RobustSpread spread = outliers::robust_spread(means);
  const double sigma = spread.sigma;
  if (!(sigma > 0.0)) return keep;
  std::vector<std::pair<double, std::size_t>> outliers;
  for (std::size_t k = 0; k < group.size(); ++k) {
    const double z = spread.deviation[k] / sigma;
    if (z > options.outlier_threshold) outliers.emplace_back(z, k);
  }
  std::sort(outliers.rbegin(), outliers.rend());  // farthest first
  outliers.resize(std::min(outliers.size(), group.size() / 2));
  keep.clear();
  for (std::size_t k = 0; k < group.size(); ++k) {
    const bool dropped =
        std::any_of(outliers.begin(), outliers.end(), [k](const auto& o) { return o.second == k; });
    if (!dropped) keep.push_back(k);
  }
  return keep;
}

std::string short_number(double value) {
  std::ostringstream s;
  s << value;
  return s.str();
}

bool structural(const AveragingOptions& options) {
  return options.outliers == OutlierRejection::Score || options.outliers == OutlierRejection::Scrub;
}

/// SCORE's and SCRUB's options, checked against the series' grid.
void check_structural_options(const Geometry& grid, const AveragingOptions& options) {
  const char* method = options.outliers == OutlierRejection::Score ? "SCORE" : "SCRUB";
  const std::string prefix = std::string(method) + " (AveragingOptions::outliers): ";
  if (options.robust) {
    throw InvalidArgument(prefix + "AveragingOptions::robust is another outlier rule; set one");
  }
  const TissueMaps& t = options.tissue;
  std::string missing;
  if (!t.gm) missing += "GM";
  if (!t.wm) missing += missing.empty() ? "WM" : ", WM";
  if (!t.csf) missing += missing.empty() ? "CSF" : ", CSF";
  if (!missing.empty()) {
    throw InvalidArgument(prefix + "needs GM, WM and CSF probability maps (AveragingOptions::" +
                          "tissue); missing: " + missing);
  }
  if (!(options.tissue_threshold > 0.0 && options.tissue_threshold < 1.0)) {
    throw InvalidArgument(prefix + "tissue_threshold must be in (0, 1)");
  }
  if (!(options.score_threshold > 0.0) || !std::isfinite(options.score_threshold)) {
    throw InvalidArgument(prefix + "score_threshold must be a positive number");
  }
  const std::pair<const char*, View<const float>> maps[] = {
      {"the GM map", *t.gm}, {"the WM map", *t.wm}, {"the CSF map", *t.csf}};
  for (const auto& [name, map] : maps) {
    checks::one_volume_on_grid(map, grid, prefix + name, "the ASL series");
    for (std::size_t i = 0; i < map.voxel_count(); ++i) {
      if (!std::isfinite(map.data[i])) {
        throw InvalidArgument(prefix + name + " has a value that is not finite at voxel " +
                              std::to_string(i) + "; expected probabilities in [0, 1]");
      }
    }
  }
  if (options.cbf_scale) {
    checks::one_volume_on_grid(*options.cbf_scale, grid, prefix + "the CBF scale",
                               "the ASL series");
  }
}

/// The repeats' CBF (ΔM × the scale) over the voxels SCORE and SCRUB examine: inside the
/// mask, with some tissue (GM + WM + CSF probability > 0), a finite positive scale and a
/// finite ΔM in every repeat.
outliers::RepeatCbf repeat_cbf(View<const float> series, const std::vector<Repeat>& group,
                               const AveragingOptions& options) {
  const TissueMaps& t = options.tissue;
  const std::size_t n = series.voxel_count();
  outliers::RepeatCbf out;
  out.repeats = group.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (options.mask && options.mask->data[i] == 0) continue;
    if (!(t.gm->data[i] + t.wm->data[i] + t.csf->data[i] > 0.0f)) continue;
    const float scale = options.cbf_scale ? options.cbf_scale->data[i] : 1.0f;
    if (!(scale > 0.0f) || !std::isfinite(scale)) continue;
    bool finite = true;
    for (const Repeat& r : group) finite = finite && std::isfinite(repeat_value(series, r, i));
    if (!finite) continue;
    const std::size_t u = out.voxels.size();
    out.voxels.push_back(i);
    out.p_gm.push_back(t.gm->data[i]);
    out.p_wm.push_back(t.wm->data[i]);
    const double threshold = options.tissue_threshold;
    if (t.gm->data[i] > threshold) out.gm.push_back(u);
    if (t.wm->data[i] > threshold) out.wm.push_back(u);
    if (t.csf->data[i] > threshold) out.csf.push_back(u);
  }
  const char* method = options.outliers == OutlierRejection::Score ? "SCORE" : "SCRUB";
  for (const auto& [name, positions] :
       {std::pair<const char*, const std::vector<std::size_t>*>{"GM", &out.gm}, {"WM", &out.wm}}) {
    if (positions->empty()) {
      throw InvalidArgument(std::string(method) + ": no " + name + " voxel (probability above " +
                            short_number(options.tissue_threshold) +
                            ") among the voxels examined (inside the mask, with a finite "
                            "positive CBF scale and finite ΔM)");
    }
  }
  const std::size_t m = out.voxels.size();
  out.values.resize(group.size() * m);
  cpu::parallel_for(m, 0, [&](std::size_t u) {
    const std::size_t i = out.voxels[u];
    const float scale = options.cbf_scale ? options.cbf_scale->data[i] : 1.0f;
    for (std::size_t r = 0; r < group.size(); ++r) {
      out.values[r * m + u] = repeat_value(series, group[r], i) * scale;
    }
  });
  return out;
}

RepeatVolumes volumes_of(const Repeat& r, std::string reason = {}) {
  RepeatVolumes v;
  v.control = r.control;
  if (r.label >= 0) v.label = static_cast<std::size_t>(r.label);
  v.reason = std::move(reason);
  return v;
}

}  // namespace

PreparedAsl prepare_asl(View<const float> series, const std::vector<VolumeType>& context,
                        const AslProtocol& protocol, const AveragingOptions& options,
                        const std::string& source) {
  if (series.empty()) throw InputError(source, "", "the ASL series is empty");
  if (context.size() != series.volumes) {
    throw InputError(source, "volume_type",
                     "the aslcontext has " + std::to_string(context.size()) +
                         " rows but the series has " + std::to_string(series.volumes) + " volumes");
  }
  if (options.mask) {
    checks::one_volume_on_grid(*options.mask, series.geometry, "the averaging mask",
                               "the ASL series");
  }
  if (structural(options)) check_structural_options(series.geometry, options);
  const bool continuous = protocol.labeling_type != LabelingType::Pasl;
  std::vector<std::size_t> controls, labels, m0scans, cbfs;
  std::vector<Repeat> repeats;
  std::size_t no_rf = 0;
  for (std::size_t v = 0; v < context.size(); ++v) {
    switch (context[v]) {
      case VolumeType::Control:
        controls.push_back(v);
        break;
      case VolumeType::Label:
        labels.push_back(v);
        break;
      case VolumeType::M0Scan:
        m0scans.push_back(v);
        break;
      case VolumeType::Cbf:
        cbfs.push_back(v);
        break;
      case VolumeType::NoRf:
        ++no_rf;
        break;
      case VolumeType::DeltaM:
        repeats.push_back({v, -1, protocol.pld_of(v), continuous ? protocol.duration_of(v) : 0.0});
        break;
    }
  }
  // A series that ends in an incomplete pair (a scan stopped, or a vendor's extra volume):
  // the last control or label volume, one more than its partners, is left out.
  std::optional<std::size_t> unpaired;
  if (controls.size() == labels.size() + 1 && (labels.empty() || controls.back() > labels.back())) {
    unpaired = controls.back();
    controls.pop_back();
  } else if (labels.size() == controls.size() + 1 &&
             (controls.empty() || labels.back() > controls.back())) {
    unpaired = labels.back();
    labels.pop_back();
  }
  if (controls.size() != labels.size()) {
    throw InputError(source, "volume_type",
                     std::to_string(controls.size()) + " control volumes but " +
                         std::to_string(labels.size()) +
                         " label volumes; they must pair up (only the series' last control or "
                         "label volume may be left without a partner)");
  }
  for (std::size_t k = 0; k < controls.size(); ++k) {
    const std::size_t c = controls[k], l = labels[k];
    const double delay = protocol.pld_of(l);
    const double duration = continuous ? protocol.duration_of(l) : 0.0;
    if (std::abs(protocol.pld_of(c) - delay) > 1e-6) {
      throw InputError(source, "PostLabelingDelay",
                       "control volume " + std::to_string(c) + " and label volume " +
                           std::to_string(l) + " are paired but have different delays");
    }
    if (continuous && std::abs(protocol.duration_of(c) - duration) > 1e-6) {
      throw InputError(source, "LabelingDuration",
                       "control volume " + std::to_string(c) + " and label volume " +
                           std::to_string(l) + " are paired but have different durations");
    }
    repeats.push_back({c, static_cast<std::ptrdiff_t>(l), delay, duration});
  }
  if (repeats.empty()) {
    throw InputError(source, "volume_type",
                     "no control/label pair and no deltam volume: nothing to quantify");
  }
  for (const Repeat& r : repeats) {
    const std::size_t v = r.label >= 0 ? static_cast<std::size_t>(r.label) : r.control;
    if (!(r.delay > 0.0)) {
      throw InputError(source, "PostLabelingDelay",
                       "volume " + std::to_string(v) + " has a delay of " +
                           std::to_string(r.delay) + " s; expected > 0");
    }
    if (continuous && !(r.duration > 0.0)) {
      throw InputError(source, "LabelingDuration",
                       "volume " + std::to_string(v) + " has a labeling duration of " +
                           std::to_string(r.duration) + " s; expected > 0");
    }
  }

  // Group repeats by (delay, duration), rounded to microseconds, in increasing order.
  std::map<std::pair<long long, long long>, std::vector<Repeat>> groups;
  for (const Repeat& r : repeats) {
    groups[{std::llround(r.delay * 1e6), std::llround(r.duration * 1e6)}].push_back(r);
  }

  if (structural(options)) {
    const char* method = options.outliers == OutlierRejection::Score ? "SCORE" : "SCRUB";
    if (groups.size() != 1) {
      throw InputError(source, "PostLabelingDelay",
                       std::string(method) + " works on single-delay series; this one has " +
                           std::to_string(groups.size()) + " delays");
    }
    if (groups.begin()->second.size() < 3) {
      throw InputError(source, "volume_type",
                       std::string(method) +
                           " needs at least 3 control/label pairs (or deltam volumes); the "
                           "series has " +
                           std::to_string(groups.begin()->second.size()));
    }
  }

  PreparedAsl out;
  const std::size_t n = series.voxel_count();
  std::vector<float> data(n * groups.size());
  std::size_t g = 0;
  for (const auto& entry : groups) {
    const std::vector<Repeat>& group = entry.second;
    std::vector<std::size_t> keep;
    std::vector<std::string> reasons(group.size());
    std::optional<outliers::RepeatCbf> cbf;
    if (structural(options)) {
      cbf = repeat_cbf(series, group, options);
      outliers::ScoreResult selected = outliers::score(*cbf, options.score_threshold);
      keep = std::move(selected.kept);
      reasons = std::move(selected.reason);
    } else {
      keep = robust_selection(series, group, options);
      for (std::string& reason : reasons) {
        reason = "robust rule: mean ΔM beyond " + short_number(options.outlier_threshold) +
                 " robust SDs from the median of the repeats";
      }
    }
    float* dst = data.data() + g * n;
    const float scale = 1.0f / static_cast<float>(keep.size());
    cpu::parallel_for(n, 0, [&](std::size_t i) {
      double sum = 0.0;
      for (std::size_t k : keep) sum += repeat_value(series, group[k], i);
      dst[i] = static_cast<float>(sum) * scale;
    });
    if (options.outliers == OutlierRejection::Scrub) {
      // SCRUB's estimate replaces the mean where the voxel's variance was raised (elsewhere
      // it is the mean, kept as averaged above).
      const outliers::ScrubResult scrubbed = outliers::scrub(*cbf, keep);
      for (std::size_t u = 0; u < cbf->voxels.size(); ++u) {
        if (!(scrubbed.prior[u] > 0.0)) continue;
        const std::size_t i = cbf->voxels[u];
        const double to_delta_m = options.cbf_scale ? options.cbf_scale->data[i] : 1.0;
        dst[i] = static_cast<float>(scrubbed.cbf[u] / to_delta_m);
      }
      std::ostringstream note;
      note << "SCRUB: " << scrubbed.robust_voxels << " of " << cbf->voxels.size()
           << " voxels examined had a variance across repeats above " << scrubbed.variance_threshold
           << " times grey matter's and were estimated robustly with the structural prior "
           << scrubbed.gm_coefficient << " x GM + " << scrubbed.wm_coefficient << " x WM";
      out.notes.push_back(note.str());
    }
    std::vector<RepeatVolumes> kept_volumes, rejected_volumes;
    for (std::size_t k = 0; k < group.size(); ++k) {
      if (std::find(keep.begin(), keep.end(), k) != keep.end()) {
        kept_volumes.push_back(volumes_of(group[k]));
      } else {
        rejected_volumes.push_back(volumes_of(group[k], reasons[k]));
      }
    }
    out.kept_volumes.push_back(std::move(kept_volumes));
    out.rejected_volumes.push_back(std::move(rejected_volumes));
    out.post_labeling_delay.push_back(group.front().delay);
    out.labeling_duration.push_back(group.front().duration);
    out.repeats.push_back(keep.size());
    out.rejected.push_back(group.size() - keep.size());
    ++g;
  }
  out.delta_m = Series<float>(series.geometry, groups.size(), std::move(data));
  out.protocol = protocol;
  out.protocol.post_labeling_delay = out.post_labeling_delay;
  out.protocol.labeling_duration = continuous ? out.labeling_duration : std::vector<double>{};

  if (!m0scans.empty()) out.m0 = mean_of(series, m0scans);
  if (!cbfs.empty()) {
    out.scanner_cbf = mean_of(series, cbfs);
    out.notes.push_back(
        std::to_string(cbfs.size()) +
        " scanner-made cbf volume(s) not used for quantification (their mean is passed through)");
  }
  if (no_rf > 0) out.notes.push_back(std::to_string(no_rf) + " noRF volume(s) ignored");
  if (unpaired) {
    out.notes.push_back("volume " + std::to_string(*unpaired) + " (" +
                        to_string(context[*unpaired]) +
                        ") has no partner: the series ends in an incomplete pair; left out");
  }
  std::size_t rejected = 0;
  for (std::size_t r : out.rejected) rejected += r;
  if (rejected > 0) {
    out.notes.push_back(std::to_string(rejected) + " outlier repeat(s) dropped before averaging");
  }
  return out;
}

Mask m0_brain_region(View<const float> m0) {
  if (m0.volumes != 1) throw InvalidArgument("m0_brain_region: M0 must be one volume");
  const std::size_t n = m0.voxel_count();
  std::vector<float> positive;
  for (std::size_t i = 0; i < n; ++i) {
    const float v = m0.data[i];
    if (std::isfinite(v) && v > 0.0f) positive.push_back(v);
  }
  Mask region(m0.geometry);
  if (positive.empty()) return region;
  const auto k = static_cast<std::size_t>(0.98 * static_cast<double>(positive.size() - 1));
  std::nth_element(positive.begin(), positive.begin() + static_cast<std::ptrdiff_t>(k),
                   positive.end());
  const float floor = 0.5f * positive[k];
  for (std::size_t i = 0; i < n; ++i) {
    region[i] = std::isfinite(m0.data[i]) && m0.data[i] >= floor ? 1 : 0;
  }
  return region;
}

namespace {

/// Keeps the largest 6-connected part of `mask` (ties: the first found in voxel order).
void keep_largest_part(Mask& mask) {
  const auto& d = mask.geometry().dims;
  const std::size_t n = mask.size();
  std::vector<std::uint32_t> part(n, 0);
  std::vector<std::size_t> stack, sizes{0};
  for (std::size_t start = 0; start < n; ++start) {
    if (mask[start] == 0 || part[start] != 0) continue;
    const auto label = static_cast<std::uint32_t>(sizes.size());
    std::size_t size = 0;
    stack.push_back(start);
    part[start] = label;
    while (!stack.empty()) {
      const std::size_t i = stack.back();
      stack.pop_back();
      ++size;
      const std::size_t x = i % d[0], y = (i / d[0]) % d[1], z = i / (d[0] * d[1]);
      const std::size_t sx = 1, sy = d[0], sz = d[0] * d[1];
      auto visit = [&](bool inside, std::size_t j) {
        if (inside && mask[j] != 0 && part[j] == 0) {
          part[j] = label;
          stack.push_back(j);
        }
      };
      visit(x > 0, i - sx);
      visit(x + 1 < d[0], i + sx);
      visit(y > 0, i - sy);
      visit(y + 1 < d[1], i + sy);
      visit(z > 0, i - sz);
      visit(z + 1 < d[2], i + sz);
    }
    sizes.push_back(size);
  }
  const auto largest =
      static_cast<std::uint32_t>(std::max_element(sizes.begin(), sizes.end()) - sizes.begin());
  for (std::size_t i = 0; i < n; ++i) mask[i] = largest != 0 && part[i] == largest ? 1 : 0;
}

/// Fills the holes of each slice of `mask`: background not 4-connected in the slice's plane to
/// the slice's border.
void fill_slice_holes(Mask& mask) {
  const auto& d = mask.geometry().dims;
  const std::size_t plane = d[0] * d[1];
  std::vector<std::uint8_t> outside(plane);
  std::vector<std::size_t> stack;
  for (std::size_t z = 0; z < d[2]; ++z) {
    std::uint8_t* slice = &mask[z * plane];
    std::fill(outside.begin(), outside.end(), 0);
    auto seed = [&](std::size_t i) {
      if (slice[i] == 0 && outside[i] == 0) {
        outside[i] = 1;
        stack.push_back(i);
      }
    };
    for (std::size_t x = 0; x < d[0]; ++x) seed(x), seed(x + d[0] * (d[1] - 1));
    for (std::size_t y = 0; y < d[1]; ++y) seed(d[0] * y), seed(d[0] - 1 + d[0] * y);
    while (!stack.empty()) {
      const std::size_t i = stack.back();
      stack.pop_back();
      const std::size_t x = i % d[0], y = i / d[0];
      if (x > 0) seed(i - 1);
      if (x + 1 < d[0]) seed(i + 1);
      if (y > 0) seed(i - d[0]);
      if (y + 1 < d[1]) seed(i + d[0]);
    }
    for (std::size_t i = 0; i < plane; ++i) slice[i] = outside[i] == 0 ? 1 : 0;
  }
}

}  // namespace

Mask brain_mask(View<const float> image) {
  if (image.volumes != 1) throw InvalidArgument("brain_mask: the image must be one volume");
  Mask mask = m0_brain_region(image);
  keep_largest_part(mask);
  fill_slice_holes(mask);
  return mask;
}

DeltaMSign check_delta_m_sign(View<const float> delta_m, std::optional<View<const float>> m0,
                              std::optional<View<const std::uint8_t>> mask) {
  const std::size_t n = delta_m.voxel_count();
  if (m0) checks::one_volume_on_grid(*m0, delta_m.geometry, "check_delta_m_sign: M0", "ΔM");
  if (mask) {
    checks::one_volume_on_grid(*mask, delta_m.geometry, "check_delta_m_sign: the mask", "ΔM");
  }
  // The region: the mask, else bright M0, else everything.
  std::optional<Mask> bright;
  if (!mask && m0) bright = m0_brain_region(*m0);
  const std::uint8_t* region = mask ? mask->data : bright ? bright->data() : nullptr;
  DeltaMSign out;
  for (std::size_t i = 0; i < n; ++i) {
    if (region != nullptr && region[i] == 0) continue;
    double sum = 0.0;
    for (std::size_t t = 0; t < delta_m.volumes; ++t) sum += delta_m.volume(t)[i];
    if (!std::isfinite(sum) || sum == 0.0) continue;  // 0: no sign to count (e.g. masked out)
    ++out.voxels;
    if (sum < 0.0) ++out.negative;
  }
  if (out.voxels > 0) {
    out.negative_fraction = static_cast<double>(out.negative) / static_cast<double>(out.voxels);
    const double excess = static_cast<double>(out.negative) - 0.5 * static_cast<double>(out.voxels);
    const double sd = 0.5 * std::sqrt(static_cast<double>(out.voxels));
    out.inverted = out.voxels >= 100 && out.negative_fraction >= 0.6 && excess > 4.0 * sd;
  }
  return out;
}

PERFQ_NAMESPACE_END
