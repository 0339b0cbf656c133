// The phantom written as an ASL-BIDS dataset, with its ground truth as a derivative dataset.
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/version.hpp>

#include "bids_internal.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace {

using detail::json;

void write_json(const fs::path& path, const json& value) {
  write_text_atomic(path.string(), value.dump(2) + "\n");
}

}  // namespace

std::string write_phantom_bids(const Phantom& phantom, const std::string& root,
                               const std::string& subject) {
  std::string label = subject.rfind("sub-", 0) == 0 ? subject.substr(4) : subject;
  if (label.empty() ||
      !std::all_of(label.begin(), label.end(), [](unsigned char c) { return std::isalnum(c); })) {
    throw InvalidArgument("subject label '" + subject + "' must be alphanumeric (BIDS)");
  }
  const std::size_t volumes = phantom.asl.volumes();
  if (volumes == 0 || phantom.context.size() != volumes) {
    throw InvalidArgument("phantom: the context does not match the ASL series");
  }
  const std::string sub = "sub-" + label;
  const fs::path base(root);
  const fs::path perf = base / sub / "perf";
  const fs::path truth = base / "derivatives" / "truth" / sub / "perf";
  try {
    fs::create_directories(perf);
    fs::create_directories(truth);
  } catch (const fs::filesystem_error& e) {
    throw Error(root + ": cannot create the dataset folders: " + e.code().message());
  }

  write_json(
      base / "dataset_description.json",
      {{"Name", "perfq phantom"},
       {"BIDSVersion", "1.9.0"},
       {"DatasetType", "raw"},
       {"GeneratedBy", json::array({{{"Name", "perfq"}, {"Version", PERFQ_VERSION_STRING}}})}});

  // The ASL series and its metadata.
  const AslProtocol& p = phantom.protocol;
  const bool pasl = p.labeling_type == LabelingType::Pasl;
  const fs::path asl = perf / (sub + "_asl.nii.gz");
  write_nifti(asl.string(), phantom.asl);

  json plds = json::array();
  json durations = json::array();
  double longest = 0.0;
  std::size_t pairs = 0;
  for (std::size_t v = 0; v < volumes; ++v) {
    plds.push_back(p.pld_of(v));
    durations.push_back(p.duration_of(v));
    longest = std::max(longest, p.pld_of(v) + (pasl ? 0.0 : p.duration_of(v)));
    if (phantom.context[v] == VolumeType::Control) ++pairs;
  }
  json sidecar = {{"ArterialSpinLabelingType", to_string(p.labeling_type)},
                  {"PostLabelingDelay", plds},
                  {"MRAcquisitionType", "3D"},
                  {"M0Type", "Separate"},
                  {"BackgroundSuppression", false},
                  {"MagneticFieldStrength", p.magnetic_field_strength},
                  // Labeling plus delay plus a readout of about a second, to 0.1 s.
                  {"RepetitionTimePreparation", std::ceil((longest + 1.0) * 10.0) / 10.0},
                  {"TotalAcquiredPairs", pairs}};
  if (phantom.time_encoding) {
    // ExploreASL's time-encoded fields; the form with one duration per sub-bolus and the
    // delay after the last one (see parse_time_encoding).
    const TimeEncoding& te = *phantom.time_encoding;
    sidecar["PostLabelingDelay"] = te.sub_bolus_pld.back();
    sidecar["LabelingDuration"] = te.sub_bolus_duration;
    sidecar["TimeEncodedMatrixType"] = to_string(phantom.time_encoded_type);
    sidecar["TimeEncodedMatrixSize"] = te.matrix.cycles;
    sidecar.erase("TotalAcquiredPairs");
  } else if (pasl) {
    sidecar["BolusCutOffFlag"] = p.bolus_cutoff_delay.has_value();
    if (p.bolus_cutoff_delay) {
      sidecar["BolusCutOffDelayTime"] = *p.bolus_cutoff_delay;
      sidecar["BolusCutOffTechnique"] = "QUIPSSII";
    }
  } else {
    sidecar["LabelingDuration"] = durations;
  }
  write_json(perf / (sub + "_asl.json"), sidecar);

  std::string context = "volume_type\n";
  for (VolumeType type : phantom.context) context += detail::bids_volume_type(type) + "\n";
  write_text_atomic((perf / (sub + "_aslcontext.tsv")).string(), context);

  write_nifti((perf / (sub + "_m0scan.nii.gz")).string(), phantom.m0);
  write_json(perf / (sub + "_m0scan.json"),
             {{"RepetitionTimePreparation", 6.0},
              {"MRAcquisitionType", "3D"},
              {"IntendedFor", "bids::" + sub + "/perf/" + sub + "_asl.nii.gz"}});

  // Ground truth, as a derivative dataset.
  write_json(
      base / "derivatives" / "truth" / "dataset_description.json",
      {{"Name", "perfq phantom ground truth"},
       {"BIDSVersion", "1.9.0"},
       {"DatasetType", "derivative"},
       {"GeneratedBy", json::array({{{"Name", "perfq"}, {"Version", PERFQ_VERSION_STRING}}})}});
  const std::string t = sub + "_";
  write_nifti((truth / (t + "cbf.nii.gz")).string(), phantom.cbf);
  write_json(truth / (t + "cbf.json"), {{"Units", "mL/100 g/min"}});
  write_nifti((truth / (t + "att.nii.gz")).string(), phantom.att);
  write_json(truth / (t + "att.json"), {{"Units", "s"}});
  write_nifti((truth / (t + "dseg.nii.gz")).string(), phantom.tissue);
  write_text_atomic((truth / (t + "dseg.tsv")).string(), "index\tname\n1\tCSF\n2\tGM\n3\tWM\n");
  write_nifti((truth / (t + "territories.nii.gz")).string(), phantom.territories);
  write_text_atomic((truth / (t + "territories.tsv")).string(),
                    "index\tname\n1\tACA\n2\tMCA\n3\tPCA\n");
  write_nifti((truth / (t + "mask.nii.gz")).string(), phantom.brain);
  write_nifti((truth / (t + "borderdistance.nii.gz")).string(), phantom.border_distance);
  write_json(truth / (t + "borderdistance.json"), {{"Units", "mm"}});
  // Masks for the watershed tools: tissue classes, ventricles, designed border zones, lesions.
  Mask grey(phantom.tissue.geometry()), white(phantom.tissue.geometry()),
      csf(phantom.tissue.geometry());
  for (std::size_t i = 0; i < grey.size(); ++i) {
    grey[i] = phantom.tissue[i] == kGreyMatter ? 1 : 0;
    white[i] = phantom.tissue[i] == kWhiteMatter ? 1 : 0;
    csf[i] = phantom.tissue[i] == kCsf ? 1 : 0;
  }
  write_nifti((truth / (t + "label-GM_mask.nii.gz")).string(), grey);
  write_nifti((truth / (t + "label-WM_mask.nii.gz")).string(), white);
  // CSF as a (0/1) probability map: the quality indices' QEI finds it by convention, while
  // reference-region calibration keeps to the ventricles (label-ventricles_mask), not the
  // whole CSF with its partial volumes at the brain's surface.
  Volume<float> csf_probability(phantom.tissue.geometry());
  for (std::size_t i = 0; i < csf.size(); ++i) csf_probability[i] = csf[i];
  write_nifti((truth / (t + "label-CSF_probseg.nii.gz")).string(), csf_probability);
  if (phantom.ventricles.size() == grey.size()) {
    write_nifti((truth / (t + "label-ventricles_mask.nii.gz")).string(), phantom.ventricles);
  }
  if (phantom.border_zone.size() == grey.size()) {
    write_nifti((truth / (t + "label-borderzone_mask.nii.gz")).string(), phantom.border_zone);
    write_json(truth / (t + "label-borderzone_mask.json"),
               {{"Description",
                 "designed border zones: brain voxels within HalfWidth of a territory border"},
                {"HalfWidth", kPhantomBorderZoneMm},
                {"Units", "mm"}});
  }
  if (phantom.lesions.size() == grey.size() &&
      std::any_of(phantom.lesions.values().begin(), phantom.lesions.values().end(),
                  [](std::uint8_t v) { return v != 0; })) {
    write_nifti((truth / (t + "label-lesion_mask.nii.gz")).string(), phantom.lesions);
  }
  return asl.string();
}

}  // namespace io
PERFQ_NAMESPACE_END
