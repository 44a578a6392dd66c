// The one JSON string writer of carrel (engine/transfer/json_line.h), used by
// export/import and the CLI's --json output, and the CLI's "did you mean".
#include <gtest/gtest.h>

#include <string>

#include "engine/transfer/json_line.h"
#include "tools/cli/nearest_word.h"

namespace carrel {
namespace {

using transfer::append_json_string;
using transfer::InvalidUtf8;

std::string json(std::string_view s, InvalidUtf8 invalid) {
  std::string out;
  append_json_string(&out, s, invalid);
  return out;
}

TEST(JsonTextTest, EscapesQuotesBackslashAndControlCharacters) {
  EXPECT_EQ(json(std::string("a\"b\\c\n\r\t\x01\x1f", 10), InvalidUtf8::kReplace),
            "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u001f\"");
  EXPECT_EQ(json(std::string("\0", 1), InvalidUtf8::kReplace), "\"\\u0000\"");
}

TEST(JsonTextTest, ValidUtf8PassesThroughInBothModes) {
  const std::string text = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
  EXPECT_EQ(json(text, InvalidUtf8::kReplace), "\"" + text + "\"");
  EXPECT_EQ(json(text, InvalidUtf8::kPassThrough), "\"" + text + "\"");
}

TEST(JsonTextTest, InvalidUtf8IsReplacedOrPassedThroughAsAsked) {
  const std::string raw =
      "a\xff"
      "b\xc3";  // a stray byte, then a cut sequence
  EXPECT_EQ(json(raw, InvalidUtf8::kReplace), "\"a\\ufffdb\\ufffd\"");
  // Export format v1 keeps text bytes as they are (docs/export-format.md).
  EXPECT_EQ(json(raw, InvalidUtf8::kPassThrough), "\"" + raw + "\"");
}

TEST(JsonTextTest, ExportLinesParseBackWhatWasWritten) {
  const std::string name = std::string("n\x01\"\\\xff", 5);
  transfer::JsonLine line;
  line.add("name", name);
  auto fields = transfer::JsonLine::parse(line.text());
  ASSERT_TRUE(fields.is_ok()) << fields.status().to_string();
  EXPECT_EQ(std::get<std::string>(fields->at("name")), name);
}

TEST(NearestWordTest, SuggestsOnlyAClearlyNearestWord) {
  const std::vector<std::string> commands = {"objects", "show", "kv", "stats", "sql"};
  EXPECT_EQ(cli::nearest_word("objcts", commands), "objects");
  EXPECT_EQ(cli::nearest_word("shwo", commands), "show");    // a swap is one edit
  EXPECT_EQ(cli::nearest_word("obj", commands), "objects");  // a prefix
  EXPECT_EQ(cli::nearest_word("frobnicate", commands), std::nullopt);
  EXPECT_EQ(cli::nearest_word("sq", std::vector<std::string>{"sql", "sqz"}),
            std::nullopt);  // a tie
}

TEST(NearestWordTest, EditDistanceIsBoundedByTheWordCap) {
  std::string long_a(10000, 'a'), long_b(10000, 'b');
  EXPECT_EQ(cli::edit_distance(long_a, long_b), cli::kEditWordMax);
  EXPECT_EQ(cli::edit_distance("get", "gte"), 1u);
  EXPECT_EQ(cli::edit_distance("", "abc"), 3u);
}

}  // namespace
}  // namespace carrel
