// A dataset's participants.tsv: the per-participant values perfq uses (the haematocrit, for
// the arterial blood T1; include/perfq/io/bids.hpp).
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/text.hpp>
#include <perfq/protocol.hpp>

#include "bids_internal.hpp"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {
std::optional<double> participant_hematocrit(const std::string& bids_dir,
                                             const std::string& participant) {
  namespace fs = std::filesystem;
  const std::string path = (fs::path(bids_dir) / "participants.tsv").string();
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  std::string text = detail::read_text_file(path, "participants table");
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // UTF-8 byte-order mark
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  if (lines.empty()) return std::nullopt;
  const std::vector<std::string> header = detail::tab_cells(lines.front());
  const auto id = std::find(header.begin(), header.end(), "participant_id");
  if (id == header.end()) {
    throw InputError(path, "participant_id", "required column not found (BIDS requires it)");
  }
  std::size_t column = header.size();
  for (const char* name : {"hematocrit", "haematocrit", "Hct", "hct", "HCT"}) {
    const auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end()) continue;
    if (column != header.size()) {
      throw InputError(
          path, *it, "two haematocrit columns (" + header[column] + " and " + *it + "); keep one");
    }
    column = static_cast<std::size_t>(it - header.begin());
  }
  if (column == header.size()) return std::nullopt;
  const std::size_t id_column = static_cast<std::size_t>(id - header.begin());
  const std::string label = participant.rfind("sub-", 0) == 0 ? participant : "sub-" + participant;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> cells = detail::tab_cells(lines[i]);
    if (id_column >= cells.size() || cells[id_column] != label) continue;
    const std::string row = "row of " + label + " (line " + std::to_string(i + 1) + ")";
    const std::string value = column < cells.size() ? cells[column] : std::string();
    if (value.empty() || value == "n/a") return std::nullopt;
    const std::optional<double> hct = parse_number(value);
    if (!hct) {
      throw InputError(path, header[column],
                       row + ": '" + value + "' is not a number (a fraction, e.g. 0.42, or n/a)");
    }
    try {
      blood_t1_from_hematocrit(*hct);
    } catch (const InvalidArgument& e) {
      throw InputError(path, header[column], row + ": " + e.what());
    }
    return hct;
  }
  return std::nullopt;
}

}  // namespace io
PERFQ_NAMESPACE_END
