// perfq::io::parse_number and parse_integer: the whole text spells the number, or nothing.
#include <perfq/io/text.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

using perfq::io::parse_integer;
using perfq::io::parse_number;

TEST(Text, ParseNumberReadsTheWholeText) {
  EXPECT_EQ(parse_number("1.5"), 1.5);
  EXPECT_EQ(parse_number("-2"), -2.0);
  EXPECT_EQ(parse_number("3e2"), 300.0);
  EXPECT_EQ(parse_number(" 0.25"), 0.25);  // leading blanks, as strtod
  EXPECT_EQ(parse_number("0x10"), 16.0);
}

TEST(Text, ParseNumberRefusesLeftoversEmptyTextAndNonFiniteValues) {
  for (const std::string text : {"", " ", "1.5 s", "2,5", "1.5 ", "abc", "--1", "inf", "-inf",
                                 "nan", "1e999"}) {
    EXPECT_FALSE(parse_number(text).has_value()) << "'" << text << "'";
  }
}

TEST(Text, ParseIntegerTakesDecimalDigitsWithASignOnly) {
  EXPECT_EQ(parse_integer("42"), 42);
  EXPECT_EQ(parse_integer("-7"), -7);
  EXPECT_EQ(parse_integer("+3"), 3);
  EXPECT_EQ(parse_integer("9223372036854775807"), 9223372036854775807LL);
  for (const std::string text : {"", "4.0", "1e3", "12a", "0x10x", "9223372036854775808", "n/a"}) {
    EXPECT_FALSE(parse_integer(text).has_value()) << "'" << text << "'";
  }
}

}  // namespace
