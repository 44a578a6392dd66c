// Fuzzes UndoRecord::decode on arbitrary bytes (engine/history/undo.h): no
// crash, malformed input is Corruption, and what decodes survives
// encode -> decode unchanged (the header agrees with decode_header).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/history/undo.h"

namespace {

using carrel::history::UndoRecord;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "undo: %s\n", what);
  std::abort();
}

bool same(const UndoRecord& a, const UndoRecord& b) {
  if (a.time_ms != b.time_ms || a.seq != b.seq || a.sql_pages_before != b.sql_pages_before ||
      a.entries.size() != b.entries.size()) {
    return false;
  }
  for (size_t i = 0; i < a.entries.size(); ++i) {
    if (a.entries[i].db != b.entries[i].db || a.entries[i].key != b.entries[i].key ||
        a.entries[i].before != b.entries[i].before) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto r = UndoRecord::decode(bytes);
  auto header = UndoRecord::decode_header(bytes);
  if (!r.is_ok()) {
    if (r.status().code() != carrel::Code::kCorruption) fail("malformed record is not Corruption");
    return 0;
  }
  if (!header.is_ok() || header->first != r->time_ms || header->second != r->seq) {
    fail("decode_header disagrees with decode");
  }
  const std::string encoded = r->encode();
  auto again = UndoRecord::decode(encoded);
  if (!again.is_ok() || !same(*r, *again)) fail("encode -> decode changed the record");
  if (again->encode() != encoded) fail("encoding is not stable");
  return 0;
}
