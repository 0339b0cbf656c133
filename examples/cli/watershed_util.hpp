// Helpers of `perfq watershed` (cmd_watershed.cpp): small TSV tables, comma-separated lists,
// and reading images that must all share one grid.
#pragma once

#include "cli_util.hpp"

#include <perfq/errors.hpp>
#include <perfq/image.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/watershed.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace perfq_cli {
namespace watershed {

/// A TSV's rows as column → text maps; the header must have `required` and one of `any_of`.
inline std::vector<std::map<std::string, std::string>> read_tsv(
    const std::string& path, const std::vector<std::string>& any_of, const std::string& required) {
  std::ifstream in(path);
  if (!in) throw perfq::InputError(path, "", "cannot read the file");
  std::string line;
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> rows;
  auto split = [](const std::string& text) {
    std::vector<std::string> cells;
    std::stringstream s(text);
    std::string cell;
    while (std::getline(s, cell, '\t')) {
      while (!cell.empty() && (cell.back() == '\r' || cell.back() == ' ')) cell.pop_back();
      cells.push_back(cell);
    }
    return cells;
  };
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto cells = split(line);
    if (header.empty()) {
      header = cells;
      continue;
    }
    std::map<std::string, std::string> row;
    for (std::size_t c = 0; c < header.size() && c < cells.size(); ++c) row[header[c]] = cells[c];
    rows.push_back(row);
  }
  auto has = [&](const std::string& column) {
    return std::find(header.begin(), header.end(), column) != header.end();
  };
  if (!has(required)) throw perfq::InputError(path, required, "column not found in the header");
  if (!any_of.empty() && std::none_of(any_of.begin(), any_of.end(), has)) {
    throw perfq::InputError(path, any_of.front(), "column not found in the header");
  }
  return rows;
}

/// An integer cell, or an InputError naming the file and the column.
inline std::int32_t tsv_integer(const std::map<std::string, std::string>& row,
                                const std::string& column, const std::string& path) {
  const auto it = row.find(column);
  const std::string text = it == row.end() ? "" : it->second;
  const std::optional<long long> value = perfq::io::parse_integer(text);
  if (!value || *value < INT32_MIN || *value > INT32_MAX) {
    throw perfq::InputError(path, column, "expected a 32-bit integer, got '" + text + "'");
  }
  return static_cast<std::int32_t>(*value);
}

/// A `label`/`group` table (--groups).
inline perfq::TerritoryGroups read_groups(const std::string& path) {
  perfq::TerritoryGroups groups;
  for (const auto& row : read_tsv(path, {"label"}, "group")) {
    const std::int32_t label = tsv_integer(row, "label", path);
    if (!groups.emplace(label, tsv_integer(row, "group", path)).second) {
      throw perfq::InputError(path, "label", "label " + std::to_string(label) + " listed twice");
    }
  }
  if (groups.empty()) throw perfq::InputError(path, "label", "no rows");
  return groups;
}

/// An `index` (or `label`)/`name` table (--names).
inline std::map<std::int32_t, std::string> read_names(const std::string& path) {
  std::map<std::int32_t, std::string> names;
  for (const auto& row : read_tsv(path, {"index", "label"}, "name")) {
    const std::string column = row.count("index") ? "index" : "label";
    names[tsv_integer(row, column, path)] = row.at("name");
  }
  return names;
}

/// The non-empty items of a comma-separated list.
inline std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

/// A comma-separated list of numbers (empty when the option is absent).
inline std::vector<double> number_list(const std::optional<std::string>& text,
                                       const std::string& name) {
  std::vector<double> values;
  if (text) {
    for (const auto& item : split_list(*text)) values.push_back(Args::parse_number(item, name));
    if (values.empty()) throw UsageError{name + ": expected a number"};
  }
  return values;
}

/// Inputs and their grid: every image must lie on the first one's grid.
class Inputs {
 public:
  void check(const std::string& path, const perfq::Geometry& geometry) {
    if (!reference_) {
      reference_ = geometry;
      reference_path_ = path;
    } else {
      perfq::io::require_same_grid(path, geometry, *reference_, reference_path_);
    }
  }
  perfq::Image<float> map(const std::string& path) {
    perfq::Image<float> image = perfq::io::read_nifti_3d(path);
    check(path, image.geometry());
    return image;
  }
  perfq::Mask mask(const std::string& path) {
    perfq::Mask m = perfq::io::read_nifti_mask(path);
    check(path, m.geometry());
    return m;
  }
  perfq::Mask thresholded(const std::string& path, double minimum) {
    return perfq::threshold_map(map(path).view(), minimum);
  }

 private:
  std::optional<perfq::Geometry> reference_;
  std::string reference_path_;
};

/// Voxels inside a mask.
inline std::size_t count(const perfq::Mask& m) {
  std::size_t n = 0;
  for (auto v : m.values()) n += v != 0;
  return n;
}

/// Volume of one voxel, ml.
inline double voxel_ml(const perfq::Geometry& g) {
  return g.spacing[0] * g.spacing[1] * g.spacing[2] / 1000.0;
}

/// Runs `f`, turning the library's InvalidArgument into an InputError naming `path`.
template <class F>
auto about(const std::string& path, F&& f) {
  try {
    return f();
  } catch (const perfq::InvalidArgument& e) {
    throw perfq::InputError(path, "", e.what());
  }
}

}  // namespace watershed
}  // namespace perfq_cli
