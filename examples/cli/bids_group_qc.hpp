// The group level's quality control (cmd_bids.cpp): every series' quality table gathered by
// the library (perfq::io::gather_quality_tables) into group_qualitycontrol.tsv/.json, and a
// page, group_qc.html: one row per series with its indices and a link to its report, the
// outliers marked, and a strip plot of each index across the cohort with its fences.
#pragma once

#include "cli_util.hpp"
#include "report_html.hpp"

#include <perfq/io/outputs.hpp>
#include <perfq/io/quality.hpp>
#include <perfq/version.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

namespace perfq_cli {
namespace bids_app {

/// The indices the page shows (the table keeps them all).
inline const std::vector<std::string>& group_qc_columns() {
  static const std::vector<std::string> columns = {"qei",
                                                   "gm_mean_cbf",
                                                   "wm_mean_cbf",
                                                   "gm_wm_ratio",
                                                   "gm_scov",
                                                   "brain_median_cbf",
                                                   "brain_scov",
                                                   "gm_negative_fraction",
                                                   "gm_above_150_fraction"};
  return columns;
}

/// An inline SVG strip plot of one index: each series a dot (outliers red, with a title
/// naming the series), the fences dashed.
inline std::string strip_plot(const perfq::io::GroupQuality& g, std::size_t c) {
  std::vector<double> values;
  for (const auto& r : g.rows) {
    if (r.defined[c]) values.push_back(r.values[c]);
  }
  if (values.empty()) return "<p class=\"source\">no value</p>\n";
  double lo = *std::min_element(values.begin(), values.end());
  double hi = *std::max_element(values.begin(), values.end());
  if (g.fenced[c]) {
    lo = std::min(lo, g.lower_fence[c]);
    hi = std::max(hi, g.upper_fence[c]);
  }
  if (!(hi > lo)) {
    lo -= 0.5 * (std::abs(lo) + 1);
    hi += 0.5 * (std::abs(hi) + 1);
  }
  const double width = 520, left = 10, right = 510;
  auto x = [&](double v) { return left + (v - lo) / (hi - lo) * (right - left); };
  auto num = [](double v) {
    char t[32];
    std::snprintf(t, sizeof t, "%.1f", v);
    return std::string(t);
  };
  std::ostringstream s;
  s << "<svg class=\"strip\" width=\"" << width << "\" height=\"44\" viewBox=\"0 0 " << width
    << " 44\" role=\"img\" aria-label=\"" << report::html_escape(g.columns[c])
    << " across the cohort\">";
  s << "<line x1=\"" << left << "\" y1=\"22\" x2=\"" << right
    << "\" y2=\"22\" stroke=\"#cfd5de\"/>";
  if (g.fenced[c]) {
    for (const double f : {g.lower_fence[c], g.upper_fence[c]}) {
      s << "<line x1=\"" << num(x(f)) << "\" y1=\"6\" x2=\"" << num(x(f))
        << "\" y2=\"38\" stroke=\"#d9822b\" stroke-dasharray=\"3 3\"/>";
    }
  }
  for (const auto& r : g.rows) {
    if (!r.defined[c]) continue;
    const bool out =
        std::find(r.outliers.begin(), r.outliers.end(), g.columns[c]) != r.outliers.end();
    s << "<circle cx=\"" << num(x(r.values[c])) << "\" cy=\"22\" r=\"5\" fill=\""
      << (out ? "#c0392b" : "#2a5db0") << "\" fill-opacity=\"0.75\"><title>"
      << report::html_escape(r.prefix) << ": " << report::format_number(r.values[c])
      << "</title></circle>";
  }
  s << "<text x=\"" << left << "\" y=\"42\" font-size=\"10\" fill=\"#5b6475\">"
    << report::format_number(lo) << "</text><text x=\"" << right
    << "\" y=\"42\" font-size=\"10\" fill=\"#5b6475\" text-anchor=\"end\">"
    << report::format_number(hi) << "</text></svg>\n";
  return s.str();
}

/// The page's HTML.
inline std::string group_qc_html(const perfq::io::GroupQuality& g, const fs::path& out_dir) {
  using report::Cell;
  using report::html_escape;
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    << "<title>perfq group quality control</title>\n<style>" << report::kStyle
    << "span.outlier { color: #c0392b; font-weight: 700; }\n"
    << "</style>\n</head>\n<body>\n<main>\n<h1>Group quality control</h1>\n";
  std::size_t flagged = 0;
  for (const auto& r : g.rows) flagged += r.outliers.empty() ? 0 : 1;
  h << "<p class=\"meta\">" << g.rows.size() << " series, " << flagged
    << " with an outlier index; perfq " << html_escape(perfq::version())
    << ". Table: <a href=\"group_qualitycontrol.tsv\">group_qualitycontrol.tsv</a> (every "
       "index; definitions in group_qualitycontrol.json).</p>\n";
  h << "<p>Outliers (marked red): Tukey's fences per index over the series with a value (at "
       "least 4): below Q1 &minus; 1.5&nbsp;IQR or above Q3 + 1.5&nbsp;IQR, only in the "
       "direction of poor quality where there is one (low QEI, GM CBF and GM/WM ratio; high "
       "sCoV and shares of negative or high CBF).</p>\n";

  std::vector<std::size_t> shown;
  for (const auto& name : group_qc_columns()) {
    const auto it = std::find(g.columns.begin(), g.columns.end(), name);
    if (it != g.columns.end()) shown.push_back(static_cast<std::size_t>(it - g.columns.begin()));
  }
  h << "<h2 id=\"series\">Series</h2>\n";
  std::vector<std::string> header = {"Series", "Report"};
  for (const std::size_t c : shown) header.push_back(g.columns[c]);
  header.push_back("Outliers");
  std::vector<std::vector<Cell>> rows;
  for (const auto& r : g.rows) {
    std::vector<Cell> row;
    row.push_back({html_escape(r.prefix)});
    const fs::path table = out_dir / r.source;
    const fs::path report_page = table.parent_path() / (r.prefix + "_report.html");
    std::error_code ec;
    if (fs::is_regular_file(report_page, ec)) {
      const std::string rel = fs::relative(report_page, out_dir, ec).generic_string();
      row.push_back({"<a href=\"" + html_escape(report::url_path(rel)) + "\">report</a>"});
    } else {
      row.push_back({"&mdash;"});
    }
    for (const std::size_t c : shown) {
      const bool out =
          std::find(r.outliers.begin(), r.outliers.end(), g.columns[c]) != r.outliers.end();
      const std::string value = r.defined[c] ? report::format_number(r.values[c]) : "n/a";
      row.push_back(
          {out ? "<span class=\"outlier\" title=\"outlier\">" + value + "</span>" : value, true});
    }
    std::string flags;
    for (const auto& o : r.outliers) flags += (flags.empty() ? "" : ", ") + html_escape(o);
    row.push_back({flags.empty() ? "&mdash;" : flags});
    rows.push_back(std::move(row));
  }
  h << report::html_table(header, rows);

  h << "<h2 id=\"distributions\">Distributions</h2>\n";
  for (const std::size_t c : shown) {
    h << "<h3><code>" << html_escape(g.columns[c]) << "</code></h3>\n" << strip_plot(g, c);
  }
  h << "<footer>perfq " << html_escape(perfq::version())
    << "</footer>\n</main>\n</body>\n</html>\n";
  return h.str();
}

/// Writes group_qualitycontrol.tsv, its .json and group_qc.html (together, or none); the
/// number of series gathered, 0 (and nothing written) when there is no quality table.
inline std::size_t write_group_quality(const fs::path& out_dir,
                                       const std::vector<std::string>& participants,
                                       const std::vector<std::string>& sessions) {
  const perfq::io::GroupQuality g =
      perfq::io::gather_quality_tables(out_dir.string(), participants, sessions);
  if (g.rows.empty()) return 0;
  StagedOutputs outputs(out_dir, /*overwrite=*/true);  // always redone
  perfq::io::write_text_atomic(outputs.stage("group_qualitycontrol.tsv"),
                               perfq::io::group_quality_tsv(g));
  perfq::io::write_text_atomic(outputs.stage("group_qualitycontrol.json"),
                               perfq::io::group_quality_json(g));
  perfq::io::write_text_atomic(outputs.stage("group_qc.html"), group_qc_html(g, out_dir));
  outputs.commit();
  return g.rows.size();
}

}  // namespace bids_app
}  // namespace perfq_cli
