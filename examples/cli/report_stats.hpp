// The regional-statistics tables of `perfq report` (cmd_report.cpp): the
// `<prefix>[_desc-<label>]_stats.tsv` tables of perfq stats and perfq bids found beside the map,
// read with the units of their sidecars and rendered as HTML tables; and the JSON sidecar
// helpers that the report page uses too.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace perfq_cli {
namespace report {

using Json = nlohmann::ordered_json;

/// A sidecar value as text: numbers compactly, long numeric lists summarised, objects as
/// "key: value" pairs.
std::string json_text(const Json& v);

/// One row of a parameter table: a label, the sidecar's key (a path into nested objects)
/// and the units.
struct Field {
  std::string label;
  std::vector<std::string> key;
  std::string units;
};

/// Rows label | value | source key, for the fields present in the sidecar (an HTML table).
std::string field_table(const Json& sidecar, const std::vector<Field>& fields,
                        const std::string& source_name);

/// The JSON object in `path`.
/// @throws perfq::InputError when the file cannot be read, is not JSON or not an object
Json read_json(const std::filesystem::path& path);

/// The value at `key`, a path into nested objects, or nullptr.
const Json* find_key(const Json& j, const std::vector<std::string>& key);

/// A statistics table read from its TSV, with the units of `mean` from its sidecar.
struct StatsTable {
  std::filesystem::path path;
  std::string desc;  ///< the desc entity ("tissue"), empty for <prefix>_stats.tsv
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string units;
};

/// Reads a statistics table and the units of its sidecar (`.json` beside it), if any.
/// @throws perfq::InputError for an unreadable or empty file, a row whose field count differs
///         from the header's, or a table without a `mean` column
StatsTable read_stats(const std::filesystem::path& path, const std::string& prefix);

/// `<prefix>_stats.tsv` and `<prefix>_desc-<label>_stats.tsv` in `dir`, sorted: the CBF
/// tables. `<prefix>_desc-<label>_att_stats.tsv` (statistics of ATT, from perfq bids) are not
/// among them: the label must be alphanumeric. Tissue, territories and border zones come
/// first (the BIDS-App's tables, coarse to fine), then the others by name.
std::vector<std::filesystem::path> find_stats(const std::filesystem::path& dir,
                                              const std::string& prefix);

/// A heading, the table's main columns (linked to the TSV, which has them all) as HTML.
std::string stats_html(const StatsTable& table, const std::filesystem::path& html_dir);

}  // namespace report
}  // namespace perfq_cli
