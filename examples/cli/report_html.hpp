// HTML building blocks of `perfq report` (cmd_report.cpp): escaping of text and of relative
// URLs, number formatting and tables. Header-only; no network resource is ever referenced.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace perfq_cli {
namespace report {

/// Text made safe for HTML element content and quoted attribute values: & < > " ' escaped.
inline std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

/// A relative path as a URL path: every byte except unreserved characters (RFC 3986) and '/'
/// percent-encoded, so that '#', '?', '%' and spaces in file names cannot break a link. The
/// result still needs html_escape inside an attribute (it contains no character that changes).
inline std::string url_path(const std::string& relative_path) {
  static const char* const hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : relative_path) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                            c == '~' || c == '/';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

/// A number for a table: integers as they are, others with 4 significant digits (no
/// exponent below 10^6); "n/a" for NaN.
inline std::string format_number(double v) {
  if (std::isnan(v)) return "n/a";
  char text[64];
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == std::round(v) && std::abs(v) < 1e15) {
    std::snprintf(text, sizeof text, "%.0f", v);
  } else if (std::abs(v) >= 1000 && std::abs(v) < 1e6) {
    std::snprintf(text, sizeof text, "%.1f", v);
  } else {
    std::snprintf(text, sizeof text, "%.4g", v);
  }
  return text;
}

/// A table cell's content, already HTML (escape text with html_escape), and whether it holds
/// a number (right-aligned).
struct Cell {
  std::string html;
  bool numeric = false;
};

/// An HTML table with a header row; `caption` is plain text.
inline std::string html_table(const std::vector<std::string>& header,
                              const std::vector<std::vector<Cell>>& rows,
                              const std::string& css_class = "",
                              const std::string& caption = "") {
  std::string out = "<table" + (css_class.empty() ? std::string() : " class=\"" + css_class + "\"") +
                    ">\n";
  if (!caption.empty()) out += "<caption>" + html_escape(caption) + "</caption>\n";
  if (!header.empty()) {
    out += "<thead><tr>";
    for (const auto& h : header) out += "<th scope=\"col\">" + html_escape(h) + "</th>";
    out += "</tr></thead>\n";
  }
  out += "<tbody>\n";
  for (const auto& row : rows) {
    out += "<tr>";
    for (const Cell& c : row) out += (c.numeric ? "<td class=\"num\">" : "<td>") + c.html + "</td>";
    out += "</tr>\n";
  }
  return out + "</tbody>\n</table>\n";
}

/// The report page's style sheet (inline: the page loads nothing).
inline constexpr const char* kStyle = R"(
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  margin: 0; background: #f4f5f7; color: #1d2330; line-height: 1.45; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 40px; background: #fff;
  box-shadow: 0 0 0 1px #e2e5ea; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #e2e5ea; }
h3 { font-size: 1.05em; margin: 22px 0 8px; }
.meta { color: #5b6475; margin: 0; }
nav { margin: 14px 0 0; font-size: 0.95em; }
nav a { margin-right: 14px; color: #2a5db0; text-decoration: none; }
a { color: #2a5db0; }
table { border-collapse: collapse; margin: 6px 0 4px; font-size: 0.93em; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e6e8ec; text-align: left; vertical-align: top; }
thead th { background: #eef1f5; border-bottom: 1px solid #cfd5de; font-weight: 600; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.params td:first-child { font-weight: 500; min-width: 16em; }
table.params td.num { text-align: left; }
code { font-size: 0.9em; color: #5b6475; }
figure { margin: 18px 0 26px; }
figure img { display: block; max-width: 100%; height: auto; background: #000; border-radius: 3px; }
figcaption { color: #3d4656; font-size: 0.93em; margin-top: 6px; max-width: 60em; }
.source { color: #5b6475; font-size: 0.9em; margin: 2px 0 0; }
ul.notes li { margin: 3px 0; }
.warning { background: #fff4e0; border-left: 4px solid #d9822b; padding: 8px 12px; margin: 10px 0; }
footer { color: #5b6475; font-size: 0.88em; margin-top: 36px; border-top: 1px solid #e2e5ea; padding-top: 10px; }
)";

}  // namespace report
}  // namespace perfq_cli
