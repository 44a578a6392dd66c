// Bookmarks: printable names of one object's commits.
//
// Form: 16 hex digits of commit time (ms) '-' 16 hex digits of seq '-' the
// object's 32-hex-digit id. Fixed width and lowercase, so lexical order is
// (time, seq) order; commit times never decrease within one object.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "carrel/id.h"
#include "carrel/status.h"

namespace carrel::history {

struct Bookmark {
  int64_t time_ms = 0;
  uint64_t seq = 0;  // 0: before the object's first commit
  ObjectId id;

  std::string to_string() const;
  // InvalidArgument naming the input for anything not of the form above; and,
  // when expected is given, for a bookmark of another object.
  static Result<Bookmark> parse(std::string_view text);
  static Result<Bookmark> parse_for(std::string_view text, const ObjectId& expected);
};

}  // namespace carrel::history
