// Fuzzes Bookmark::parse on arbitrary text (engine/history/bookmark.h): an
// accepted bookmark prints back as exactly the input; and bookmarks built from
// the input round-trip and sort as (time, seq) within one object.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/history/bookmark.h"
#include "fuzz/fuzz_input.h"

namespace {

using carrel::history::Bookmark;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "bookmark: %s\n", what);
  std::abort();
}

// Seq 0 names the state before the first commit, which has no commit time:
// its bookmark carries time 0 (Bookmark::parse refuses another).
void keep_seq_zero_timeless(Bookmark& b) {
  if (b.seq == 0) b.time_ms = 0;
}

Bookmark make(carrel::fuzz::Input& in, const carrel::ObjectId& id) {
  Bookmark b;
  b.time_ms = static_cast<int64_t>(in.u64() >> 1);  // commit times are >= 0
  b.seq = in.u64();
  b.id = id;
  keep_seq_zero_timeless(b);
  return b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = Bookmark::parse(text);
  if (parsed.is_ok()) {
    if (parsed->to_string() != text) fail("an accepted bookmark does not print back as its input");
    auto again = Bookmark::parse_for(text, parsed->id);
    if (!again.is_ok() || again->seq != parsed->seq || again->time_ms != parsed->time_ms) {
      fail("parse_for disagrees with parse");
    }
  } else if (parsed.status().code() != carrel::Code::kInvalidArgument) {
    fail("a rejected bookmark is not InvalidArgument");
  }

  carrel::fuzz::Input in(data, size);
  carrel::ObjectId id;
  for (auto& byte : id.bytes) byte = in.byte();
  Bookmark a = make(in, id), b = make(in, id);
  if (in.byte() & 1) b.time_ms = a.time_ms;  // ties on time, ordered by seq
  keep_seq_zero_timeless(b);
  const std::string sa = a.to_string(), sb = b.to_string();
  auto ra = Bookmark::parse(sa);
  if (!ra.is_ok() || ra->time_ms != a.time_ms || ra->seq != a.seq || ra->id != id) {
    fail("to_string does not parse back");
  }
  const bool logical_less = a.time_ms != b.time_ms ? a.time_ms < b.time_ms : a.seq < b.seq;
  if ((sa < sb) != logical_less) fail("lexical order is not (time, seq) order");
  return 0;
}
