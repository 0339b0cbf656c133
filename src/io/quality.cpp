// Quality indices as files (include/perfq/io/quality.hpp).
#include <perfq/detail/stats.hpp>
#include <perfq/errors.hpp>
#include <perfq/io/quality.hpp>
#include <perfq/io/text.hpp>
#include <perfq/version.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

const char* const kTableSuffix = "_desc-qualitycontrol_cbf.tsv";

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.10g", v);
  return text;
}

/// Where each index's definition comes from.
std::string reference_of(const std::string& name) {
  if (name == "gm_scov" || name == "brain_scov") {
    return "Mutsaerts et al. 2017, J Cereb Blood Flow Metab 37:3184 (spatial CoV as "
           "ExploreASL reports it)";
  }
  if (name.rfind("qei", 0) == 0) {
    return "Dolui et al. 2024, J Magn Reson Imaging, doi:10.1002/jmri.29308 (first shown at "
           "ISMRM 2017; as ASLPrep computes it)";
  }
  if (name == "gm_negative_fraction") {
    return "Dolui et al. 2024 (negative GM CBF as a quality marker; ASLPrep reports it in %)";
  }
  return "ASLPrep (Adebimpe et al. 2022, Nat Methods 19:683) and ExploreASL (Mutsaerts et al. "
         "2020, NeuroImage 219:117031) report tissue CBF at a 0.7 probability threshold";
}

/// The indices' names, units and descriptions: those of a report on any map.
const QualityReport& template_report() {
  static const QualityReport report = [] {
    const float zero = 0.0f;
    return quality_indices(View<const float>{&zero, Geometry{}, 1});
  }();
  return report;
}

Json describe(const QualityIndex& q) {
  Json c;
  c["Description"] = q.description;
  if (!q.units.empty()) c["Units"] = q.units;
  c["Reference"] = reference_of(q.name);
  return c;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, '\t')) fields.push_back(field);
  if (!line.empty() && line.back() == '\t') fields.emplace_back();
  return fields;
}

/// The value of entity `key` (e.g. "sub") in a BIDS name, "" when absent.
std::string entity(const std::string& name, const std::string& key) {
  std::istringstream in(name);
  std::string part;
  while (std::getline(in, part, '_')) {
    if (part.rfind(key + "-", 0) == 0) return part.substr(key.size() + 1);
  }
  return {};
}

/// Percentile p (0–100) of sorted values, numpy's linear interpolation (as region_stats).
double percentile(const std::vector<double>& sorted, double p) {
  const detail::PercentileRank r = detail::percentile_rank(p, sorted.size());
  return detail::interpolate(sorted[r.lo], sorted[r.hi], r.frac);
}

/// -1: only low values mark poor quality; +1: only high ones; 0: both.
int poor_direction(const std::string& name) {
  if (name == "qei" || name == "qei_structural_similarity" || name == "gm_mean_cbf" ||
      name == "gm_median_cbf" || name == "gm_wm_ratio") {
    return -1;
  }
  if (name == "gm_scov" || name == "brain_scov" || name == "qei_spatial_variability" ||
      name.find("negative") != std::string::npos || name.find("above") != std::string::npos) {
    return 1;
  }
  return 0;
}

}  // namespace

std::string quality_table_tsv(const QualityReport& report) {
  std::ostringstream out;
  for (std::size_t k = 0; k < report.indices.size(); ++k) {
    out << (k ? "\t" : "") << report.indices[k].name;
  }
  out << "\n";
  for (std::size_t k = 0; k < report.indices.size(); ++k) {
    const QualityIndex& q = report.indices[k];
    out << (k ? "\t" : "") << (q.defined ? number(q.value) : "n/a");
  }
  out << "\n";
  return out.str();
}

std::string quality_table_json(const QualityReport& report,
                               const std::vector<std::string>& sources) {
  Json j;
  Json not_defined = Json::object();
  for (const QualityIndex& q : report.indices) {
    j[q.name] = describe(q);
    if (!q.defined) not_defined[q.name] = q.why_not;
  }
  j["NotDefined"] = not_defined;
  j["TissueThreshold"] = report.tissue_threshold;
  j["QeiSmoothingFWHM"] = report.qei_smoothing_fwhm_mm;
  j["RelativeCbf"] = report.relative;
  j["Sources"] = sources;
  j["GeneratedBy"] = {{"Name", "perfq"}, {"Version", version()}};
  return j.dump(2) + "\n";
}

GroupQuality gather_quality_tables(const std::string& root,
                                   const std::vector<std::string>& participants,
                                   const std::vector<std::string>& sessions) {
  GroupQuality g;
  g.columns = quality_index_names();
  std::vector<fs::path> found;
  std::error_code ec;
  if (fs::is_directory(root, ec)) {
    for (const auto& sub : fs::directory_iterator(root, ec)) {
      const std::string sub_name = sub.path().filename().string();
      if (!sub.is_directory() || sub_name.rfind("sub-", 0) != 0) continue;
      for (auto it = fs::recursive_directory_iterator(sub.path(), ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name[0] == '.') {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (name.size() <= std::string(kTableSuffix).size() ||
            name.compare(name.size() - std::string(kTableSuffix).size(), std::string::npos,
                         kTableSuffix) != 0 ||
            !it->is_regular_file()) {
          continue;
        }
        auto listed = [](const std::vector<std::string>& list, const std::string& v) {
          return list.empty() || std::find(list.begin(), list.end(), v) != list.end();
        };
        if (listed(participants, entity(name, "sub")) && listed(sessions, entity(name, "ses"))) {
          found.push_back(it->path());
        }
      }
    }
  }
  std::sort(found.begin(), found.end());
  for (const fs::path& path : found) {
    const std::string file = path.string();
    std::ifstream in(path);
    std::string header, line;
    if (!in || !std::getline(in, header)) throw InputError(file, "", "cannot read the table");
    if (!std::getline(in, line) || line.empty())
      throw InputError(file, "", "no row under the header");
    const std::vector<std::string> names = split_tabs(header), fields = split_tabs(line);
    if (names.size() != fields.size()) {
      throw InputError(file, "",
                       "the row has " + std::to_string(fields.size()) + " fields, the header " +
                           std::to_string(names.size()));
    }
    QualityRow row;
    {
      // The sidecar, when there is one, says whether the map was relative CBF.
      fs::path sidecar = path;
      sidecar.replace_extension(".json");
      std::ifstream j(sidecar);
      if (j) {
        const Json record = Json::parse(j, nullptr, false);
        if (record.is_object() && record.value("RelativeCbf", false)) row.relative = true;
      }
    }
    row.source = fs::relative(path, root).generic_string();
    const std::string name = path.filename().string();
    row.prefix = name.substr(0, name.size() - std::string(kTableSuffix).size());
    row.subject = entity(row.prefix, "sub");
    row.session = entity(row.prefix, "ses");
    row.run = entity(row.prefix, "run");
    row.values.assign(g.columns.size(), 0.0);
    row.defined.assign(g.columns.size(), false);
    for (std::size_t k = 0; k < names.size(); ++k) {
      const auto column = std::find(g.columns.begin(), g.columns.end(), names[k]);
      if (column == g.columns.end()) continue;  // a column of another version: left out
      if (fields[k] == "n/a") continue;
      const std::optional<double> v = parse_number(fields[k]);
      if (!v) {
        throw InputError(file, names[k], "expected a number or n/a, got '" + fields[k] + "'");
      }
      const auto c = static_cast<std::size_t>(column - g.columns.begin());
      row.values[c] = *v;
      row.defined[c] = true;
    }
    g.rows.push_back(std::move(row));
  }

  // Tukey's fences per index.
  const std::size_t columns = g.columns.size();
  g.lower_fence.assign(columns, 0.0);
  g.upper_fence.assign(columns, 0.0);
  g.fenced.assign(columns, false);
  for (std::size_t c = 0; c < columns; ++c) {
    std::vector<double> values;
    for (const QualityRow& r : g.rows) {
      if (r.defined[c] && !r.relative) values.push_back(r.values[c]);
    }
    if (values.size() < 4) continue;
    std::sort(values.begin(), values.end());
    const double q1 = percentile(values, 25.0), q3 = percentile(values, 75.0);
    g.lower_fence[c] = q1 - 1.5 * (q3 - q1);
    g.upper_fence[c] = q3 + 1.5 * (q3 - q1);
    g.fenced[c] = true;
    const int direction = poor_direction(g.columns[c]);
    for (QualityRow& r : g.rows) {
      if (!r.defined[c] || r.relative) continue;
      const bool low = r.values[c] < g.lower_fence[c] && direction <= 0;
      const bool high = r.values[c] > g.upper_fence[c] && direction >= 0;
      if (low || high) r.outliers.push_back(g.columns[c]);
    }
  }
  return g;
}

std::string group_quality_tsv(const GroupQuality& group) {
  std::ostringstream out;
  out << "subject\tsession\trun\tsource\tcbf_units";
  for (const std::string& c : group.columns) out << "\t" << c;
  out << "\toutliers\n";
  auto or_na = [](const std::string& v) { return v.empty() ? std::string("n/a") : v; };
  for (const QualityRow& r : group.rows) {
    out << or_na(r.subject) << "\t" << or_na(r.session) << "\t" << or_na(r.run) << "\t" << r.source
        << "\t" << (r.relative ? "relative" : "mL/100g/min");
    for (std::size_t c = 0; c < group.columns.size(); ++c) {
      out << "\t" << (r.defined[c] ? number(r.values[c]) : "n/a");
    }
    std::string flagged;
    for (const std::string& o : r.outliers) flagged += (flagged.empty() ? "" : ",") + o;
    out << "\t" << or_na(flagged) << "\n";
  }
  return out.str();
}

std::string group_quality_json(const GroupQuality& group) {
  Json j;
  j["subject"] = {{"Description", "participant label (sub-<label>), from the table's name"}};
  j["session"] = {{"Description", "session label (ses-<label>); n/a without sessions"}};
  j["run"] = {{"Description", "run index (run-<index>); n/a when the series has none"}};
  j["source"] = {{"Description", "the series' quality table, relative to this folder"}};
  j["cbf_units"] = {
      {"Description",
       "the units of the series' CBF indices: mL/100g/min, or relative (a map of relative CBF, "
       "M0Type Absent: 1 = the brain's median; such series are left out of the outlier rule)"}};
  for (const QualityIndex& q : template_report().indices) j[q.name] = describe(q);
  j["outliers"] = {
      {"Description",
       "the indices on which the series is an outlier of the cohort (comma-separated; n/a "
       "for none), by the rule under OutlierRule"}};
  j["OutlierRule"] =
      "Tukey's fences per index over the series with a value (at least 4): below Q1 - 1.5 IQR "
      "or above Q3 + 1.5 IQR (quartiles by linear interpolation). Only the direction of poor "
      "quality counts where there is one: low qei, qei_structural_similarity, gm_mean_cbf, "
      "gm_median_cbf and gm_wm_ratio; high scov, qei_spatial_variability and the shares of "
      "negative or high CBF; both directions otherwise.";
  Json fences = Json::object();
  for (std::size_t c = 0; c < group.columns.size(); ++c) {
    if (group.fenced[c]) {
      fences[group.columns[c]] = {group.lower_fence[c], group.upper_fence[c]};
    }
  }
  j["Fences"] = fences;
  Json sources = Json::array();
  for (const QualityRow& r : group.rows) sources.push_back(r.source);
  j["Sources"] = sources;
  j["GeneratedBy"] = {{"Name", "perfq"}, {"Version", version()}};
  return j.dump(2) + "\n";
}

}  // namespace io
PERFQ_NAMESPACE_END
