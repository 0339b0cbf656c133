// The regional-statistics tables of `perfq report` (report_stats.hpp): reading the TSV tables
// and their sidecars, finding them beside the map, and their HTML.
#include "report_stats.hpp"
#include "json_file.hpp"

#include "cli_util.hpp"
#include "report_html.hpp"

#include <perfq/errors.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace perfq_cli {
namespace report {
namespace {

/// Columns shown from a stats table (the TSV linked below has them all), and their headings.
std::string column_heading(const std::string& column, const std::string& units) {
  static const std::map<std::string, std::string> names = {
      {"label", "Label"},   {"name", "Region"},     {"count", "Voxels"},
      {"volume_ml", "Volume (ml)"}, {"sd", "SD"},   {"median", "Median"},
      {"min", "Min"},       {"max", "Max"},         {"scov", "sCoV (%)"},
      {"weighted_mean", "PV-weighted mean"},        {"change_mean", "Change"},
      {"change_percent", "Change (%)"}};
  if (column == "mean") return units.empty() ? "Mean" : "Mean (" + units + ")";
  if (auto it = names.find(column); it != names.end()) return it->second;
  if (column.size() > 1 && column[0] == 'p') return "P" + column.substr(1);
  return column;
}

bool shown_column(const std::string& c) {
  static const std::vector<std::string> keep = {
      "label", "name", "count", "volume_ml", "mean", "sd", "median", "scov",
      "weighted_mean", "change_mean", "change_percent"};
  if (std::find(keep.begin(), keep.end(), c) != keep.end()) return true;
  return c.size() > 1 && c[0] == 'p' && std::isdigit(static_cast<unsigned char>(c[1]));
}

std::string stats_title(const std::string& desc) {
  if (desc == "tissue") return "Tissue classes";
  if (desc == "territories") return "Arterial territories";
  if (desc == "borderzone") return "Border zones and the rest of the brain";
  if (desc.empty()) return "Regions";
  return "Regions: " + desc;
}

}  // namespace

std::string json_text(const Json& v) {
  if (v.is_null()) return "n/a";
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number()) return format_number(v.get<double>());
  if (v.is_string()) return v.get<std::string>();
  std::string out;
  if (v.is_array()) {
    const bool numbers =
        std::all_of(v.begin(), v.end(), [](const Json& e) { return e.is_number(); });
    if (numbers && v.size() > 8) {
      double lo = v[0].get<double>(), hi = lo;
      for (const auto& e : v) {
        lo = std::min(lo, e.get<double>());
        hi = std::max(hi, e.get<double>());
      }
      return std::to_string(v.size()) + " values, " + format_number(lo) + " to " +
             format_number(hi);
    }
    for (const auto& e : v) out += (out.empty() ? "" : ", ") + json_text(e);
    return out.empty() ? "none" : out;
  }
  for (const auto& item : v.items()) {
    out += (out.empty() ? "" : "; ") + item.key() + ": " + json_text(item.value());
  }
  return out;
}

std::string field_table(const Json& sidecar, const std::vector<Field>& fields,
                        const std::string& source_name) {
  std::vector<std::vector<Cell>> rows;
  for (const Field& f : fields) {
    const Json* v = find_key(sidecar, f.key);
    if (v == nullptr) continue;
    std::string value = json_text(*v);
    if (!f.units.empty() && !v->is_null()) value += " " + f.units;
    std::string key;
    for (const auto& k : f.key) key += (key.empty() ? "" : ".") + k;
    rows.push_back({{html_escape(f.label)},
                    {html_escape(value), v->is_number()},
                    {"<code>" + html_escape(key) + "</code>"}});
  }
  if (rows.empty()) return "<p>None recorded in " + html_escape(source_name) + ".</p>\n";
  return html_table({"Parameter", "Value", "Sidecar field (" + source_name + ")"}, rows,
                            "params");
}

Json read_json(const fs::path& path) {
  const auto text = read_file_text(path);
  if (!text) throw perfq::InputError(path.string(), "", "cannot read the file");
  perfq::io::check_json_nesting(*text, path.string());
  Json j = Json::parse(*text, nullptr, false);
  if (j.is_discarded()) throw perfq::InputError(path.string(), "", "not valid JSON");
  if (!j.is_object()) throw perfq::InputError(path.string(), "", "expected a JSON object");
  return j;
}

const Json* find_key(const Json& j, const std::vector<std::string>& key) {
  const Json* at = &j;
  for (const auto& k : key) {
    if (!at->is_object() || !at->contains(k)) return nullptr;
    at = &(*at)[k];
  }
  return at;
}

StatsTable read_stats(const fs::path& path, const std::string& prefix) {
  StatsTable t;
  t.path = path;
  const std::string name = path.filename().string();
  const std::string head = prefix + "_desc-";
  if (name.rfind(head, 0) == 0 && ends_with(name, "_stats.tsv")) {
    t.desc = name.substr(head.size(), name.size() - head.size() - 10);
  }
  std::ifstream in(path);
  if (!in) throw perfq::InputError(path.string(), "", "cannot read the file");
  std::string line;
  std::size_t number = 0;
  auto split = [](const std::string& text) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    while (true) {
      const std::size_t tab = text.find('\t', start);
      fields.push_back(text.substr(start, tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    return fields;
  };
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    auto fields = split(line);
    if (t.header.empty()) {
      t.header = fields;
      continue;
    }
    if (fields.size() != t.header.size()) {
      throw perfq::InputError(path.string(), "line " + std::to_string(number),
                              "has " + std::to_string(fields.size()) + " fields, the header " +
                                  std::to_string(t.header.size()));
    }
    t.rows.push_back(fields);
  }
  if (t.header.empty()) throw perfq::InputError(path.string(), "", "empty; expected a header row");
  if (std::find(t.header.begin(), t.header.end(), "mean") == t.header.end()) {
    throw perfq::InputError(path.string(), "mean",
                            "column not found: not a perfq stats table");
  }
  fs::path sidecar = path;
  sidecar.replace_extension(".json");
  std::error_code ec;
  if (fs::is_regular_file(sidecar, ec)) {
    const Json j = read_json(sidecar);
    if (const Json* u = find_key(j, {"mean", "Units"}); u && u->is_string()) {
      t.units = u->get<std::string>();
    }
  }
  return t;
}

std::vector<fs::path> find_stats(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> found;
  std::error_code ec;
  const std::string head = prefix + "_desc-";
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    bool match = name == prefix + "_stats.tsv";
    if (!match && name.rfind(head, 0) == 0 && ends_with(name, "_stats.tsv")) {
      const std::string label = name.substr(head.size(), name.size() - head.size() - 10);
      match = !label.empty() && std::all_of(label.begin(), label.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c));
      });
    }
    if (match && e.is_regular_file(ec)) found.push_back(e.path());
  }
  // Tissue, territories, border zones (the BIDS-App's tables, coarse to fine), then others.
  auto rank = [&](const fs::path& p) {
    const std::string name = p.filename().string();
    int r = 3;
    if (name == head + "tissue_stats.tsv") r = 0;
    if (name == head + "territories_stats.tsv") r = 1;
    if (name == head + "borderzone_stats.tsv") r = 2;
    return std::make_pair(r, name);
  };
  std::sort(found.begin(), found.end(),
            [&](const fs::path& a, const fs::path& b) { return rank(a) < rank(b); });
  return found;
}

std::string stats_html(const StatsTable& t, const fs::path& html_dir) {
  std::vector<std::size_t> columns;
  std::vector<std::string> header;
  for (std::size_t k = 0; k < t.header.size(); ++k) {
    if (shown_column(t.header[k])) {
      columns.push_back(k);
      header.push_back(column_heading(t.header[k], t.units));
    }
  }
  std::vector<std::vector<Cell>> rows;
  for (const auto& r : t.rows) {
    std::vector<Cell> cells;
    for (std::size_t k : columns) {
      const std::string& text = r[k];
      const std::optional<double> v = perfq::io::parse_number(text);
      const bool number = v && t.header[k] != "label";
      cells.push_back({html_escape(number ? report::format_number(*v) : text),
                       number || text == "n/a"});
    }
    rows.push_back(cells);
  }
  // Both sides absolute: a table given as a relative path still gets a relative link.
  const std::string link = fs::absolute(t.path)
                               .lexically_normal()
                               .lexically_proximate(fs::absolute(html_dir).lexically_normal())
                               .generic_string();
  std::string out = "<h3>" + html_escape(stats_title(t.desc)) + "</h3>\n";
  out += report::html_table(header, rows, "stats");
  out += "<p class=\"source\">All columns: <a href=\"" + html_escape(report::url_path(link)) +
         "\">" + html_escape(t.path.filename().string()) + "</a></p>\n";
  return out;
}

}  // namespace report
}  // namespace perfq_cli
