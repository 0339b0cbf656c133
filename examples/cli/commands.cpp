// Subcommands of the perfq tool: cbf, phantom, info.
#include "commands.hpp"
#include "cli_util.hpp"

#include <perfq/asl_series.hpp>
#include <perfq/calibration.hpp>
#include <perfq/cbf.hpp>
#include <perfq/errors.hpp>
#include <perfq/execution.hpp>
#include <perfq/kinetic.hpp>
#include <perfq/detail/kinetic_fit.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/phantom.hpp>
#include <perfq/pvc.hpp>
#include <perfq/time_encoded.hpp>

#include <nlohmann/json.hpp>

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

using Json = nlohmann::ordered_json;

const char* const kCbfHelp =
    "usage: perfq cbf <path/sub-X[_ses-Y...]_asl.nii[.gz]> -o <outdir> [options]\n"
    "\n"
    "Quantifies CBF (ml/100 g/min) from an ASL-BIDS series, next to which the sidecar\n"
    "(.json), *_aslcontext.tsv and, for M0Type Separate, *_m0scan.nii[.gz] must lie\n"
    "(sidecars and aslcontext may be inherited from folders above, as BIDS allows).\n"
    "One delay: the ASL white paper's formula; writes <prefix>_cbf.nii.gz.\n"
    "Several delays (PLDs, or TIs for PASL): a fit of the Buxton kinetic model; writes\n"
    "<prefix>_cbf.nii.gz, _att.nii.gz (arterial transit time, s), _cbf_se.nii.gz and\n"
    "_att_se.nii.gz (standard errors).\n"
    "Time-encoded (Hadamard) PCASL, recognised by TimeEncodedMatrixType/Size/Matrix in the\n"
    "sidecar, is decoded into one ΔM image per sub-bolus and fitted as multi-delay data.\n"
    "Both write <prefix>_fitstatus.nii.gz (per-voxel status codes) and <prefix>_cbf.json\n"
    "(every constant and option used). Outputs appear complete or not at all, also when\n"
    "the run is interrupted (SIGINT/SIGTERM); existing outputs are kept unless --overwrite.\n"
    "\n"
    "options:\n"
    "  -o, --output DIR          output folder (created if needed)\n"
    "  --overwrite               replace outputs that exist (default: refuse, exit 1)\n"
    "  --backend auto|cpu|cuda   where to compute (default auto: CUDA when a device exists;\n"
    "                            falls back to the CPU, saying so, if the CUDA run fails)\n"
    "  --device N                CUDA device ordinal (default 0)\n"
    "  --threads N               CPU threads (default: all)\n"
    "  --mask FILE               compute only inside this mask (same grid as the series)\n"
    "  --lambda X                blood-brain partition coefficient, ml/g (default 0.9)\n"
    "  --t1b S                   arterial blood T1, s (default 1.65 at 3 T, 1.35 at 1.5 T;\n"
    "                            required at other fields, e.g. 7 T)\n"
    "  --t1t S                   tissue T1, s (default 1.3): short-TR M0 correction and\n"
    "                            the Buxton model's apparent T1\n"
    "  --alpha X                 labeling efficiency, overrides the sidecar and defaults\n"
    "                            (defaults: PCASL 0.85, PASL 0.98, CASL 0.68)\n"
    "  --bs-pulse-efficiency X   efficiency per background-suppression pulse (default 0.95)\n"
    "  --bs-pulses N             number of background-suppression pulses (overrides the\n"
    "                            sidecar; needed when BackgroundSuppression is true without\n"
    "                            BackgroundSuppressionNumberPulses)\n"
    "  --m0-value X              use one M0 value for every voxel (overrides M0Type)\n"
    "  --m0-scale X              multiply the M0 by X first: for exports whose M0 and ASL\n"
    "                            images are on different scales (default 1)\n"
    "  --m0-smooth MM            smooth the M0 image (Gaussian FWHM, mm) inside the mask, else\n"
    "                            inside its bright part, before dividing by it (default 0)\n"
    "  --ref-tissue csf|wm|gm    reference-region calibration: one M0 of arterial blood from\n"
    "                            the mean M0 in --ref-mask (instead of voxelwise M0 / lambda)\n"
    "  --ref-mask FILE           the reference region (same grid; e.g. the ventricles)\n"
    "  --ref-t1 S, --ref-t2 S    override the tissue's T1 and T2 (CSF 4.3, 0.75; WM 1.0, 0.05;\n"
    "                            GM 1.3, 0.1 s)\n"
    "  --ref-partition X         override its partition coefficient (1.15, 0.82, 0.98 ml/g)\n"
    "  --t2-blood S              T2 of arterial blood (default 0.15 s)\n"
    "  --echo-time S             TE of the M0 scan (default: its sidecar's EchoTime, else 0)\n"
    "  --robust                  drop outlier repeats before averaging (see README)\n"
    "  --outlier-threshold Z     robust z-score above which a repeat is dropped (default 3)\n"
    "  --no-sign-check           quantify even when ΔM is negative in most brain voxels\n"
    "                            (default: refused as control and label swapped; README)\n"
    "\n"
    "multi-delay options:\n"
    "  --model NAME              buxton (default: 1/T1app = 1/T1t + f/lambda with the voxel's\n"
    "                            own flow), buxton-fixed-flow (f = 0.01/s, as BASIL), or\n"
    "                            whitepaper (T1app = T1 blood)\n"
    "  --att-min S, --att-max S  range of the arrival-time search (default 0 and 3 s)\n"
    "  --grid-points N           arrival times tried before refinement (default 24)\n"
    "  --max-iterations N        Levenberg-Marquardt iterations (default 20)\n"
    "  --tolerance X             relative cost decrease that ends the fit (default 1e-6)\n"
    "  --att-prior               Gaussian prior on ATT (MAP), weighted by the image's pooled\n"
    "                            noise variance; needs 3 or more delays\n"
    "  --att-prior-mean S        prior mean (default 1.3 s PCASL/CASL, 0.7 s PASL)\n"
    "  --att-prior-sd S          prior standard deviation (default 1.0 s)\n"
    "  --aatt-prior-mean S       with --att-prior and --arterial: Gaussian prior on the\n"
    "  --aatt-prior-sd S         arterial arrival (defaults as BASIL: ATT prior mean\n"
    "                            - 0.3 s, the ATT prior's sd)\n"
    "  --prior-noise m0|uniform  the prior's noise model: m0 (default) homogeneous noise in\n"
    "                            ΔM, pooled at the median M0 and scaled per voxel by\n"
    "                            (M0 median / M0)^2; uniform: one variance in ΔM/M0\n"
    "  --arterial                add the macrovascular component: writes _abv.nii.gz (%),\n"
    "                            _abv_se.nii.gz and _aatt.nii.gz (arterial arrival, s); kept\n"
    "                            per voxel only where it wins by the BIC\n"
    "  --dispersion KERNEL       none (default) or gamma: the bolus reaching the tissue is\n"
    "                            the boxcar convolved with a gamma kernel of the extra delay\n"
    "                            (Chappell et al. 2010, as BASIL); the arterial component\n"
    "                            stays undispersed\n"
    "  --dispersion-s X          gamma kernel sharpness, 1/s (default 7.4, BASIL's prior)\n"
    "  --dispersion-p S          gamma kernel time to peak, s (default 0.1, BASIL's prior)\n"
    "\n"
    "partial-volume correction (writes <prefix>_cbf_gm.nii.gz and _cbf_wm.nii.gz):\n"
    "  --pvc-gm FILE, --pvc-wm FILE  grey/white-matter fraction images (same grid, 0-1)\n"
    "  --pvc-kernel N            in-plane neighbourhood of the regression (odd, default 5)\n";

const char* const kPhantomHelp =
    "usage: perfq phantom -o <dir> [options]\n"
    "\n"
    "Writes a synthetic brain-shaped ASL-BIDS dataset (3 mm voxels, GM/WM/CSF, three\n"
    "arterial territories with watershed timing) and its ground truth under\n"
    "<dir>/derivatives/truth/.\n"
    "\n"
    "options:\n"
    "  -o, --output DIR   dataset root (created if needed)\n"
    "  --overwrite        replace the subject's folders if they exist (default: refuse)\n"
    "  --seed N           noise seed (default 1)\n"
    "  --snr X            per-pair grey-matter SNR of ΔM; 0 = noise-free (default 0)\n"
    "  --delays LIST      comma-separated PLDs (PCASL, default 1.8) or TIs (PASL, default 2.5)\n"
    "  --pasl             PASL with QUIPSS II (TI1 0.8 s) instead of PCASL (τ 1.8 s)\n"
    "  --repeats N        control/label pairs per delay (default 4)\n"
    "  --lesions N        add N white-matter lesions (truth: _label-lesion_mask)\n"
    "  --time-encoded N   time-encoded PCASL with an N-cycle matrix (4, 8 or 12): --repeats\n"
    "                     blocks of N encoded volumes; --delays is then the one delay after\n"
    "                     the last sub-bolus (default 0.2)\n"
    "  --matrix-type T    hadamard (natural order; default) or walsh (sequency order, 4 or 8)\n"
    "  --sub-bolus-durations LIST  N-1 comma-separated durations, s, labeling order\n"
    "                     (default: equal, 2.8 s in all)\n"
    "  --subject LABEL    subject label (default 01)\n";

namespace {

Json status_legend() {
  Json legend = Json::object();
  for (int s = 0; s <= 7; ++s) {
    legend[std::to_string(s)] = perfq::to_string(static_cast<perfq::VoxelStatus>(s));
  }
  return legend;
}

}  // namespace

namespace {

/// Parsed options of `perfq cbf`. Every number is parsed before any file is read, so that
/// usage errors come first.
struct CbfOptions {
  std::string asl_path, out_dir;
  std::optional<std::string> mask_path;
  perfq::Execution execution;
  std::optional<double> lambda, t1b, t1t, alpha, bs_pulse, m0_value, m0_scale;
  perfq::AveragingOptions averaging;
  perfq::KineticOptions kinetic;
  std::optional<std::string> pvc_gm, pvc_wm;
  std::optional<perfq::ReferenceTissue> ref_tissue;
  std::optional<std::string> ref_mask;
  perfq::ReferenceCalibrationOptions ref;
  std::optional<double> echo_time;
  double m0_smooth = 0.0;
  std::optional<int> bs_pulses;
  perfq::PvcOptions pvc;
  bool overwrite = false;
  bool no_sign_check = false;
};

CbfOptions parse_cbf_options(const std::vector<std::string>& raw) {
  const Args args(raw,
                  {"--output", "--backend", "--device", "--threads", "--mask", "--lambda", "--t1b",
                   "--t1t", "--alpha", "--bs-pulse-efficiency", "--m0-value", "--m0-scale",
                   "--ref-tissue", "--ref-mask", "--ref-t1", "--ref-t2", "--ref-partition",
                   "--t2-blood", "--echo-time", "--m0-smooth", "--bs-pulses",
                   "--outlier-threshold", "--model", "--att-min", "--att-max",
                   "--att-prior-mean", "--att-prior-sd", "--aatt-prior-mean", "--aatt-prior-sd", "--prior-noise", "--max-iterations", "--tolerance",
                   "--grid-points", "--dispersion", "--dispersion-s", "--dispersion-p", "--pvc-gm", "--pvc-wm", "--pvc-kernel"},
                  {"--robust", "--att-prior", "--arterial", "--overwrite", "--no-sign-check"},
                  {{"-o", "--output"}});
  if (args.positional().size() != 1) {
    throw UsageError{"expected exactly one *_asl.nii[.gz] path, got " +
                     std::to_string(args.positional().size())};
  }
  CbfOptions o;
  o.asl_path = args.positional()[0];
  const auto out_dir = args.text("--output");
  if (!out_dir) throw UsageError{"-o/--output is required"};
  o.out_dir = *out_dir;
  o.mask_path = args.text("--mask");
  o.overwrite = args.flag("--overwrite");
  o.no_sign_check = args.flag("--no-sign-check");
  o.execution = parse_execution(args);
  o.lambda = args.number("--lambda");
  o.t1b = args.number("--t1b");
  o.t1t = args.number("--t1t");
  o.alpha = args.number("--alpha");
  o.bs_pulse = args.number("--bs-pulse-efficiency");
  o.m0_value = args.number("--m0-value");
  o.m0_scale = args.number("--m0-scale");
  if (o.m0_scale && !(std::isfinite(*o.m0_scale) && *o.m0_scale > 0)) {
    throw UsageError{"--m0-scale: expected a positive factor"};
  }
  if (auto v = args.integer("--bs-pulses")) {
    if (*v < 0 || *v > 100) throw UsageError{"--bs-pulses: expected a number of pulses in [0, 100]"};
    o.bs_pulses = static_cast<int>(*v);
  }
  if (auto v = args.number("--m0-smooth")) {
    if (!(std::isfinite(*v) && *v >= 0 && *v <= 100)) {
      throw UsageError{"--m0-smooth: expected a FWHM in [0, 100] mm"};
    }
    o.m0_smooth = *v;
  }
  if (auto t = args.text("--ref-tissue")) {
    try {
      o.ref_tissue = perfq::parse_reference_tissue(*t);
    } catch (const perfq::InvalidArgument& e) {
      throw UsageError{std::string("--ref-tissue: ") + e.what()};
    }
  }
  o.ref_mask = args.text("--ref-mask");
  o.ref.t1 = args.number("--ref-t1");
  o.ref.t2 = args.number("--ref-t2");
  o.ref.partition = args.number("--ref-partition");
  if (auto v = args.number("--t2-blood")) o.ref.t2_blood = *v;
  o.echo_time = args.number("--echo-time");
  const bool ref_details = o.ref_mask || o.ref.t1 || o.ref.t2 || o.ref.partition ||
                           args.number("--t2-blood") || o.echo_time;
  if (ref_details && !o.ref_tissue) {
    throw UsageError{"--ref-mask, --ref-t1, --ref-t2, --ref-partition, --t2-blood and "
                     "--echo-time belong to reference-region calibration: give --ref-tissue"};
  }
  if (o.ref_tissue && !o.ref_mask) throw UsageError{"--ref-tissue needs --ref-mask FILE"};
  if (o.m0_smooth > 0 && (o.m0_value || o.ref_tissue)) {
    throw UsageError{"--m0-smooth smooths a voxelwise M0 image; --m0-value and --ref-tissue use "
                     "one M0 value"};
  }
  if (o.ref_tissue && o.m0_value) {
    throw UsageError{"--ref-tissue calibrates from the M0 image; --m0-value replaces it"};
  }
  // The ranges reference_region_m0 accepts, checked here so that a bad value is a usage error
  // naming the option (and perfq bids refuses it once, before any series).
  struct Range {
    const char* name;
    std::optional<double> value;
    double low, high;
    bool low_open;
    const char* unit;
  };
  for (const Range& r : {Range{"--ref-t1", o.ref.t1, 0.0, 10.0, true, " s"},
                         Range{"--ref-t2", o.ref.t2, 0.0, 10.0, true, " s"},
                         Range{"--ref-partition", o.ref.partition, 0.0, 2.0, true, " ml/g"},
                         Range{"--t2-blood", o.ref.t2_blood, 0.0, 10.0, true, " s"},
                         Range{"--echo-time", o.echo_time, 0.0, 1.0, false, " s"}}) {
    if (!r.value) continue;
    const double v = *r.value;
    if (!(std::isfinite(v) && (r.low_open ? v > r.low : v >= r.low) && v <= r.high)) {
      std::ostringstream m;
      m << r.name << ": expected a value in " << (r.low_open ? "(" : "[") << r.low << ", "
        << r.high << "]" << r.unit << ", got " << v;
      throw UsageError{m.str()};
    }
  }
  o.averaging.robust = args.flag("--robust");
  if (auto z = args.number("--outlier-threshold")) {
    if (!(*z > 0)) throw UsageError{"--outlier-threshold: expected a positive number"};
    o.averaging.outlier_threshold = *z;
  }
  perfq::KineticOptions& k = o.kinetic;
  if (auto m = args.text("--model")) {
    try {
      k.variant = perfq::parse_kinetic_variant(*m);
    } catch (const perfq::InvalidArgument& e) {
      throw UsageError{std::string("--model: ") + e.what()};
    }
  }
  if (auto v = args.number("--att-min")) k.att_min = *v;
  if (auto v = args.number("--att-max")) k.att_max = *v;
  k.att_prior = args.flag("--att-prior");
  k.arterial = args.flag("--arterial");
  if (auto v = args.number("--att-prior-mean")) k.att_prior_mean = *v;
  if (auto v = args.number("--att-prior-sd")) k.att_prior_sd = *v;
  k.arterial_att_prior_mean = args.number("--aatt-prior-mean");
  k.arterial_att_prior_sd = args.number("--aatt-prior-sd");
  if ((k.arterial_att_prior_mean || k.arterial_att_prior_sd) && !(k.att_prior && k.arterial)) {
    throw UsageError{"--aatt-prior-mean and --aatt-prior-sd need --att-prior and --arterial"};
  }
  if (k.arterial_att_prior_sd && !(*k.arterial_att_prior_sd > 0)) {
    throw UsageError{"--aatt-prior-sd: expected a standard deviation > 0 s"};
  }
  if (auto m = args.text("--prior-noise")) {
    try {
      k.prior_noise = perfq::parse_prior_noise(*m);
    } catch (const perfq::InvalidArgument& e) {
      throw UsageError{std::string("--prior-noise: ") + e.what()};
    }
  }
  // The ranges resolve_constants and fit_kinetic accept, checked here so that a bad value is
  // a usage error naming the option before any file is read (and perfq bids refuses it once).
  const auto max_iterations = args.integer("--max-iterations");
  const auto grid_points = args.integer("--grid-points");
  for (const Range& r :
       {Range{"--lambda", o.lambda, 0.0, 2.0, true, " ml/g"},
        Range{"--t1b", o.t1b, 0.0, 10.0, true, " s"},
        Range{"--t1t", o.t1t, 0.0, 10.0, true, " s"},
        Range{"--alpha", o.alpha, 0.0, 1.0, true, ""},
        Range{"--bs-pulse-efficiency", o.bs_pulse, 0.0, 1.0, true, ""},
        Range{"--att-min", args.number("--att-min"), 0.0, perfq::kMaxTimingSeconds, false, " s"},
        Range{"--att-max", args.number("--att-max"), 0.0, perfq::kMaxTimingSeconds, true, " s"},
        Range{"--att-prior-sd", args.number("--att-prior-sd"), 0.0, perfq::kMaxTimingSeconds, true,
              " s"},
        Range{"--max-iterations",
              max_iterations ? std::optional<double>(static_cast<double>(*max_iterations))
                             : std::nullopt,
              1.0, 255.0, false, ""},
        Range{"--grid-points",
              grid_points ? std::optional<double>(static_cast<double>(*grid_points)) : std::nullopt,
              3.0, static_cast<double>(perfq::detail::kMaxGrid), false, ""}}) {
    if (!r.value) continue;
    const double v = *r.value;
    if (!(std::isfinite(v) && (r.low_open ? v > r.low : v >= r.low) && v <= r.high)) {
      std::ostringstream m;
      m << r.name << ": expected a value in " << (r.low_open ? "(" : "[") << r.low << ", "
        << r.high << "]" << r.unit << ", got " << *args.text(r.name);
      throw UsageError{m.str()};
    }
  }
  if (!(k.att_min < k.att_max)) {
    std::ostringstream m;
    m << "--att-min (" << k.att_min << " s) must be below --att-max (" << k.att_max << " s)";
    throw UsageError{m.str()};
  }
  if (max_iterations) k.max_iterations = static_cast<int>(*max_iterations);
  if (auto v = args.number("--tolerance")) {
    if (!(*v > 0.0 && *v < 1.0)) {
      throw UsageError{"--tolerance: expected a value in (0, 1), got " + *args.text("--tolerance")};
    }
    k.tolerance = *v;
  }
  if (grid_points) k.grid_points = static_cast<int>(*grid_points);
  if (auto d = args.text("--dispersion")) {
    try {
      k.dispersion = perfq::parse_dispersion(*d);
    } catch (const perfq::InvalidArgument& e) {
      throw UsageError{std::string("--dispersion: ") + e.what()};
    }
  }
  const auto sharpness = args.number("--dispersion-s"), peak = args.number("--dispersion-p");
  if ((sharpness || peak) && k.dispersion != perfq::Dispersion::Gamma) {
    throw UsageError{"--dispersion-s and --dispersion-p need --dispersion gamma"};
  }
  if (sharpness) {
    if (!(*sharpness > 0 && *sharpness <= 100)) {
      throw UsageError{"--dispersion-s: expected a sharpness in (0, 100] 1/s"};
    }
    k.dispersion_sharpness = *sharpness;
  }
  if (peak) {
    if (!(*peak >= 0 && *peak <= 5)) {
      throw UsageError{"--dispersion-p: expected a time to peak in [0, 5] s"};
    }
    k.dispersion_time_to_peak = *peak;
  }
  if (k.dispersion == perfq::Dispersion::Gamma &&
      k.dispersion_sharpness * k.dispersion_time_to_peak > 10) {
    throw UsageError{"--dispersion-s × --dispersion-p must be <= 10 (kernel shape 1 + s·p <= 11)"};
  }
  o.pvc_gm = args.text("--pvc-gm");
  o.pvc_wm = args.text("--pvc-wm");
  if (o.pvc_gm.has_value() != o.pvc_wm.has_value()) {
    throw UsageError{"--pvc-gm and --pvc-wm go together"};
  }
  if (auto v = args.integer("--pvc-kernel")) {
    if (*v < 1 || *v % 2 == 0) throw UsageError{"--pvc-kernel: expected an odd number of voxels"};
    o.pvc.kernel_xy = static_cast<int>(*v);
  }
  return o;
}

/// Counts of each status code, keyed by code, for the sidecar.
Json status_counts(const perfq::Volume<std::uint8_t>& status) {
  std::map<int, std::size_t> counts;
  for (std::uint8_t s : status.values()) ++counts[s];
  Json j = Json::object();
  for (const auto& [code, count] : counts) j[std::to_string(code)] = count;
  return j;
}

/// Median of `values` where `status` is 0 (0 when there is none).
double median_ok(const perfq::Volume<float>& values, const perfq::Volume<std::uint8_t>& status) {
  std::vector<float> ok;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (status[i] == 0) ok.push_back(values[i]);
  }
  if (ok.empty()) return 0.0;
  std::nth_element(ok.begin(), ok.begin() + ok.size() / 2, ok.end());
  return ok[ok.size() / 2];
}

/// The plausibility check of a CBF map: its median over the fitted voxels of a brain region
/// (the mask, else the bright part of the M0 image) against the range any adult or child
/// brain's mixture of grey and white matter lies in. Outside it, the likeliest cause is
/// a calibration error (M0 scaled differently from the ASL series, a wrong labeling
/// efficiency): a warning, recorded in the sidecar, not an error.
constexpr double kPlausibleCbf[2] = {10.0, 150.0};

Json check_cbf_range(const perfq::Volume<float>& cbf, const perfq::Volume<std::uint8_t>& status,
                     const std::optional<perfq::View<const std::uint8_t>>& brain,
                     const std::string& region_name, std::vector<std::string>& warnings) {
  if (!brain) return {{"Checked", false}, {"Why", "no mask and no M0 image"}};
  const std::uint8_t* region = brain->data;
  std::vector<float> values;
  for (std::size_t i = 0; i < cbf.size(); ++i) {
    if (region[i] != 0 && status[i] == 0) values.push_back(cbf[i]);
  }
  if (values.empty()) return {{"Checked", false}, {"Why", "no fitted voxel in the region"}};
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  const double median = values[values.size() / 2];
  const bool plausible = median >= kPlausibleCbf[0] && median <= kPlausibleCbf[1];
  if (!plausible) {
    std::ostringstream m;
    m << "the median CBF in the brain is " << median << " ml/100 g/min, outside "
      << kPlausibleCbf[0] << "–" << kPlausibleCbf[1]
      << ": check the M0 (on the scale of the ASL series? --m0-scale), the labeling "
         "efficiency and the background suppression";
    warnings.push_back(m.str());
  }
  return {{"Checked", true},
          {"Region", region_name},
          {"Voxels", values.size()},
          {"MedianCBF", median},
          {"PlausibleRange", {kPlausibleCbf[0], kPlausibleCbf[1]}},
          {"Plausible", plausible}};
}

}  // namespace

void check_cbf_options(const std::vector<std::string>& options) {
  std::vector<std::string> raw{"sub-x_asl.nii.gz", "-o", "out"};  // placeholders: not opened
  raw.insert(raw.end(), options.begin(), options.end());
  parse_cbf_options(raw);
}

int run_cbf(const std::vector<std::string>& raw) {
  if (wants_help(raw)) {
    std::cout << kCbfHelp;
    return 0;
  }
  CbfOptions o = parse_cbf_options(raw);
  // Resolve the backend first: asking for CUDA where there is none fails before any work.
  // (`auto` stays auto: the library may fall back to the CPU if the CUDA run fails.)
  perfq::resolve_backend(o.execution);

  const perfq::io::AslDataset data = perfq::io::read_asl_bids(o.asl_path);
  // Existing outputs: refused before any work (and checked again when moving into place).
  refuse_existing(o.out_dir,
                  {data.prefix + "_cbf.nii.gz", data.prefix + "_cbf.json",
                   data.prefix + "_fitstatus.nii.gz"},
                  o.overwrite);
  perfq::AslProtocol stated = data.protocol;
  // Background suppression: the pulses stated on the command line beat the sidecar's; with
  // neither, an unknown number of pulses would lower α by an unknown factor.
  std::string bs_pulses_source = "sidecar";
  if (o.bs_pulses) {
    stated.background_suppression.enabled = *o.bs_pulses > 0;
    stated.background_suppression.pulses = *o.bs_pulses;
    stated.background_suppression.pulses_unknown = false;
    bs_pulses_source = "--bs-pulses";
  }
  const perfq::BackgroundSuppression& bs = stated.background_suppression;
  if (bs.enabled && bs.pulses_unknown && !bs.efficiency) {
    throw perfq::InputError(data.sidecar_path, "BackgroundSuppressionNumberPulses",
                            "required when BackgroundSuppression is true, not found: each pulse "
                            "lowers the labeling efficiency (CBF is scaled by 1/0.95 per pulse "
                            "by default); give the number of pulses in the sidecar or with "
                            "--bs-pulses N (0 if they do not affect the label)");
  }
  const perfq::AslProtocol& protocol = stated;

  std::optional<perfq::Mask> mask;
  std::optional<perfq::View<const std::uint8_t>> mask_view;
  if (o.mask_path) {
    mask = perfq::io::read_nifti_mask(*o.mask_path);
    if (!mask->geometry().same_grid(data.asl.geometry())) {
      throw perfq::InputError(*o.mask_path, "", "the mask is not on the grid of " + data.asl_path);
    }
    if (std::none_of(mask->values().begin(), mask->values().end(),
                     [](std::uint8_t v) { return v != 0; })) {
      throw perfq::InputError(*o.mask_path, "", "the mask is empty (no nonzero voxel)");
    }
    mask_view = mask->view();
    o.averaging.mask = mask_view;
  }

  // The default blood T1 is known at 1.5 and 3 T only (the white paper's); elsewhere (e.g.
  // 7 T, where it is near 2.1 s) the 3 T value would bias CBF by e^(PLD/T1b) without a word.
  const double tesla = protocol.magnetic_field_strength;
  if (!o.t1b && !(tesla >= 1.0 && tesla <= 3.5)) {
    std::ostringstream m;
    m << tesla << " T: perfq has default blood T1 values for 1.5 T (1.35 s) and 3 T (1.65 s) "
      << "only; give the arterial blood T1 at this field with --t1b";
    throw perfq::InputError(data.sidecar_path, "MagneticFieldStrength", m.str());
  }
  perfq::Physiology physiology = perfq::Physiology::at_field(tesla);
  if (o.lambda) physiology.blood_brain_partition = *o.lambda;
  if (o.t1b) physiology.t1_blood = *o.t1b;
  if (o.t1t) physiology.t1_tissue = *o.t1t;
  if (o.alpha) physiology.labeling_efficiency = *o.alpha;
  if (o.bs_pulse) physiology.background_suppression_pulse_efficiency = *o.bs_pulse;

  // A time-encoded series is decoded into sub-bolus ΔM images, each with its own τ and PLD.
  // Their errors name the file that holds the field at fault: the aslcontext for the volume
  // types, the sidecar for timing.
  const perfq::PreparedAsl prepared = [&] {
    try {
      return data.time_encoding
                 ? perfq::prepare_time_encoded(data.asl, data.context, protocol,
                                               *data.time_encoding, o.averaging, data.asl_path)
                 : perfq::prepare_asl(data.asl, data.context, protocol, o.averaging,
                                      data.asl_path);
    } catch (const perfq::InputError& e) {
      if (e.file() != data.asl_path || e.field().empty()) throw;
      const std::string& file = e.field() == "volume_type" ? data.context_path : data.sidecar_path;
      const std::string prefix = e.file() + ": " + e.field() + ": ";
      const std::string what = e.what();
      throw perfq::InputError(file, e.field(), what.substr(std::min(prefix.size(), what.size())));
    }
  }();
  const std::size_t delays = prepared.delta_m.volumes();

  // M0: an explicit value, else what M0Type says.
  perfq::M0Source m0;
  Json m0_record;
  m0_record["M0Type"] = perfq::to_string(protocol.m0_type);
  if (o.m0_value) {
    m0 = perfq::M0Source::from_value(*o.m0_value);
    m0_record["M0Source"] = "command line (--m0-value)";
    m0_record["M0Value"] = *o.m0_value;
  } else {
    switch (protocol.m0_type) {
      case perfq::M0Type::Separate:
        m0 = perfq::M0Source::from_image(data.m0->view());
        m0_record["M0Source"] = data.m0_path;
        m0_record["M0VolumesAveraged"] = data.m0_volumes;
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
  // A scale between the M0 and the ASL images that the files do not carry (BIDS wants none,
  // some exports have one): applied to a copy of the M0.
  std::optional<perfq::Volume<float>> scaled_m0;
  if (o.m0_scale) {
    if (m0.image) {
      const perfq::View<const float>& image = *m0.image;
      scaled_m0.emplace(image.geometry);
      for (std::size_t i = 0; i < image.voxel_count(); ++i) {
        (*scaled_m0)[i] = static_cast<float>(image.data[i] * *o.m0_scale);
      }
      m0 = perfq::M0Source::from_image(scaled_m0->view());
    } else {
      m0.value *= *o.m0_scale;
    }
    m0_record["M0UserScaleFactor"] = *o.m0_scale;
  }
  // Smoothing of a voxelwise M0 image, inside the mask or the M0's bright part.
  std::optional<perfq::Volume<float>> smoothed_m0;
  if (o.m0_smooth > 0) {
    if (!m0.image) {
      throw perfq::InputError(data.sidecar_path, "M0Type",
                              std::string(perfq::to_string(protocol.m0_type)) +
                                  ": --m0-smooth needs an M0 image (M0Type Separate or Included)");
    }
    smoothed_m0 = perfq::smooth_m0(*m0.image, o.m0_smooth, mask_view);
    m0 = perfq::M0Source::from_image(smoothed_m0->view());
    m0_record["M0Smoothing"] = {
        {"FWHM", o.m0_smooth},
        {"FWHMUnits", "mm"},
        {"Region", o.mask_path ? "mask" : "M0 >= half its 98th percentile"},
        {"Method", "Gaussian, normalised within the region (voxels outside it unchanged)"}};
  }
  // Reference-region calibration: one M0 of arterial blood for every voxel, given to the
  // quantification as the single M0 λ·M0_blood (its saturation recovery is done here, with
  // the reference tissue's T1, so the voxelwise short-TR correction is not applied again).
  std::optional<perfq::ReferenceCalibration> reference;
  std::optional<perfq::Mask> ref_mask;
  if (o.ref_tissue) {
    if (!m0.image) {
      throw perfq::InputError(data.sidecar_path, "M0Type",
                              std::string(perfq::to_string(protocol.m0_type)) +
                                  ": --ref-tissue needs an M0 image (M0Type Separate or "
                                  "Included)");
    }
    {  // A probability map (e.g. a partial-volume estimate) would count every voxel with any
       // of the tissue as the tissue: only 0/1 masks are taken.
      const perfq::Image<float> values = perfq::io::read_nifti(*o.ref_mask);
      for (std::size_t i = 0; i < values.size(); ++i) {
        if (values[i] != 0.0f && values[i] != 1.0f) {
          std::ostringstream m;
          m << "the reference region must be a 0/1 mask of the tissue alone; voxel " << i
            << " is " << values[i] << " (a probability map? threshold it, e.g. above 0.9)";
          throw perfq::InputError(*o.ref_mask, "", m.str());
        }
      }
    }
    ref_mask = perfq::io::read_nifti_mask(*o.ref_mask);
    if (!ref_mask->geometry().same_grid(data.asl.geometry())) {
      throw perfq::InputError(*o.ref_mask, "", "the reference region is not on the grid of " +
                                                   data.asl_path);
    }
    perfq::ReferenceCalibrationOptions ref = o.ref;
    ref.tissue = *o.ref_tissue;
    ref.repetition_time = protocol.m0_repetition_time.value_or(0.0);
    if (!o.echo_time && !data.m0_echo_time_issue.empty()) {
      throw perfq::InputError(data.m0_echo_time_file, "EchoTime",
                              data.m0_echo_time_issue + " (needed by --ref-tissue; or give "
                              "--echo-time)");
    }
    ref.echo_time = o.echo_time ? *o.echo_time : data.m0_echo_time.value_or(0.0);
    try {
      reference = perfq::reference_region_m0(*m0.image, ref_mask->view(), ref);
    } catch (const perfq::InvalidArgument& e) {
      throw perfq::InputError(*o.ref_mask, "", e.what());
    }
    m0 = perfq::M0Source::from_value(physiology.blood_brain_partition * reference->m0_blood);
    const perfq::ReferenceCalibration& r = *reference;
    m0_record["M0Calibration"] = {
        {"Method", "reference region"},
        {"Tissue", perfq::to_string(*o.ref_tissue)},
        {"Mask", *o.ref_mask},
        {"Voxels", r.voxels},
        {"RegionMeanM0", r.region_mean},
        {"T1", r.constants.t1},
        {"T2", r.constants.t2},
        {"PartitionCoefficient", r.constants.partition},
        {"BloodT2", r.t2_blood},
        {"EchoTime", r.echo_time},
        {"EchoTimeSource", o.echo_time        ? "--echo-time"
                           : data.m0_echo_time ? "EchoTime of the M0's sidecar"
                                               : "none (no T2 correction)"},
        {"RepetitionTime", r.repetition_time},
        {"ReferenceM0", r.m0_reference},
        {"ArterialBloodM0", r.m0_blood},
        {"Formula", "M0_blood = mean / (1 - exp(-TR/T1)) / exp(-TE/T2) / partition * "
                    "exp(-TE/T2_blood); quantified with the single M0 lambda * M0_blood"}};
  }

  // Control and label swapped (in the aslcontext, or deltam stored as label − control) would
  // give a map of negative CBF: refused unless asked for.
  // The brain region of the checks (without a mask): the bright part of the M0 image used,
  // else of the series' own M0 image when --m0-value overrides it.
  std::optional<perfq::View<const float>> region_m0 = m0.image;
  if (!region_m0 && data.m0) region_m0 = data.m0->view();
  if (!region_m0 && prepared.m0) region_m0 = prepared.m0->view();
  // One brain region for both checks (the sign here, the CBF range after quantifying).
  std::optional<perfq::Mask> bright;
  if (!mask_view && region_m0) bright = perfq::m0_brain_region(*region_m0);
  std::optional<perfq::View<const std::uint8_t>> brain = mask_view;
  if (bright) brain = bright->view();
  const std::string region_name = o.mask_path ? "mask"
                                  : bright    ? "M0 >= half its 98th percentile"
                                              : "all voxels";
  const perfq::DeltaMSign sign =
      perfq::check_delta_m_sign(prepared.delta_m.view(), std::nullopt, brain);
  if (sign.inverted && !o.no_sign_check) {
    std::ostringstream m;
    m << "ΔM (control − label) is negative in " << std::lround(100.0 * sign.negative_fraction)
      << " % of the " << sign.voxels << " brain voxels examined: control and label look "
      << "swapped";
    if (data.time_encoding) {
      // Decoded with the matrix: its sign convention is the likelier culprit.
      m << " (the time-encoding matrix's sign: perfq takes +1 as control, −1 as label); give "
           "the matrix with the other sign in TimeEncodedMatrix, or pass --no-sign-check to "
           "quantify anyway";
      throw perfq::InputError(data.sidecar_path, "TimeEncodedMatrix", m.str());
    }
    m << " (the order of the control/label rows, or deltam volumes stored as label − "
      << "control); correct the aslcontext, or pass --no-sign-check to quantify anyway";
    throw perfq::InputError(data.context_path, "volume_type", m.str());
  }

  // The protocol of the averaged ΔM volumes: one delay (and τ) per volume.
  const bool pasl = protocol.labeling_type == perfq::LabelingType::Pasl;
  perfq::AslProtocol averaged = protocol;
  if (reference) averaged.m0_repetition_time.reset();  // corrected with the tissue's own T1
  averaged.post_labeling_delay = prepared.post_labeling_delay;
  averaged.labeling_duration = prepared.labeling_duration;
  if (pasl) averaged.labeling_duration.clear();

  Json j;
  j["Units"] = "mL/100g/min";
  j["Sources"] = Json::array({data.asl_path});
  if (!data.m0_path.empty()) j["Sources"].push_back(data.m0_path);
  j["Sidecars"] = data.sidecar_paths;  // the ASL sidecars applied (inherited ones first)
  j["DeltaMSignCheck"] = {
      {"Region", region_name},
      {"Voxels", sign.voxels},
      {"NegativeFraction", sign.negative_fraction},
      {"Inverted", sign.inverted},
      {"Checked", !o.no_sign_check}};
  StagedOutputs outputs(o.out_dir, o.overwrite);
  std::vector<std::string> warnings;  // printed after the summary, kept in the sidecar
  perfq::ResolvedConstants constants;
  perfq::Backend ran_on = perfq::Backend::Cpu;
  std::ostringstream summary;
  // Partial-volume correction of the CBF map from GM/WM fraction images (same grid).
  std::optional<perfq::Volume<float>> gm_fraction, wm_fraction;
  if (o.pvc_gm) {
    gm_fraction = perfq::io::read_nifti(*o.pvc_gm);
    wm_fraction = perfq::io::read_nifti(*o.pvc_wm);
    for (const auto& [path, image] : {std::pair{*o.pvc_gm, &*gm_fraction},
                                      std::pair{*o.pvc_wm, &*wm_fraction}}) {
      if (image->volumes() != 1 || !image->geometry().same_grid(data.asl.geometry())) {
        throw perfq::InputError(path, "", "expected a 3D tissue-fraction image on the grid of " +
                                              data.asl_path);
      }
    }
  }
  auto correct_partial_volumes = [&](const perfq::Volume<float>& cbf,
                                     const perfq::Volume<std::uint8_t>& status) {
    if (!o.pvc_gm) return;
    perfq::Mask usable(cbf.geometry());
    for (std::size_t i = 0; i < usable.size(); ++i) usable[i] = status[i] == 0;
    perfq::PvcMaps pvc;
    try {
      pvc = perfq::partial_volume_correct(cbf, *gm_fraction, *wm_fraction, usable.view(), o.pvc,
                                          o.execution);
    } catch (const perfq::InvalidArgument& e) {
      throw perfq::InputError(*o.pvc_gm + " / " + *o.pvc_wm, "", e.what());
    }
    perfq::io::write_nifti(outputs.stage(data.prefix + "_cbf_gm.nii.gz"), pvc.cbf_gm.view());
    perfq::io::write_nifti(outputs.stage(data.prefix + "_cbf_wm.nii.gz"), pvc.cbf_wm.view());
    j["PartialVolumeCorrection"] = {
        {"Method", "local linear regression (Asllani et al. 2008) on the CBF map"},
        {"GreyMatterFraction", *o.pvc_gm}, {"WhiteMatterFraction", *o.pvc_wm},
        {"Kernel", {o.pvc.kernel_xy, o.pvc.kernel_xy, o.pvc.kernel_z}},
        {"MinimumFraction", o.pvc.min_fraction},
        {"VoxelsUsed", "fit status 0"}};
  };
  if (delays == 1) {
    const perfq::CbfMaps maps = perfq::quantify_cbf(prepared.delta_m.volume(0), m0, averaged,
                                                    physiology, mask_view, o.execution);
    constants = maps.constants;
    ran_on = maps.backend;
    j["Description"] = "Cerebral blood flow from single-delay ASL (white-paper model)";
    j["Model"] = "ASL white paper single-delay (Alsop et al. 2015, MRM 73:102)";
    j["StatusCounts"] = status_counts(maps.status);
    perfq::io::write_nifti(outputs.stage(data.prefix + "_cbf.nii.gz"), maps.cbf.view());
    perfq::io::write_nifti(outputs.stage(data.prefix + "_fitstatus.nii.gz"), maps.status.view());
    correct_partial_volumes(maps.cbf, maps.status);
    j["CbfRangeCheck"] = check_cbf_range(maps.cbf, maps.status, brain, region_name, warnings);
    summary << "median CBF " << median_ok(maps.cbf, maps.status) << " ml/100 g/min";
  } else {
    perfq::KineticOptions kinetic = o.kinetic;
    kinetic.weights.assign(prepared.repeats.begin(), prepared.repeats.end());
    const perfq::KineticFit fit = perfq::fit_kinetic(prepared.delta_m, m0, averaged, physiology,
                                                     kinetic, mask_view, o.execution);
    constants = fit.constants;
    ran_on = fit.backend;
    j["Description"] = data.time_encoding
                           ? "Cerebral blood flow and arterial transit time from time-encoded "
                             "(Hadamard) PCASL, decoded into sub-bolus images"
                           : "Cerebral blood flow and arterial transit time from multi-delay ASL";
    j["Model"] = std::string("Buxton general kinetic model, variant ") +
                 perfq::to_string(kinetic.variant);
    Json fit_record = {{"Method", "separable ATT search (flow solved exactly) + "
                                  "Levenberg-Marquardt, exact derivatives"},
                       {"ATTRange", {kinetic.att_min, kinetic.att_max}},
                       {"GridPoints", kinetic.grid_points},
                       {"MaxIterations", kinetic.max_iterations},
                       {"Tolerance", kinetic.tolerance},
                       {"Weights", kinetic.weights},
                       {"ATTPrior", kinetic.att_prior},
                       {"ArterialComponent", kinetic.arterial}};
    if (kinetic.dispersion == perfq::Dispersion::Gamma) {
      fit_record["Dispersion"] = {
          {"Kernel", "gamma"},
          {"Sharpness", kinetic.dispersion_sharpness},
          {"SharpnessUnits", "1/s"},
          {"TimeToPeak", kinetic.dispersion_time_to_peak},
          {"TimeToPeakUnits", "s"},
          {"Reference", "Chappell et al. 2010, MRM 63:1357 (gamma kernel of the extra delay)"},
          {"AppliesTo", "tissue component; the arterial component stays undispersed"}};
    } else {
      fit_record["Dispersion"] = {{"Kernel", "none"}};
    }
    if (kinetic.variant == perfq::KineticVariant::BuxtonFixedFlow) {
      fit_record["FixedFlowForT1app"] = kinetic.fixed_flow;
    }
    if (kinetic.att_prior) {
      fit_record["ATTPriorMean"] = fit.att_prior_mean;
      fit_record["ATTPriorSD"] = kinetic.att_prior_sd;
      fit_record["PriorNoise"] = perfq::to_string(kinetic.prior_noise);
      fit_record["PooledNoiseVariance"] = fit.noise_variance;
      if (fit.noise_reference_m0 > 0) fit_record["NoiseReferenceM0"] = fit.noise_reference_m0;
      if (kinetic.arterial) {
        fit_record["ArterialATTPriorMean"] = fit.arterial_att_prior_mean;
        fit_record["ArterialATTPriorSD"] = fit.arterial_att_prior_sd;
      }
    }
    j["Fit"] = fit_record;
    j["StatusCounts"] = status_counts(fit.status);
    j["Outputs"] = {{"cbf", "mL/100g/min"}, {"att", "s"}, {"cbf_se", "mL/100g/min"},
                    {"att_se", "s"}, {"fitstatus", "code (see StatusCodes)"}};
    const std::string& px = data.prefix;
    perfq::io::write_nifti(outputs.stage(px + "_cbf.nii.gz"), fit.cbf.view());
    perfq::io::write_nifti(outputs.stage(px + "_att.nii.gz"), fit.att.view());
    perfq::io::write_nifti(outputs.stage(px + "_cbf_se.nii.gz"), fit.cbf_se.view());
    perfq::io::write_nifti(outputs.stage(px + "_att_se.nii.gz"), fit.att_se.view());
    perfq::io::write_nifti(outputs.stage(px + "_fitstatus.nii.gz"), fit.status.view());
    if (kinetic.arterial) {
      perfq::io::write_nifti(outputs.stage(px + "_abv.nii.gz"), fit.abv.view());
      perfq::io::write_nifti(outputs.stage(px + "_abv_se.nii.gz"), fit.abv_se.view());
      perfq::io::write_nifti(outputs.stage(px + "_aatt.nii.gz"), fit.arterial_att.view());
      j["Outputs"]["abv"] = "% (ml arterial blood / 100 ml); 0 where the tissue-only fit wins";
      j["Outputs"]["abv_se"] = "%";
      j["Outputs"]["aatt"] = "s, arterial arrival (search-grid resolution)";
    }
    correct_partial_volumes(fit.cbf, fit.status);
    j["CbfRangeCheck"] = check_cbf_range(fit.cbf, fit.status, brain, region_name, warnings);
    summary << "median CBF " << median_ok(fit.cbf, fit.status) << " ml/100 g/min, median ATT "
            << median_ok(fit.att, fit.status) << " s";
  }

  j["GeneratedBy"] = {{"Name", "perfq"}, {"Version", perfq::version()},
                      {"Backend", perfq::to_string(ran_on)}};
  j["ArterialSpinLabelingType"] = perfq::to_string(protocol.labeling_type);
  if (delays == 1) {
    j["PostLabelingDelay"] = prepared.post_labeling_delay.front();
  } else {
    j["PostLabelingDelay"] = prepared.post_labeling_delay;
  }
  if (pasl) {
    j["BolusCutOffDelayTime"] = protocol.bolus_cutoff_delay ? Json(*protocol.bolus_cutoff_delay)
                                                            : Json(nullptr);
  } else if (delays == 1) {
    j["LabelingDuration"] = prepared.labeling_duration.front();
  } else {
    j["LabelingDuration"] = prepared.labeling_duration;
  }
  if (data.time_encoding) {
    const perfq::TimeEncoding& te = *data.time_encoding;
    Json rows = Json::array();
    for (std::size_t c = 0; c < te.matrix.cycles; ++c) {
      Json row = Json::array();
      for (std::size_t k = 0; k < te.matrix.sub_boli(); ++k) row.push_back(te.matrix.at(c, k));
      rows.push_back(row);
    }
    j["TimeEncoding"] = {
        {"MatrixSource", te.matrix_source},
        {"TimeEncodedMatrixSize", te.matrix.cycles},
        {"TimeEncodedMatrix", rows},
        {"MatrixConvention", "rows: encoding cycles in acquisition order; columns: sub-boli in "
                             "labeling order; +1 control, -1 label"},
        {"Decoding", "dM_k = (2/N) sum_i E[i][k] S_i (control - label); blocks of N encoded "
                     "volumes decoded, then averaged per sub-bolus"},
        {"SubBolusDurations", te.sub_bolus_duration},
        {"SubBolusPostLabelingDelays", te.sub_bolus_pld},
        {"Blocks", prepared.repeats.front() + prepared.rejected.front()}};
  }
  j["MRAcquisitionType"] = protocol.readout == perfq::Readout::TwoD ? "2D" : "3D";
  if (protocol.readout == perfq::Readout::TwoD) j["SliceTiming"] = protocol.slice_timing;
  j["MagneticFieldStrength"] = protocol.magnetic_field_strength;
  j["BloodBrainPartitionCoefficient"] = constants.blood_brain_partition;
  j["ArterialBloodT1"] = constants.t1_blood;
  j["TissueT1"] = constants.t1_tissue;
  j["LabelingEfficiency"] = constants.labeling_efficiency;
  j["LabelingEfficiencySource"] = constants.labeling_efficiency_source;
  j["BackgroundSuppressionFactor"] = constants.background_suppression_factor;
  j["BackgroundSuppressionSource"] = constants.background_suppression_source;
  if (constants.background_suppression_source == "pulses") {
    j["BackgroundSuppressionPulseEfficiency"] = physiology.background_suppression_pulse_efficiency;
    j["BackgroundSuppressionNumberPulses"] = protocol.background_suppression.pulses;
    j["BackgroundSuppressionPulsesSource"] = bs_pulses_source;
  }
  j["EffectiveLabelingEfficiency"] = constants.effective_labeling_efficiency;
  for (auto& item : m0_record.items()) j[item.key()] = item.value();
  j["M0RepetitionTime"] = protocol.m0_repetition_time ? Json(*protocol.m0_repetition_time)
                                                      : Json(nullptr);
  j["M0ScaleFactor"] = constants.m0_scale;
  if (delays == 1) {
    j["Averaging"] = {{"Robust", o.averaging.robust},
                      {"OutlierThreshold", o.averaging.outlier_threshold},
                      {"RepeatsAveraged", prepared.repeats.front()},
                      {"RepeatsRejected", prepared.rejected.front()}};
  } else {
    j["Averaging"] = {{"Robust", o.averaging.robust},
                      {"OutlierThreshold", o.averaging.outlier_threshold},
                      {"RepeatsAveraged", prepared.repeats},
                      {"RepeatsRejected", prepared.rejected}};
  }
  j["Mask"] = o.mask_path ? Json(*o.mask_path) : Json(nullptr);
  j["Notes"] = prepared.notes;
  j["Warnings"] = warnings;
  j["StatusCodes"] = status_legend();

  perfq::io::write_text_atomic(outputs.stage(data.prefix + "_cbf.json"), j.dump(2) + "\n");
  if (prepared.scanner_cbf) {
    // Scanner-made CBF volumes are not used, but kept next to perfq's for comparison.
    perfq::io::write_nifti(outputs.stage(data.prefix + "_desc-scanner_cbf.nii.gz"),
                           prepared.scanner_cbf->view());
  }
  const auto written = outputs.commit();

  std::cout << "perfq cbf: " << data.asl_path << " (" << perfq::to_string(protocol.labeling_type)
            << ", " << delays << (delays == 1 ? " delay" : " delays")
            << (data.time_encoding ? ", time-encoded " + data.time_encoding->matrix_source : "")
            << ") on "
            << perfq::to_string(ran_on) << ": " << summary.str() << "\n";
  for (const auto& note : prepared.notes) std::cout << "  note: " << note << "\n";
  for (const auto& path : written) std::cout << "  wrote " << path << "\n";
  std::cout.flush();
  for (const auto& warning : warnings) std::cerr << "perfq cbf: warning: " << warning << "\n";
  return 0;
}

int run_phantom(const std::vector<std::string>& raw) {
  if (wants_help(raw)) {
    std::cout << kPhantomHelp;
    return 0;
  }
  const Args args(raw,
                  {"--output", "--seed", "--snr", "--delays", "--repeats", "--subject", "--lesions",
                   "--time-encoded", "--matrix-type", "--sub-bolus-durations"},
                  {"--pasl", "--overwrite"}, {{"-o", "--output"}});
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
  auto number_list = [&](const std::string& text, const char* option) {
    std::vector<double> values;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) values.push_back(Args::parse_number(item, option));
    return values;
  };
  if (auto n = args.integer("--time-encoded")) {
    if (*n != 4 && *n != 8 && *n != 12) throw UsageError{"--time-encoded: expected 4, 8 or 12"};
    if (o.pasl) throw UsageError{"--time-encoded is for PCASL: drop --pasl"};
    o.time_encoded = static_cast<std::size_t>(*n);
    if (!args.text("--delays")) o.delays = {0.2};
    if (auto t = args.text("--matrix-type")) {
      try {
        o.time_encoded_type = perfq::parse_time_encoded_matrix_type(*t);
      } catch (const perfq::InvalidArgument& e) {
        throw UsageError{std::string("--matrix-type: ") + e.what()};
      }
      if (o.time_encoded_type == perfq::TimeEncodedMatrixType::Walsh && *n == 12) {
        throw UsageError{"--matrix-type walsh: sizes 4 and 8 only"};
      }
    }
    if (auto list = args.text("--sub-bolus-durations")) {
      o.sub_bolus_durations = number_list(*list, "--sub-bolus-durations");
      if (o.sub_bolus_durations.size() != o.time_encoded - 1) {
        throw UsageError{"--sub-bolus-durations: expected " + std::to_string(o.time_encoded - 1) +
                         " values (one per sub-bolus), got " +
                         std::to_string(o.sub_bolus_durations.size())};
      }
    }
    if (o.delays.size() != 1) {
      throw UsageError{"--delays: a time-encoded series takes one delay (after the last "
                       "sub-bolus)"};
    }
  } else if (args.text("--matrix-type") || args.text("--sub-bolus-durations")) {
    throw UsageError{"--matrix-type and --sub-bolus-durations need --time-encoded"};
  }
  if (auto l = args.integer("--lesions")) {
    if (*l < 0 || *l > 1000) throw UsageError{"--lesions: expected 0 to 1000"};
    o.lesions = static_cast<std::size_t>(*l);
  }
  const std::string subject = args.text("--subject").value_or("01");
  // The subject's folders are staged and moved into place together; other subjects and an
  // existing dataset_description.json are left as they are.
  const std::string sub = "sub-" + subject;
  const std::vector<std::string> folders = {sub, (fs::path("derivatives") / "truth" / sub).string()};
  const bool overwrite = args.flag("--overwrite");
  refuse_existing(*out, folders, overwrite);
  const perfq::Phantom phantom = perfq::make_phantom(o);
  StagedOutputs outputs(*out, overwrite);
  const std::string staged_asl =
      perfq::io::write_phantom_bids(phantom, outputs.staging().string(), subject);
  for (const auto& folder : folders) outputs.stage(folder);
  outputs.stage_shared("dataset_description.json");
  outputs.stage_shared((fs::path("derivatives") / "truth" / "dataset_description.json").string());
  outputs.commit();
  const std::string asl =
      (fs::path(*out) / fs::relative(staged_asl, outputs.staging())).string();
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
