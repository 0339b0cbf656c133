// JSON files read by the perfq tool. Nesting is bounded before parsing
// (perfq::io::check_json_nesting): the code that uses the values (dump, copies, the report's
// rendering) recurses once per level, and no file may exhaust its stack.
#pragma once

#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace perfq_cli {

/// The text of the file at `path`; nothing when it cannot be read.
inline std::optional<std::string> read_file_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return text.str();
}

/// The JSON value in the file at `path`, for optional files: null when the file cannot be
/// read; discarded (is_discarded()) when it is not JSON or nests deeper than perfq reads.
inline nlohmann::ordered_json read_json_if_any(const std::filesystem::path& path) {
  const auto text = read_file_text(path);
  if (!text) return nullptr;
  try {
    perfq::io::check_json_nesting(*text, path.string());
  } catch (const perfq::InputError&) {
    return nlohmann::ordered_json(nlohmann::ordered_json::value_t::discarded);
  }
  return nlohmann::ordered_json::parse(*text, nullptr, false);
}

}  // namespace perfq_cli
