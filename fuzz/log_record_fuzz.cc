// Fuzzes LogRecord::decode on arbitrary bytes (engine/history/undo.h): no
// crash, malformed input is Corruption, and what decodes survives
// encode -> decode unchanged (the header agrees with decode_header, the
// summary with decode_summary).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/history/undo.h"

namespace {

using carrel::history::LogRecord;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "log_record: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto r = LogRecord::decode(bytes);
  auto header = LogRecord::decode_header(bytes);
  auto summary = LogRecord::decode_summary(bytes);
  if (!summary.is_ok() && summary.status().code() != carrel::Code::kCorruption) {
    fail("malformed summary is not Corruption");
  }
  if (r.is_ok()) {
    // The summary (history/tail.h rebuilds object records from it) is the
    // record without its entries.
    LogRecord head = *r;
    head.undo.clear();
    head.redo.clear();
    if (!summary.is_ok() || !(*summary == head)) fail("decode_summary disagrees with decode");
  }
  if (!r.is_ok()) {
    if (r.status().code() != carrel::Code::kCorruption) fail("malformed record is not Corruption");
    if (!header.is_ok() && header.status().code() != carrel::Code::kCorruption) {
      fail("malformed header is not Corruption");
    }
    return 0;
  }
  if (!header.is_ok() || *header != r->header) fail("decode_header disagrees with decode");
  const std::string encoded = r->encode();
  auto again = LogRecord::decode(encoded);
  if (!again.is_ok() || !(*again == *r)) fail("encode -> decode changed the record");
  if (again->encode() != encoded) fail("encoding is not stable");
  return 0;
}
