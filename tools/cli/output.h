// Output of the carrel CLI: a small JSON writer, aligned tables, and the
// printable forms of times, sizes and arbitrary bytes.
//
// Invariants:
//  (1) JsonWriter emits valid JSON for any input: strings are escaped by
//      transfer::append_json_string (the export format's writer) and bytes
//      that are not valid UTF-8 never reach a JSON string (bytes_field() and
//      field() switch to base64, text() replaces them with U+FFFD).
//  (2) display_bytes() returns valid UTF-8 without control characters, so a
//      hostile key or value cannot garble a terminal or a table.
#pragma once

#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "carrel/clock.h"
#include "carrel/sql.h"
#include "carrel/status.h"
#include "engine/transfer/json_line.h"

namespace carrel::cli {

// One UTF-8 check and base64 codec for the CLI and export/import.
using transfer::base64_encode;
using transfer::is_valid_utf8;
// Valid UTF-8 without control characters as is; otherwise escaped: \xNN for
// bytes that are not UTF-8, \n \t \r \\ and \xNN for control characters.
std::string display_bytes(std::string_view bytes);

// RFC 3339 UTC with milliseconds, e.g. 2024-05-01T12:00:00.000Z; "-" for 0.
std::string format_time(UnixMs t);
// The latest time a command accepts or prints: the last millisecond of year
// 9999, the last RFC 3339 writes with four year digits (and the engine's
// latest alarm time).
constexpr UnixMs kTimeMsMax = 253402300799999;
// The accepted times in words, for errors: "from 0 (1970-01-01T00:00:00Z) to ...".
inline constexpr std::string_view kTimeRange =
    "from 0 (1970-01-01T00:00:00Z) to 253402300799999 (9999-12-31T23:59:59.999Z)";
// The forms parse_time accepts, in words.
inline constexpr std::string_view kTimeForms =
    "RFC 3339 (2024-05-01T12:00:00Z) or epoch milliseconds";
// Epoch milliseconds (all digits) or RFC 3339 (YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)),
// from 0 to kTimeMsMax. InvalidArgument naming the input, `forms` (what the
// command accepts) and the range otherwise.
Result<UnixMs> parse_time(std::string_view text, std::string_view forms = kTimeForms);
// "1 object", "2 objects": n and the noun, singular only for exactly 1.
std::string count_of(uint64_t n, std::string_view one, std::string_view many);
// "512 B", "1.5 KiB", "3.0 MiB".
std::string format_bytes(uint64_t n);

class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);
  JsonWriter& text(std::string_view s);
  JsonWriter& number(int64_t v);
  JsonWriter& number(uint64_t v);
  JsonWriter& number(uint32_t v) { return number(static_cast<uint64_t>(v)); }
  JsonWriter& number(int v) { return number(static_cast<int64_t>(v)); }
  JsonWriter& number(double v);
  JsonWriter& boolean(bool v);
  JsonWriter& null();
  // "name": text when bytes are valid UTF-8; otherwise base64 plus
  // "name_encoding": "base64".
  JsonWriter& bytes_field(std::string_view name, std::string_view bytes);
  // An SQL value: null, number, text, or {"base64": "..."} for a blob.
  JsonWriter& sql_value(const SqlValue& v);

  // Shorthands: key then value. A string that is not valid UTF-8 (a class,
  // name or label of raw bytes) takes the base64 form of bytes_field().
  template <typename T>
  JsonWriter& field(std::string_view k, const T& v) {
    if constexpr (std::is_convertible_v<const T&, std::string_view>) {
      return bytes_field(k, std::string_view(v));
    } else if constexpr (std::is_same_v<T, bool>) {
      key(k);
      return boolean(v);
    } else {
      key(k);
      return number(v);
    }
  }

  const std::string& str() const { return out_; }
  // Writes the document and a newline to stdout.
  void print_line() const;

 private:
  void before_value();
  std::string out_;
  std::vector<bool> first_;  // per open container: no member written yet
  bool after_key_ = false;
};

// A text table: a header row and aligned columns; numeric columns align right.
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {
    right_.assign(headers_.size(), false);
  }
  void align_right(size_t column) { right_[column] = true; }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size(); }
  void print(std::ostream& out = std::cout) const;

 private:
  std::vector<std::string> headers_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

// The human form of an SQL value for a table cell.
std::string display_sql_value(const SqlValue& v);

}  // namespace carrel::cli
