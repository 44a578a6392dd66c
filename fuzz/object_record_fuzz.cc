// Fuzzes ObjectRecord::decode (engine/store/object_record.h) and the codec's
// varints (engine/store/codec.h) on arbitrary bytes: no crash, a malformed
// record is Corruption, what decodes survives encode -> decode unchanged,
// and a varint reads back from exactly the bytes that encode it (one encoding
// per value, codec.h (1)).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/store/codec.h"
#include "engine/store/object_record.h"

namespace {

using carrel::store::ObjectRecord;
using carrel::store::Reader;
using carrel::store::Writer;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "object_record: %s\n", what);
  std::abort();
}

// The input read as varints, one after another, until one fails.
void check_varints(std::string_view bytes) {
  Reader r(bytes, "varints");
  for (size_t at = 0;;) {
    uint64_t v = 0;
    if (!r.varint(&v)) break;
    const size_t now = bytes.size() - r.remaining();
    std::string again;
    Writer(&again).varint(v);
    if (again != bytes.substr(at, now - at)) fail("a varint read back from other bytes");
    at = now;
  }
  Reader s(bytes, "svarints");
  int64_t v = 0;
  while (s.svarint(&v)) {
    std::string again;
    Writer(&again).svarint(v);
    Reader back(again, "svarint");
    int64_t w = 0;
    if (!back.svarint(&w) || w != v || !back.done()) fail("svarint does not round-trip");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_varints(bytes);
  auto r = ObjectRecord::decode(bytes);
  if (!r.is_ok()) {
    if (r.status().code() != carrel::Code::kCorruption) fail("malformed record is not Corruption");
    return 0;
  }
  const std::string encoded = r->encode();
  auto again = ObjectRecord::decode(encoded);
  if (!again.is_ok() || !(*again == *r)) fail("encode -> decode changed the record");
  if (again->encode() != encoded) fail("encoding is not stable");
  return 0;
}
