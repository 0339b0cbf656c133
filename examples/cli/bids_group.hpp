// The group level of `perfq bids` (cmd_bids.cpp): every participant-level `*_stats.tsv`
// gathered into one table, with leading columns naming where each row came from.
#pragma once

#include "bids_app.hpp"
#include "json_file.hpp"
#include "cli_util.hpp"

#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/version.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace perfq_cli {
namespace bids_app {

/// One participant-level table: its path relative to out_dir and its rows by column name.
struct StatsTable {
  fs::path relative;
  std::string prefix;  // the name before `_stats.tsv`, with its entities
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

/// The map a participant-level table's statistics are of: "att" for
/// `<prefix>[_desc-X]_att_stats.tsv` (the multi-delay ATT tables), else "cbf".
inline std::string stats_map(const std::string& table_prefix) {
  return ends_with(table_prefix, "_att") ? "att" : "cbf";
}

/// The table's name without the `_att` that marks ATT tables: the CBF table and its ATT twin
/// share it.
inline std::string stats_base(const std::string& table_prefix) {
  return stats_map(table_prefix) == "att" ? table_prefix.substr(0, table_prefix.size() - 4)
                                          : table_prefix;
}

inline std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  std::string field;
  while (std::getline(in, field, '\t')) fields.push_back(field);
  if (!line.empty() && line.back() == '\t') fields.emplace_back();
  return fields;
}

inline StatsTable read_stats_table(const fs::path& root, const fs::path& path) {
  StatsTable t;
  t.relative = fs::relative(path, root);
  const std::string name = path.filename().string();
  t.prefix = name.substr(0, name.size() - std::string("_stats.tsv").size());
  std::ifstream in(path);
  if (!in) throw perfq::InputError(path.string(), "", "cannot read");
  std::string line;
  if (!std::getline(in, line) || line.empty()) {
    throw perfq::InputError(path.string(), "", "empty table (no header)");
  }
  t.columns = split_tabs(line);
  std::size_t row = 1;
  while (std::getline(in, line)) {
    ++row;
    if (line.empty()) continue;
    auto fields = split_tabs(line);
    if (fields.size() != t.columns.size()) {
      throw perfq::InputError(path.string(), "",
                              "row " + std::to_string(row) + " has " +
                                  std::to_string(fields.size()) + " fields, the header " +
                                  std::to_string(t.columns.size()));
    }
    t.rows.push_back(std::move(fields));
  }
  return t;
}

/// Every `*_stats.tsv` under `out_dir/sub-*/` (hidden folders skipped), sorted, kept when
/// its subject and session are selected (empty lists keep all).
inline std::vector<fs::path> find_stats_tables(const fs::path& out_dir,
                                               const std::vector<std::string>& participants,
                                               const std::vector<std::string>& sessions) {
  std::vector<fs::path> found;
  for (const fs::path& sub : sorted_dirs(out_dir, "sub-")) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(sub, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name[0] == '.') {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (!ends_with(name, "_stats.tsv") || !it->is_regular_file()) continue;
      const std::string prefix = name.substr(0, name.size() - 10);
      const std::string subject = entity(prefix, "sub"), session = entity(prefix, "ses");
      auto listed = [](const std::vector<std::string>& list, const std::string& v) {
        return list.empty() || std::find(list.begin(), list.end(), v) != list.end();
      };
      if (listed(participants, subject) && listed(sessions, session)) found.push_back(it->path());
    }
  }
  // By folder and name, each CBF table just before its ATT twin (`..._att_stats.tsv`).
  auto key = [](const fs::path& p) {
    const std::string name = p.filename().string();
    const std::string prefix = name.substr(0, name.size() - 10);
    return std::make_tuple(p.parent_path(), stats_base(prefix), stats_map(prefix) == "att");
  };
  std::sort(found.begin(), found.end(),
            [&](const fs::path& a, const fs::path& b) { return key(a) < key(b); });
  return found;
}

/// Writes `out_dir/group_stats.tsv` and its sidecar `group_stats.json` (together, or
/// neither); returns the number of tables and rows gathered.
inline std::pair<std::size_t, std::size_t> write_group_table(
    const fs::path& out_dir, const std::vector<std::string>& participants,
    const std::vector<std::string>& sessions) {
  using Json = nlohmann::ordered_json;
  const auto paths = find_stats_tables(out_dir, participants, sessions);
  if (paths.empty()) {
    throw perfq::Error(out_dir.string() +
                       ": no *_stats.tsv under sub-*/ to gather; run the participant level "
                       "with territory or tissue labels first (see 'perfq bids --help')");
  }
  std::vector<StatsTable> tables;
  for (const auto& p : paths) tables.push_back(read_stats_table(out_dir, p));

  // Columns: the union over tables in order of first appearance (tables made with other
  // options, e.g. percentiles, leave n/a where they lack a column).
  const std::vector<std::string> leading = {"subject", "session", "run", "desc", "map", "source"};
  std::vector<std::string> columns;
  for (const auto& t : tables) {
    for (const auto& c : t.columns) {
      if (std::find(columns.begin(), columns.end(), c) == columns.end()) columns.push_back(c);
    }
  }
  auto or_na = [](const std::string& v) { return v.empty() ? std::string("n/a") : v; };
  std::ostringstream text;
  for (std::size_t k = 0; k < leading.size() + columns.size(); ++k) {
    text << (k ? "\t" : "") << (k < leading.size() ? leading[k] : columns[k - leading.size()]);
  }
  text << "\n";
  std::size_t rows = 0;
  for (const auto& t : tables) {
    std::map<std::string, std::size_t> index;
    for (std::size_t k = 0; k < t.columns.size(); ++k) index[t.columns[k]] = k;
    for (const auto& row : t.rows) {
      text << or_na(entity(t.prefix, "sub")) << "\t" << or_na(entity(t.prefix, "ses")) << "\t"
           << or_na(entity(t.prefix, "run")) << "\t" << or_na(entity(t.prefix, "desc")) << "\t"
           << stats_map(t.prefix) << "\t" << t.relative.generic_string();
      for (const auto& c : columns) {
        auto it = index.find(c);
        text << "\t" << (it == index.end() ? std::string("n/a") : row[it->second]);
      }
      text << "\n";
      ++rows;
    }
  }

  // The sidecar: the leading columns, then each column as the first table's sidecar has it
  // (a CBF table's, when there is one: CBF tables sort before their ATT twins, and the
  // units of ATT rows are stated under `map`).
  Json sidecar;
  sidecar["subject"] = {{"Description", "participant label (sub-<label>), from the table's name"}};
  sidecar["session"] = {{"Description", "session label (ses-<label>); n/a without sessions"}};
  sidecar["run"] = {{"Description", "run index (run-<index>); n/a when the series has none"}};
  sidecar["desc"] = {{"Description",
                      "which participant-level table: tissue (dseg classes), territories "
                      "(arterial territories), borderzone (inside/outside the border zones)"}};
  sidecar["map"] = {
      {"Description",
       "the map the row's statistics are of: cbf (cerebral blood flow, in the units given "
       "below) or att (arterial transit time of multi-delay series, from "
       "<prefix>_desc-<desc>_att_stats.tsv; its value columns are in s)"},
      {"Levels", {{"cbf", "cerebral blood flow"}, {"att", "arterial transit time (s)"}}}};
  sidecar["source"] = {{"Description", "the participant-level table, relative to this folder"}};
  std::vector<fs::path> cbf_first;
  for (const auto& p : paths) {
    if (stats_map(p.stem().string().substr(0, p.stem().string().size() - 6)) == "cbf") {
      cbf_first.push_back(p);
    }
  }
  for (const auto& p : paths) {
    if (std::find(cbf_first.begin(), cbf_first.end(), p) == cbf_first.end()) cbf_first.push_back(p);
  }
  for (const auto& c : columns) {
    for (const auto& p : cbf_first) {
      const Json j = read_json_if_any(p.parent_path() / (p.stem().string() + ".json"));
      if (j.is_object() && j.contains(c)) {
        sidecar[c] = j[c];
        break;
      }
    }
    if (!sidecar.contains(c)) sidecar[c] = {{"Description", "column of the source tables"}};
  }
  Json sources = Json::array();
  for (const auto& t : tables) sources.push_back(t.relative.generic_string());
  sidecar["Sources"] = sources;
  sidecar["GeneratedBy"] = {{"Name", "perfq bids (group)"}, {"Version", perfq::version()}};

  StagedOutputs outputs(out_dir, /*overwrite=*/true);  // the group table is always redone
  perfq::io::write_text_atomic(outputs.stage("group_stats.tsv"), text.str());
  perfq::io::write_text_atomic(outputs.stage("group_stats.json"), sidecar.dump(2) + "\n");
  outputs.commit();
  return {tables.size(), rows};
}

}  // namespace bids_app
}  // namespace perfq_cli
