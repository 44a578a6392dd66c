#include "engine/history/bookmark.h"

#include <cstdio>

namespace carrel::history {
namespace {
constexpr size_t kBookmarkChars = 16 + 1 + 16 + 1 + 32;

bool parse_hex64(std::string_view s, uint64_t* out) {
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return false;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}
}  // namespace

std::string Bookmark::to_string() const {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%016llx-%016llx-", static_cast<unsigned long long>(time_ms),
                static_cast<unsigned long long>(seq));
  return std::string(buf) + id.to_hex();
}

Result<Bookmark> Bookmark::parse(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status::invalid_argument("bookmark '" + std::string(text.substr(0, 100)) + "' " +
                                    std::string(why) +
                                    "; expected 16 hex digits, '-', 16 hex digits, '-', 32 hex digits");
  };
  if (text.size() != kBookmarkChars) return bad("has the wrong length");
  if (text[16] != '-' || text[33] != '-') return bad("lacks its separators");
  Bookmark b;
  uint64_t time = 0;
  if (!parse_hex64(text.substr(0, 16), &time) || !parse_hex64(text.substr(17, 16), &b.seq)) {
    return bad("has a character that is not a lowercase hex digit");
  }
  if (time > static_cast<uint64_t>(INT64_MAX)) {
    return bad("has time " + std::string(text.substr(0, 16)) +
               ", out of range: a bookmark's time (epoch milliseconds) is at most 7fffffffffffffff");
  }
  b.time_ms = static_cast<int64_t>(time);
  std::string_view id = text.substr(34);
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return bad("has a character that is not a lowercase hex digit");
    }
  }
  CARREL_ASSIGN_OR_RETURN(b.id, ObjectId::parse(id));
  // Seq 0 names the object before its first commit, which has no time.
  if (b.seq == 0 && b.time_ms != 0) {
    return Status::invalid_argument("bookmark '" + std::string(text) +
                                    "' names seq 0 (the object before its first commit) with a "
                                    "time; that state's bookmark has time 0: " +
                                    Bookmark{0, 0, b.id}.to_string());
  }
  return b;
}

Result<Bookmark> Bookmark::parse_for(std::string_view text, const ObjectId& expected) {
  CARREL_ASSIGN_OR_RETURN(Bookmark b, parse(text));
  if (b.id != expected) {
    return Status::invalid_argument("bookmark '" + std::string(text) + "' belongs to object " +
                                    b.id.to_hex() + ", not " + expected.to_hex());
  }
  return b;
}

}  // namespace carrel::history
