// Subcommands of the perfq tool: cbf, phantom, info.
#include "commands.hpp"
#include "cli_util.hpp"

#include <perfq/asl_series.hpp>
#include <perfq/calibration.hpp>
#include <perfq/cbf.hpp>
#include <perfq/errors.hpp>
#include <perfq/execution.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/io/series_config.hpp>
#include <perfq/kinetic.hpp>
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
    "  --uncompressed            write the images as .nii instead of .nii.gz (faster to\n"
    "                            write and read, several times larger; same content)\n"
    "  --backend auto|cpu|cuda   where to compute (default auto: CUDA when a device exists;\n"
    "                            falls back to the CPU, saying so, if the CUDA run fails)\n"
    "  --device N                CUDA device ordinal (default 0)\n"
    "  --threads N               CPU threads (default: all)\n"
    "  --config FILE             options per series from a JSON file (docs/cli.md): those of\n"
    "                            every entry whose filter matches the series, in order; the\n"
    "                            command line's beat them; recorded in the _cbf.json\n"
    "  --mask FILE               compute only inside this mask (same grid as the series)\n"
    "  --lambda X                blood-brain partition coefficient, ml/g (default 0.9)\n"
    "  --t1b S                   arterial blood T1, s (default 1.65 at 3 T, 1.35 at 1.5 T;\n"
    "                            required at other fields, e.g. 7 T)\n"
    "  --hct X                   haematocrit, a fraction in [0.1, 0.7] (e.g. 0.42): the\n"
    "                            arterial blood T1 at 3 T from 1/T1b = 0.52 Hct + 0.38 /s\n"
    "                            (Lu et al. 2004); --t1b beats it\n"
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
    "  --robust                  drop outlier repeats before averaging (docs/cli.md)\n"
    "  --outlier-threshold Z     robust z-score above which a repeat is dropped (default 3)\n"
    "  --outliers score|scrub    single delay: SCORE drops control/label pairs that raise the\n"
    "                            within-tissue variance of mean CBF; scrub then estimates\n"
    "                            CBF robustly with a structural prior (docs/outliers.md).\n"
    "                            Needs --gm-probseg, --wm-probseg, --csf-probseg; not with\n"
    "                            --robust; the pairs dropped are listed in _cbf.json\n"
    "  --no-sign-check           quantify even when ΔM is negative in most brain voxels\n"
    "                            (default: refused as control and label swapped)\n"
    "  --min-m0-fraction F       voxels whose M0 is below F x the brain's median M0 get\n"
    "                            status 8 (M0 too low) and maps 0 (default 0.01; 0: off)\n"
    "\n"
    "multi-delay options:\n"
    "  --model NAME              buxton (default: 1/T1app = 1/T1t + f/lambda with the voxel's\n"
    "                            own flow), buxton-fixed-flow (f = 0.01/s, as BASIL), or\n"
    "                            whitepaper (T1app = T1 blood)\n"
    "  --att-min S, --att-max S  range of the arrival-time search (default 0 and 3 s)\n"
    "  --grid-points N           arrival times tried before refinement (default 24)\n"
    "  --max-iterations N        Levenberg-Marquardt iterations (default 20)\n"
    "  --max-starts N            polishing runs per voxel, 1-8 (default 3): the further runs\n"
    "                            start from other local minima of the ATT search\n"
    "  --tolerance X             relative cost decrease that ends the fit (default 1e-6)\n"
    "  --att-prior               Gaussian prior on ATT (MAP), weighted by the image's pooled\n"
    "                            noise variance; needs 3 or more delays\n"
    "  --att-prior-mean S        prior mean (default 1.3 s PCASL/CASL, 0.7 s PASL)\n"
    "  --att-prior-sd S          prior standard deviation (default 1.0 s)\n"
    "  --aatt-prior-mean S       with --att-prior and --arterial: Gaussian prior on the\n"
    "  --aatt-prior-sd S         arterial arrival (defaults as BASIL: ATT prior mean\n"
    "                            - 0.3 s, the ATT prior's sd)\n"
    "  --spatial                 spatial prior on CBF (BASIL's --spatial): a Laplacian\n"
    "                            Markov random field over the 6-neighbourhood in the mask,\n"
    "                            its precision estimated from the data; maps are posterior\n"
    "                            means and SDs; needs 3 or more delays\n"
    "  --spatial-att             --spatial, and the same prior on ATT\n"
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
    "  --pvc-kernel N            in-plane neighbourhood of the regression (odd, default 5)\n"
    "\n"
    "quality control (always written: <prefix>_desc-qualitycontrol_cbf.tsv and .json; the\n"
    "GM/WM indices and the QEI need tissue maps, see docs/quality.md):\n"
    "  --gm-probseg FILE         grey-matter probability map (same grid, 0-1; a 0/1 mask too)\n"
    "  --wm-probseg FILE         white-matter probability map\n"
    "  --csf-probseg FILE        CSF probability map (with GM and WM: the QEI)\n"
    "  --tissue-threshold P      probability above which a voxel counts as GM, WM or CSF\n"
    "                            (default 0.7)\n"
    "\n"
    "tissue T1 per voxel (multi-delay fits; one value, --t1t, otherwise):\n"
    "  --t1t-map FILE            tissue T1 map, s (same grid)\n"
    "  --t1t-pv                  weighted by --gm-probseg and --wm-probseg:\n"
    "                            (pGM T1GM + pWM T1WM) / (pGM + pWM), T1GM = --t1t\n"
    "  --t1t-wm S                white matter's T1 for --t1t-pv (default 1.1 s, BASIL's)\n";

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
    "  --voxel-size MM    isotropic voxel size, the same head on a finer or coarser grid\n"
    "                     (default 3; e.g. 1.15: 157 x 188 x 146 voxels, 1.03 M of them brain)\n"
    "  --subject LABEL    subject label (default 01)\n";

namespace {

/// Parsed options of `perfq cbf`. Every option is checked before any file is read, so that
/// usage errors come first.
struct CbfOptions {
  std::string asl_path, out_dir;
  bool overwrite = false;
  perfq::io::SeriesOutputOptions output;    ///< --uncompressed
  perfq::io::SeriesRequest request;         ///< every option of the quantification
  std::optional<std::string> config;        ///< --config FILE
  std::vector<std::string> quantification;  ///< the quantification's options as given
};

CbfOptions parse_cbf_options(const std::vector<std::string>& raw) {
  // The quantification's options are the library's (perfq::io::series_options); the output
  // and execution options are the tool's.
  std::set<std::string> with_value = {"--output", "--backend", "--device", "--threads", "--config"};
  std::set<std::string> flags = {"--overwrite", "--uncompressed"};
  const std::vector<perfq::io::SeriesOption> options = perfq::io::series_options();
  for (const auto& option : options) (option.takes_value ? with_value : flags).insert(option.name);
  const Args args(raw, with_value, flags, {{"-o", "--output"}});
  if (args.positional().size() != 1) {
    throw UsageError{"expected exactly one *_asl.nii[.gz] path, got " +
                     std::to_string(args.positional().size())};
  }
  CbfOptions o;
  o.asl_path = args.positional()[0];
  const auto out_dir = args.text("--output");
  if (!out_dir) throw UsageError{"-o/--output is required"};
  o.out_dir = *out_dir;
  o.overwrite = args.flag("--overwrite");
  o.output.compressed = !args.flag("--uncompressed");
  o.request.execution = parse_execution(args);
  o.output.threads = o.request.execution.threads;
  o.config = args.text("--config");
  try {
    for (const auto& option : options) {
      if (option.takes_value) {
        if (auto value = args.text(option.name)) {
          perfq::io::set_series_option(o.request, option.name, *value);
          o.quantification.insert(o.quantification.end(), {option.name, *value});
        }
      } else if (args.flag(option.name)) {
        perfq::io::set_series_option(o.request, option.name);
        o.quantification.push_back(option.name);
      }
    }
    // With a configuration, the combination is checked once its options are merged in.
    if (!o.config) perfq::io::check_series_request(o.request);
  } catch (const perfq::InvalidArgument& e) {
    throw UsageError{e.what()};
  }
  return o;
}

}  // namespace

void check_cbf_options(const std::vector<std::string>& options) {
  std::vector<std::string> raw{"sub-x_asl.nii.gz", "-o", "out"};  // placeholders: not opened
  raw.insert(raw.end(), options.begin(), options.end());
  parse_cbf_options(raw);
}

int run_cbf(const std::vector<std::string>& raw, std::ostream& out, std::ostream& err) {
  if (wants_help(raw)) {
    out << kCbfHelp;
    return 0;
  }
  CbfOptions o = parse_cbf_options(raw);
  o.request.execution.on_fallback = fallback_notes(err);
  // Resolve the backend first: asking for CUDA where there is none fails before any work.
  // (`auto` stays auto: the library may fall back to the CPU if the CUDA run fails.)
  perfq::resolve_backend(o.request.execution);
  std::string applied;  // the configuration's entries applied, for the summary
  if (o.config) {
    const auto config = perfq::io::read_series_config(*o.config);
    const auto configured =
        perfq::io::configure_series(config, perfq::io::series_facts(o.asl_path), o.quantification);
    const perfq::Execution execution = o.request.execution;
    o.request = configured.request;
    o.request.execution = execution;
    for (const std::size_t k : configured.entries) {
      applied += (applied.empty() ? " " : ", ") + std::to_string(k);
    }
    applied = *o.config + (configured.entries.empty()       ? ": no entry matches"
                           : configured.entries.size() == 1 ? ": entry" + applied
                                                            : ": entries" + applied);
  }

  const perfq::io::AslDataset data =
      perfq::io::read_asl_bids(o.asl_path, o.request.execution.threads);
  // Existing outputs: refused before any work (and checked again when moving into place).
  refuse_existing(o.out_dir, perfq::io::series_output_names(data.prefix, o.output), o.overwrite);
  StagedOutputs outputs(o.out_dir, o.overwrite);
  const perfq::io::SeriesMaps maps = perfq::io::quantify_series(data, o.request);
  for (const auto& file : perfq::io::series_outputs(maps, o.output)) {
    perfq::io::write_series_output(file, outputs.stage(file.name));
  }
  const auto written = outputs.commit();

  out << "perfq cbf: " << maps.asl_path << " (" << perfq::to_string(maps.labeling_type) << ", "
      << maps.delays << (maps.delays == 1 ? " delay" : " delays")
      << (maps.time_encoding.empty() ? "" : ", time-encoded " + maps.time_encoding) << ") on "
      << perfq::to_string(maps.backend) << ": ";
  if (maps.relative_cbf) {
    out << "relative CBF (no M0; 1 = the brain's median)";
  } else {
    out << "median CBF " << maps.median_cbf << " ml/100 g/min";
  }
  out << " in the " << maps.check_region;
  if (maps.att) out << ", median ATT " << maps.median_att << " s";
  out << "\n";
  if (o.config) out << "  configuration: " << applied << "\n";
  for (const auto& note : maps.notes) out << "  note: " << note << "\n";
  for (const auto& path : written) out << "  wrote " << path << "\n";
  out.flush();
  for (const auto& warning : maps.warnings) err << "perfq cbf: warning: " << warning << "\n";
  return 0;
}

int run_phantom(const std::vector<std::string>& raw, std::ostream& out, std::ostream& err) {
  if (wants_help(raw)) {
    out << kPhantomHelp;
    return 0;
  }
  const Args args(raw,
                  {"--output", "--seed", "--snr", "--delays", "--repeats", "--subject", "--lesions",
                   "--time-encoded", "--matrix-type", "--sub-bolus-durations", "--voxel-size"},
                  {"--pasl", "--overwrite"}, {{"-o", "--output"}});
  if (!args.positional().empty())
    throw UsageError{"unexpected argument '" + args.positional()[0] + "'"};
  const auto out_dir = args.text("--output");
  if (!out_dir) throw UsageError{"-o/--output is required"};
  perfq::PhantomOptions o;
  o.pasl = args.flag("--pasl");
  o.delays = {o.pasl ? 2.5 : 1.8};
  if (auto s = args.integer("--seed")) {
    if (*s < 0) throw UsageError{"--seed: expected 0 or more"};
    o.seed = static_cast<std::uint64_t>(*s);
  }
  if (auto s = args.number("--snr")) o.snr = *s;
  if (auto mm = args.number("--voxel-size")) {
    try {
      o.dims = perfq::phantom_dims(*mm);
    } catch (const perfq::InvalidArgument& e) {
      throw UsageError{std::string("--voxel-size: ") + e.what()};
    }
    o.voxel_mm = *mm;
  }
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
      throw UsageError{
          "--delays: a time-encoded series takes one delay (after the last "
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
  const std::vector<std::string> folders = {sub,
                                            (fs::path("derivatives") / "truth" / sub).string()};
  const bool overwrite = args.flag("--overwrite");
  refuse_existing(*out_dir, folders, overwrite);
  const perfq::Phantom phantom = perfq::make_phantom(o);
  StagedOutputs outputs(*out_dir, overwrite);
  const std::string staged_asl =
      perfq::io::write_phantom_bids(phantom, outputs.staging().string(), subject);
  for (const auto& folder : folders) outputs.stage(folder);
  outputs.stage_shared("dataset_description.json");
  outputs.stage_shared((fs::path("derivatives") / "truth" / "dataset_description.json").string());
  outputs.commit();
  const std::string asl =
      (fs::path(*out_dir) / fs::relative(staged_asl, outputs.staging())).string();
  out << "perfq phantom: wrote " << asl << "\n"
      << "  truth under " << (fs::path(*out_dir) / "derivatives" / "truth").string() << "\n";
  return 0;
}

int run_info(const std::vector<std::string>& raw, std::ostream& out, std::ostream& err) {
  if (!raw.empty()) throw UsageError{"info takes no arguments"};
  out << "perfq " << perfq::version() << "\n";
  out << "CUDA backend compiled: " << (perfq::cuda_compiled() ? "yes" : "no") << "\n";
  const auto names = perfq::cuda_device_names();
  if (names.empty()) {
    out << "CUDA devices: none (" << perfq::cuda_unavailable_reason() << ")\n";
  } else {
    for (std::size_t d = 0; d < names.size(); ++d) {
      out << "CUDA device " << d << ": " << names[d] << "\n";
    }
  }
  out << "default backend: " << perfq::to_string(perfq::resolve_backend(perfq::Execution{}))
      << "\n";
  return 0;
}

std::optional<int> run_command(const std::string& command, const std::vector<std::string>& args,
                               std::ostream& out, std::ostream& err) {
  using Run = int (*)(const std::vector<std::string>&, std::ostream&, std::ostream&);
  static const std::map<std::string, Run> commands = {
      {"cbf", run_cbf},           {"phantom", run_phantom},
      {"info", run_info},         {"watershed", run_watershed},
      {"stats", run_stats},       {"bids", run_bids},
      {"report", run_report},     {"check", run_check},
      {"resample", run_resample}, {"register", run_register}};
  const auto it = commands.find(command);
  if (it == commands.end()) return std::nullopt;
  try {
    return it->second(args, out, err);
  } catch (const UsageError& e) {
    err << "perfq " << command << ": " << e.message << "\n";
    err << "(see 'perfq " << command << " --help')\n";
    return 2;
  } catch (const perfq::Error& e) {
    err << "perfq " << command << ": error: " << name_final_outputs(e.what()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    err << "perfq " << command << ": unexpected error: " << name_final_outputs(e.what()) << "\n";
    return 1;
  }
}

}  // namespace perfq_cli
