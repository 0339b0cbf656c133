/// @file
/// @brief Numbers read from text the way perfq reads option values and table cells: the
/// whole text must spell the number, and it must be finite. Part of perfq::io.
#pragma once

#include <perfq/export.hpp>
#include <perfq/version.hpp>

#include <optional>
#include <string>

PERFQ_NAMESPACE_BEGIN
namespace io {

/// @brief The number that all of `text` spells, in std::strtod's syntax (decimal, exponent
/// or hexadecimal form, leading blanks allowed); nothing when it spells none, when
/// characters are left over ("1.5 s", "2,5"), or when the value is not finite ("inf", "nan",
/// "1e999").
PERFQ_IO_API std::optional<double> parse_number(const std::string& text);

/// @brief The integer that all of `text` spells in decimal digits with an optional sign
/// ("42", "-7"; leading blanks allowed); nothing for anything else ("4.0", "1e3", "12a")
/// or beyond the range of long long.
PERFQ_IO_API std::optional<long long> parse_integer(const std::string& text);

}  // namespace io
PERFQ_NAMESPACE_END
