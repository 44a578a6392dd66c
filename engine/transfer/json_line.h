// The encodings of the export format (docs/export-format.md): one flat JSON
// object per line, with byte strings in base64.
//
// Invariants:
//  (1) A line is one JSON object whose values are strings, integers or
//      booleans; nested objects, arrays, null and fractions are refused.
//  (2) JsonLine::parse(JsonLine::text()) gives back the same fields, and
//      base64_decode(base64_encode(b)) == b for every byte string b.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>

#include "carrel/status.h"

namespace carrel::transfer {

// The one JSON string writer and base64 codec of carrel: export/import and
// the CLI's JSON output both use these.

// Length of the UTF-8 sequence at s[i], or 0 when it is not valid UTF-8
// (overlong forms, surrogates and code points past U+10FFFF are invalid).
// REQUIRES: i < s.size().
size_t utf8_sequence(std::string_view s, size_t i);
bool is_valid_utf8(std::string_view s);

// What a JSON string does with bytes that are not valid UTF-8.
enum class InvalidUtf8 {
  kPassThrough,  // copied as they are: export format v1's text fields (docs/export-format.md)
  kReplace,      // each such byte becomes U+FFFD, so the document is valid JSON
};
// Appends s as a quoted JSON string: \" \\ \n \r \t, \u00XX for the other
// control characters, everything else as is (invalid UTF-8 per `invalid`).
void append_json_string(std::string* out, std::string_view s, InvalidUtf8 invalid);

// Standard alphabet (RFC 4648 section 4) with '=' padding.
std::string base64_encode(std::string_view bytes);
// InvalidArgument for a length that is not a multiple of 4, a character
// outside the alphabet, or misplaced padding.
Result<std::string> base64_decode(std::string_view text);

class JsonLine {
 public:
  using Value = std::variant<std::string, int64_t, bool>;

  // Fields keep the order they were added in (the header's first field names
  // the format, so a reader can tell an export at a glance).
  JsonLine& add(std::string_view key, std::string_view value);
  JsonLine& add(std::string_view key, const char* value) {
    return add(key, std::string_view(value));
  }
  JsonLine& add(std::string_view key, int64_t value);
  JsonLine& add(std::string_view key, bool value);
  // The line, without its newline. Strings are escaped as JSON requires;
  // bytes >= 0x80 pass through (callers base64 anything that is not UTF-8).
  const std::string& text() const { return text_; }

  // Parses one line. InvalidArgument naming the column for anything that is
  // not a flat object as described in invariant (1), or a repeated key.
  static Result<std::map<std::string, Value, std::less<>>> parse(std::string_view line);

 private:
  void key(std::string_view k);
  std::string text_;
};

}  // namespace carrel::transfer
