// The path from an ASL-BIDS series to calibrated maps (include/perfq/io/pipeline.hpp), one
// function per step: the stated protocol, the mask and constants, the preparation, the M0
// (choice, scale, smoothing, reference region), the sign check, the quantification (single
// delay or kinetic fit), partial-volume correction, the CBF-range check; the provenance
// records are built in provenance.cpp, the files written in series_outputs.cpp.
#include <perfq/cbf.hpp>
#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/outputs.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/io/quality.hpp>
#include <perfq/time_encoded.hpp>
#include <perfq/version.hpp>

#include "../text_util.hpp"
#include "provenance.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <utility>

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace {

using provenance::describe_acquisition;
using provenance::fit_record;
using provenance::Json;
using provenance::range_record;
using provenance::status_counts;

// ---- small helpers -----------------------------------------------------------------------

/// Median of `values` where `status` is 0 and `region` (when given) is not (0 when there is
/// no such voxel).
double median_ok(const Volume<float>& values, const Volume<std::uint8_t>& status,
                 const std::optional<View<const std::uint8_t>>& region) {
  std::vector<float> ok;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (status[i] == 0 && (!region || region->data[i] != 0)) ok.push_back(values[i]);
  }
  if (ok.empty()) return 0.0;
  std::nth_element(ok.begin(), ok.begin() + ok.size() / 2, ok.end());
  return ok[ok.size() / 2];
}

// ---- the protocol, the mask and the constants ----------------------------------------------

/// The sidecar's protocol with the request's background-suppression pulses; `source` says
/// where the pulses came from.
AslProtocol stated_protocol(const AslDataset& data, const SeriesRequest& r, std::string& source) {
  AslProtocol stated = data.protocol;
  // The pulses of the request beat the sidecar's; with neither, an unknown number of pulses
  // would lower α by an unknown factor.
  source = data.background_suppression_pulses_source.empty()
               ? "sidecar"
               : "sidecar: " + data.background_suppression_pulses_source;
  if (r.bs_pulses) {
    stated.background_suppression.enabled = *r.bs_pulses > 0;
    stated.background_suppression.pulses = *r.bs_pulses;
    stated.background_suppression.pulses_unknown = false;
    source = "--bs-pulses";
  }
  const BackgroundSuppression& bs = stated.background_suppression;
  if (bs.enabled && bs.pulses_unknown && !bs.efficiency) {
    throw InputError(data.sidecar_path, "BackgroundSuppressionNumberPulses",
                     "recommended by BIDS when BackgroundSuppression is true, not found (nor "
                     "BackgroundSuppressionPulseTime, whose times perfq would count): each "
                     "pulse lowers the labeling efficiency (CBF is scaled by 1/0.95 per pulse "
                     "by default); give the number of pulses in the sidecar or with "
                     "--bs-pulses N (0 if they do not affect the label)");
  }
  return stated;
}

/// The mask of the request, checked: on the series' grid, not empty.
std::optional<Mask> read_mask(const AslDataset& data, const SeriesRequest& r) {
  if (!r.mask_path) return std::nullopt;
  Mask mask = read_nifti_mask(*r.mask_path);
  if (!mask.geometry().same_grid(data.asl.geometry())) {
    throw InputError(*r.mask_path, "", "the mask is not on the grid of " + data.asl_path);
  }
  if (std::none_of(mask.values().begin(), mask.values().end(),
                   [](std::uint8_t v) { return v != 0; })) {
    throw InputError(*r.mask_path, "", "the mask is empty (no nonzero voxel)");
  }
  return mask;
}

}  // namespace

Physiology series_physiology(const AslProtocol& protocol, const SeriesRequest& r,
                             const std::string& sidecar) {
  // The default blood T1 is known at 1.5 and 3 T only (the white paper's); elsewhere (e.g.
  // 7 T, where it is near 2.1 s) the 3 T value would bias CBF by e^(PLD/T1b) without a word.
  const double tesla = protocol.magnetic_field_strength;
  if (!r.t1_blood && r.hematocrit && !(tesla >= 2.25 && tesla <= 3.5)) {
    std::ostringstream m;
    m << tesla << " T: --hct gives the arterial blood T1 by Lu et al. 2004's relation, "
      << "measured at 3 T only; at this field give the blood T1 with --t1b";
    throw InputError(sidecar, "MagneticFieldStrength", m.str());
  }
  if (!r.t1_blood && !r.hematocrit && !(tesla >= 1.0 && tesla <= 3.5)) {
    std::ostringstream m;
    m << tesla << " T: perfq has default blood T1 values for 1.5 T (1.35 s) and 3 T (1.65 s) "
      << "only; give the arterial blood T1 at this field with --t1b";
    throw InputError(sidecar, "MagneticFieldStrength", m.str());
  }
  Physiology physiology = Physiology::at_field(tesla);
  if (r.blood_brain_partition) physiology.blood_brain_partition = *r.blood_brain_partition;
  if (r.t1_blood) {
    physiology.t1_blood = *r.t1_blood;
  } else if (r.hematocrit) {
    physiology.t1_blood = blood_t1_from_hematocrit(*r.hematocrit);
  }
  if (r.t1_tissue) physiology.t1_tissue = *r.t1_tissue;
  if (r.labeling_efficiency) physiology.labeling_efficiency = *r.labeling_efficiency;
  if (r.bs_pulse_efficiency) {
    physiology.background_suppression_pulse_efficiency = *r.bs_pulse_efficiency;
  }
  return physiology;
}

namespace {

/// Pairs and averages the series (a time-encoded one is decoded into sub-bolus ΔM images,
/// each with its own τ and PLD). Errors name the file that holds the field at fault: the
/// aslcontext for the volume types, the sidecar for timing.
PreparedAsl prepare(const AslDataset& data, const AslProtocol& protocol,
                    const AveragingOptions& averaging) {
  try {
    return data.time_encoding
               ? prepare_time_encoded(data.asl, data.context, protocol, *data.time_encoding,
                                      averaging, data.asl_path)
               : prepare_asl(data.asl, data.context, protocol, averaging, data.asl_path);
  } catch (const InputError& e) {
    if (e.file() != data.asl_path || e.field().empty()) throw;
    const std::string& file = e.field() == "volume_type" ? data.context_path : data.sidecar_path;
    const std::string prefix = e.file() + ": " + e.field() + ": ";
    const std::string what = e.what();
    throw InputError(file, e.field(), what.substr(std::min(prefix.size(), what.size())));
  }
}

// ---- the M0 --------------------------------------------------------------------------------

/// The M0 used and the images its views refer to (kept alive here), with its record.
struct M0State {
  M0Source m0;
  Json record;
  std::optional<Volume<float>> scaled, smoothed;
  std::optional<Mask> reference_mask;
  std::optional<ReferenceCalibration> reference;
  bool relative = false;  ///< no M0 (M0Type Absent): CBF relative to the brain's median
};

/// An explicit value, else what M0Type says.
void choose_m0(const AslDataset& data, const AslProtocol& protocol, const PreparedAsl& prepared,
               const SeriesRequest& r, M0State& s) {
  s.record["M0Type"] = to_string(protocol.m0_type);
  if (r.m0_value) {
    s.m0 = M0Source::from_value(*r.m0_value);
    s.record["M0Source"] = "command line (--m0-value)";
    s.record["M0Value"] = *r.m0_value;
    return;
  }
  switch (protocol.m0_type) {
    case M0Type::Separate:
      s.m0 = M0Source::from_image(data.m0->view());
      s.record["M0Source"] = data.m0_path;
      s.record["M0VolumesAveraged"] = data.m0_volumes;
      break;
    case M0Type::Included:
      if (!prepared.m0) {
        throw InputError(data.context_path, "volume_type",
                         "M0Type is Included but no m0scan volume is listed");
      }
      s.m0 = M0Source::from_image(prepared.m0->view());
      s.record["M0Source"] = "m0scan volumes of " + data.asl_path;
      break;
    case M0Type::Estimate:
      s.m0 = M0Source::from_value(*protocol.m0_estimate);
      s.record["M0Source"] = "M0Estimate";
      s.record["M0Value"] = *protocol.m0_estimate;
      break;
    case M0Type::Absent:
      // Relative CBF: quantified with M0 = 1, then divided by the brain's median.
      s.m0 = M0Source::from_value(1.0);
      s.relative = true;
      s.record["M0Source"] =
          "none (M0Type Absent): relative CBF, 1 = the median over the brain region; give "
          "--m0-value for absolute CBF";
      break;
  }
}

/// A scale between the M0 and the ASL images that the files do not carry (BIDS wants none,
/// some exports have one): applied to a copy of the M0.
void scale_m0(const SeriesRequest& r, M0State& s) {
  if (!r.m0_scale) return;
  if (s.m0.image) {
    const View<const float>& image = *s.m0.image;
    s.scaled.emplace(image.geometry);
    for (std::size_t i = 0; i < image.voxel_count(); ++i) {
      (*s.scaled)[i] = static_cast<float>(image.data[i] * *r.m0_scale);
    }
    s.m0 = M0Source::from_image(s.scaled->view());
  } else {
    s.m0.value *= *r.m0_scale;
  }
  s.record["M0UserScaleFactor"] = *r.m0_scale;
}

/// Smoothing of a voxelwise M0 image, inside the mask or the M0's bright part.
void smooth_m0_image(const AslDataset& data, const AslProtocol& protocol, const SeriesRequest& r,
                     const std::optional<View<const std::uint8_t>>& mask, M0State& s) {
  if (!(r.m0_smooth_fwhm > 0)) return;
  if (!s.m0.image) {
    throw InputError(data.sidecar_path, "M0Type",
                     std::string(to_string(protocol.m0_type)) +
                         ": --m0-smooth needs an M0 image (M0Type Separate or Included)");
  }
  s.smoothed = smooth_m0(*s.m0.image, r.m0_smooth_fwhm, mask);
  s.m0 = M0Source::from_image(s.smoothed->view());
  s.record["M0Smoothing"] = {
      {"FWHM", r.m0_smooth_fwhm},
      {"FWHMUnits", "mm"},
      {"Region", r.mask_path ? "mask" : "M0 >= half its 98th percentile"},
      {"Method", "Gaussian, normalised within the region (voxels outside it unchanged)"}};
}

/// Reference-region calibration: one M0 of arterial blood for every voxel, given to the
/// quantification as the single, fully relaxed M0 λ·M0_blood.
void calibrate_reference(const AslDataset& data, const AslProtocol& protocol,
                         const Physiology& physiology, const SeriesRequest& r, M0State& s) {
  if (!r.reference_tissue) return;
  if (!s.m0.image) {
    throw InputError(data.sidecar_path, "M0Type",
                     std::string(to_string(protocol.m0_type)) +
                         ": --ref-tissue needs an M0 image (M0Type Separate or Included)");
  }
  const std::string& mask_path = *r.reference_mask;
  {  // A probability map (e.g. a partial-volume estimate) would count every voxel with any
     // of the tissue as the tissue: only 0/1 masks are taken.
    const Image<float> values = read_nifti(mask_path);
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (values[i] != 0.0f && values[i] != 1.0f) {
        std::ostringstream m;
        m << "the reference region must be a 0/1 mask of the tissue alone; voxel " << i << " is "
          << values[i] << " (a probability map? threshold it, e.g. above 0.9)";
        throw InputError(mask_path, "", m.str());
      }
    }
  }
  s.reference_mask = read_nifti_mask(mask_path);
  if (!s.reference_mask->geometry().same_grid(data.asl.geometry())) {
    throw InputError(mask_path, "", "the reference region is not on the grid of " + data.asl_path);
  }
  ReferenceCalibrationOptions ref = r.reference;
  ref.tissue = *r.reference_tissue;
  ref.repetition_time = protocol.m0_repetition_time.value_or(0.0);
  if (!r.echo_time && !data.m0_echo_time_issue.empty()) {
    throw InputError(data.m0_echo_time_file, "EchoTime",
                     data.m0_echo_time_issue + " (needed by --ref-tissue; or give --echo-time)");
  }
  ref.echo_time = r.echo_time ? *r.echo_time : data.m0_echo_time.value_or(0.0);
  if (r.blood_t2) ref.t2_blood = *r.blood_t2;
  try {
    s.reference = reference_region_m0(*s.m0.image, s.reference_mask->view(), ref);
  } catch (const InvalidArgument& e) {
    throw InputError(mask_path, "", e.what());
  }
  // Its saturation recovery is done, with the tissue's own T1: no voxelwise short-TR
  // correction on top.
  s.m0 = M0Source::relaxed_value(physiology.blood_brain_partition * s.reference->m0_blood);
  const ReferenceCalibration& c = *s.reference;
  s.record["M0Calibration"] = {
      {"Method", "reference region"},
      {"Tissue", to_string(*r.reference_tissue)},
      {"Mask", mask_path},
      {"Voxels", c.voxels},
      {"RegionMeanM0", c.region_mean},
      {"T1", c.constants.t1},
      {"T2", c.constants.t2},
      {"PartitionCoefficient", c.constants.partition},
      {"BloodT2", c.t2_blood},
      {"EchoTime", c.echo_time},
      {"EchoTimeSource", r.echo_time         ? "--echo-time"
                         : data.m0_echo_time ? "EchoTime of the M0's sidecar"
                                             : "none (no T2 correction)"},
      {"RepetitionTime", c.repetition_time},
      {"ReferenceM0", c.m0_reference},
      {"ArterialBloodM0", c.m0_blood},
      {"Formula",
       "M0_blood = mean / (1 - exp(-TR/T1)) / exp(-TE/T2) / partition * "
       "exp(-TE/T2_blood); quantified with the single M0 lambda * M0_blood"}};
}

// ---- tissue maps and outlier rejection ------------------------------------------------------

/// The request's GM, WM and CSF probability maps, read once (quality control and SCORE/SCRUB
/// share them).
struct TissueImages {
  std::optional<Volume<float>> maps[3];
  const std::optional<std::string>* paths[3] = {nullptr, nullptr, nullptr};

  TissueMaps view() const {
    TissueMaps tissue;
    if (maps[0]) tissue.gm = maps[0]->view();
    if (maps[1]) tissue.wm = maps[1]->view();
    if (maps[2]) tissue.csf = maps[2]->view();
    return tissue;
  }
  /// The files given, "a / b / c".
  std::string files() const {
    std::string out;
    for (const auto* path : paths) {
      if (*path) out += (out.empty() ? "" : " / ") + **path;
    }
    return out;
  }
};

TissueImages read_tissue(const AslDataset& data, const SeriesRequest& r) {
  TissueImages t;
  t.paths[0] = &r.gm_probseg;
  t.paths[1] = &r.wm_probseg;
  t.paths[2] = &r.csf_probseg;
  for (int k = 0; k < 3; ++k) {
    if (*t.paths[k]) t.maps[k] = read_nifti_3d(**t.paths[k], &data.asl.geometry(), data.asl_path);
  }
  return t;
}

bool structural_outliers(const SeriesRequest& r) {
  return r.averaging.outliers == OutlierRejection::Score ||
         r.averaging.outliers == OutlierRejection::Scrub;
}

/// SCORE (and SCRUB) on the pairs of a single-delay series: prepared again, with the tissue
/// maps and the voxelwise factor that turns a pair's ΔM into CBF (the quantification of
/// ΔM = 1 with the M0 and constants chosen; 0 where it has no value, e.g. outside the mask).
PreparedAsl reject_outliers(const AslDataset& data, const AslProtocol& protocol,
                            const PreparedAsl& all, const M0State& s, const Physiology& physiology,
                            const std::optional<View<const std::uint8_t>>& mask,
                            const TissueImages& tissue, const SeriesRequest& r) {
  const std::string option = std::string("--outliers ") + to_string(r.averaging.outliers);
  if (data.time_encoding || all.delta_m.volumes() != 1) {
    throw InputError(data.sidecar_path, "PostLabelingDelay",
                     option + " works on single-delay series; this one has " +
                         std::to_string(all.delta_m.volumes()) +
                         (data.time_encoding ? " sub-boli (time-encoded)" : " delays"));
  }
  Volume<float> ones(data.asl.geometry());
  for (std::size_t i = 0; i < ones.size(); ++i) ones[i] = 1.0f;
  const CbfMaps unit = quantify_cbf(ones.view(), s.m0, all.protocol, physiology, mask, r.execution);
  AveragingOptions averaging = r.averaging;
  averaging.mask = mask;
  averaging.tissue = tissue.view();
  averaging.tissue_threshold = r.tissue_threshold;
  averaging.cbf_scale = unit.cbf.view();
  try {
    return prepare(data, protocol, averaging);
  } catch (const InvalidArgument& e) {
    throw InputError(tissue.files(), "", option + ": " + e.what());
  }
}

// ---- checks --------------------------------------------------------------------------------

/// The brain region of the checks and summaries: the mask, else the automatic brain mask
/// (brain_mask) of the M0 image used (else of the series' own M0 image when an M0 value
/// overrides it, else of the mean control image).
struct BrainRegion {
  std::optional<Mask> automatic;
  std::optional<View<const std::uint8_t>> view;
  std::string name;
};

/// The mean of the series' control volumes (none: absent).
std::optional<Volume<float>> mean_control(const AslDataset& data) {
  const std::size_t n = data.asl.voxel_count();
  std::vector<double> sum(n, 0.0);
  std::size_t controls = 0;
  for (std::size_t v = 0; v < data.context.size() && v < data.asl.volumes(); ++v) {
    if (data.context[v] != VolumeType::Control) continue;
    const float* volume = data.asl.data() + v * n;
    for (std::size_t i = 0; i < n; ++i) sum[i] += volume[i];
    ++controls;
  }
  if (controls == 0) return std::nullopt;
  Volume<float> mean(data.asl.geometry());
  for (std::size_t i = 0; i < n; ++i) mean[i] = static_cast<float>(sum[i] / controls);
  return mean;
}

void find_brain(const AslDataset& data, const PreparedAsl& prepared, const M0State& s,
                const std::optional<View<const std::uint8_t>>& mask, const SeriesRequest& r,
                BrainRegion& brain) {
  brain.view = mask;
  brain.name = "mask";
  if (r.mask_path) return;
  std::optional<View<const float>> region_m0 = s.m0.image;
  if (!region_m0 && data.m0) region_m0 = data.m0->view();
  if (!region_m0 && prepared.m0) region_m0 = prepared.m0->view();
  if (region_m0) {
    brain.automatic = brain_mask(*region_m0);
    brain.name = "automatic brain mask (of the M0 image)";
  } else if (const std::optional<Volume<float>> control = mean_control(data)) {
    brain.automatic = brain_mask(control->view());
    brain.name = "automatic brain mask (of the mean control image)";
  } else {
    brain.name = "all voxels";
    return;
  }
  brain.view = brain.automatic->view();
}

/// The brain region's record for the sidecar.
Json brain_record(const BrainRegion& brain) {
  Json j = {{"Region", brain.name}};
  if (brain.automatic) {
    std::size_t voxels = 0;
    for (std::size_t i = 0; i < brain.automatic->size(); ++i) voxels += (*brain.automatic)[i] != 0;
    j["Voxels"] = voxels;
    j["Rule"] =
        "at least half the 98th percentile of the image's positive values, its largest "
        "6-connected part, holes of each slice filled";
    j["File"] = "<prefix>_desc-brain_mask.nii.gz (.nii when the images are uncompressed)";
  }
  j["UsedFor"] = "the ΔM sign check, the CBF-range check, the ATT-at-bound share, the medians";
  return j;
}

/// Control and label swapped (in the aslcontext, or deltam stored as label − control) would
/// give a map of negative CBF: refused unless the request says not to check.
DeltaMSign check_sign(const AslDataset& data, const PreparedAsl& prepared, const BrainRegion& brain,
                      const SeriesRequest& r) {
  const DeltaMSign sign = check_delta_m_sign(prepared.delta_m.view(), std::nullopt, brain.view);
  if (!sign.inverted || !r.check_sign) return sign;
  std::ostringstream m;
  m << "ΔM (control − label) is negative in " << std::lround(100.0 * sign.negative_fraction)
    << " % of the " << sign.voxels << " brain voxels examined: control and label look "
    << "swapped";
  if (data.time_encoding) {
    // Decoded with the matrix: its sign convention is the likelier culprit.
    m << " (the time-encoding matrix's sign: perfq takes +1 as control, −1 as label); give "
         "the matrix with the other sign in TimeEncodedMatrix, or pass --no-sign-check to "
         "quantify anyway";
    throw InputError(data.sidecar_path, "TimeEncodedMatrix", m.str());
  }
  m << " (the order of the control/label rows, or deltam volumes stored as label − "
    << "control); correct the aslcontext, or pass --no-sign-check to quantify anyway";
  throw InputError(data.context_path, "volume_type", m.str());
}

/// The plausibility check of a CBF map (CbfRangeCheck); a warning when implausible.
CbfRangeCheck check_cbf_range(const Volume<float>& cbf, const Volume<std::uint8_t>& status,
                              const BrainRegion& brain, std::vector<std::string>& warnings) {
  CbfRangeCheck c;
  c.region = brain.name;
  if (!brain.view) {
    c.why_not = "no mask, no M0 image and no control images";
    return c;
  }
  const std::uint8_t* region = brain.view->data;
  std::vector<float> values;
  for (std::size_t i = 0; i < cbf.size(); ++i) {
    if (region[i] != 0 && status[i] == 0) values.push_back(cbf[i]);
  }
  if (values.empty()) {
    c.why_not = "no fitted voxel in the region";
    return c;
  }
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  c.checked = true;
  c.voxels = values.size();
  c.median_cbf = values[values.size() / 2];
  c.plausible = c.median_cbf >= c.low && c.median_cbf <= c.high;
  if (!c.plausible) {
    std::ostringstream m;
    m << "the median CBF in the brain is " << c.median_cbf << " ml/100 g/min, outside " << c.low
      << "–" << c.high
      << ": check the M0 (on the scale of the ASL series? --m0-scale), the labeling "
         "efficiency and the background suppression";
    warnings.push_back(m.str());
  }
  return c;
}

/// The share of the brain's fitted voxels (status 0 or 7) whose arrival time ended at a bound
/// of its range (status 7); a warning above kAttAtBoundWarning. Its record for the sidecar.
constexpr double kAttAtBoundWarning = 0.10;

Json check_att_bounds(const Volume<std::uint8_t>& status, const BrainRegion& brain,
                      const KineticOptions& k, std::vector<std::string>& warnings) {
  const std::uint8_t* region = brain.view ? brain.view->data : nullptr;
  std::size_t fitted = 0, at_bound = 0;
  for (std::size_t i = 0; i < status.size(); ++i) {
    if (region != nullptr && region[i] == 0) continue;
    if (status[i] == detail::kStatusOk) ++fitted;
    if (status[i] == detail::kStatusAtBound) ++at_bound;
  }
  fitted += at_bound;
  const double fraction = fitted > 0 ? static_cast<double>(at_bound) / fitted : 0.0;
  if (fraction > kAttAtBoundWarning) {
    std::ostringstream m;
    m << std::lround(100.0 * fraction) << " % of the " << fitted << " fitted voxels of the "
      << "brain (" << brain.name << ") have their arrival time at a bound of its range ["
      << k.att_min << ", " << k.att_max << "] s (status 7): the delays may not cover the "
      << "arrival times (widen the range with --att-min/--att-max), or the signal is too "
      << "noisy to place them (the ATT prior, --att-prior, pulls noisy voxels away from the "
      << "bounds)";
    warnings.push_back(m.str());
  }
  return {{"Region", brain.name},
          {"FittedVoxels", fitted},
          {"AtBound", at_bound},
          {"Fraction", fraction},
          {"WarningAbove", kAttAtBoundWarning}};
}

// ---- quantification ------------------------------------------------------------------------

/// Voxels whose M0 is far below the brain's (SeriesRequest::min_m0_fraction of the brain
/// region's median M0): status 8 and maps 0, wherever the quantification gave a value (status
/// 0 or 4–7); statuses 1–3 stay. ΔM/M0 there is noise over almost nothing (the background of
/// a resampled or spiral acquisition, M0 ~1e-14): CBF of ±1e9 with status 0 otherwise. The
/// record for the sidecar (`M0Floor`); `StatusCounts` is set again after it.
Json flag_low_m0(const M0State& s, const BrainRegion& brain, const SeriesRequest& r,
                 SeriesMaps& out) {
  Json record = {{"Rule",
                  "M0 below Fraction x the median M0 of the brain region (positive, finite "
                  "values): status 8 (M0 too low), maps 0"},
                 {"Fraction", r.min_m0_fraction},
                 {"Region", brain.name}};
  if (!s.m0.image || !(r.min_m0_fraction > 0.0)) {
    record["Applied"] = false;
    record["Why"] = !s.m0.image ? "one M0 value for every voxel (no M0 image)"
                                : "turned off (--min-m0-fraction 0)";
    return record;
  }
  const View<const float>& m0 = *s.m0.image;
  std::vector<float> brain_m0;
  for (std::size_t i = 0; i < m0.voxel_count(); ++i) {
    const float v = m0.data[i];
    if ((!brain.view || brain.view->data[i] != 0) && std::isfinite(v) && v > 0.0f) {
      brain_m0.push_back(v);
    }
  }
  if (brain_m0.empty()) {
    record["Applied"] = false;
    record["Why"] = "no positive M0 in the brain region";
    return record;
  }
  const std::size_t half = brain_m0.size() / 2;
  std::nth_element(brain_m0.begin(), brain_m0.begin() + half, brain_m0.end());
  double median = brain_m0[half];
  if (brain_m0.size() % 2 == 0) {  // the mean of the two middle values
    median = 0.5 * (median + *std::max_element(brain_m0.begin(), brain_m0.begin() + half));
  }
  const double threshold = r.min_m0_fraction * median;
  std::size_t flagged = 0;
  auto zero = [](std::optional<Volume<float>>& map, std::size_t i) {
    if (map) (*map)[i] = 0.0f;
  };
  for (std::size_t i = 0; i < out.status.size(); ++i) {
    const std::uint8_t code = out.status[i];
    if (code == detail::kStatusOutsideMask || code == detail::kStatusM0NotPositive ||
        code == detail::kStatusNonFiniteInput || !(m0.data[i] < threshold)) {
      continue;
    }
    out.status[i] = detail::kStatusM0TooLow;
    out.cbf[i] = 0.0f;
    for (auto* map :
         {&out.att, &out.cbf_se, &out.att_se, &out.abv, &out.abv_se, &out.arterial_att}) {
      zero(*map, i);
    }
    ++flagged;
  }
  record["Applied"] = true;
  record["BrainMedianM0"] = median;
  record["Threshold"] = threshold;
  record["Voxels"] = flagged;
  return record;
}

/// The white paper's single-delay formula.
void quantify_single(const PreparedAsl& prepared, const M0State& s, const AslProtocol& averaged,
                     const Physiology& physiology,
                     const std::optional<View<const std::uint8_t>>& mask, const SeriesRequest& r,
                     SeriesMaps& out, Json& j) {
  CbfMaps maps =
      quantify_cbf(prepared.delta_m.volume(0), s.m0, averaged, physiology, mask, r.execution);
  out.constants = maps.constants;
  out.backend = maps.backend;
  j["Description"] = "Cerebral blood flow from single-delay ASL (white-paper model)";
  j["Model"] = "ASL white paper single-delay (Alsop et al. 2015, MRM 73:102)";
  j["StatusCounts"] = status_counts(maps.status);
  out.cbf = std::move(maps.cbf);
  out.status = std::move(maps.status);
}

/// The kinetic model's fit (multi-delay and time-encoded series).
/// The tissue T1 per voxel a request asks for (`--t1t-map`, `--t1t-pv`), with its record
/// for the sidecar (`TissueT1Source`); none when it asks for one value.
std::optional<Volume<float>> tissue_t1(const AslDataset& data, const TissueImages& tissue,
                                       const Physiology& physiology, const SeriesRequest& r,
                                       Json& record) {
  if (r.t1_tissue_map) {
    record = {{"Source", "map"}, {"File", *r.t1_tissue_map}, {"Units", "s"},
              {"Rounding", "each voxel's value to 1 ms"}};
    return read_nifti_3d(*r.t1_tissue_map, &data.asl.geometry(), data.asl_path);
  }
  if (!r.t1_tissue_partial_volume) {
    record = {{"Source", "one value"}, {"Value", physiology.t1_tissue}};
    return std::nullopt;
  }
  const double grey = physiology.t1_tissue, white = r.t1_white_matter.value_or(1.1);
  const Volume<float>& gm = *tissue.maps[0];
  const Volume<float>& wm = *tissue.maps[1];
  Volume<float> t1(gm.geometry());
  for (std::size_t i = 0; i < t1.size(); ++i) {
    const double pg = std::clamp(static_cast<double>(gm[i]), 0.0, 1.0);
    const double pw = std::clamp(static_cast<double>(wm[i]), 0.0, 1.0);
    const bool finite = std::isfinite(gm[i]) && std::isfinite(wm[i]);
    t1[i] = static_cast<float>(finite && pg + pw >= 0.05 ? (pg * grey + pw * white) / (pg + pw)
                                                         : grey);
  }
  record = {{"Source", "partial-volume weighted"},
            {"Definition",
             "(pGM T1GM + pWM T1WM) / (pGM + pWM) from the GM and WM probability maps; T1GM "
             "where pGM + pWM < 0.05"},
            {"GreyMatter", grey},
            {"WhiteMatter", white},
            {"WhiteMatterSource", r.t1_white_matter ? "--t1t-wm" : "default (BASIL's 1.1 s)"},
            {"Maps", {*r.gm_probseg, *r.wm_probseg}},
            {"Rounding", "each voxel's value to 1 ms"}};
  return t1;
}

void quantify_multi(const AslDataset& data, const PreparedAsl& prepared, const M0State& s,
                    const AslProtocol& averaged, const Physiology& physiology,
                    const std::optional<View<const std::uint8_t>>& mask, const SeriesRequest& r,
                    const TissueImages& tissue, SeriesMaps& out, Json& j) {
  KineticOptions kinetic = r.kinetic;
  Json t1_record;
  const std::optional<Volume<float>> t1_map = tissue_t1(data, tissue, physiology, r, t1_record);
  if (t1_map) kinetic.t1_tissue_map = t1_map->view();
  j["TissueT1Source"] = t1_record;
  if (t1_map && kinetic.variant == KineticVariant::WhitePaper) {
    out.notes.push_back("the white-paper variant uses no tissue T1: the tissue T1 map is unused");
  }
  kinetic.weights.assign(prepared.repeats.begin(), prepared.repeats.end());
  if (s.relative && kinetic.variant == KineticVariant::Buxton) {
    // The voxel's own flow sets T1app in the Buxton variant; without an M0 it has no scale.
    kinetic.variant = KineticVariant::BuxtonFixedFlow;
    out.notes.push_back(
        "no M0: the kinetic model's apparent T1 at a fixed flow (buxton-fixed-flow, " +
        strings::format_number(kinetic.fixed_flow * 6000.0) +
        " ml/100 g/min), as the voxel's own flow has no absolute scale");
  }
  KineticFit fit;
  try {
    fit = fit_kinetic(prepared.delta_m, s.m0, averaged, physiology, kinetic, mask, r.execution);
  } catch (const InvalidArgument& e) {
    // A bad tissue T1 map's value: name the file.
    if (r.t1_tissue_map && std::string(e.what()).find("tissue T1 map") != std::string::npos) {
      throw InputError(*r.t1_tissue_map, "", e.what());
    }
    throw;
  }
  out.constants = fit.constants;
  out.backend = fit.backend;
  j["Description"] = data.time_encoding
                         ? "Cerebral blood flow and arterial transit time from time-encoded "
                           "(Hadamard) PCASL, decoded into sub-bolus images"
                         : "Cerebral blood flow and arterial transit time from multi-delay ASL";
  j["Model"] = std::string("Buxton general kinetic model, variant ") + to_string(kinetic.variant);
  j["Fit"] = fit_record(kinetic, fit);
  j["StatusCounts"] = status_counts(fit.status);
  j["Outputs"] = {{"cbf", "mL/100g/min"},
                  {"att", "s"},
                  {"cbf_se", "mL/100g/min"},
                  {"att_se", "s"},
                  {"fitstatus", "code (see StatusCodes)"}};
  if (kinetic.arterial) {
    j["Outputs"]["abv"] = "% (ml arterial blood / 100 ml); 0 where the tissue-only fit wins";
    j["Outputs"]["abv_se"] = "%";
    j["Outputs"]["aatt"] = "s, arterial arrival (search-grid resolution)";
    out.abv = std::move(fit.abv);
    out.abv_se = std::move(fit.abv_se);
    out.arterial_att = std::move(fit.arterial_att);
  }
  out.cbf = std::move(fit.cbf);
  out.status = std::move(fit.status);
  out.att = std::move(fit.att);
  out.cbf_se = std::move(fit.cbf_se);
  out.att_se = std::move(fit.att_se);
}

/// The shortest delay of a single-delay series that can measure CBF in an adult brain:
/// arrival times in adult grey matter reach 1–1.5 s (the white paper recommends a PLD of
/// 1.8 s, a PASL TI of 1.8 s); label still in the arteries at a shorter delay leaves CBF
/// underestimated in the tissue and overestimated in the vessels.
constexpr double kShortestPld = 1.0, kShortestTi = 1.2;

void warn_of_short_delay(const AslDataset& data, const AslProtocol& averaged,
                         std::vector<std::string>& warnings) {
  const bool pasl = averaged.labeling_type == LabelingType::Pasl;
  const double delay = averaged.pld_of(0), shortest = pasl ? kShortestTi : kShortestPld;
  if (!(delay < shortest)) return;
  warnings.push_back(data.sidecar_path + ": PostLabelingDelay: " +
                     (pasl ? std::string("the inversion time TI ") : std::string("the PLD ")) +
                     strings::format_number(delay) + " s is shorter than " +
                     strings::format_number(shortest) +
                     " s: much of the label has not reached the tissue of an adult brain by "
                     "then (arrival times 0.7–1.8 s), so CBF is underestimated in the tissue "
                     "and overestimated in the arteries; a single delay needs 1.8 s or more "
                     "(the white paper) or several delays (a kinetic fit)");
}

/// Relative CBF (no M0): the CBF map and its standard error divided by the median CBF of the
/// brain region's fitted voxels.
void make_relative(const BrainRegion& brain, SeriesMaps& out, Json& j) {
  const double median = median_ok(out.cbf, out.status, brain.view);
  if (!(median > 0.0)) {
    throw InputError(out.asl_path, "",
                     "M0Type Absent: relative CBF needs a positive median CBF in the brain "
                     "region (" +
                         brain.name + "), not " + std::to_string(median) +
                         "; give --m0-value for CBF on the M0's scale");
  }
  const auto scale = static_cast<float>(1.0 / median);
  for (std::size_t i = 0; i < out.cbf.size(); ++i) out.cbf[i] *= scale;
  if (out.cbf_se) {
    for (std::size_t i = 0; i < out.cbf_se->size(); ++i) (*out.cbf_se)[i] *= scale;
  }
  out.relative_cbf = true;
  j["Units"] = "relative (1 = the median CBF of the brain region)";
  j["RelativeCbf"] = {{"Reason", "M0Type Absent: no M0 image or value"},
                      {"Region", brain.name},
                      {"MedianWithUnitM0", median},
                      {"Definition",
                       "CBF quantified with M0 = 1 (in the units of the ASL images), divided by "
                       "its median over the region's voxels of status 0"}};
  if (j.contains("Outputs")) {
    j["Outputs"]["cbf"] = "relative";
    j["Outputs"]["cbf_se"] = "relative";
  }
}

/// Partial-volume correction of the CBF map from GM/WM fraction images (same grid), over
/// the voxels of status 0.
void correct_partial_volumes(const AslDataset& data, const SeriesRequest& r, SeriesMaps& out,
                             Json& j) {
  if (!r.pvc_grey && !r.pvc_white) return;
  if (!r.pvc_grey || !r.pvc_white) {
    throw InvalidArgument(
        "partial-volume correction needs both the grey- and the "
        "white-matter fraction images");
  }
  const Volume<float> grey = read_nifti_3d(*r.pvc_grey, &data.asl.geometry(), data.asl_path);
  const Volume<float> white = read_nifti_3d(*r.pvc_white, &data.asl.geometry(), data.asl_path);
  Mask usable(out.cbf.geometry());
  for (std::size_t i = 0; i < usable.size(); ++i) usable[i] = out.status[i] == 0;
  PvcMaps pvc;
  try {
    pvc = partial_volume_correct(out.cbf, grey, white, usable.view(), r.pvc, r.execution);
  } catch (const InvalidArgument& e) {
    throw InputError(*r.pvc_grey + " / " + *r.pvc_white, "", e.what());
  }
  out.cbf_grey = std::move(pvc.cbf_gm);
  out.cbf_white = std::move(pvc.cbf_wm);
  j["PartialVolumeCorrection"] = {
      {"Method", "local linear regression (Asllani et al. 2008) on the CBF map"},
      {"GreyMatterFraction", *r.pvc_grey},
      {"WhiteMatterFraction", *r.pvc_white},
      {"Kernel", {r.pvc.kernel_xy, r.pvc.kernel_xy, r.pvc.kernel_z}},
      {"MinimumFraction", r.pvc.min_fraction},
      {"VoxelsUsed", "fit status 0"}};
}

/// The quality indices of the CBF map over the brain region, with the request's tissue
/// maps; `quality_tsv`/`quality_json` their files' text.
void assess_quality(const AslDataset& data, const SeriesRequest& r, const BrainRegion& brain,
                    const TissueImages& images, bool relative, SeriesMaps& out, Json& j) {
  std::vector<std::string> sources = {data.asl_path};
  for (const auto* path : images.paths) {
    if (*path) sources.push_back(**path);
  }
  const TissueMaps tissue = images.view();
  QualityOptions options;
  options.tissue_threshold = r.tissue_threshold;
  options.brain = brain.view;
  const Volume<std::uint8_t>& status = out.status;
  options.status = status.view();
  options.relative = relative;
  options.threads = r.execution.threads;
  try {
    out.quality = quality_indices(out.cbf.view(), tissue, options);
  } catch (const InvalidArgument& e) {
    throw InputError(images.files(), "", e.what());  // a tissue map's values: name the files
  }
  out.quality_tsv = quality_table_tsv(out.quality);
  out.quality_json = quality_table_json(out.quality, sources);
  Json summary;
  for (const QualityIndex& q : out.quality.indices) {
    if (q.name == "qei" || q.name == "gm_scov" || q.name == "gm_wm_ratio" ||
        q.name == "brain_scov") {
      summary[q.name] = q.defined ? Json(q.value) : Json(nullptr);
    }
  }
  j["QualityControl"] = {{"Table", out.prefix + "_desc-qualitycontrol_cbf.tsv"},
                         {"TissueThreshold", r.tissue_threshold},
                         {"Summary", summary}};
}

/// A warning for each BIDS-required field the sidecar left out and no option stated.
void warn_of_defaults(const AslDataset& data, const SeriesRequest& r,
                      std::vector<std::string>& warnings) {
  for (const DefaultedField& f : data.defaulted) {
    std::string stated_by;
    if (f.field == "BackgroundSuppression") {
      if (r.bs_pulses) continue;
      stated_by = "state the pulses in the sidecar or with --bs-pulses N (0: none)";
    } else if (f.field == "MagneticFieldStrength") {
      if (r.t1_blood) continue;
      stated_by = "state the field in the sidecar, or the blood T1 with --t1b";
    }
    warnings.push_back(f.file + ": " + f.field + ": " + f.assumed +
                       (stated_by.empty() ? "" : "; " + stated_by));
  }
}

/// SeriesRequest::configuration as JSON (null when empty).
Json configuration_record(const std::string& text) {
  if (text.empty()) return nullptr;
  check_json_nesting(text, "SeriesRequest::configuration");
  Json record;
  try {
    record = Json::parse(text);
  } catch (const Json::exception&) {
    record = nullptr;
  }
  if (!record.is_object())
    throw InvalidArgument("SeriesRequest::configuration: expected a JSON object");
  return record;
}

/// The pipeline's steps for a request check_series_request has passed.
SeriesMaps quantify_checked(const AslDataset& data, const SeriesRequest& request) {
  const Json configuration = configuration_record(request.configuration);
  SeriesRequest r = request;
  std::string bs_pulses_source;
  const AslProtocol protocol = stated_protocol(data, r, bs_pulses_source);
  const std::optional<Mask> mask = read_mask(data, r);
  std::optional<View<const std::uint8_t>> mask_view;
  if (mask) mask_view = mask->view();
  r.averaging.mask = mask_view;
  const Physiology physiology = series_physiology(protocol, r, data.sidecar_path);
  const TissueImages tissue = read_tissue(data, r);
  // SCORE and SCRUB need the M0 chosen, which may come from the series itself: every pair
  // first, then the series prepared again without the outliers.
  AveragingOptions every_pair = r.averaging;
  if (structural_outliers(r)) every_pair.outliers = OutlierRejection::None;
  const PreparedAsl all = prepare(data, protocol, every_pair);

  M0State s;
  choose_m0(data, protocol, all, r, s);
  scale_m0(r, s);
  smooth_m0_image(data, protocol, r, mask_view, s);
  calibrate_reference(data, protocol, physiology, r, s);
  std::optional<PreparedAsl> cleaned;
  if (structural_outliers(r)) {
    cleaned = reject_outliers(data, protocol, all, s, physiology, mask_view, tissue, r);
  }
  const PreparedAsl& prepared = cleaned ? *cleaned : all;

  BrainRegion brain;
  find_brain(data, prepared, s, mask_view, r, brain);
  SeriesMaps out;
  out.asl_path = data.asl_path;
  out.prefix = data.prefix;
  out.labeling_type = protocol.labeling_type;
  out.delays = prepared.delta_m.volumes();
  if (data.time_encoding) out.time_encoding = data.time_encoding->matrix_source;
  out.sign_check = check_sign(data, prepared, brain, r);
  out.check_region = brain.name;
  out.notes = prepared.notes;
  if (r.t1_blood && r.hematocrit) {
    out.notes.push_back("--t1b " + strings::format_number(*r.t1_blood) + " s beats --hct " +
                        strings::format_number(*r.hematocrit) +
                        " (the haematocrit would give an arterial blood T1 of " +
                        strings::format_number(blood_t1_from_hematocrit(*r.hematocrit)) + " s)");
  }
  out.rejected_volumes = prepared.rejected_volumes;
  warn_of_defaults(data, r, out.warnings);
  out.warnings.insert(out.warnings.end(), data.warnings.begin(), data.warnings.end());
  if (prepared.scanner_cbf) out.scanner_cbf = *prepared.scanner_cbf;

  // The protocol of the averaged ΔM volumes: one delay (and τ) per volume.
  const AslProtocol& averaged = prepared.protocol;

  Json j;
  j["Units"] = "mL/100g/min";
  j["Sources"] = Json::array({data.asl_path});
  if (!data.m0_path.empty()) j["Sources"].push_back(data.m0_path);
  j["Sidecars"] = data.sidecar_paths;  // the ASL sidecars applied (inherited ones first)
  j["BrainRegion"] = brain_record(brain);
  if (!configuration.is_null()) j["Configuration"] = configuration;  // a configuration file's
  j["DeltaMSignCheck"] = {{"Region", brain.name},
                          {"Voxels", out.sign_check.voxels},
                          {"NegativeFraction", out.sign_check.negative_fraction},
                          {"Inverted", out.sign_check.inverted},
                          {"Checked", r.check_sign}};
  if (out.delays == 1) {
    quantify_single(prepared, s, averaged, physiology, mask_view, r, out, j);
    if (r.t1_tissue_map || r.t1_tissue_partial_volume) {
      out.warnings.push_back(
          std::string(r.t1_tissue_map ? "--t1t-map" : "--t1t-pv") +
          ": the single-delay formula uses no tissue T1 (only the kinetic fit of several "
          "delays does); the tissue T1 given is unused");
    }
    warn_of_short_delay(data, averaged, out.warnings);
  } else {
    quantify_multi(data, prepared, s, averaged, physiology, mask_view, r, tissue, out, j);
  }
  j["M0Floor"] = flag_low_m0(s, brain, r, out);
  j["StatusCounts"] = status_counts(out.status);  // in its place, counting status 8
  if (out.delays > 1) {
    j["AttAtBound"] = check_att_bounds(out.status, brain, r.kinetic, out.warnings);
  }
  if (s.relative) make_relative(brain, out, j);
  correct_partial_volumes(data, r, out, j);
  if (s.relative) {
    out.range_check.region = brain.name;
    out.range_check.why_not = "relative CBF (M0Type Absent): no absolute scale to check";
  } else {
    out.range_check = check_cbf_range(out.cbf, out.status, brain, out.warnings);
  }
  j["CbfRangeCheck"] = range_record(out.range_check);
  out.median_cbf = median_ok(out.cbf, out.status, brain.view);
  if (out.att) out.median_att = median_ok(*out.att, out.status, brain.view);
  assess_quality(data, r, brain, tissue, s.relative, out, j);
  out.brain_mask = std::move(brain.automatic);
  describe_acquisition(data, protocol, prepared, physiology, bs_pulses_source, s.record, r, out, j);
  out.provenance_json = j.dump(2) + "\n";
  return out;
}

}  // namespace

SeriesMaps quantify_series(const std::string& asl_path, const SeriesRequest& request) {
  check_series_request(request);  // a bad request before any file is read
  return quantify_checked(read_asl_bids(asl_path, request.execution.threads), request);
}

SeriesMaps quantify_series(const AslDataset& data, const SeriesRequest& request) {
  check_series_request(request);
  return quantify_checked(data, request);
}

}  // namespace io
PERFQ_NAMESPACE_END
