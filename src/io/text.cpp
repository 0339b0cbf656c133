// Whole-text number parsing for option values and table cells.
#include <perfq/io/text.hpp>

#include <cmath>
#include <exception>
#include <string>

PERFQ_NAMESPACE_BEGIN
namespace io {

std::optional<double> parse_number(const std::string& text) {
  std::size_t used = 0;
  double v = 0.0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {  // no number (invalid_argument) or out of range
    return std::nullopt;
  }
  if (used == 0 || used != text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<long long> parse_integer(const std::string& text) {
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used, 10);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (used == 0 || used != text.size()) return std::nullopt;
  return v;
}

}  // namespace io
PERFQ_NAMESPACE_END
