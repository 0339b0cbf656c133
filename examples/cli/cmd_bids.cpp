// perfq bids: the BIDS-App. The participant level quantifies every ASL series of a dataset
// (and, where label images exist by convention, builds border zones and regional
// statistics) into a BIDS-derivatives dataset; the group level gathers the statistics.
#include "bids_anatomy.hpp"
#include "bids_app.hpp"
#include "bids_group.hpp"
#include "bids_group_qc.hpp"
#include "bids_progress.hpp"
#include "cli_util.hpp"
#include "commands.hpp"
#include "json_file.hpp"

#include <perfq/calibration.hpp>
#include <perfq/errors.hpp>
#include <perfq/execution.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/series_config.hpp>
#include <perfq/kinetic.hpp>
#include <perfq/version.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace perfq_cli {
namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
namespace ba = bids_app;

const char* const kBidsHelp =
    "usage: perfq bids <bids_dir> <out_dir> participant [options] [perfq cbf options]\n"
    "       perfq bids <bids_dir> <out_dir> group [--participant-label L ...]\n"
    "\n"
    "BIDS-App. participant: quantifies every ASL series sub-*/[ses-*/]perf/*_asl.nii[.gz]\n"
    "of <bids_dir> exactly as 'perfq cbf' does (the same code, in this process), into\n"
    "<out_dir>/sub-X/[ses-Y/]perf/ with the input's entities kept (<prefix>_cbf.nii.gz,\n"
    "_fitstatus, _cbf.json, and _att... for multi-delay series), and writes\n"
    "<out_dir>/dataset_description.json (a BIDS derivative dataset).\n"
    "\n"
    "Label images found by convention, on the series' grid, for each series <prefix>\n"
    "(e.g. sub-01_ses-1_run-2) — looked up in --labels-dir, then in <bids_dir>, as\n"
    "sub-X/[ses-Y/]perf/<prefix>_<suffix>.nii[.gz], then with ever shorter prefixes\n"
    "(sub-01_ses-1, sub-01, each in its own folder):\n"
    "  _desc-brain_mask or _mask  brain mask: CBF only inside it (perfq cbf --mask); also\n"
    "                             limits border zones and statistics\n"
    "  _territories (+ .tsv)      arterial territory labels (names from the .tsv beside):\n"
    "                             <prefix>_desc-borderzone_mask.nii.gz (perfq watershed,\n"
    "                             --border-width), and CBF statistics per territory\n"
    "                             (<prefix>_desc-territories_stats.tsv) and inside/outside\n"
    "                             the border zones (<prefix>_desc-borderzone_stats.tsv)\n"
    "  _dseg (+ .tsv)             tissue classes: <prefix>_desc-tissue_stats.tsv\n"
    "  _label-CSF_mask (else _label-ventricles_mask), _label-WM_mask, _label-GM_mask\n"
    "                             with --ref-tissue csf|wm|gm: the reference region of\n"
    "                             reference-region M0 calibration (required then)\n"
    "  _label-GM_probseg, _label-WM_probseg, _label-CSF_probseg (else _label-GM_mask,\n"
    "  _label-WM_mask, _label-CSF_mask)\n"
    "                             tissue maps of the quality indices (the GM/WM indices\n"
    "                             and the QEI; <prefix>_desc-qualitycontrol_cbf.tsv)\n"
    "\n"
    "With --anat-derivatives DIR (an fMRIPrep or sMRIPrep output folder; docs/anatomy.md),\n"
    "each series is first registered to its subject's T1w (perfq register: the series'\n"
    "_m0scan, else its mean volume, to sub-X[_ses-Y]_desc-preproc_T1w within its\n"
    "_desc-brain_mask) into <prefix>_from-asl_to-T1w_mode-image_xfm.txt (+ .json), and the\n"
    "brain mask and the GM/WM/CSF probability maps are brought onto the series' grid\n"
    "(perfq resample) as <prefix>_desc-brain_mask, <prefix>_label-GM_probseg, ... and its\n"
    "_dseg (1 GM, 2 WM, 3 CSF) as <prefix>_dseg: they replace those found by convention.\n"
    "With --atlas FILE --atlas-space SPACE, a territory atlas in a template's space comes\n"
    "along through the subject's\n"
    "_from-SPACE_to-T1w_mode-image_xfm.h5 as <prefix>_territories (labels by majority\n"
    "vote), with border zones and tables as above. A series whose subject has no anatomical\n"
    "derivatives (or no transform from the template) fails; the others go on.\n"
    "\n"
    "Each table comes with its JSON sidecar (perfq stats). For multi-delay series (those\n"
    "whose cbf step wrote <prefix>_att.nii.gz) each table has an ATT twin with the same\n"
    "regions: <prefix>_desc-<label>_att_stats.tsv (arterial transit time, s). Last, the\n"
    "visual report of the series (perfq report): <prefix>_report.html with PNG montages in\n"
    "figures/ beside it (its tables are those of CBF).\n"
    "\n"
    "A series that fails does not stop the others: the failures are listed at the end and\n"
    "the exit status is 1. A step whose sidecar (written last, with its outputs) exists is\n"
    "skipped, so a second run only does what is missing; --overwrite redoes everything.\n"
    "\n"
    "group: gathers every participant-level *_stats.tsv under <out_dir>/sub-*/ into\n"
    "<out_dir>/group_stats.tsv (leading columns subject, session, run, desc, map (cbf or\n"
    "att), source) with group_stats.json describing the columns, and every series' quality\n"
    "indices (<prefix>_desc-qualitycontrol_cbf.tsv) into group_qualitycontrol.tsv (+ .json,\n"
    "the outliers of each index flagged by Tukey's fences) with the page group_qc.html.\n"
    "No table of either kind to gather is an error.\n"
    "\n"
    "options:\n"
    "  --participant-label L ...  only these participants (with or without 'sub-');\n"
    "                             several after one option, or the option repeated\n"
    "  --session-label S ...      only these sessions (with or without 'ses-'); series\n"
    "                             without a session are then left out\n"
    "  --labels-dir DIR           a derivatives folder with the label images (above)\n"
    "  --anat-derivatives DIR     fMRIPrep/sMRIPrep outputs: anatomy into each series (above)\n"
    "  --atlas FILE               territory labels in a template's space (with the above)\n"
    "  --atlas-space SPACE        the atlas's template, e.g. MNI152NLin6Asym or\n"
    "                             MNI152NLin2009cAsym (required with --atlas)\n"
    "  --atlas-names FILE         the atlas's names (index, name TSV; else the .tsv beside)\n"
    "  --template-space SPACE     the template of the subjects' transforms, when it is not\n"
    "                             the atlas's; then --atlas-to-template FILE, a transform\n"
    "                             from the atlas's space to it (e.g. TemplateFlow's\n"
    "                             tpl-MNI152NLin2009cAsym_from-MNI152NLin6Asym_mode-image_xfm.h5)\n"
    "  --border-width MM          border-zone width for the territories (default 10)\n"
    "  --nprocs N                 series processed at once (default 1); each gets\n"
    "                             max(1, cores/N) threads unless --threads is given\n"
    "  --no-report                skip the visual report (perfq report)\n"
    "  --overwrite                redo series whose outputs exist\n"
    "  --uncompressed             write the images (cbf step, border zones) as .nii, not\n"
    "                             .nii.gz (perfq cbf --uncompressed); a series done in the\n"
    "                             other format is redone\n"
    "  --quiet                    print only failures and the summary\n"
    "  --verbose                  also print each step's command and output\n"
    "  --backend auto|cpu|cuda, --device N, --threads N   as for perfq cbf, for every step\n"
    "  --config FILE              perfq cbf options per series: a JSON list of {\"filter\":\n"
    "                             {...}, \"options\": {...}} entries, e.g. {\"filter\":\n"
    "                             {\"Manufacturer\": \"GE\"}, \"options\": {\"m0_scale\": 96}}\n"
    "                             (docs/cli.md); every matching entry applies, in order, and\n"
    "                             the command line beats them; each _cbf.json records what\n"
    "                             applied. Not settable there: the masks (by convention),\n"
    "                             --ref-tissue, partial-volume correction\n"
    "perfq cbf options passed to every series (see 'perfq cbf --help'):\n"
    "  --lambda --t1b --t1t --alpha --bs-pulse-efficiency --bs-pulses --m0-value --m0-scale\n"
    "  --min-m0-fraction --hct (else the participant's hematocrit/Hct column of\n"
    "  participants.tsv, a fraction: the arterial blood T1 at 3 T, Lu et al. 2004)\n"
    "  --robust --outliers score|scrub (the tissue maps by convention, above) --m0-smooth\n"
    "  --outlier-threshold --tissue-threshold --t1t-pv --t1t-wm (GM/WM maps by convention)\n"
    "  --model --att-min --att-max --grid-points\n"
    "  --max-iterations --max-starts --tolerance --att-prior --att-prior-mean --att-prior-sd\n"
    "  --spatial --spatial-att\n"
    "  --prior-noise --arterial --aatt-prior-mean --aatt-prior-sd --dispersion\n"
    "  --dispersion-s --dispersion-p --no-sign-check --ref-tissue (region by convention,\n"
    "  above) --ref-t1 --ref-t2 --ref-partition --t2-blood --echo-time\n"
    "\n"
    "Exit status: 0 all series done or skipped (group: table written); 1 a series failed, a\n"
    "bad <bids_dir> (no dataset_description.json), a label matching no folder, nothing to\n"
    "do; 2 bad usage.\n";

const std::vector<std::string> kCbfNumbers = {"--lambda",
                                              "--t1b",
                                              "--hct",
                                              "--t1t",
                                              "--alpha",
                                              "--bs-pulse-efficiency",
                                              "--m0-value",
                                              "--m0-scale",
                                              "--m0-smooth",
                                              "--min-m0-fraction",
                                              "--ref-t1",
                                              "--ref-t2",
                                              "--ref-partition",
                                              "--t2-blood",
                                              "--echo-time",
                                              "--outlier-threshold",
                                              "--tissue-threshold",
                                              "--t1t-wm",
                                              "--att-min",
                                              "--att-max",
                                              "--att-prior-mean",
                                              "--att-prior-sd",
                                              "--aatt-prior-mean",
                                              "--aatt-prior-sd",
                                              "--dispersion-s",
                                              "--dispersion-p",
                                              "--tolerance"};
const std::vector<std::string> kCbfIntegers = {"--max-iterations", "--max-starts", "--grid-points",
                                               "--bs-pulses"};
const std::vector<std::string> kCbfFlags = {"--robust",  "--att-prior",   "--arterial",
                                            "--spatial", "--spatial-att", "--no-sign-check",
                                            "--t1t-pv"};

struct Options {
  fs::path bids_dir, out_dir;
  std::string level;
  std::vector<std::string> participants, sessions;
  std::optional<fs::path> labels_dir;
  std::string border_width = "10";
  std::size_t nprocs = 1;
  bool overwrite = false, quiet = false, verbose = false, report = true;
  bool uncompressed = false;           // --uncompressed: .nii images (cbf, watershed steps)
  std::vector<std::string> execution;  // --backend/--device/--threads for every step
  bool threads_given = false;
  std::vector<std::string> cbf;               // passed through to perfq cbf
  std::optional<std::string> ref_tissue;      // reference-region calibration, mask by convention
  std::optional<fs::path> config;             // --config: perfq cbf options per series
  std::optional<ba::AnatomyOptions> anatomy;  // --anat-derivatives (and --atlas)
};

/// What a configuration may not set in this app: the files it finds by convention (and the
/// tissue whose mask it looks for), and partial-volume correction, which needs them.
const perfq::io::ConfigRules kConfigRules{
    {"--mask", "--ref-mask", "--ref-tissue", "--pvc-gm", "--pvc-wm", "--pvc-kernel", "--gm-probseg",
     "--wm-probseg", "--csf-probseg"},
    "perfq bids finds the masks by convention and takes --ref-tissue on its command line"};

/// Takes `--participant-label a b …` (greedy, BIDS-App style; also `_label`) out of `raw`.
std::vector<std::string> take_labels(std::vector<std::string>& raw, const std::string& name,
                                     const std::string& prefix) {
  std::vector<std::string> labels, rest;
  std::string underscored = name;
  std::replace(underscored.begin() + 2, underscored.end(), '-', '_');
  for (std::size_t k = 0; k < raw.size(); ++k) {
    if (raw[k] != name && raw[k] != underscored) {
      rest.push_back(raw[k]);
      continue;
    }
    const std::size_t before = labels.size();
    while (k + 1 < raw.size() && !raw[k + 1].empty() && raw[k + 1][0] != '-') {
      const std::string label = ba::strip_prefix(raw[++k], prefix);
      if (label.empty() || label.find_first_of("_-/ ") != std::string::npos) {
        throw UsageError{name + ": '" + raw[k] + "' is not a BIDS label"};
      }
      labels.push_back(label);
    }
    if (labels.size() == before) throw UsageError{name + " needs at least one label"};
  }
  raw = rest;
  return labels;
}

/// A template's name as fMRIPrep and TemplateFlow spell it (letters and digits).
std::string template_name(const Args& args, const std::string& option) {
  const std::string name = *args.text(option);
  const bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) != 0;
  });
  if (!ok) {
    throw UsageError{option + ": '" + name +
                     "' is not a template name (letters and digits, e.g. MNI152NLin6Asym)"};
  }
  return name;
}

std::optional<ba::AnatomyOptions> parse_anatomy(const Args& args) {
  const auto dir = args.text("--anat-derivatives");
  for (const char* name :
       {"--atlas", "--atlas-space", "--atlas-names", "--template-space", "--atlas-to-template"}) {
    if (args.text(name) && !dir) throw UsageError{std::string(name) + " needs --anat-derivatives"};
    if (args.text(name) && std::string(name) != "--atlas" && !args.text("--atlas")) {
      throw UsageError{std::string(name) + " goes with --atlas"};
    }
  }
  if (!dir) return std::nullopt;
  ba::AnatomyOptions a;
  a.derivatives = *dir;
  if (auto atlas = args.text("--atlas")) {
    if (!args.text("--atlas-space")) {
      throw UsageError{
          "--atlas needs --atlas-space (the template the atlas is in, e.g. "
          "MNI152NLin6Asym)"};
    }
    a.atlas = fs::path(*atlas);
    a.atlas_space = template_name(args, "--atlas-space");
    a.template_space =
        args.text("--template-space") ? template_name(args, "--template-space") : a.atlas_space;
    if (auto n = args.text("--atlas-names")) a.atlas_names = fs::path(*n);
    if (auto t = args.text("--atlas-to-template")) a.atlas_to_template = fs::path(*t);
    if (a.template_space != a.atlas_space && !a.atlas_to_template) {
      throw UsageError{"the atlas is in " + a.atlas_space + " and the subjects' transforms from " +
                       a.template_space + ": give --atlas-to-template (a " + a.atlas_space +
                       " to " + a.template_space + " transform, e.g. TemplateFlow's tpl-" +
                       a.template_space + "_from-" + a.atlas_space + "_mode-image_xfm.h5)"};
    }
    if (a.template_space == a.atlas_space && a.atlas_to_template) {
      throw UsageError{"--atlas-to-template goes with a --template-space other than the atlas's"};
    }
  }
  return a;
}

Options parse_options(std::vector<std::string> raw) {
  Options o;
  o.participants = take_labels(raw, "--participant-label", "sub-");
  o.sessions = take_labels(raw, "--session-label", "ses-");
  std::set<std::string> values = {
      "--labels-dir",  "--border-width",   "--nprocs",           "--backend",    "--device",
      "--threads",     "--model",          "--prior-noise",      "--dispersion", "--ref-tissue",
      "--config",      "--outliers",       "--anat-derivatives", "--atlas",      "--atlas-space",
      "--atlas-names", "--template-space", "--atlas-to-template"};
  values.insert(kCbfNumbers.begin(), kCbfNumbers.end());
  values.insert(kCbfIntegers.begin(), kCbfIntegers.end());
  std::set<std::string> flags = {"--overwrite", "--quiet", "--verbose", "--no-report",
                                 "--uncompressed"};
  flags.insert(kCbfFlags.begin(), kCbfFlags.end());
  const Args args(raw, values, flags, {});
  if (args.positional().size() != 3) {
    throw UsageError{"expected <bids_dir> <out_dir> participant|group, got " +
                     std::to_string(args.positional().size()) + " argument(s)"};
  }
  o.bids_dir = args.positional()[0];
  o.out_dir = args.positional()[1];
  o.level = args.positional()[2];
  if (o.level != "participant" && o.level != "group") {
    throw UsageError{"analysis level must be participant or group, got '" + o.level + "'"};
  }
  if (auto d = args.text("--labels-dir")) o.labels_dir = fs::path(*d);
  o.anatomy = parse_anatomy(args);
  if (auto c = args.text("--config")) o.config = fs::path(*c);
  if (auto w = args.number("--border-width")) {
    if (!(*w > 0)) throw UsageError{"--border-width: expected a positive number of mm"};
    o.border_width = *args.text("--border-width");
  }
  if (auto n = args.integer("--nprocs")) {
    if (*n < 1) throw UsageError{"--nprocs: expected 1 or more"};
    o.nprocs = static_cast<std::size_t>(*n);
  }
  o.overwrite = args.flag("--overwrite");
  o.report = !args.flag("--no-report");
  o.uncompressed = args.flag("--uncompressed");
  o.quiet = args.flag("--quiet");
  o.verbose = args.flag("--verbose");
  if (o.quiet && o.verbose) throw UsageError{"--quiet and --verbose exclude each other"};
  // Every value is checked here, so that a typo is one usage error, not a failure per series.
  if (auto b = args.text("--backend")) {
    try {
      perfq::Execution e;
      e.backend = perfq::parse_backend(*b);
      if (o.level == "participant") perfq::resolve_backend(e);  // CUDA absent: fail now
    } catch (const perfq::InvalidArgument& e) {
      throw UsageError{std::string("--backend: ") + e.what()};
    }
    o.execution.insert(o.execution.end(), {"--backend", *b});
  }
  for (const std::string name : {"--device", "--threads"}) {
    if (auto v = args.integer(name)) {
      if (*v < 0) throw UsageError{name + ": expected 0 or more"};
      o.execution.insert(o.execution.end(), {name, *args.text(name)});
    }
  }
  o.threads_given = args.text("--threads").has_value();
  for (const std::string name : {"--model", "--prior-noise", "--dispersion", "--outliers"}) {
    if (auto m = args.text(name)) o.cbf.insert(o.cbf.end(), {name, *m});
  }
  for (const auto& name : kCbfNumbers) {
    if (args.number(name)) o.cbf.insert(o.cbf.end(), {name, *args.text(name)});
  }
  for (const auto& name : kCbfIntegers) {
    if (args.integer(name)) o.cbf.insert(o.cbf.end(), {name, *args.text(name)});
  }
  for (const auto& name : kCbfFlags) {
    if (args.flag(name)) o.cbf.push_back(name);
  }
  // Reference-region calibration: the tissue for every series, its mask found per series.
  if (auto t = args.text("--ref-tissue")) {
    try {
      o.ref_tissue = perfq::to_string(perfq::parse_reference_tissue(*t));
    } catch (const perfq::InvalidArgument& e) {
      throw UsageError{std::string("--ref-tissue: ") + e.what()};
    }
  }
  // Checked once here, by perfq cbf's own parser, so that a typo or a value or combination
  // perfq cbf refuses is one usage error, not a failure per series (a placeholder stands for
  // the reference masks, found per series).
  std::vector<std::string> checked = o.cbf;
  if (o.ref_tissue)
    checked.insert(checked.end(), {"--ref-tissue", *o.ref_tissue, "--ref-mask", "x"});
  // With a configuration, combinations are checked per series, its options merged in.
  if (o.config) checked.insert(checked.end(), {"--config", "x"});
  // --outliers and --t1t-pv need the tissue maps, found per series by convention.
  if (args.text("--outliers") || args.flag("--t1t-pv")) {
    checked.insert(checked.end(), {"--gm-probseg", "x", "--wm-probseg", "x", "--csf-probseg", "x"});
  }
  check_cbf_options(checked);
  return o;
}

/// One perfq subcommand of a series; skipped when `marker` (its sidecar, committed last
/// with its outputs) exists, and not applicable when `input` is set and does not exist once
/// the steps before it have run (the ATT tables of a single-delay series).
struct Step {
  std::string name;
  std::vector<std::string> args;
  fs::path marker;
  std::optional<fs::path> input;
  /// Done only when this image exists too: the marker alone does not say whether the step
  /// wrote .nii or .nii.gz images (--uncompressed), which the steps after it read by name.
  std::optional<fs::path> image;
};

struct Plan {
  ba::Series series;
  std::string error;         // the series cannot be done (no anatomy for its subject): it fails
  std::size_t cbf_step = 0;  // the anatomy's steps (--anat-derivatives) come before it
  fs::path out;
  std::vector<Step> steps;
  bool border_zones = false, report = false;
  bool relative = false;   // relative CBF (M0Type Absent): the cbf step (and border zones) only
  std::size_t tables = 0;  // CBF tables; each has an ATT twin when `att_map` exists
  fs::path att_map;
};

const char* const kBorderZoneNames = "desc-borderzone_dseg.tsv";
const char* const kAnatDsegNamesFile = "desc-anat_dseg.tsv";  // --anat-derivatives' _dseg

/// Whether perfq cbf will give the series relative CBF: M0Type Absent in its sidecar, and no
/// --m0-value on the command line or in a configuration entry that matches it.
bool relative_cbf(const ba::Series& s, const Options& o,
                  const std::optional<perfq::io::SeriesConfig>& config) {
  if (std::find(o.cbf.begin(), o.cbf.end(), "--m0-value") != o.cbf.end()) return false;
  try {
    const perfq::io::SeriesFacts facts = perfq::io::series_facts(s.asl.string());
    const auto sidecar = nlohmann::json::parse(facts.sidecar_json, nullptr, false);
    if (!sidecar.is_object() || sidecar.value("M0Type", "") != "Absent") return false;
    if (config) {
      for (const std::size_t k : perfq::io::matching_entries(*config, facts)) {
        for (const auto& option : config->entries[k].options) {
          if (option.name == "--m0-value" && option.set) return false;
        }
      }
    }
    return true;
  } catch (const perfq::Error&) {
    return false;  // the cbf step reports it
  }
}

Plan make_plan(const ba::Series& s, const Options& o, const std::vector<std::string>& execution,
               const std::optional<perfq::io::SeriesConfig>& config) {
  Plan p;
  p.series = s;
  p.out = o.out_dir / s.folder;
  const std::string px = s.prefix;
  auto in_out = [&](const std::string& suffix) { return (p.out / (px + suffix)).string(); };
  std::vector<fs::path> roots;
  if (o.labels_dir) roots.push_back(*o.labels_dir);
  roots.push_back(o.bids_dir);
  ba::Conventions c = ba::find_conventions(s, roots);
  const std::string nii = o.uncompressed ? ".nii" : ".nii.gz";  // the images written here
  // Tissue maps for the quality indices: <prefix>_label-GM_probseg, else the binary
  // <prefix>_label-GM_mask (likewise WM and CSF); or those brought from the anatomy.
  std::optional<fs::path> tissue_maps[3];
  const char* const tissues[3] = {"GM", "WM", "CSF"};
  for (int k = 0; k < 3; ++k) {
    const std::string t = tissues[k];
    tissue_maps[k] = ba::find_by_convention(s, roots, "label-" + t + "_probseg");
    if (!tissue_maps[k]) tissue_maps[k] = ba::find_by_convention(s, roots, "label-" + t + "_mask");
  }
  if (o.anatomy) {
    std::vector<std::string> threads;
    const auto t = std::find(execution.begin(), execution.end(), "--threads");
    if (t != execution.end()) threads = {"--threads", *(t + 1)};
    ba::AnatomyPlan a = ba::plan_anatomy(s, p.out, *o.anatomy, nii, threads);
    if (!a.error.empty()) {
      p.error = a.error;
      return p;
    }
    for (auto& step : a.steps) {
      p.steps.push_back({step.name, step.args, step.marker, std::nullopt, std::nullopt});
    }
    c.brain = a.brain;
    if (a.tissue) {
      c.tissue = a.tissue;
      c.tissue_names = o.out_dir / kAnatDsegNamesFile;
    }
    tissue_maps[0] = a.gm;
    tissue_maps[1] = a.wm;
    tissue_maps[2] = a.csf;
    if (a.territories) {
      c.territories = a.territories;
      c.territory_names = a.territory_names;
    }
  }
  auto add = [&](std::string name, std::vector<std::string> args, const std::string& marker,
                 std::optional<fs::path> input = std::nullopt) {
    args.insert(args.end(), execution.begin(), execution.end());
    // A step runs only when this app decided to (re)do it: it replaces what is there.
    args.push_back("--overwrite");
    p.steps.push_back({std::move(name), std::move(args), marker, std::move(input)});
  };

  std::vector<std::string> cbf = {"cbf", s.asl.string(), "-o", p.out.string()};
  cbf.insert(cbf.end(), o.cbf.begin(), o.cbf.end());
  // The participant's haematocrit (participants.tsv) gives the blood T1 unless the command
  // line gives --hct (an explicit --t1b beats it in perfq cbf, which says so in a note).
  if (std::find(o.cbf.begin(), o.cbf.end(), "--hct") == o.cbf.end()) {
    if (const auto hct = perfq::io::participant_hematocrit(o.bids_dir.string(), s.subject)) {
      std::ostringstream text;
      text.precision(10);
      text << *hct;
      cbf.insert(cbf.end(), {"--hct", text.str()});
    }
  }
  if (c.brain) cbf.insert(cbf.end(), {"--mask", c.brain->string()});
  if (o.ref_tissue) {
    // <prefix>_label-CSF_mask (else _label-ventricles_mask), _label-WM_mask or _label-GM_mask.
    const std::string& t = *o.ref_tissue;
    const std::vector<std::string> suffixes =
        t == "csf"  ? std::vector<std::string>{"label-CSF_mask", "label-ventricles_mask"}
        : t == "wm" ? std::vector<std::string>{"label-WM_mask"}
                    : std::vector<std::string>{"label-GM_mask"};
    std::optional<fs::path> mask;
    for (const auto& suffix : suffixes) {
      if (!mask) mask = ba::find_by_convention(s, roots, suffix);
    }
    // None: the expected name in the first root, so that perfq cbf's error names it.
    const fs::path expected = roots.front() / s.folder / (px + "_" + suffixes.front() + ".nii.gz");
    cbf.insert(cbf.end(), {"--ref-tissue", t, "--ref-mask", (mask ? *mask : expected).string()});
  }
  for (int k = 0; k < 3; ++k) {
    const std::optional<fs::path>& map = tissue_maps[k];
    if (!map) continue;
    std::string option = std::string("--") + tissues[k] + "-probseg";
    std::transform(option.begin(), option.end(), option.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    cbf.insert(cbf.end(), {option, map->string()});
  }
  if (o.config) cbf.insert(cbf.end(), {"--config", o.config->string()});
  if (o.uncompressed) cbf.push_back("--uncompressed");
  add("cbf", cbf, in_out("_cbf.json"));
  p.cbf_step = p.steps.size() - 1;

  const std::string cbf_map = in_out("_cbf" + nii);
  p.att_map = in_out("_att" + nii);
  // The same regions for CBF (<prefix>_desc-<desc>_stats.tsv) and, when the cbf step made an
  // ATT map (multi-delay series), for ATT (<prefix>_desc-<desc>_att_stats.tsv).
  auto stats = [&](const std::string& desc, const fs::path& labels,
                   const std::optional<fs::path>& names, bool background) {
    for (const bool att : {false, true}) {
      const std::string table = "_desc-" + desc + (att ? "_att" : "") + "_stats";
      std::vector<std::string> a = {"stats", att ? p.att_map.string() : cbf_map, "--labels",
                                    labels.string()};
      if (names) a.insert(a.end(), {"--names", names->string()});
      if (c.brain) a.insert(a.end(), {"--mask", c.brain->string()});
      if (background && c.brain) a.push_back("--include-background");
      a.insert(a.end(), {"-o", in_out(table + ".tsv")});
      add(std::string(att ? "att " : "") + "stats " + desc, a, in_out(table + ".json"),
          att ? std::optional<fs::path>(p.att_map) : std::nullopt);
    }
    ++p.tables;
  };
  if (c.territories) {
    std::vector<std::string> w = {"watershed", "--territories", c.territories->string(), "--width",
                                  o.border_width};
    if (c.territory_names) w.insert(w.end(), {"--names", c.territory_names->string()});
    if (c.brain) w.insert(w.end(), {"--brain", c.brain->string()});
    w.insert(w.end(), {"-o", in_out("_desc-borderzone_mask" + nii)});
    add("watershed", w, in_out("_desc-borderzone_mask.json"));
    p.steps.back().image = in_out("_desc-borderzone_mask" + nii);
    p.border_zones = true;
  }
  // Relative CBF (no M0): neither tables nor a report, which are of CBF in ml/100 g/min.
  p.relative = relative_cbf(s, o, config);
  p.steps[p.cbf_step].image = in_out((p.relative ? "_desc-relative_cbf" : "_cbf") + nii);
  if (p.relative) return p;
  if (c.tissue) stats("tissue", *c.tissue, c.tissue_names, false);
  if (c.territories) {
    stats("territories", *c.territories, c.territory_names, false);
    // Label 0 (the rest of the brain) is the comparison region, when a brain mask bounds it.
    stats("borderzone", in_out("_desc-borderzone_mask" + nii), o.out_dir / kBorderZoneNames, true);
  }
  if (o.report) {
    // Last: it reads every output above. The page is written after its figures, so it marks
    // a complete report. No execution options: it computes nothing heavy.
    p.steps.push_back({"report", {"report", cbf_map, "--overwrite"}, in_out("_report.html")});
    p.report = true;
  }
  return p;
}

/// Runs one step (`perfq <args…>`) in this process, its output captured: the very code of the
/// single command, without a child process.
ba::StepResult run_step(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  ba::StepResult r;
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  r.status = run_command(args.front(), rest, out, err).value_or(2);
  r.out = out.str();
  r.err = err.str();
  return r;
}

ba::Outcome run_plan(const Plan& p, const Options& o) {
  ba::Outcome result;
  result.kind = ba::Outcome::Kind::Skipped;
  if (!p.error.empty()) {
    result.kind = ba::Outcome::Kind::Failed;
    result.step = "anatomy";
    result.message = p.error;
    return result;
  }
  const auto start = Clock::now();
  if (p.cbf_step > 0) {
    // The anatomy's steps write into the series' folder before perfq cbf makes it.
    std::error_code ec;
    fs::create_directories(p.out, ec);
    if (ec) throw perfq::Error(p.out.string() + ": cannot create: " + ec.message());
  }
  bool redo = o.overwrite;  // once a step runs, the steps after it (which read it) run too
  for (const Step& step : p.steps) {
    std::error_code ec;
    if (step.input && !fs::exists(*step.input, ec)) continue;  // not applicable
    if (!redo && fs::exists(step.marker, ec) && (!step.image || fs::exists(*step.image, ec))) {
      continue;
    }
    redo = true;
    result.kind = ba::Outcome::Kind::Ok;
    const ba::StepResult r = run_step(step.args);
    if (o.verbose) {
      result.log += "  $ perfq";
      for (const auto& a : step.args) result.log += " " + a;
      result.log += "\n" + r.out + r.err;
    }
    if (r.status != 0) {
      result.kind = ba::Outcome::Kind::Failed;
      result.step = step.name;
      result.message = ba::failure_message(r);
      break;
    }
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const Json j = read_json_if_any(p.steps[p.cbf_step].marker);
  if (j.is_object() && j.contains("GeneratedBy") && j["GeneratedBy"].is_object() &&
      j["GeneratedBy"].contains("Backend") && j["GeneratedBy"]["Backend"].is_string()) {
    result.backend = j["GeneratedBy"]["Backend"].get<std::string>();
  }
  if (result.kind == ba::Outcome::Kind::Ok && j.is_object() && j.contains("Warnings") &&
      j["Warnings"].is_array()) {
    for (const auto& w : j["Warnings"]) {
      if (w.is_string()) result.warnings.push_back(w.get<std::string>());
    }
  }
  return result;
}

void write_dataset_description(const Options& o) {
  Json d;
  d["Name"] = "perfq perfusion derivatives";
  d["BIDSVersion"] = "1.9.0";
  d["DatasetType"] = "derivative";
  d["GeneratedBy"] = Json::array({{{"Name", "perfq"}, {"Version", perfq::version()}}});
  d["SourceDatasets"] =
      Json::array({{{"URL", "file://" + fs::absolute(o.bids_dir).lexically_normal().string()}}});
  perfq::io::write_text_atomic((o.out_dir / "dataset_description.json").string(), d.dump(2) + "\n");
}

int run_participant(const Options& o, std::ostream& out) {
  const auto start = Clock::now();
  // A bad configuration is refused before any work (its options per series, by each cbf step).
  std::optional<perfq::io::SeriesConfig> config;
  if (o.config) config = perfq::io::read_series_config(o.config->string(), kConfigRules);
  const std::vector<ba::Series> series = ba::find_series(o.bids_dir, o.participants, o.sessions);
  if (series.empty()) {
    throw perfq::Error(o.bids_dir.string() +
                       ": no ASL series (sub-*/[ses-*/]perf/*_asl.nii[.gz]) selected");
  }
  const std::size_t workers = std::min(o.nprocs, series.size());
  // Each concurrent series gets its share of the cores (its steps' OpenMP teams).
  std::vector<std::string> execution = o.execution;
  if (workers > 1 && !o.threads_given) {
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    execution.insert(execution.end(),
                     {"--threads", std::to_string(std::max<std::size_t>(1, cores / workers))});
  }
  std::vector<Plan> plans;
  bool border_zones = false;
  for (const auto& s : series) {
    plans.push_back(make_plan(s, o, execution, config));
    border_zones = border_zones || plans.back().border_zones;
  }
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) throw perfq::Error(o.out_dir.string() + ": cannot create: " + ec.message());
  write_dataset_description(o);
  if (border_zones) {
    perfq::io::write_text_atomic((o.out_dir / kBorderZoneNames).string(),
                                 "index\tname\n0\toutside\n1\tborderzone\n");
  }
  if (o.anatomy) {
    perfq::io::write_text_atomic((o.out_dir / kAnatDsegNamesFile).string(), ba::kAnatDsegNames);
  }
  if (!o.quiet) {
    out << "perfq bids: " << series.size() << " ASL series in " << o.bids_dir.string() << " -> "
        << o.out_dir.string() << " (" << workers << " at a time)\n";
  }
  if (config && !o.quiet) {
    for (const std::size_t k : ba::unmatched_entries(*config, series)) {
      out << "perfq bids: note: " << config->path << ": entry " << k
          << " matches none of the selected series\n";
    }
  }

  ba::Reporter reporter(plans.size(), o.quiet, o.verbose);
  std::atomic<std::size_t> next{0};
  auto work = [&]() {
    for (std::size_t k = next++; k < plans.size(); k = next++) {
      const Plan& p = plans[k];
      reporter.started(p.series.label());
      ba::Outcome r;
      try {
        r = run_plan(p, o);
      } catch (const std::exception& e) {  // e.g. no temporary file: this series fails
        r.kind = ba::Outcome::Kind::Failed;
        r.step = "perfq bids";
        r.message = e.what();
      }
      std::string extra;
      if (p.border_zones) extra += ", border zones";
      if (p.tables) {
        extra += ", " + std::to_string(p.tables) + (p.tables == 1 ? " table" : " tables");
        std::error_code ec;
        if (fs::exists(p.att_map, ec)) extra += " of CBF and of ATT";
      }
      if (p.report) extra += ", report";
      if (p.relative) extra += ", relative CBF (no M0: no tables or report)";
      reporter.finished(p.series.label(), p.series.asl.string(), r, extra);
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t t = 1; t < workers; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  return reporter.summary(std::chrono::duration<double>(Clock::now() - start).count());
}

}  // namespace

int run_bids(const std::vector<std::string>& raw, std::ostream& out, std::ostream& err) {
  if (wants_help(raw)) {
    out << kBidsHelp;
    return 0;
  }
  const Options o = parse_options(raw);
  std::error_code ec;
  if (!fs::is_directory(o.bids_dir, ec)) {
    throw perfq::Error(o.bids_dir.string() + ": bids_dir: no such folder");
  }
  if (!fs::is_regular_file(o.bids_dir / "dataset_description.json", ec)) {
    throw perfq::Error(o.bids_dir.string() +
                       ": not a BIDS dataset: dataset_description.json not found");
  }
  if (fs::exists(o.out_dir, ec) && fs::equivalent(o.bids_dir, o.out_dir, ec)) {
    throw perfq::Error(o.out_dir.string() + ": out_dir must not be bids_dir itself");
  }
  if (o.labels_dir && !fs::is_directory(*o.labels_dir, ec)) {
    throw perfq::Error(o.labels_dir->string() + ": --labels-dir: no such folder");
  }
  if (o.anatomy) {
    const ba::AnatomyOptions& a = *o.anatomy;
    if (!fs::is_directory(a.derivatives, ec)) {
      throw perfq::Error(a.derivatives.string() + ": --anat-derivatives: no such folder");
    }
    const std::pair<const char*, const std::optional<fs::path>*> files[] = {
        {"--atlas", &a.atlas},
        {"--atlas-names", &a.atlas_names},
        {"--atlas-to-template", &a.atlas_to_template}};
    for (const auto& [option, file] : files) {
      if (*file && !fs::is_regular_file(**file, ec)) {
        throw perfq::Error((*file)->string() + ": " + option + ": no such file");
      }
    }
  }
  if (o.level == "participant") return run_participant(o, out);

  if (!fs::is_directory(o.out_dir, ec)) {
    throw perfq::Error(o.out_dir.string() + ": out_dir: no such folder (run participant first)");
  }
  // The quality indices of every series, then the regional statistics: one of them at least.
  const std::size_t qc_series = ba::write_group_quality(o.out_dir, o.participants, o.sessions);
  if (qc_series > 0 && ba::find_stats_tables(o.out_dir, o.participants, o.sessions).empty()) {
    if (!o.quiet) {
      out << "perfq bids: group: quality indices of " << qc_series << " series -> "
          << (o.out_dir / "group_qualitycontrol.tsv").string() << ", "
          << (o.out_dir / "group_qc.html").string() << " (no *_stats.tsv to gather)\n";
    }
    return 0;
  }
  const auto [tables, rows] = ba::write_group_table(o.out_dir, o.participants, o.sessions);
  if (!o.quiet) {
    out << "perfq bids: group: " << rows << " rows from " << tables << " tables -> "
        << (o.out_dir / "group_stats.tsv").string() << "\n";
    if (qc_series > 0) {
      out << "perfq bids: group: quality indices of " << qc_series << " series -> "
          << (o.out_dir / "group_qualitycontrol.tsv").string() << ", "
          << (o.out_dir / "group_qc.html").string() << "\n";
    }
  }
  return 0;
}

}  // namespace perfq_cli
