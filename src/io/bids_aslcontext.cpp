// ASL-BIDS aslcontext files: the volume types of a series, read and named.
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>

#include "bids_internal.hpp"

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {

std::vector<VolumeType> parse_aslcontext(const std::string& tsv_text, const std::string& source) {
  std::vector<std::string> lines;
  {
    std::string text = tsv_text;
    if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // UTF-8 byte-order mark
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(line);
    }
  }
  while (!lines.empty() && detail::trim(lines.back()).empty()) lines.pop_back();
  if (lines.empty()) throw InputError(source, "volume_type", "empty file; expected a header");

  const auto split = detail::tab_cells;
  const std::vector<std::string> header = split(lines.front());
  const auto column = std::find(header.begin(), header.end(), "volume_type");
  if (column == header.end()) {
    throw InputError(
        source, "volume_type",
        "header line is '" + detail::trim(lines.front()) + "'; expected 'volume_type'");
  }
  const std::size_t index = static_cast<std::size_t>(column - header.begin());

  std::vector<VolumeType> types;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::string row = "row " + std::to_string(i) + " (line " + std::to_string(i + 1) + ")";
    const std::vector<std::string> cells = split(lines[i]);
    if (index >= cells.size() || cells[index].empty()) {
      throw InputError(source, "volume_type", row + " is empty");
    }
    try {
      types.push_back(parse_volume_type(cells[index]));
    } catch (const InvalidArgument&) {
      throw InputError(source, "volume_type",
                       row + ": unknown volume type '" + cells[index] +
                           "' (expected control, label, m0scan, deltam, cbf or noRF)");
    }
  }
  if (types.empty()) throw InputError(source, "volume_type", "no rows after the header");
  return types;
}

std::string detail::bids_volume_type(VolumeType type) { return to_string(type); }

}  // namespace io
PERFQ_NAMESPACE_END
