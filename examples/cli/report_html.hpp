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

}  // namespace report
}  // namespace perfq_cli
