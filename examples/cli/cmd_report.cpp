// perfq report: the visual report of one quantified series. An HTML page (self-contained:
// relative links, inline CSS, no script, nothing from the network) with PNG montages of CBF,
// ATT and the border zones over CBF, the acquisition parameters and constants recorded in the
// CBF sidecar, the fit status and the regional statistics tables found beside the map.
#include "cli_util.hpp"
#include "commands.hpp"
#include "json_file.hpp"
#include "report_figures.hpp"
#include "report_html.hpp"
#include "report_registration.hpp"
#include "report_stats.hpp"

#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/text.hpp>
#include <perfq/version.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace perfq_cli {
namespace {

using report::Cell;
using report::Field;
using report::field_table;
using report::find_key;
using report::find_stats;
using report::html_escape;
using report::Json;
using report::json_text;
using report::kStyle;
using report::read_json;
using report::read_stats;
using report::stats_html;
using report::StatsTable;

const char* const kReportHelp =
    "usage: perfq report <dir/prefix_cbf.nii[.gz] | dir/prefix> [options]\n"
    "\n"
    "The visual report of a series quantified by perfq cbf: <prefix>_report.html and, in\n"
    "figures/ beside it, PNG montages of 12 axial slices (radiological convention: the\n"
    "patient's right on the left, anterior up) with colour bars:\n"
    "  <prefix>_desc-cbf_montage.png         CBF, viridis, 0-100 ml/100 g/min\n"
    "  <prefix>_desc-att_montage.png         ATT, plasma, 0.5-2.5 s (multi-delay series)\n"
    "  <prefix>_desc-borderzone_montage.png  border-zone outline (magenta) over CBF\n"
    "Read from the map's folder, by perfq's naming: <prefix>_cbf.json (required: the\n"
    "acquisition parameters and constants used), _fitstatus, _att, _cbf_se, _att_se,\n"
    "_desc-borderzone_mask (+ .json) and every <prefix>[_desc-X]_stats.tsv (+ .json).\n"
    "Voxels with fit status 1-4 or 8 (outside the mask, M0 <= 0, non-finite, M0 too low)\n"
    "are drawn grey.\n"
    "The page loads nothing from the network. Outputs appear complete or not at all; the\n"
    "HTML is written last. Existing report files are kept unless --overwrite.\n"
    "\n"
    "options:\n"
    "  -o, --output DIR      folder of the report (default: the map's folder)\n"
    "  --borderzone FILE     border-zone mask to outline (default: found by name)\n"
    "  --stats FILES         comma-separated statistics tables (default: found by name)\n"
    "  --slices N            axial slices per montage, 1-60 (default 12)\n"
    "  --cbf-range LO,HI     CBF colour range, ml/100 g/min (default 0,100)\n"
    "  --att-range LO,HI     ATT colour range, s (default 0.5,2.5)\n"
    "  --overwrite           replace an existing report (default: refuse, exit 1)\n";

/// `dir/name.nii.gz`, else `dir/name.nii`, if either exists; `.nii` first when `nii_first`
/// (the CBF map named is a `.nii`: its run's other images are too, whatever else lies there).
std::optional<fs::path> find_image(const fs::path& dir, const std::string& name,
                                   bool nii_first = false) {
  const std::vector<std::string> order = nii_first ? std::vector<std::string>{".nii", ".nii.gz"}
                                                   : std::vector<std::string>{".nii.gz", ".nii"};
  for (const std::string& ext : order) {
    const fs::path p = dir / (name + ext);
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p;
  }
  return std::nullopt;
}

struct Options {
  fs::path folder;     ///< where the series' files are
  std::string prefix;  ///< e.g. sub-01_ses-1
  fs::path out_dir;
  std::optional<fs::path> borderzone;
  std::optional<std::vector<fs::path>> stats;
  std::size_t slices = 12;
  double cbf_low = 0, cbf_high = 100, att_low = 0.5, att_high = 2.5;
  bool overwrite = false;
  bool nii_first = false;  ///< the CBF map named is uncompressed (perfq cbf --uncompressed)
};

std::pair<double, double> parse_range(const Args& args, const std::string& name, double low,
                                      double high) {
  const auto text = args.text(name);
  if (!text) return {low, high};
  const std::size_t comma = text->find(',');
  if (comma == std::string::npos) throw UsageError{name + ": expected LO,HI, got '" + *text + "'"};
  const double lo = Args::parse_number(text->substr(0, comma), name);
  const double hi = Args::parse_number(text->substr(comma + 1), name);
  if (!(hi > lo)) throw UsageError{name + ": expected LO < HI, got '" + *text + "'"};
  return {lo, hi};
}

Options parse_options(const std::vector<std::string>& raw) {
  const Args args(raw,
                  {"--output", "--borderzone", "--stats", "--slices", "--cbf-range", "--att-range"},
                  {"--overwrite"}, {{"-o", "--output"}});
  if (args.positional().size() != 1) {
    throw UsageError{"expected one CBF map (<prefix>_cbf.nii[.gz]) or series prefix, got " +
                     std::to_string(args.positional().size()) + " arguments"};
  }
  Options o;
  const fs::path input(args.positional()[0]);
  std::string name = input.filename().string();
  if (ends_with(name, "_cbf.nii.gz")) {
    name.resize(name.size() - 11);
  } else if (ends_with(name, "_cbf.nii")) {
    name.resize(name.size() - 8);
    o.nii_first = true;
  } else if (ends_with(name, ".nii") || ends_with(name, ".nii.gz") || ends_with(name, ".json")) {
    throw UsageError{"expected the CBF map <prefix>_cbf.nii[.gz] or a series prefix, got '" +
                     input.string() + "'"};
  }
  if (name.empty()) throw UsageError{"'" + input.string() + "': no series prefix"};
  o.prefix = name;
  o.folder = input.has_parent_path() ? input.parent_path() : fs::path(".");
  o.out_dir = args.text("--output") ? fs::path(*args.text("--output")) : o.folder;
  o.overwrite = args.flag("--overwrite");
  if (auto b = args.text("--borderzone")) o.borderzone = fs::path(*b);
  if (auto s = args.text("--stats")) {
    std::vector<fs::path> files;
    std::stringstream in(*s);
    std::string item;
    while (std::getline(in, item, ',')) {
      if (!item.empty()) files.emplace_back(item);
    }
    if (files.empty()) throw UsageError{"--stats: expected one or more files"};
    o.stats = files;
  }
  if (auto n = args.integer("--slices")) {
    if (*n < 1 || *n > 60) throw UsageError{"--slices: expected 1 to 60"};
    o.slices = static_cast<std::size_t>(*n);
  }
  std::tie(o.cbf_low, o.cbf_high) = parse_range(args, "--cbf-range", 0, 100);
  std::tie(o.att_low, o.att_high) = parse_range(args, "--att-range", 0.5, 2.5);
  return o;
}

/// Linear-interpolation quantile (numpy's default) of sorted values.
double quantile(const std::vector<float>& sorted, double q) {
  if (sorted.empty()) return std::nan("");
  const double rank = q * (sorted.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(rank));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (rank - lo) * (double(sorted[hi]) - sorted[lo]);
}

/// "52.1 (45.3-60.2)": median and interquartile range of `map` over `where`.
std::string median_iqr(const perfq::Image<float>& map, const std::vector<std::uint8_t>& where) {
  std::vector<float> v;
  for (std::size_t i = 0; i < map.size(); ++i) {
    if (where[i] && std::isfinite(map[i])) v.push_back(map[i]);
  }
  if (v.empty()) return "n/a";
  std::sort(v.begin(), v.end());
  return report::format_number(quantile(v, 0.5)) + " (" + report::format_number(quantile(v, 0.25)) +
         "&ndash;" + report::format_number(quantile(v, 0.75)) + ")";
}

/// The quality indices of perfq cbf (`<prefix>_desc-qualitycontrol_cbf.tsv` and its sidecar),
/// when the table is there: one row per index, its value and units, or why it is n/a.
void quality_section(std::ostream& h, const fs::path& table) {
  std::error_code ec;
  if (!fs::is_regular_file(table, ec)) return;
  std::ifstream in(table);
  std::string header, row;
  if (!std::getline(in, header) || !std::getline(in, row)) return;
  const Json sidecar = read_json_if_any(table.parent_path() / (table.stem().string() + ".json"));
  auto split = [](const std::string& line) {
    std::vector<std::string> f;
    std::stringstream fields(line);
    for (std::string x; std::getline(fields, x, '\t');) f.push_back(x);
    return f;
  };
  const auto names = split(header), values = split(row);
  if (names.size() != values.size()) return;
  std::vector<std::vector<Cell>> rows;
  for (std::size_t k = 0; k < names.size(); ++k) {
    std::string about, units, value = html_escape(values[k]);
    if (const Json* d = find_key(sidecar, {names[k], "Description"})) about = json_text(*d);
    if (const Json* u = find_key(sidecar, {names[k], "Units"})) units = json_text(*u);
    if (values[k] == "n/a") {
      if (const Json* why = find_key(sidecar, {"NotDefined", names[k]})) {
        value = "n/a &mdash; " + html_escape(json_text(*why));
      }
    } else if (auto number = perfq::io::parse_number(values[k])) {
      value =
          report::format_number(*number) +
          (units.empty() || units == "voxels" || units == "fraction" ? ""
                                                                     : " " + html_escape(units));
    }
    rows.push_back(
        {{"<code>" + html_escape(names[k]) + "</code>"}, {value, true}, {html_escape(about)}});
  }
  h << "<h3>Quality indices</h3>\n"
    << report::html_table({"Index", "Value", "Definition"}, rows, "",
                          "From " + table.filename().string() +
                              " (definitions and references in its .json sidecar)");
}

std::string slice_list(const std::vector<std::size_t>& slices) {
  std::string out;
  for (std::size_t s : slices) out += (out.empty() ? "" : ", ") + std::to_string(s);
  return out;
}

}  // namespace

int run_report(const std::vector<std::string>& raw, std::ostream& out, std::ostream& err) {
  if (wants_help(raw)) {
    out << kReportHelp;
    return 0;
  }
  const Options o = parse_options(raw);
  const std::string& px = o.prefix;
  // Before any work: the page marks a complete report (its figures are checked at commit).
  refuse_existing(o.out_dir, {px + "_report.html"}, o.overwrite);
  const auto cbf_path = find_image(o.folder, px + "_cbf", o.nii_first);
  if (!cbf_path) {
    throw perfq::InputError((o.folder / (px + "_cbf.nii.gz")).string(), "",
                            "CBF map not found (nor .nii)");
  }
  const fs::path sidecar_path = o.folder / (px + "_cbf.json");
  std::error_code ec;
  if (!fs::is_regular_file(sidecar_path, ec)) {
    throw perfq::InputError(sidecar_path.string(), "",
                            "the CBF map's sidecar is required (acquisition parameters and "
                            "constants): not found");
  }
  const Json sidecar = read_json(sidecar_path);

  const perfq::Image<float> cbf = perfq::io::read_nifti_3d(cbf_path->string());
  const perfq::Geometry& grid = cbf.geometry();
  auto optional_map = [&](const std::string& suffix) -> std::optional<perfq::Image<float>> {
    if (auto p = find_image(o.folder, px + suffix, o.nii_first))
      return perfq::io::read_nifti_3d(p->string(), &grid, cbf_path->string());
    return std::nullopt;
  };
  const auto status = optional_map("_fitstatus");
  const auto att = optional_map("_att");
  const auto cbf_se = optional_map("_cbf_se");
  const auto att_se = optional_map("_att_se");

  std::optional<fs::path> zone_path = o.borderzone;
  if (!zone_path) zone_path = find_image(o.folder, px + "_desc-borderzone_mask", o.nii_first);
  std::optional<perfq::Mask> zones;
  if (zone_path) {
    zones = perfq::io::read_nifti_mask(zone_path->string());
    perfq::io::require_same_grid(zone_path->string(), zones->geometry(), grid, cbf_path->string());
  }
  std::optional<Json> zone_sidecar;
  std::string zone_sidecar_name;
  if (zone_path) {
    std::string stem = zone_path->filename().string();
    stem = stem.substr(0, stem.find(".nii"));
    const fs::path j = zone_path->parent_path() / (stem + ".json");
    if (fs::is_regular_file(j, ec)) {
      zone_sidecar = read_json(j);
      zone_sidecar_name = j.filename().string();
    }
  }
  std::vector<StatsTable> tables;
  for (const fs::path& p : o.stats ? *o.stats : find_stats(o.folder, px)) {
    tables.push_back(read_stats(p, px));
  }

  // Shown: quantified voxels (fit status 0, or 5-7 whose values are kept); fitted: status 0.
  // Not quantified: 1-4 and 8 (M0 too low), whose values are 0.
  const std::size_t n = cbf.size();
  std::vector<std::uint8_t> shown(n, 0), fitted(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const bool finite = std::isfinite(cbf[i]);
    if (status) {
      const float s = (*status)[i];
      shown[i] = finite && !((s >= 1 && s <= 4) || s == 8);
      fitted[i] = finite && s == 0;
    } else {
      shown[i] = fitted[i] = finite && cbf[i] != 0;
    }
  }
  if (std::find(shown.begin(), shown.end(), 1) == shown.end()) {
    throw perfq::InputError(cbf_path->string(), "",
                            "no quantified voxel to show (every voxel non-finite" +
                                std::string(status ? " or with fit status 1-4 or 8)" : " or 0)"));
  }

  // ---- figures --------------------------------------------------------------------------
  const report::MontageLayout layout = report::plan_montage(grid, shown, o.slices);
  const std::string cbf_units = sidecar.contains("Units") && sidecar["Units"].is_string()
                                    ? sidecar["Units"].get<std::string>()
                                    : "mL/100g/min";
  report::ColourScale cbf_scale{report::ColourMap::Viridis,
                                o.cbf_low,
                                o.cbf_high,
                                "CBF",
                                "ml/100 g/min",
                                report::nice_ticks(o.cbf_low, o.cbf_high)};
  report::ColourScale att_scale{report::ColourMap::Plasma,
                                o.att_low,
                                o.att_high,
                                "ATT",
                                "s",
                                report::nice_ticks(o.att_low, o.att_high)};

  const fs::path figures_dir = o.out_dir / "figures";
  StagedOutputs figure_files(figures_dir, o.overwrite);
  struct Figure {
    std::string file, alt, caption;
    int width, height;
  };
  std::vector<Figure> figures;
  auto montage = [&](const std::string& desc, const perfq::Image<float>& values,
                     const report::ColourScale& scale, const std::uint8_t* outline,
                     const std::string& alt, const std::string& caption) {
    report::MontageContent content;
    content.values = values.data();
    content.shown = shown.data();
    content.outline = outline;
    content.outline_label = outline ? "border zone" : "";
    content.scale = scale;
    const report::Canvas canvas = report::render_montage(layout, content);
    const std::string file = px + "_desc-" + desc + "_montage.png";
    report::write_png(figure_files.stage(file), canvas);
    figures.push_back({file, alt, caption, canvas.width(), canvas.height()});
  };
  const std::string slices_text = std::to_string(layout.slices.size()) + " axial slices (" +
                                  slice_list(layout.slices) + " of " +
                                  std::to_string(grid.dims[layout.plane.slice_axis]) + ")";
  auto range_text = [](double lo, double hi, const std::string& units) {
    return report::tick_label(lo) + "&ndash;" + report::tick_label(hi) + " " + units;
  };
  montage("cbf", cbf, cbf_scale, nullptr, "CBF montage",
          "Cerebral blood flow, " + slices_text + "; viridis colour map, " +
              range_text(o.cbf_low, o.cbf_high, "ml/100 g/min") + ".");
  if (att) {
    montage("att", *att, att_scale, nullptr, "ATT montage",
            "Arterial transit time, same slices; plasma colour map, " +
                range_text(o.att_low, o.att_high, "s") + ".");
  }
  if (zones) {
    montage("borderzone", cbf, cbf_scale, zones->data(), "Border zones over CBF",
            "Border zones (" + html_escape(zone_path->filename().string()) +
                ") outlined in magenta over CBF, same slices and colours.");
  }

  // The registration to the T1w (perfq bids --anat-derivatives), when there is one.
  const std::optional<RegistrationSection> registration =
      registration_section(o.folder, px, figure_files);

  // ---- page -----------------------------------------------------------------------------
  const fs::path html_dir = o.out_dir;
  auto link_to = [&](const fs::path& target) {
    const std::string rel = fs::absolute(target)
                                .lexically_normal()
                                .lexically_proximate(fs::absolute(html_dir).lexically_normal())
                                .generic_string();
    return "<a href=\"" + html_escape(report::url_path(rel)) + "\">" +
           html_escape(target.filename().string()) + "</a>";
  };
  std::string title = px;
  std::replace(title.begin(), title.end(), '_', ' ');

  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    << "<title>perfq report: " << html_escape(title) << "</title>\n<style>" << kStyle
    << "</style>\n</head>\n<body>\n<main>\n";
  h << "<h1>Perfusion report: " << html_escape(title) << "</h1>\n";
  std::string generated = "perfq";
  if (const Json* v = find_key(sidecar, {"GeneratedBy", "Version"})) {
    generated += " " + json_text(*v);
  }
  if (const Json* b = find_key(sidecar, {"GeneratedBy", "Backend"})) {
    generated += ", " + json_text(*b) + " backend";
  }
  h << "<p class=\"meta\">CBF map " << link_to(*cbf_path) << " (quantified by "
    << html_escape(generated) << "); report by perfq " << html_escape(perfq::version())
    << ".</p>\n";
  h << "<nav><a href=\"#summary\">Summary</a><a href=\"#maps\">Maps</a>"
    << (registration ? "<a href=\"#registration\">Registration</a>" : "")
    << "<a href=\"#acquisition\">Acquisition</a><a href=\"#constants\">Constants</a>"
    << "<a href=\"#statistics\">Regional statistics</a><a href=\"#notes\">Notes</a></nav>\n";

  // Summary, led by the quantification's warnings.
  h << "<section id=\"summary\">\n<h2>Summary</h2>\n";
  if (const Json* warnings = find_key(sidecar, {"Warnings"}); warnings && warnings->is_array()) {
    for (const auto& w : *warnings) {
      h << "<p class=\"warning\"><strong>Warning:</strong> " << html_escape(json_text(w))
        << "</p>\n";
    }
  }
  {
    const std::size_t n_fitted = std::count(fitted.begin(), fitted.end(), 1);
    const std::size_t n_shown = std::count(shown.begin(), shown.end(), 1);
    std::vector<std::vector<Cell>> rows;
    auto row = [&](const std::string& label, const std::string& value_html, bool numeric) {
      rows.push_back({{html_escape(label)}, {value_html, numeric}});
    };
    if (const Json* m = find_key(sidecar, {"Model"}))
      row("Model", html_escape(json_text(*m)), false);
    row("Grid",
        std::to_string(grid.dims[0]) + " &times; " + std::to_string(grid.dims[1]) + " &times; " +
            std::to_string(grid.dims[2]) + " voxels of " + report::format_number(grid.spacing[0]) +
            " &times; " + report::format_number(grid.spacing[1]) + " &times; " +
            report::format_number(grid.spacing[2]) + " mm",
        false);
    row(status ? "Voxels fitted (status 0)" : "Voxels with CBF",
        std::to_string(n_fitted) + (status ? " (" + std::to_string(n_shown) + " shown)" : ""),
        true);
    const std::string note = status ? ", fitted voxels" : "";
    row("CBF, median (IQR)" + note, median_iqr(cbf, fitted) + " ml/100 g/min", true);
    if (att) row("ATT, median (IQR)" + note, median_iqr(*att, fitted) + " s", true);
    if (cbf_se)
      row("CBF standard error, median (IQR)", median_iqr(*cbf_se, fitted) + " ml/100 g/min", true);
    if (att_se) row("ATT standard error, median (IQR)", median_iqr(*att_se, fitted) + " s", true);
    // The input checks of perfq cbf, as recorded.
    if (const Json* sign = find_key(sidecar, {"DeltaMSignCheck"}); sign && sign->is_object()) {
      const Json* fraction = find_key(*sign, {"NegativeFraction"});
      const Json* voxels = find_key(*sign, {"Voxels"});
      const Json* inverted = find_key(*sign, {"Inverted"});
      if (fraction && fraction->is_number() && voxels && inverted && inverted->is_boolean()) {
        row("Voxels with ΔM < 0 (control/label check)",
            report::format_number(100.0 * fraction->get<double>()) + " % of " +
                html_escape(json_text(*voxels)) + " brain voxels" +
                (inverted->get<bool>() ? " &mdash; <strong>swapped?</strong>" : ""),
            true);
      }
    }
    if (const Json* range = find_key(sidecar, {"CbfRangeCheck", "MedianCBF"});
        range && range->is_number()) {
      const Json* plausible = find_key(sidecar, {"CbfRangeCheck", "Plausible"});
      row("CBF in the brain region, median",
          report::format_number(range->get<double>()) + " ml/100 g/min" +
              (plausible && plausible->is_boolean() && !plausible->get<bool>()
                   ? " &mdash; <strong>implausible</strong>"
                   : ""),
          true);
    }
    if (zones) {
      std::size_t in_zone = 0, in_zone_fitted = 0;
      for (std::size_t i = 0; i < n; ++i) {
        in_zone += (*zones)[i] != 0;
        in_zone_fitted += (*zones)[i] != 0 && fitted[i];
      }
      const double ml = in_zone * grid.spacing[0] * grid.spacing[1] * grid.spacing[2] / 1000.0;
      row("Border zones",
          std::to_string(in_zone) + " voxels, " + report::format_number(ml) + " ml (" +
              std::to_string(in_zone_fitted) + " fitted)",
          true);
      std::vector<std::uint8_t> zone_fitted(n, 0);
      for (std::size_t i = 0; i < n; ++i) zone_fitted[i] = (*zones)[i] != 0 && fitted[i];
      row("CBF in the border zones, median (IQR)", median_iqr(cbf, zone_fitted) + " ml/100 g/min",
          true);
    }
    h << report::html_table({}, rows, "params");
  }
  quality_section(h, o.folder / (px + "_desc-qualitycontrol_cbf.tsv"));
  if (status) {
    std::map<int, std::size_t> counts;
    for (std::size_t i = 0; i < n; ++i) ++counts[static_cast<int>((*status)[i])];
    std::vector<std::vector<Cell>> rows;
    for (const auto& [code, count] : counts) {
      std::string meaning = "n/a";
      if (const Json* m = find_key(sidecar, {"StatusCodes", std::to_string(code)})) {
        meaning = json_text(*m);
      }
      rows.push_back(
          {{std::to_string(code), true}, {html_escape(meaning)}, {std::to_string(count), true}});
    }
    h << "<h3>Fit status</h3>\n"
      << report::html_table({"Code", "Meaning", "Voxels"}, rows, "stats");
  }
  h << "</section>\n";

  // Maps.
  h << "<section id=\"maps\">\n<h2>Maps</h2>\n";
  for (const Figure& f : figures) {
    h << "<figure>\n<img src=\"" << html_escape(report::url_path("figures/" + f.file))
      << "\" width=\"" << f.width << "\" height=\"" << f.height << "\" alt=\"" << html_escape(f.alt)
      << "\">\n<figcaption>" << f.caption << "</figcaption>\n</figure>\n";
  }
  h << "</section>\n";

  if (registration) {
    const RegistrationSection& r = *registration;
    h << "<section id=\"registration\">\n<h2>Registration to the T1w</h2>\n"
      << "<p class=\"source\">Rigid, by mutual information (perfq register): "
      << link_to(r.transform) << ", " << link_to(r.sidecar) << ".</p>\n"
      << report::html_table({}, r.rows, "params");
    if (!r.figure.empty()) {
      h << "<figure>\n<img src=\"" << html_escape(report::url_path("figures/" + r.figure))
        << "\" width=\"" << r.width << "\" height=\"" << r.height
        << "\" alt=\"Registration checkerboard\">\n<figcaption>The T1w (grey) and the registered "
        << "image (warm tint) in alternating 10 mm squares on an axial, a coronal and a sagittal "
        << "plane: edges run on across the squares where the two are aligned.</figcaption>\n"
        << "</figure>\n";
    } else {
      h << "<p class=\"warning\">" << html_escape(r.note) << "</p>\n";
    }
    h << "</section>\n";
  }

  // Acquisition and constants, as recorded in the sidecar.
  const std::string sidecar_name = sidecar_path.filename().string();
  const bool pasl = find_key(sidecar, {"ArterialSpinLabelingType"}) &&
                    json_text(sidecar["ArterialSpinLabelingType"]) == "PASL";
  h << "<section id=\"acquisition\">\n<h2>Acquisition parameters</h2>\n"
    << "<p class=\"source\">Read from the series' BIDS sidecar and recorded by perfq cbf in "
    << link_to(sidecar_path) << ".</p>\n";
  h << field_table(
      sidecar,
      {{"Labeling type", {"ArterialSpinLabelingType"}, ""},
       {pasl ? "Inversion time (TI)" : "Post-labeling delay", {"PostLabelingDelay"}, "s"},
       {"Labeling duration", {"LabelingDuration"}, "s"},
       {"Bolus cut-off delay (TI1)", {"BolusCutOffDelayTime"}, "s"},
       {"Readout", {"MRAcquisitionType"}, ""},
       {"Slice timing", {"SliceTiming"}, "s"},
       {"Field strength", {"MagneticFieldStrength"}, "T"},
       {"M0 type", {"M0Type"}, ""},
       {"M0 source", {"M0Source"}, ""},
       {"M0 volumes averaged", {"M0VolumesAveraged"}, ""},
       {"M0 value", {"M0Value"}, ""},
       {"M0 repetition time", {"M0RepetitionTime"}, "s"},
       {"Repeats averaged", {"Averaging", "RepeatsAveraged"}, ""},
       {"Repeats rejected as outliers", {"Averaging", "RepeatsRejected"}, ""},
       {"Robust averaging", {"Averaging", "Robust"}, ""},
       {"Brain mask", {"Mask"}, ""},
       {"Source files", {"Sources"}, ""}},
      sidecar_name);
  h << "</section>\n";

  h << "<section id=\"constants\">\n<h2>Constants and model</h2>\n";
  h << field_table(
      sidecar,
      {{"Model", {"Model"}, ""},
       {"Blood-brain partition coefficient (λ)", {"BloodBrainPartitionCoefficient"}, "ml/g"},
       {"Arterial blood T1", {"ArterialBloodT1"}, "s"},
       {"Tissue T1", {"TissueT1"}, "s"},
       {"Labeling efficiency (α)", {"LabelingEfficiency"}, ""},
       {"Labeling efficiency from", {"LabelingEfficiencySource"}, ""},
       {"Background-suppression factor", {"BackgroundSuppressionFactor"}, ""},
       {"Background-suppression factor from", {"BackgroundSuppressionSource"}, ""},
       {"Efficiency per suppression pulse", {"BackgroundSuppressionPulseEfficiency"}, ""},
       {"Suppression pulses", {"BackgroundSuppressionNumberPulses"}, ""},
       {"Effective labeling efficiency", {"EffectiveLabelingEfficiency"}, ""},
       {"M0 scale factor (short-TR correction)", {"M0ScaleFactor"}, ""},
       {"M0 multiplied by (--m0-scale)", {"M0UserScaleFactor"}, ""},
       {"M0 smoothing (Gaussian FWHM)", {"M0Smoothing", "FWHM"}, "mm"},
       {"M0 calibration", {"M0Calibration", "Method"}, ""},
       {"Reference tissue", {"M0Calibration", "Tissue"}, ""},
       {"Reference region", {"M0Calibration", "Mask"}, ""},
       {"Reference region voxels", {"M0Calibration", "Voxels"}, ""},
       {"Arterial blood M0 (reference region)", {"M0Calibration", "ArterialBloodM0"}, ""},
       {"Suppression pulses from", {"BackgroundSuppressionPulsesSource"}, ""},
       {"Fit", {"Fit"}, ""},
       {"Partial-volume correction", {"PartialVolumeCorrection", "Method"}, ""}},
      sidecar_name);
  if (zone_sidecar) {
    h << "<h3>Border zones</h3>\n<p class=\"source\">From " << link_to(*zone_path) << ".</p>\n";
    h << field_table(*zone_sidecar,
                     {{"Description", {"Description"}, ""},
                      {"Territories", {"Atlas", "Territories"}, ""},
                      {"Width", {"Atlas", "Width"}, "mm"},
                      {"Rule", {"Atlas", "Rule"}, ""},
                      {"Probability threshold", {"Atlas", "ProbabilityThreshold"}, ""},
                      {"Timing", {"Timing"}, ""},
                      {"Combination", {"Combination"}, ""},
                      {"Brain mask", {"Brain"}, ""},
                      {"Voxels", {"Voxels"}, ""},
                      {"Volume", {"VolumeMl"}, "ml"}},
                     zone_sidecar_name);
  }
  h << "</section>\n";

  // Regional statistics.
  h << "<section id=\"statistics\">\n<h2>Regional statistics</h2>\n";
  if (tables.empty()) {
    h << "<p>No statistics table (<code>" << html_escape(px)
      << "[_desc-&lt;label&gt;]_stats.tsv</code>) beside the map.</p>\n";
  }
  for (const StatsTable& t : tables) h << stats_html(t, html_dir);
  h << "</section>\n";

  // Notes: the sidecar's, then how to read the figures.
  h << "<section id=\"notes\">\n<h2>Notes</h2>\n<ul class=\"notes\">\n";
  if (const Json* notes = find_key(sidecar, {"Notes"}); notes && notes->is_array()) {
    for (const auto& note : *notes) h << "<li>" << html_escape(json_text(note)) << "</li>\n";
  }
  h << "<li>Slices are axial in the radiological convention: the patient's right on the left "
       "(marked R), anterior at the top; the number in each corner is the slice index "
       "(from 0). Slices are evenly spaced over those with quantified voxels.</li>\n";
  h << "<li>Colour maps are fixed, so that reports compare: CBF viridis over "
    << range_text(o.cbf_low, o.cbf_high, "ml/100 g/min") << ", ATT plasma over "
    << range_text(o.att_low, o.att_high, "s")
    << "; values outside a range take the colour of its end. Grey: voxels not quantified"
    << (status ? " (fit status 1&ndash;4 or 8: outside the mask, M0 &le; 0, non-finite input "
                 "or result, M0 too low)"
               : " (non-finite or zero CBF)")
    << ".</li>\n";
  if (cbf_units != "mL/100g/min") {
    h << "<li>The sidecar gives the map's units as " << html_escape(cbf_units)
      << "; the colour bar assumes ml/100 g/min.</li>\n";
  }
  if (!status)
    h << "<li>No fit-status map (" << html_escape(px) << "_fitstatus.nii.gz) found.</li>\n";
  if (!att) h << "<li>No ATT map: a single-delay series.</li>\n";
  if (!zones) {
    h << "<li>No border-zone mask (" << html_escape(px)
      << "_desc-borderzone_mask.nii.gz, or --borderzone) found.</li>\n";
  }
  h << "</ul>\n</section>\n";
  h << "<footer>perfq " << html_escape(perfq::version())
    << " &middot; <code>perfq report</code> &middot; this page loads no script and nothing "
       "from the network.</footer>\n</main>\n</body>\n</html>\n";

  StagedOutputs page(html_dir, o.overwrite);
  const std::string html_name = px + "_report.html";
  perfq::io::write_text_atomic(page.stage(html_name), h.str());
  // Figures first, the page last: an existing page means a complete report.
  std::vector<std::string> written = figure_files.commit();
  for (const auto& p : page.commit()) written.push_back(p);
  const std::size_t n_figures =
      figures.size() + (registration && !registration->figure.empty() ? 1 : 0);
  out << "perfq report: " << cbf_path->string() << ": " << n_figures
      << (n_figures == 1 ? " figure, " : " figures, ") << tables.size()
      << (tables.size() == 1 ? " table" : " tables") << "\n";
  for (const auto& p : written) out << "  wrote " << p << "\n";
  return 0;
}

}  // namespace perfq_cli
