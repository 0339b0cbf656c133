// perfq stats: a table of regional statistics (TSV) with a JSON sidecar describing it.
#include "cli_util.hpp"
#include "json_file.hpp"
#include "commands.hpp"

#include <perfq/errors.hpp>
#include <perfq/execution.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/stats.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace perfq_cli {
namespace {

using Json = nlohmann::ordered_json;

const char* const kStatsHelp =
    "usage: perfq stats <map.nii[.gz]> --labels <labels.nii[.gz]> -o <stats.tsv> [options]\n"
    "\n"
    "Regional statistics of a 3D map (e.g. CBF) in each region of an integer label image:\n"
    "voxels, finite count, volume, mean, SD (n - 1), median, percentiles (numpy's linear\n"
    "interpolation), min, max, CoV (SD/mean) and spatial CoV (100 SD/mean, %). NaN/Inf map\n"
    "values are counted (nonfinite) and left out, as are voxels whose fit failed, by the\n"
    "status map beside the map (column excluded). Writes one row per region to the TSV and\n"
    "describes every column and input in a JSON sidecar beside it (<stats>.json); both appear\n"
    "complete or not at all. Undefined values (an empty region, a zero mean) read n/a.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE       the table, a .tsv file (its folder is created if needed)\n"
    "  --overwrite             replace the table and sidecar if they exist (default: refuse)\n"
    "  --labels FILE           label image on the map's grid (integers, stored as int or\n"
    "                          float); label 0 is background. Without it, --mask is one region\n"
    "  --names FILE            region names: a TSV with columns index (or label) and name,\n"
    "                          e.g. a BIDS dseg.tsv; named labels absent from the image get\n"
    "                          an empty row\n"
    "  --mask FILE             ignore voxels outside this mask\n"
    "  --weights FILE          partial-volume weights in [0, 1]: adds weighted mean and SD\n"
    "  --baseline FILE         the map at baseline: adds the paired change (map - baseline)\n"
    "                          over voxels finite in both, and its percentage\n"
    "  --status FILE           per-voxel status codes of the map (perfq cbf's _fitstatus;\n"
    "                          default: the one beside a map perfq cbf wrote, when there)\n"
    "  --exclude-status LIST   status codes left out, comma-separated (default 1,2,3,4,5,6,8:\n"
    "                          no value, not converged or not identifiable; 0 and 7 kept)\n"
    "  --include-failed        use no status map: every voxel counts, whatever its status\n"
    "  --percentiles LIST      comma-separated, each in [0, 100] (default 5,25,75,95)\n"
    "  --include-background    report label 0 as a region too\n"
    "  --backend auto|cpu|cuda where to compute (default auto)\n"
    "  --device N, --threads N CUDA device (0); CPU threads (all)\n";

std::vector<std::string> split(const std::string& line, char separator) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  std::string field;
  while (std::getline(in, field, separator)) fields.push_back(field);
  if (!line.empty() && line.back() == separator) fields.emplace_back();
  return fields;
}

/// Region names from a TSV with columns `index` (or `label`) and `name`.
std::map<std::int32_t, std::string> read_names(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw perfq::InputError(path, "", "cannot read the file");
  std::string line;
  std::vector<std::vector<std::string>> rows;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) rows.push_back(split(line, '\t'));
  }
  if (rows.empty()) throw perfq::InputError(path, "", "empty; expected a header row");
  const auto& header = rows.front();
  auto column = [&](const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? std::string::npos : static_cast<std::size_t>(it - header.begin());
  };
  std::size_t index = column("index");
  const char* index_name = "index";
  if (index == std::string::npos) {
    index = column("label");
    index_name = "label";
  }
  const std::size_t name = column("name");
  if (index == std::string::npos || name == std::string::npos) {
    throw perfq::InputError(path, index == std::string::npos ? "index" : "name",
                            "required column not found (expected 'index' or 'label', and "
                            "'name', tab-separated)");
  }
  std::map<std::int32_t, std::string> names;
  for (std::size_t r = 1; r < rows.size(); ++r) {
    const auto& row = rows[r];
    const std::string where = "row " + std::to_string(r + 1);
    if (row.size() <= std::max(index, name)) {
      throw perfq::InputError(
          path, where, "has " + std::to_string(row.size()) + " fields, fewer than the header");
    }
    const std::optional<long long> value = perfq::io::parse_integer(row[index]);
    if (!value || *value < INT32_MIN || *value > INT32_MAX) {
      throw perfq::InputError(path, index_name,
                              where + ": '" + row[index] + "' is not an integer label");
    }
    if (!names.emplace(static_cast<std::int32_t>(*value), row[name]).second) {
      throw perfq::InputError(path, index_name, where + ": label " + row[index] + " listed twice");
    }
  }
  return names;
}

/// The map's units from its JSON sidecar (`Units`), when it has one; for the maps of a
/// multi-delay `perfq cbf` run that have no sidecar of their own (`<prefix>_att`,
/// `_att_se`, `_cbf_se`), from the `Outputs` record of `<prefix>_cbf.json`.
Json map_units(const std::string& map_path) {
  std::string stem = map_path;
  for (const char* ext : {".nii.gz", ".nii"}) {
    const std::string e(ext);
    if (stem.size() > e.size() && stem.compare(stem.size() - e.size(), e.size(), e) == 0) {
      stem.resize(stem.size() - e.size());
      break;
    }
  }
  const Json j = read_json_if_any(stem + ".json");
  if (j.is_object() && j.contains("Units") && j["Units"].is_string()) return j["Units"];
  if (!j.is_null()) return nullptr;
  for (const std::string output : {"att_se", "att", "cbf_se"}) {
    const std::string tail = "_" + output;
    if (stem.size() <= tail.size() || stem.compare(stem.size() - tail.size(), tail.size(), tail))
      continue;
    const Json cbf = read_json_if_any(stem.substr(0, stem.size() - tail.size()) + "_cbf.json");
    if (cbf.is_object() && cbf.contains("Outputs") && cbf["Outputs"].is_object() &&
        cbf["Outputs"].contains(output) && cbf["Outputs"][output].is_string()) {
      return cbf["Outputs"][output];
    }
    break;
  }
  return nullptr;
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.10g", v);
  return text;
}

std::string percentile_column(double p) { return "p" + number(p); }

/// Column names and their sidecar descriptions, in table order.
std::vector<std::pair<std::string, Json>> describe_columns(const perfq::RegionTable& t,
                                                           const Json& units) {
  const Json u = units.is_null() ? Json("units of the map") : units;
  std::vector<std::pair<std::string, Json>> c;
  auto add = [&](const std::string& name, const std::string& description, const Json& unit) {
    c.emplace_back(name, Json{{"Description", description}, {"Units", unit}});
  };
  add("label", "integer label of the region in the label image", "n/a");
  add("name", "region name from the names table (n/a when not listed)", "n/a");
  add("voxels", "voxels of the region (inside the mask, if any)", "voxels");
  add("count", "voxels with a finite map value: the sample of every statistic", "voxels");
  add("nonfinite", "voxels with a NaN or infinite map value, left out", "voxels");
  if (t.status_filtered) {
    std::string codes;
    for (std::uint8_t c : t.excluded_statuses)
      codes += (codes.empty() ? "" : ",") + std::to_string(c);
    add("excluded",
        "voxels left out for their status in the status map (codes " + codes +
            "; see ExcludedByStatus), counted in voxels but in no statistic",
        "voxels");
  }
  add("volume_ml", "voxels x voxel volume", "mL");
  add("mean", "mean of the finite values", u);
  add("sd", "sample standard deviation, sqrt(sum((x - mean)^2) / (count - 1)); 0 when count is 1",
      u);
  add("median", "median (percentile 50)", u);
  for (double p : t.percentiles) {
    add(percentile_column(p),
        "percentile " + number(p) +
            ": linear interpolation between order statistics at rank (count - 1) p / 100 "
            "(numpy's default)",
        u);
  }
  add("min", "smallest finite value", u);
  add("max", "largest finite value", u);
  add("cov", "coefficient of variation, sd / mean (n/a when mean is 0)", "ratio");
  add("scov",
      "spatial coefficient of variation as in the ASL literature, 100 x sd / mean: the same "
      "quantity as cov, in percent",
      "%");
  if (t.weighted) {
    add("weight_sum", "sum of the partial-volume weights w over the finite voxels", "voxels");
    add("pv_volume_ml", "weight_sum x voxel volume", "mL");
    add("effective_count", "(sum w)^2 / sum w^2", "voxels");
    add("weighted_mean", "sum(w x) / sum(w)", u);
    add("weighted_sd",
        "sqrt(sum(w (x - weighted_mean)^2) / (sum w - sum w^2 / sum w)), reliability weights", u);
  }
  if (t.paired) {
    add("paired_count", "voxels finite in both the map (follow-up) and the baseline", "voxels");
    add("baseline_mean", "mean baseline value over the paired voxels", u);
    add("followup_mean", "mean map (follow-up) value over the paired voxels", u);
    add("change_mean", "mean of the voxelwise difference d = follow-up - baseline", u);
    add("change_sd", "sample standard deviation of d", u);
    add("change_percent", "100 x change_mean / baseline_mean (n/a when baseline_mean is 0)", "%");
  }
  return c;
}

std::string table_text(const perfq::RegionTable& t,
                       const std::map<std::int32_t, std::string>& names,
                       const std::vector<std::pair<std::string, Json>>& columns) {
  std::ostringstream out;
  for (std::size_t k = 0; k < columns.size(); ++k) out << (k ? "\t" : "") << columns[k].first;
  out << "\n";
  for (const perfq::RegionStats& r : t.regions) {
    std::vector<std::string> f;
    auto value = [&](bool defined, double v) { f.push_back(defined ? number(v) : "n/a"); };
    const auto name = names.find(r.label);
    f.push_back(std::to_string(r.label));
    f.push_back(name != names.end() ? name->second : "n/a");
    f.push_back(std::to_string(r.voxels));
    f.push_back(std::to_string(r.count));
    f.push_back(std::to_string(r.nonfinite));
    if (t.status_filtered) f.push_back(std::to_string(r.excluded));
    f.push_back(number(r.volume_ml));
    const bool v = r.has_values();
    value(v, r.mean);
    value(v, r.sd);
    value(v, r.median);
    for (double p : r.percentiles) value(v, p);
    value(v, r.min);
    value(v, r.max);
    value(r.cov_defined, r.cov);
    value(r.cov_defined, r.scov);
    if (t.weighted) {
      const perfq::WeightedStats& w = r.weighted;
      f.push_back(number(w.weight_sum));
      f.push_back(number(w.volume_ml));
      value(w.defined, w.effective_count);
      value(w.defined, w.mean);
      value(w.defined, w.sd);
    }
    if (t.paired) {
      const perfq::PairedChange& c = r.change;
      f.push_back(std::to_string(c.count));
      value(c.defined, c.baseline_mean);
      value(c.defined, c.followup_mean);
      value(c.defined, c.mean);
      value(c.defined, c.sd);
      value(c.percent_defined, c.percent);
    }
    for (std::size_t k = 0; k < f.size(); ++k) out << (k ? "\t" : "") << f[k];
    out << "\n";
  }
  return out.str();
}

}  // namespace

int run_stats(const std::vector<std::string>& raw, std::ostream& out, std::ostream& err) {
  if (wants_help(raw)) {
    out << kStatsHelp;
    return 0;
  }
  const Args args(
      raw,
      {"--output", "--labels", "--names", "--mask", "--weights", "--baseline", "--percentiles",
       "--status", "--exclude-status", "--backend", "--device", "--threads"},
      {"--include-background", "--overwrite", "--include-failed"}, {{"-o", "--output"}});
  if (args.positional().size() != 1) {
    throw UsageError{"expected exactly one map, got " + std::to_string(args.positional().size())};
  }
  const auto out_path = args.text("--output");
  if (!out_path) throw UsageError{"-o/--output is required"};
  const fs::path table_path(*out_path);
  if (table_path.extension() != ".tsv" || table_path.stem().empty()) {
    throw UsageError{"-o/--output must name a .tsv file, got '" + *out_path + "'"};
  }
  const auto labels_path = args.text("--labels"), mask_path = args.text("--mask");
  if (!labels_path && !mask_path) throw UsageError{"--labels (or --mask alone) is required"};

  perfq::StatsOptions options;
  options.include_background = args.flag("--include-background");
  if (auto list = args.text("--percentiles")) {
    options.percentiles.clear();
    if (!list->empty()) {
      for (const std::string& item : split(*list, ',')) {
        const double p = Args::parse_number(item, "--percentiles");
        if (p < 0.0 || p > 100.0)
          throw UsageError{"--percentiles: " + item + " is not in [0, 100]"};
        if (std::find(options.percentiles.begin(), options.percentiles.end(), p) !=
            options.percentiles.end()) {
          throw UsageError{"--percentiles: " + item + " given twice"};
        }
        options.percentiles.push_back(p);
      }
    }
  }
  if (args.flag("--include-failed") && (args.text("--status") || args.text("--exclude-status"))) {
    throw UsageError{"--include-failed uses no status map: not with --status or --exclude-status"};
  }
  if (auto list = args.text("--exclude-status")) {
    options.exclude_statuses.clear();
    for (const std::string& item : split(*list, ',')) {
      const double code = Args::parse_number(item, "--exclude-status");
      if (!(code >= 0 && code <= 255) || code != std::floor(code)) {
        throw UsageError{"--exclude-status: " + item + " is not a status code (0-255)"};
      }
      options.exclude_statuses.push_back(static_cast<std::uint8_t>(code));
    }
  }
  perfq::Execution execution = parse_execution(args);
  execution.on_fallback = fallback_notes(err);
  perfq::resolve_backend(execution);  // no CUDA: fail before any work (auto stays auto)
  refuse_existing(table_path.has_parent_path() ? table_path.parent_path() : fs::path("."),
                  {table_path.filename().string(), table_path.stem().string() + ".json"},
                  args.flag("--overwrite"));

  // Inputs, each checked against the map's grid.
  const std::string map_path = args.positional()[0];
  const perfq::Image<float> map = perfq::io::read_nifti_3d(map_path);
  const perfq::Geometry& grid = map.geometry();
  perfq::Image<std::int32_t> labels;
  std::optional<perfq::Mask> mask;
  if (mask_path) {
    mask = perfq::io::read_nifti_mask(*mask_path);
    perfq::io::require_same_grid(*mask_path, mask->geometry(), grid, "the map " + map_path);
    options.mask = mask->view();
  }
  if (labels_path) {
    labels = perfq::io::read_nifti_labels(*labels_path);
    perfq::io::require_same_grid(*labels_path, labels.geometry(), grid, "the map " + map_path);
  } else {  // the mask alone is the one region
    labels = perfq::Image<std::int32_t>(grid, 1, 0);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = (*mask)[i] ? 1 : 0;
  }
  std::optional<perfq::Image<float>> baseline, weights;
  const auto baseline_path = args.text("--baseline"), weights_path = args.text("--weights");
  if (baseline_path) {
    baseline = perfq::io::read_nifti_3d(*baseline_path, &grid, "the map " + map_path);
    options.baseline = baseline->view();
  }
  if (weights_path) {
    weights = perfq::io::read_nifti_3d(*weights_path, &grid, "the map " + map_path);
    options.weights = weights->view();
  }
  // The status map: given, else the one beside a map perfq cbf wrote (none with
  // --include-failed).
  std::optional<std::string> status_path = args.text("--status");
  const bool status_found = !status_path && !args.flag("--include-failed");
  if (status_found) status_path = perfq::io::find_status_map(map_path);
  std::optional<perfq::Volume<std::uint8_t>> status;
  if (status_path) {
    status = perfq::io::read_status_map(*status_path);
    perfq::io::require_same_grid(*status_path, status->geometry(), grid, "the map " + map_path);
    options.status = status->view();
  }
  std::map<std::int32_t, std::string> names;
  const auto names_path = args.text("--names");
  if (names_path) names = read_names(*names_path);
  if (!labels_path) names[1] = "mask";

  // Regions: every label present, and every named label; checks that name the file at fault.
  std::set<std::int32_t> regions;
  bool finite = false;
  std::int32_t last = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if ((mask && (*mask)[i] == 0) || (labels[i] == 0 && !options.include_background)) continue;
    if (regions.empty() || labels[i] != last) regions.insert(last = labels[i]);
    finite = finite || std::isfinite(map[i]);
    if (weights && std::isfinite(map[i]) && !((*weights)[i] >= 0.0f && (*weights)[i] <= 1.0f)) {
      const auto& d = grid.dims;
      throw perfq::InputError(
          *weights_path, "",
          "voxel (" + std::to_string(i % d[0]) + ", " + std::to_string(i / d[0] % d[1]) + ", " +
              std::to_string(i / (d[0] * d[1])) + ") inside a region has " + number((*weights)[i]) +
              "; partial-volume weights must lie in [0, 1]");
    }
  }
  if (regions.empty()) {
    throw perfq::InputError(labels_path ? *labels_path : *mask_path, "",
                            "no region: every voxel is background (0)" +
                                std::string(mask && labels_path ? " or outside the mask" : ""));
  }
  if (!finite) {
    throw perfq::InputError(map_path, "",
                            "no finite value inside any region (every value is NaN or infinite)");
  }
  for (const auto& [label, name] : names) {
    if (label != 0 || options.include_background) regions.insert(label);
  }
  options.labels.assign(regions.begin(), regions.end());

  const perfq::RegionTable table = perfq::region_stats(map, labels.view(), options, execution);

  const Json units = map_units(map_path);
  const auto columns = describe_columns(table, units);
  Json sidecar;
  for (const auto& [name, description] : columns) sidecar[name] = description;
  auto path_or_null = [](const std::optional<std::string>& p) { return p ? Json(*p) : Json(); };
  sidecar["Inputs"] = {{"Map", map_path},
                       {"MapUnits", units},
                       {"Labels", path_or_null(labels_path)},
                       {"Names", path_or_null(names_path)},
                       {"Mask", path_or_null(mask_path)},
                       {"Weights", path_or_null(weights_path)},
                       {"Baseline", path_or_null(baseline_path)},
                       {"Percentiles", table.percentiles},
                       {"IncludeBackground", options.include_background},
                       {"VoxelVolume_mL", table.voxel_volume_ml},
                       {"Dimensions", grid.dims},
                       {"Spacing_mm", grid.spacing}};
  if (table.status_filtered) {
    Json per_region = Json::object();
    std::size_t total = 0;
    for (const perfq::RegionStats& r : table.regions) {
      per_region[std::to_string(r.label)] = r.excluded;
      total += r.excluded;
    }
    sidecar["ExcludedByStatus"] = {
        {"StatusMap", *status_path},
        {"StatusMapSource", status_found ? "found beside the map" : "--status"},
        {"ExcludedCodes", table.excluded_statuses},
        {"Why",
         "voxels whose quantification gave no value (1 outside the mask, 2 M0 <= 0, 3 "
         "non-finite input, 4 non-finite result, 8 M0 too low: maps 0 there), did not "
         "converge (5) or could not identify its parameters (6: e.g. ATT 0 in CSF) are no "
         "measurement of the region; 7 (ATT at a bound of its range) is kept: its values are "
         "the fit's best within the range. --include-failed counts every voxel"},
        {"VoxelsPerRegion", per_region},
        {"Voxels", total}};
  } else {
    sidecar["ExcludedByStatus"] = {
        {"StatusMap", nullptr},
        {"Why", args.flag("--include-failed")
                    ? "--include-failed: every voxel counts, whatever its status"
                    : "no status map given or found beside the map"}};
  }
  sidecar["GeneratedBy"] = {{"Name", "perfq stats"},
                            {"Version", perfq::version()},
                            {"Backend", perfq::to_string(table.backend)}};

  const fs::path folder = table_path.has_parent_path() ? table_path.parent_path() : fs::path(".");
  const std::string json_name = table_path.stem().string() + ".json";
  StagedOutputs outputs(folder, args.flag("--overwrite"));
  perfq::io::write_text_atomic(outputs.stage(table_path.filename().string()),
                               table_text(table, names, columns));
  perfq::io::write_text_atomic(outputs.stage(json_name), sidecar.dump(2) + "\n");
  const auto written = outputs.commit();

  out << "perfq stats: " << map_path << ": " << table.regions.size() << " region(s) on "
            << perfq::to_string(table.backend) << "\n";
  for (const auto& path : written) out << "  wrote " << path << "\n";
  return 0;
}

}  // namespace perfq_cli
