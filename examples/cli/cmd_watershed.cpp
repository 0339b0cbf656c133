// perfq watershed: border-zone masks from a territory atlas and/or perfusion timing, with a
// JSON sidecar recording every input and option.
#include "cli_util.hpp"
#include "commands.hpp"
#include "watershed_util.hpp"

#include <perfq/errors.hpp>
#include <perfq/execution.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/watershed.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace perfq_cli {
namespace {

using Json = nlohmann::ordered_json;

const char* const kWatershedHelp =
    "usage: perfq watershed --territories LABELS --width MM -o OUT.nii.gz [options]\n"
    "       perfq watershed --att ATT --tissue WM (--att-threshold S | --att-percentile P)\n"
    "                       -o OUT.nii.gz [options]\n"
    "\n"
    "Border-zone (watershed) masks. From a territory atlas: a brain voxel is in the border\n"
    "zone when at least two territories lie within MM/2 of it (exact Euclidean distance,\n"
    "voxel centre to voxel centre, in mm; its own territory is at 0). From perfusion timing:\n"
    "tissue voxels whose ATT (or local CoV of CBF, for single-delay data) is at or above a\n"
    "threshold or percentile, without connected components below a volume. Both sources:\n"
    "their union or intersection. Writes OUT (uint8 mask), OUT_pairs (int32: a*1000+b, the\n"
    "two territories a<b that meet there; atlas sources only), optional OUT_internal,\n"
    "OUT_external and OUT_caps, and OUT.json recording everything. All inputs must share one\n"
    "grid. Outputs appear complete or not at all.\n"
    "\n"
    "atlas (at most one):\n"
    "  --territories FILE       territory labels (integers stored as int or float; 0 = none)\n"
    "  --width MM               border-zone width (required with --territories)\n"
    "  --groups FILE            TSV with columns label and group: relabel territories before\n"
    "                           use (e.g. left and right ACA into one); group 0 drops a label;\n"
    "                           every nonzero label must be listed\n"
    "  --names FILE             TSV with columns index (or label) and name: names the\n"
    "                           territories (after grouping) in the sidecar\n"
    "  --probabilities FILES    territory probabilities: one 4D image (a volume per\n"
    "                           territory, labels 1, 2, ...) or a comma-separated list of 3D\n"
    "  --prob-threshold X       with --probabilities: the two largest both >= X (required)\n"
    "  --brain FILE             brain mask: border zones only inside it\n"
    "timing (at most one):\n"
    "  --att FILE               arterial transit time map (s)\n"
    "  --cbf FILE               CBF map: its local spatial CoV (SD/mean, sample SD, over the\n"
    "                           tissue voxels within --cov-radius mm) is the timing surrogate\n"
    "  --cov-radius MM          radius of the CoV sphere (default 6)\n"
    "  --tissue FILES           tissue masks or probability maps the timing is judged in,\n"
    "                           comma-separated (e.g. WM,GM): each tissue gets its own cut,\n"
    "                           and the mask is the union over tissues\n"
    "  --tissue-threshold X     tissue = FILE >= X (default 0.5)\n"
    "  --att-threshold S        with --att: keep ATT >= S (one value, or one per tissue)\n"
    "  --att-percentile P       with --att: keep ATT >= its P-th percentile within each\n"
    "                           tissue (numpy's linear interpolation; one, or one per tissue)\n"
    "  --cov-threshold X        with --cbf: keep CoV >= X (one, or one per tissue)\n"
    "  --cov-percentile P       with --cbf: keep CoV >= its P-th percentile within each\n"
    "                           tissue (one, or one per tissue)\n"
    "  --min-volume ML          drop connected components below ML millilitres (default 0)\n"
    "  --connectivity 6|26      neighbours that connect voxels (default 26)\n"
    "combination and anatomy:\n"
    "  --combine union|intersection  atlas and timing together (default union)\n"
    "  --wm FILE                white matter (mask or probability): writes OUT_internal\n"
    "                           (zone and WM) and OUT_external (zone, not WM, and GM)\n"
    "  --wm-threshold X         WM = FILE >= X (default 0.5)\n"
    "  --gm FILE, --gm-threshold X  grey matter for OUT_external (default: all non-WM)\n"
    "  --ventricles FILE        lateral ventricles: writes OUT_caps, the periventricular caps\n"
    "                           (1 frontal, 2 occipital; in the brain mask when given)\n"
    "  --cap-distance MM        reach of the caps from the ventricles (default 10)\n"
    "  --horn-fraction F        share of the ventricles' anterior-posterior extent counted\n"
    "                           as each horn (default 0.25)\n"
    "  --reference FILE         a reference mask: report the Dice coefficient against it\n"
    "execution:\n"
    "  -o, --output FILE        the mask, .nii or .nii.gz (its folder is created)\n"
    "  --overwrite              replace outputs that exist (default: refuse, exit 1)\n"
    "  --backend auto|cpu|cuda  where distance transforms run (default auto)\n"
    "  --device N, --threads N  CUDA device (0); CPU threads (all)\n";

/// The command line, checked before any file is read (usage errors come first).
struct Plan {
  fs::path out;
  std::string stem, extension;  // OUT = stem + extension
  std::optional<std::string> territories, groups, names, brain;
  std::optional<double> width;
  std::vector<std::string> probabilities;
  double prob_threshold = 0;
  std::optional<std::string> att, cbf;
  std::vector<std::string> tissues;
  std::vector<perfq::TimingOptions> cuts;  // one per tissue
  perfq::TimingOptions timing;             // min volume and connectivity
  double tissue_threshold = 0.5, cov_radius = 6.0;
  std::string combine = "union";
  std::optional<std::string> wm, gm, ventricles, reference;
  double wm_threshold = 0.5, gm_threshold = 0.5;
  perfq::CapOptions caps;
  perfq::Execution execution;
  bool overwrite = false;

  bool atlas() const { return territories || !probabilities.empty(); }
  bool timed() const { return att || cbf; }
  std::string sibling(const std::string& suffix) const { return stem + "_" + suffix + extension; }
};

/// The output's name split into stem and NIfTI extension.
void parse_output(const Args& args, Plan& plan) {
  const auto out = args.text("--output");
  if (!out) throw UsageError{"-o/--output is required"};
  plan.out = *out;
  const std::string name = plan.out.filename().string();
  for (const std::string ext : {".nii.gz", ".nii"}) {
    if (name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0) {
      plan.extension = ext;
      plan.stem = name.substr(0, name.size() - ext.size());
      return;
    }
  }
  throw UsageError{"-o/--output must name a .nii or .nii.gz file"};
}

void parse_atlas(const Args& args, Plan& plan) {
  plan.territories = args.text("--territories");
  if (auto p = args.text("--probabilities")) {
    plan.probabilities = watershed::split_list(*p);
    if (plan.probabilities.empty()) throw UsageError{"--probabilities: expected file names"};
  }
  if (plan.territories && !plan.probabilities.empty()) {
    throw UsageError{"give --territories or --probabilities, not both"};
  }
  plan.width = args.number("--width");
  if (plan.territories && !plan.width) throw UsageError{"--territories needs --width MM"};
  if (plan.width && !plan.territories) throw UsageError{"--width goes with --territories"};
  if (plan.width && !(*plan.width > 0)) throw UsageError{"--width: expected a positive number"};
  plan.groups = args.text("--groups");
  plan.names = args.text("--names");
  if ((plan.groups || plan.names) && !plan.territories) {
    throw UsageError{"--groups and --names go with --territories"};
  }
  const auto threshold = args.number("--prob-threshold");
  if (!plan.probabilities.empty() && !threshold) {
    throw UsageError{"--probabilities needs --prob-threshold X"};
  }
  if (threshold && (plan.probabilities.empty() || !(*threshold > 0))) {
    throw UsageError{"--prob-threshold: a positive number, with --probabilities"};
  }
  plan.prob_threshold = threshold.value_or(0.0);
}

/// The timing source and one cut per tissue (one value for all, or one per tissue).
void parse_timing(const Args& args, Plan& plan) {
  plan.att = args.text("--att");
  plan.cbf = args.text("--cbf");
  if (plan.att && plan.cbf) throw UsageError{"give --att or --cbf, not both"};
  const std::string kind = plan.att ? "att" : "cov", other = plan.att ? "cov" : "att";
  if (args.text("--" + other + "-threshold") || args.text("--" + other + "-percentile")) {
    throw UsageError{"--" + other + "-threshold/-percentile go with --" +
                     (other == "att" ? "att" : "cbf")};
  }
  if (!plan.timed()) {
    if (args.text("--tissue") || args.text("--min-volume") || args.text("--cov-radius")) {
      throw UsageError{"--tissue, --min-volume and --cov-radius go with --att or --cbf"};
    }
    return;
  }
  plan.tissues = watershed::split_list(args.text("--tissue").value_or(""));
  if (plan.tissues.empty()) throw UsageError{"the timing source needs --tissue FILE[,FILE...]"};
  const auto thresholds =
      watershed::number_list(args.text("--" + kind + "-threshold"), "--" + kind + "-threshold");
  const auto percentiles =
      watershed::number_list(args.text("--" + kind + "-percentile"), "--" + kind + "-percentile");
  if (thresholds.empty() == percentiles.empty()) {
    throw UsageError{"give exactly one of --" + kind + "-threshold and --" + kind + "-percentile"};
  }
  const std::vector<double>& cuts = thresholds.empty() ? percentiles : thresholds;
  if (cuts.size() != 1 && cuts.size() != plan.tissues.size()) {
    throw UsageError{"give one --" + kind + (thresholds.empty() ? "-percentile" : "-threshold") +
                     " value, or one per --tissue file"};
  }
  plan.cuts.resize(plan.tissues.size());
  for (std::size_t k = 0; k < plan.tissues.size(); ++k) {
    const double cut = cuts[cuts.size() == 1 ? 0 : k];
    if (thresholds.empty()) {
      if (!(cut >= 0 && cut <= 100)) throw UsageError{"--" + kind + "-percentile: 0 to 100"};
      plan.cuts[k].percentile = cut;
    } else {
      plan.cuts[k].threshold = cut;
    }
  }
  plan.timing.min_volume_ml = args.number("--min-volume").value_or(0.0);
  if (plan.timing.min_volume_ml < 0) throw UsageError{"--min-volume: expected 0 or more"};
  const long connectivity = args.integer("--connectivity").value_or(26);
  if (connectivity != 6 && connectivity != 26) throw UsageError{"--connectivity: 6 or 26"};
  plan.timing.connectivity =
      connectivity == 6 ? perfq::Connectivity::Faces6 : perfq::Connectivity::Full26;
  plan.cov_radius = args.number("--cov-radius").value_or(6.0);
  if (!(plan.cov_radius > 0)) throw UsageError{"--cov-radius: expected a positive number"};
  plan.tissue_threshold = args.number("--tissue-threshold").value_or(0.5);
}

void parse_anatomy(const Args& args, Plan& plan) {
  if (auto c = args.text("--combine")) {
    if (*c != "union" && *c != "intersection") throw UsageError{"--combine: union or intersection"};
    if (!(plan.atlas() && plan.timed())) {
      throw UsageError{"--combine needs both a territory and a timing source"};
    }
    plan.combine = *c;
  }
  plan.brain = args.text("--brain");
  plan.wm = args.text("--wm");
  plan.gm = args.text("--gm");
  if (plan.gm && !plan.wm) throw UsageError{"--gm goes with --wm"};
  plan.wm_threshold = args.number("--wm-threshold").value_or(0.5);
  plan.gm_threshold = args.number("--gm-threshold").value_or(0.5);
  plan.ventricles = args.text("--ventricles");
  plan.caps.distance_mm = args.number("--cap-distance").value_or(plan.caps.distance_mm);
  plan.caps.horn_fraction = args.number("--horn-fraction").value_or(plan.caps.horn_fraction);
  if (plan.caps.distance_mm < 0) throw UsageError{"--cap-distance: expected 0 or more"};
  if (!(plan.caps.horn_fraction > 0 && plan.caps.horn_fraction <= 0.5)) {
    throw UsageError{"--horn-fraction: expected more than 0 and at most 0.5"};
  }
  plan.reference = args.text("--reference");
}

Plan parse(const std::vector<std::string>& raw) {
  const Args args(raw,
                  {"--output",
                   "--territories",
                   "--width",
                   "--groups",
                   "--names",
                   "--probabilities",
                   "--prob-threshold",
                   "--brain",
                   "--att",
                   "--cbf",
                   "--cov-radius",
                   "--tissue",
                   "--tissue-threshold",
                   "--att-threshold",
                   "--att-percentile",
                   "--cov-threshold",
                   "--cov-percentile",
                   "--min-volume",
                   "--connectivity",
                   "--combine",
                   "--wm",
                   "--wm-threshold",
                   "--gm",
                   "--gm-threshold",
                   "--ventricles",
                   "--cap-distance",
                   "--horn-fraction",
                   "--reference",
                   "--backend",
                   "--device",
                   "--threads"},
                  {"--overwrite"}, {{"-o", "--output"}});
  if (!args.positional().empty()) {
    throw UsageError{"unexpected argument '" + args.positional()[0] + "'"};
  }
  Plan plan;
  parse_output(args, plan);
  parse_atlas(args, plan);
  parse_timing(args, plan);
  if (!plan.atlas() && !plan.timed()) {
    throw UsageError{
        "give a territory source (--territories or --probabilities) and/or a "
        "timing source (--att or --cbf)"};
  }
  parse_anatomy(args, plan);
  plan.execution = parse_execution(args);
  plan.overwrite = args.flag("--overwrite");
  return plan;
}

/// The images of the sources, read first so that grid errors name them as the reference.
struct Sources {
  std::optional<perfq::Image<std::int32_t>> labels;
  perfq::Series<float> probabilities;
  std::optional<perfq::Image<float>> timing;
  std::vector<perfq::Mask> tissues;
  std::optional<perfq::Mask> brain;
};

Sources read_sources(const Plan& plan, watershed::Inputs& inputs) {
  Sources s;
  if (plan.territories) {
    s.labels = perfq::io::read_nifti_labels(*plan.territories);
    inputs.check(*plan.territories, s.labels->geometry());
  } else if (plan.probabilities.size() == 1) {
    s.probabilities = perfq::io::read_nifti(plan.probabilities[0]);
    inputs.check(plan.probabilities[0], s.probabilities.geometry());
  } else {
    for (std::size_t k = 0; k < plan.probabilities.size(); ++k) {
      const perfq::Image<float> one = inputs.map(plan.probabilities[k]);
      if (k == 0) s.probabilities = perfq::Series<float>(one.geometry(), plan.probabilities.size());
      std::copy(one.values().begin(), one.values().end(),
                s.probabilities.data() + k * one.voxel_count());
    }
  }
  if (plan.timed()) {
    s.timing = inputs.map(plan.att ? *plan.att : *plan.cbf);
    for (const auto& path : plan.tissues) {
      s.tissues.push_back(inputs.thresholded(path, plan.tissue_threshold));
    }
  }
  if (plan.brain) s.brain = inputs.mask(*plan.brain);
  return s;
}

/// Border zones from the atlas (labels or probabilities), recorded in `j["Atlas"]`.
perfq::BorderZones atlas_zones(const Plan& plan, Sources& s, Json& j) {
  std::optional<perfq::View<const std::uint8_t>> brain;
  if (s.brain) brain = s.brain->view();
  perfq::BorderZones zones;
  if (s.labels) {
    Json record = {
        {"Territories", *plan.territories}, {"Width", *plan.width}, {"WidthUnits", "mm"}};
    if (plan.groups) {
      const perfq::TerritoryGroups groups = watershed::read_groups(*plan.groups);
      s.labels = watershed::about(*plan.groups,
                                  [&] { return perfq::group_territories(*s.labels, groups); });
      record["Groups"] = *plan.groups;
    }
    zones = watershed::about(*plan.territories, [&] {
      return perfq::border_zones(*s.labels, brain, *plan.width, plan.execution);
    });
    record["Rule"] =
        "brain voxels with at least two territories within Width/2 (exact "
        "Euclidean distance, voxel centre to voxel centre)";
    j["Atlas"] = record;
  } else {
    zones = watershed::about(plan.probabilities[0], [&] {
      return perfq::border_zones_from_probabilities(s.probabilities.view(), brain,
                                                    plan.prob_threshold, {}, plan.execution);
    });
    j["Atlas"] = {{"Probabilities", plan.probabilities},
                  {"ProbabilityThreshold", plan.prob_threshold},
                  {"Rule",
                   "brain voxels whose two largest territory probabilities are both "
                   ">= ProbabilityThreshold; territory k is volume k (from 1)"}};
  }
  j["Atlas"]["TerritoryLabels"] = zones.territories;
  return zones;
}

/// Border zones from timing: each tissue with its own cut, then their union (in the brain).
perfq::Mask timing_zones(const Plan& plan, const Sources& s, Json& j) {
  const std::string path = plan.att ? *plan.att : *plan.cbf;
  Json record = {{"Map", path},
                 {"Kind", plan.att ? "ATT"
                                   : "local spatial CoV of CBF (sample SD / mean over the "
                                     "voxels of the same tissue within CovRadius mm)"}};
  if (plan.cbf) record["CovRadius"] = plan.cov_radius;
  record["TissueThreshold"] = plan.tissue_threshold;
  record["MinVolumeMl"] = plan.timing.min_volume_ml;
  record["Connectivity"] = static_cast<int>(plan.timing.connectivity);
  record["Rule"] =
      "in each tissue, the (brain) voxels whose value is >= that tissue's Cut, "
      "without the connected components smaller than MinVolumeMl; the union "
      "over tissues";
  std::optional<perfq::Mask> mask;
  Json tissues = Json::array();
  for (std::size_t k = 0; k < s.tissues.size(); ++k) {
    perfq::TimingOptions options = plan.timing;
    options.threshold = plan.cuts[k].threshold;
    options.percentile = plan.cuts[k].percentile;
    perfq::Image<float> value = *s.timing;
    if (plan.cbf) {
      value = watershed::about(path, [&] {
        return perfq::local_cov(*s.timing, s.tissues[k], plan.cov_radius, plan.execution);
      });
    }
    const perfq::TimingZones z = watershed::about(path, [&] {
      return perfq::timing_border_zones(value, s.tissues[k], options, plan.execution);
    });
    mask = mask ? perfq::combine_masks(*mask, z.mask, perfq::Combination::Union) : z.mask;
    tissues.push_back({{"Tissue", plan.tissues[k]},
                       {"Threshold", options.threshold ? Json(*options.threshold) : Json()},
                       {"Percentile", options.percentile ? Json(*options.percentile) : Json()},
                       {"Cut", z.cut},
                       {"TissueVoxels", z.tissue_voxels},
                       {"Voxels", watershed::count(z.mask)},
                       {"ComponentsKept", z.components_kept},
                       {"ComponentsDropped", z.components_dropped},
                       {"VoxelsDropped", z.voxels_dropped}});
  }
  if (s.brain) mask = perfq::combine_masks(*mask, *s.brain, perfq::Combination::Intersection);
  record["Tissues"] = tissues;
  j["Timing"] = record;
  return *mask;
}

/// The pairs image restricted to the final mask, and its legend in `j["Pairs"]`.
perfq::Image<std::int32_t> pairs_of(const perfq::BorderZones& zones, const perfq::Mask& mask,
                                    const std::map<std::int32_t, std::string>& names, Json& j) {
  perfq::Image<std::int32_t> pairs = zones.pairs;
  std::map<std::int32_t, std::size_t> per_pair;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (!mask[i]) pairs[i] = 0;
    if (pairs[i] != 0) ++per_pair[pairs[i]];
  }
  const double ml = watershed::voxel_ml(mask.geometry());
  Json legend = Json::object();
  for (const auto& [code, voxels] : per_pair) {
    const std::int32_t a = perfq::pair_first(code), b = perfq::pair_second(code);
    Json entry = {{"Territories", {a, b}}};
    auto name = [&](std::int32_t t) { return names.count(t) ? names.at(t) : std::string(); };
    if (!names.empty()) entry["Names"] = {name(a), name(b)};
    entry["Voxels"] = voxels;
    entry["VolumeMl"] = voxels * ml;
    legend[std::to_string(code)] = entry;
  }
  j["PairCodes"] =
      "a * 1000 + b for the two nearest (or most probable) territories a < b; 0 "
      "outside the mask or where only the timing source put a voxel";
  j["Pairs"] = legend;
  return pairs;
}

perfq::SplitZones split_of(const Plan& plan, watershed::Inputs& inputs, const perfq::Mask& mask,
                           Json& j) {
  const perfq::Mask wm = inputs.thresholded(*plan.wm, plan.wm_threshold);
  std::optional<perfq::Mask> gm;
  if (plan.gm) gm = inputs.thresholded(*plan.gm, plan.gm_threshold);
  std::optional<perfq::View<const std::uint8_t>> gm_view;
  if (gm) gm_view = gm->view();
  perfq::SplitZones split = perfq::split_internal_external(mask, wm, gm_view);
  j["Split"] = {{"WhiteMatter", *plan.wm},
                {"WhiteMatterThreshold", plan.wm_threshold},
                {"GreyMatter", plan.gm ? Json(*plan.gm) : Json()},
                {"GreyMatterThreshold", plan.gm ? Json(plan.gm_threshold) : Json()},
                {"Rule",
                 "internal = mask and WM; external = mask, not WM, and GM (all non-WM "
                 "without a GM image)"},
                {"InternalVoxels", watershed::count(split.internal)},
                {"ExternalVoxels", watershed::count(split.external)}};
  return split;
}

perfq::Image<std::uint8_t> caps_of(const Plan& plan, watershed::Inputs& inputs, const Sources& s,
                                   Json& j) {
  const perfq::Mask ventricles = inputs.mask(*plan.ventricles);
  std::optional<perfq::View<const std::uint8_t>> brain;
  if (s.brain) brain = s.brain->view();
  perfq::Image<std::uint8_t> caps = watershed::about(*plan.ventricles, [&] {
    return perfq::periventricular_caps(ventricles, brain, plan.caps, plan.execution);
  });
  std::size_t frontal = 0, occipital = 0;
  for (auto v : caps.values()) {
    frontal += v == perfq::kFrontalCap;
    occipital += v == perfq::kOccipitalCap;
  }
  j["PeriventricularCaps"] = {
      {"Ventricles", *plan.ventricles},
      {"DistanceMm", plan.caps.distance_mm},
      {"HornFraction", plan.caps.horn_fraction},
      {"Rule",
       "voxels within DistanceMm of the ventricles (not in them; in the brain mask when "
       "given) whose anterior-posterior position y (mm, LPS) is <= y0 + HornFraction "
       "(y1 - y0) (1, frontal) or >= y1 - HornFraction (y1 - y0) (2, occipital), "
       "[y0, y1] the ventricles' extent"},
      {"FrontalVoxels", frontal},
      {"OccipitalVoxels", occipital}};
  return caps;
}

}  // namespace

int run_watershed(const std::vector<std::string>& raw, std::ostream& out, std::ostream& err) {
  if (wants_help(raw)) {
    out << kWatershedHelp;
    return 0;
  }
  Plan plan = parse(raw);
  plan.execution.on_fallback = fallback_notes(err);
  // Asking for CUDA where there is none fails before any file is read.
  // (`auto` stays auto: the library may fall back to the CPU if the CUDA run fails.)
  perfq::Backend ran_on = perfq::resolve_backend(plan.execution);
  const auto say = plan.execution.on_fallback;
  plan.execution.on_fallback = [&ran_on, say](const std::string& message) {
    ran_on = perfq::Backend::Cpu;
    if (say) say(message);
  };
  {
    const fs::path folder = plan.out.has_parent_path() ? plan.out.parent_path() : fs::path(".");
    refuse_existing(folder, {plan.out.filename().string(), plan.stem + ".json"}, plan.overwrite);
  }

  watershed::Inputs inputs;
  Sources sources = read_sources(plan, inputs);
  Json j;
  j["Description"] = "Watershed (vascular border-zone) mask";
  j["GeneratedBy"] = {{"Name", "perfq"}, {"Version", perfq::version()}};
  j["Brain"] = plan.brain ? Json(*plan.brain) : Json();
  std::optional<perfq::BorderZones> zones;
  if (plan.atlas()) zones = atlas_zones(plan, sources, j);
  std::optional<perfq::Mask> timed;
  if (plan.timed()) timed = timing_zones(plan, sources, j);
  perfq::Mask mask = zones ? zones->mask : *timed;
  if (zones && timed) {
    mask = perfq::combine_masks(
        zones->mask, *timed,
        plan.combine == "union" ? perfq::Combination::Union : perfq::Combination::Intersection);
    j["Combination"] = plan.combine;
  }
  const std::size_t voxels = watershed::count(mask);
  const double volume = voxels * watershed::voxel_ml(mask.geometry());
  j["Voxels"] = voxels;
  j["VolumeMl"] = volume;
  std::optional<perfq::Image<std::int32_t>> pairs;
  if (zones) {
    std::map<std::int32_t, std::string> names;
    if (plan.names) names = watershed::read_names(*plan.names);
    pairs = pairs_of(*zones, mask, names, j);
  }
  std::optional<perfq::SplitZones> split;
  if (plan.wm) split = split_of(plan, inputs, mask, j);
  std::optional<perfq::Image<std::uint8_t>> caps;
  if (plan.ventricles) caps = caps_of(plan, inputs, sources, j);
  std::optional<double> dice;
  if (plan.reference) {
    dice = perfq::dice(mask, inputs.mask(*plan.reference));
    j["Reference"] = {{"Mask", *plan.reference}, {"Dice", *dice}};
  }

  // Outputs, staged and moved into place together.
  j["GeneratedBy"]["Backend"] = perfq::to_string(ran_on);  // after any fallback
  StagedOutputs outputs(plan.out.has_parent_path() ? plan.out.parent_path() : fs::path("."),
                        plan.overwrite);
  const std::string name = plan.stem + plan.extension;
  Json files = {{"Mask", name}};
  perfq::io::write_nifti(outputs.stage(name), mask.view());
  if (pairs) {
    perfq::io::write_nifti(outputs.stage(plan.sibling("pairs")), pairs->view());
    files["Pairs"] = plan.sibling("pairs");
  }
  if (split) {
    perfq::io::write_nifti(outputs.stage(plan.sibling("internal")), split->internal.view());
    perfq::io::write_nifti(outputs.stage(plan.sibling("external")), split->external.view());
    files["Internal"] = plan.sibling("internal");
    files["External"] = plan.sibling("external");
  }
  if (caps) {
    perfq::io::write_nifti(outputs.stage(plan.sibling("caps")), caps->view());
    files["Caps"] = plan.sibling("caps");
  }
  j["Files"] = files;
  perfq::io::write_text_atomic(outputs.stage(plan.stem + ".json"), j.dump(2) + "\n");
  const auto written = outputs.commit();

  out << "perfq watershed: " << voxels << " voxels (" << volume << " ml) in the border zones";
  if (dice) out << "; Dice vs reference " << *dice;
  out << "\n";
  for (const auto& path : written) out << "  wrote " << path << "\n";
  return 0;
}

}  // namespace perfq_cli
