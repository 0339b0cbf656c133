// Subcommands of the perfq tool: cbf, phantom, info.
#include "commands.hpp"

#include <perfq/asl_series.hpp>
#include <perfq/cbf.hpp>
#include <perfq/errors.hpp>
#include <perfq/execution.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/phantom.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace perfq_cli {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

const char* const kCbfHelp =
    "usage: perfq cbf <path/sub-X[_ses-Y...]_asl.nii[.gz]> -o <outdir> [options]\n"
    "\n"
    "Quantifies CBF (ml/100 g/min) from a single-delay ASL-BIDS series with the ASL white\n"
    "paper's formula, next to which the sidecar (.json), *_aslcontext.tsv and, for\n"
    "M0Type Separate, *_m0scan.nii[.gz] must lie. Writes <outdir>/<prefix>_cbf.nii.gz,\n"
    "<prefix>_fitstatus.nii.gz (per-voxel status codes) and <prefix>_cbf.json (every\n"
    "constant and option used). Outputs appear complete or not at all.\n"
    "\n"
    "options:\n"
    "  -o, --output DIR          output folder (created if needed)\n"
    "  --backend auto|cpu|cuda   where to compute (default auto: CUDA when a device exists)\n"
    "  --device N                CUDA device ordinal (default 0)\n"
    "  --threads N               CPU threads (default: all)\n"
    "  --mask FILE               compute only inside this mask (same grid as the series)\n"
    "  --lambda X                blood-brain partition coefficient, ml/g (default 0.9)\n"
    "  --t1b S                   arterial blood T1, s (default 1.65 at 3 T, 1.35 at 1.5 T)\n"
    "  --t1t S                   tissue T1 for short-TR M0 correction, s (default 1.3)\n"
    "  --alpha X                 labeling efficiency, overrides the sidecar and defaults\n"
    "                            (defaults: PCASL 0.85, PASL 0.98, CASL 0.68)\n"
    "  --bs-pulse-efficiency X   efficiency per background-suppression pulse (default 0.95)\n"
    "  --m0-value X              use one M0 value for every voxel (overrides M0Type)\n"
    "  --robust                  drop outlier repeats before averaging (see README)\n"
    "  --outlier-threshold Z     robust z-score above which a repeat is dropped (default 3)\n";

const char* const kPhantomHelp =
    "usage: perfq phantom -o <dir> [options]\n"
    "\n"
    "Writes a synthetic brain-shaped ASL-BIDS dataset (3 mm voxels, GM/WM/CSF, three\n"
    "arterial territories with watershed timing) and its ground truth under\n"
    "<dir>/derivatives/truth/.\n"
    "\n"
    "options:\n"
    "  -o, --output DIR   dataset root (created if needed)\n"
    "  --seed N           noise seed (default 1)\n"
    "  --snr X            per-pair grey-matter SNR of ΔM; 0 = noise-free (default 0)\n"
    "  --delays LIST      comma-separated PLDs (PCASL, default 1.8) or TIs (PASL, default 2.5)\n"
    "  --pasl             PASL with QUIPSS II (TI1 0.8 s) instead of PCASL (τ 1.8 s)\n"
    "  --repeats N        control/label pairs per delay (default 4)\n"
    "  --subject LABEL    subject label (default 01)\n";

namespace {

/// Command-line options: positional arguments, options with values and flags.
class Args {
 public:
  Args(const std::vector<std::string>& raw, const std::set<std::string>& with_value,
       const std::set<std::string>& flags, const std::map<std::string, std::string>& aliases) {
    for (std::size_t k = 0; k < raw.size(); ++k) {
      std::string a = raw[k];
      if (auto alias = aliases.find(a); alias != aliases.end()) a = alias->second;
      if (a.size() > 1 && a[0] == '-' && !is_number(a)) {
        if (flags.count(a)) {
          flags_.insert(a);
        } else if (with_value.count(a)) {
          if (k + 1 >= raw.size()) throw UsageError{a + " needs a value"};
          if (values_.count(a)) throw UsageError{a + " given twice"};
          values_[a] = raw[++k];
        } else {
          throw UsageError{"unknown option '" + raw[k] + "'"};
        }
      } else {
        positional_.push_back(raw[k]);
      }
    }
  }
  const std::vector<std::string>& positional() const { return positional_; }
  bool flag(const std::string& name) const { return flags_.count(name) > 0; }
  std::optional<std::string> text(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<double> number(const std::string& name) const {
    auto t = text(name);
    if (!t) return std::nullopt;
    return parse_number(*t, name);
  }
  std::optional<long> integer(const std::string& name) const {
    auto v = number(name);
    if (!v) return std::nullopt;
    if (*v != static_cast<double>(static_cast<long>(*v))) {
      throw UsageError{name + ": expected a whole number, got '" + *text(name) + "'"};
    }
    return static_cast<long>(*v);
  }

  static double parse_number(const std::string& t, const std::string& name) {
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != t.size() || !std::isfinite(v)) {
      throw UsageError{name + ": expected a number, got '" + t + "'"};
    }
    return v;
  }

 private:
  static bool is_number(const std::string& a) {
    return a.size() > 1 && (std::isdigit(static_cast<unsigned char>(a[1])) || a[1] == '.');
  }
  std::vector<std::string> positional_;
  std::set<std::string> flags_;
  std::map<std::string, std::string> values_;
};

/// Files written into a private staging folder, moved into place together at the end, so
/// that a failure leaves none of them behind.
class StagedOutputs {
 public:
  explicit StagedOutputs(const fs::path& dir) : dir_(dir) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw perfq::Error(dir_.string() + ": cannot create the output folder: " + ec.message());
    staging_ = dir_ / (".perfq-staging-" + std::to_string(::getpid()));
    fs::create_directories(staging_, ec);
    if (ec) throw perfq::Error(staging_.string() + ": cannot create: " + ec.message());
  }
  ~StagedOutputs() {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
  StagedOutputs(const StagedOutputs&) = delete;
  StagedOutputs& operator=(const StagedOutputs&) = delete;

  /// Where to write `name` now; it reaches `dir/name` on commit().
  std::string stage(const std::string& name) {
    names_.push_back(name);
    return (staging_ / name).string();
  }
  std::vector<std::string> commit() {
    std::vector<std::string> final_paths;
    for (const auto& name : names_) {
      std::error_code ec;
      fs::rename(staging_ / name, dir_ / name, ec);
      if (ec) throw perfq::Error((dir_ / name).string() + ": cannot move into place: " + ec.message());
      final_paths.push_back((dir_ / name).string());
    }
    return final_paths;
  }

 private:
  fs::path dir_, staging_;
  std::vector<std::string> names_;
};

Json status_legend() {
  Json legend = Json::object();
  for (int s = 0; s <= 4; ++s) {
    legend[std::to_string(s)] = perfq::to_string(static_cast<perfq::VoxelStatus>(s));
  }
  return legend;
}

}  // namespace

int run_cbf(const std::vector<std::string>& raw) {
  if (std::find(raw.begin(), raw.end(), "--help") != raw.end() ||
      std::find(raw.begin(), raw.end(), "-h") != raw.end()) {
    std::cout << kCbfHelp;
    return 0;
  }
  const Args args(raw,
                  {"--output", "--backend", "--device", "--threads", "--mask", "--lambda", "--t1b",
                   "--t1t", "--alpha", "--bs-pulse-efficiency", "--m0-value",
                   "--outlier-threshold"},
                  {"--robust"}, {{"-o", "--output"}});
  if (args.positional().size() != 1) {
    throw UsageError{"expected exactly one *_asl.nii[.gz] path, got " +
                     std::to_string(args.positional().size())};
  }
  const auto out_dir = args.text("--output");
  if (!out_dir) throw UsageError{"-o/--output is required"};

  perfq::Execution execution;
  if (auto b = args.text("--backend")) {
    try {
      execution.backend = perfq::parse_backend(*b);
    } catch (const perfq::InvalidArgument& e) {
      throw UsageError{std::string("--backend: ") + e.what()};
    }
  }
  if (auto d = args.integer("--device")) execution.device = static_cast<int>(*d);
  if (auto t = args.integer("--threads")) {
    if (*t < 0) throw UsageError{"--threads: expected 0 or more"};
    execution.threads = static_cast<int>(*t);
  }
  // Every number is parsed before any file is read: usage errors come first.
  const auto lambda = args.number("--lambda"), t1b = args.number("--t1b"),
             t1t = args.number("--t1t"), alpha = args.number("--alpha"),
             bs_pulse = args.number("--bs-pulse-efficiency"), m0_value = args.number("--m0-value"),
             outlier = args.number("--outlier-threshold");
  if (outlier && !(*outlier > 0)) throw UsageError{"--outlier-threshold: expected a positive number"};

  // Resolve the backend first: asking for CUDA where there is none fails before any work.
  const perfq::Backend backend = perfq::resolve_backend(execution);

  const perfq::io::AslDataset data = perfq::io::read_asl_bids(args.positional()[0]);
  const perfq::AslProtocol& protocol = data.protocol;

  std::optional<perfq::Mask> mask;
  const auto mask_path = args.text("--mask");
  if (mask_path) {
    mask = perfq::io::read_nifti_mask(*mask_path);
    if (!mask->geometry().same_grid(data.asl.geometry())) {
      throw perfq::InputError(*mask_path, "", "the mask is not on the grid of " + data.asl_path);
    }
  }

  perfq::Physiology physiology = perfq::Physiology::at_field(protocol.magnetic_field_strength);
  if (lambda) physiology.blood_brain_partition = *lambda;
  if (t1b) physiology.t1_blood = *t1b;
  if (t1t) physiology.t1_tissue = *t1t;
  if (alpha) physiology.labeling_efficiency = *alpha;
  if (bs_pulse) physiology.background_suppression_pulse_efficiency = *bs_pulse;

  perfq::AveragingOptions averaging;
  averaging.robust = args.flag("--robust");
  if (outlier) averaging.outlier_threshold = *outlier;
  if (mask) averaging.mask = mask->view();

  const perfq::PreparedAsl prepared =
      perfq::prepare_asl(data.asl, data.context, protocol, averaging, data.asl_path);
  if (prepared.delta_m.volumes() != 1) {
    std::ostringstream m;
    m << "the series has " << prepared.delta_m.volumes()
      << " distinct delays; this version of perfq quantifies single-delay data only";
    throw perfq::InputError(data.sidecar_path, "PostLabelingDelay", m.str());
  }

  // M0: an explicit value, else what M0Type says.
  perfq::M0Source m0;
  Json m0_record;
  m0_record["M0Type"] = perfq::to_string(protocol.m0_type);
  if (m0_value) {
    m0 = perfq::M0Source::from_value(*m0_value);
    m0_record["M0Source"] = "command line (--m0-value)";
    m0_record["M0Value"] = *m0_value;
  } else {
    switch (protocol.m0_type) {
      case perfq::M0Type::Separate:
        m0 = perfq::M0Source::from_image(data.m0->view());
        m0_record["M0Source"] = data.m0_path;
        break;
      case perfq::M0Type::Included:
        if (!prepared.m0) {
          throw perfq::InputError(data.context_path, "volume_type",
                                  "M0Type is Included but no m0scan volume is listed");
        }
        m0 = perfq::M0Source::from_image(prepared.m0->view());
        m0_record["M0Source"] = "m0scan volumes of " + data.asl_path;
        break;
      case perfq::M0Type::Estimate:
        m0 = perfq::M0Source::from_value(*protocol.m0_estimate);
        m0_record["M0Source"] = "M0Estimate";
        m0_record["M0Value"] = *protocol.m0_estimate;
        break;
      case perfq::M0Type::Absent:
        throw perfq::InputError(data.sidecar_path, "M0Type",
                                "Absent: no M0 to calibrate with; give --m0-value");
    }
  }
  if (m0.image && !m0.image->geometry.same_grid(data.asl.geometry())) {
    throw perfq::InputError(data.m0_path, "", "M0 is not on the grid of " + data.asl_path);
  }

  perfq::AslProtocol single = protocol;
  single.post_labeling_delay = {prepared.post_labeling_delay.front()};
  single.labeling_duration = {prepared.labeling_duration.front()};
  if (protocol.labeling_type == perfq::LabelingType::Pasl) single.labeling_duration.clear();
  std::optional<perfq::View<const std::uint8_t>> mask_view;
  if (mask) mask_view = mask->view();
  execution.backend = backend;
  const perfq::CbfMaps maps =
      perfq::quantify_cbf(prepared.delta_m.volume(0), m0, single, physiology, mask_view, execution);

  // Summary and sidecar.
  std::size_t status_counts[5] = {0, 0, 0, 0, 0};
  std::vector<float> ok_values;
  for (std::size_t i = 0; i < maps.cbf.size(); ++i) {
    ++status_counts[std::min<std::size_t>(maps.status[i], 4)];
    if (maps.status[i] == 0) ok_values.push_back(maps.cbf[i]);
  }
  const perfq::ResolvedConstants& c = maps.constants;
  Json j;
  j["Description"] = "Cerebral blood flow from single-delay ASL (white-paper model)";
  j["Units"] = "mL/100g/min";
  j["Sources"] = Json::array({data.asl_path});
  if (!data.m0_path.empty()) j["Sources"].push_back(data.m0_path);
  j["GeneratedBy"] = {{"Name", "perfq"}, {"Version", perfq::version()},
                      {"Backend", perfq::to_string(maps.backend)}};
  j["Model"] = "ASL white paper single-delay (Alsop et al. 2015, MRM 73:102)";
  j["ArterialSpinLabelingType"] = perfq::to_string(protocol.labeling_type);
  j["PostLabelingDelay"] = single.post_labeling_delay.front();
  if (protocol.labeling_type == perfq::LabelingType::Pasl) {
    j["BolusCutOffDelayTime"] = protocol.bolus_cutoff_delay ? Json(*protocol.bolus_cutoff_delay)
                                                            : Json(nullptr);
  } else {
    j["LabelingDuration"] = single.labeling_duration.front();
  }
  j["MRAcquisitionType"] = protocol.readout == perfq::Readout::TwoD ? "2D" : "3D";
  if (protocol.readout == perfq::Readout::TwoD) j["SliceTiming"] = protocol.slice_timing;
  j["MagneticFieldStrength"] = protocol.magnetic_field_strength;
  j["BloodBrainPartitionCoefficient"] = c.blood_brain_partition;
  j["ArterialBloodT1"] = c.t1_blood;
  j["TissueT1"] = c.t1_tissue;
  j["LabelingEfficiency"] = c.labeling_efficiency;
  j["LabelingEfficiencySource"] = c.labeling_efficiency_source;
  j["BackgroundSuppressionFactor"] = c.background_suppression_factor;
  j["BackgroundSuppressionSource"] = c.background_suppression_source;
  if (c.background_suppression_source == "pulses") {
    j["BackgroundSuppressionPulseEfficiency"] = physiology.background_suppression_pulse_efficiency;
    j["BackgroundSuppressionNumberPulses"] = protocol.background_suppression.pulses;
  }
  j["EffectiveLabelingEfficiency"] = c.effective_labeling_efficiency;
  for (auto& item : m0_record.items()) j[item.key()] = item.value();
  j["M0RepetitionTime"] = protocol.m0_repetition_time ? Json(*protocol.m0_repetition_time)
                                                      : Json(nullptr);
  j["M0ScaleFactor"] = c.m0_scale;
  j["Averaging"] = {{"Robust", averaging.robust},
                    {"OutlierThreshold", averaging.outlier_threshold},
                    {"RepeatsAveraged", prepared.repeats.front()},
                    {"RepeatsRejected", prepared.rejected.front()}};
  j["Mask"] = mask_path ? Json(*mask_path) : Json(nullptr);
  j["Notes"] = prepared.notes;
  j["StatusCodes"] = status_legend();
  Json counts = Json::object();
  for (int s = 0; s <= 4; ++s) counts[std::to_string(s)] = status_counts[s];
  j["StatusCounts"] = counts;

  StagedOutputs outputs(*out_dir);
  perfq::io::write_nifti(outputs.stage(data.prefix + "_cbf.nii.gz"), maps.cbf.view());
  perfq::io::write_nifti(outputs.stage(data.prefix + "_fitstatus.nii.gz"), maps.status.view());
  perfq::io::write_text_atomic(outputs.stage(data.prefix + "_cbf.json"), j.dump(2) + "\n");
  if (prepared.scanner_cbf) {
    // Scanner-made CBF volumes are not used, but kept next to perfq's for comparison.
    perfq::io::write_nifti(outputs.stage(data.prefix + "_desc-scanner_cbf.nii.gz"),
                           prepared.scanner_cbf->view());
  }
  const auto written = outputs.commit();

  double median = 0.0;
  if (!ok_values.empty()) {
    std::nth_element(ok_values.begin(), ok_values.begin() + ok_values.size() / 2, ok_values.end());
    median = ok_values[ok_values.size() / 2];
  }
  std::cout << "perfq cbf: " << data.asl_path << " (" << perfq::to_string(protocol.labeling_type)
            << ", " << prepared.repeats.front() << " repeat(s)) on "
            << perfq::to_string(maps.backend) << ": " << status_counts[0]
            << " voxels quantified, median CBF " << median << " ml/100 g/min\n";
  for (const auto& note : prepared.notes) std::cout << "  note: " << note << "\n";
  for (const auto& path : written) std::cout << "  wrote " << path << "\n";
  return 0;
}

int run_phantom(const std::vector<std::string>& raw) {
  if (std::find(raw.begin(), raw.end(), "--help") != raw.end() ||
      std::find(raw.begin(), raw.end(), "-h") != raw.end()) {
    std::cout << kPhantomHelp;
    return 0;
  }
  const Args args(raw, {"--output", "--seed", "--snr", "--delays", "--repeats", "--subject"},
                  {"--pasl"}, {{"-o", "--output"}});
  if (!args.positional().empty()) throw UsageError{"unexpected argument '" + args.positional()[0] + "'"};
  const auto out = args.text("--output");
  if (!out) throw UsageError{"-o/--output is required"};
  perfq::PhantomOptions o;
  o.pasl = args.flag("--pasl");
  o.delays = {o.pasl ? 2.5 : 1.8};
  if (auto s = args.integer("--seed")) {
    if (*s < 0) throw UsageError{"--seed: expected 0 or more"};
    o.seed = static_cast<std::uint64_t>(*s);
  }
  if (auto s = args.number("--snr")) o.snr = *s;
  if (auto r = args.integer("--repeats")) {
    if (*r < 1) throw UsageError{"--repeats: expected 1 or more"};
    o.repeats = static_cast<std::size_t>(*r);
  }
  if (auto list = args.text("--delays")) {
    o.delays.clear();
    std::stringstream in(*list);
    std::string item;
    while (std::getline(in, item, ',')) o.delays.push_back(Args::parse_number(item, "--delays"));
  }
  const std::string subject = args.text("--subject").value_or("01");
  const perfq::Phantom phantom = perfq::make_phantom(o);
  const std::string asl = perfq::io::write_phantom_bids(phantom, *out, subject);
  std::cout << "perfq phantom: wrote " << asl << "\n"
            << "  truth under " << (fs::path(*out) / "derivatives" / "truth").string() << "\n";
  return 0;
}

int run_info(const std::vector<std::string>& raw) {
  if (!raw.empty()) throw UsageError{"info takes no arguments"};
  std::cout << "perfq " << perfq::version() << "\n";
  std::cout << "CUDA backend compiled: " << (perfq::cuda_compiled() ? "yes" : "no") << "\n";
  const auto names = perfq::cuda_device_names();
  if (names.empty()) {
    std::cout << "CUDA devices: none (" << perfq::cuda_unavailable_reason() << ")\n";
  } else {
    for (std::size_t d = 0; d < names.size(); ++d) {
      std::cout << "CUDA device " << d << ": " << names[d] << "\n";
    }
  }
  std::cout << "default backend: "
            << perfq::to_string(perfq::resolve_backend(perfq::Execution{})) << "\n";
  return 0;
}

}  // namespace perfq_cli
