// Private: the small text helpers of the library's readers and messages, written once.
#pragma once

#include <perfq/version.hpp>

#include <algorithm>
#include <cctype>
#include <sstream>
#include <string>

PERFQ_NAMESPACE_BEGIN
namespace strings {

/// `text` in lower case (ASCII).
inline std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

/// `text` without leading and trailing blanks (space, tab, CR, LF, VT, FF).
inline std::string trim(const std::string& text) {
  const char* space = " \t\r\n\v\f";
  const auto first = text.find_first_not_of(space);
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(space);
  return text.substr(first, last - first + 1);
}

/// Whether `text` ends with `suffix`.
inline bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// A number for a message, as a stream writes it (6 significant digits).
inline std::string format_number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace strings
PERFQ_NAMESPACE_END
