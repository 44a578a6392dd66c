// Fuzzes the stored alarm entry and dead letter forms (engine/alarm/entry.h):
// decoding arbitrary bytes never crashes; what decodes re-encodes to the same
// bytes (every byte is accounted for); entries built from the input round-trip.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/alarm/entry.h"
#include "fuzz/fuzz_input.h"

namespace {

using namespace carrel;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "alarm_entry: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto e = alarm::decode_entry("n", bytes);
  auto due = alarm::decode_due(bytes);
  if (e.is_ok()) {
    if (alarm::encode_entry(*e) != bytes) fail("decoded entry does not re-encode to its bytes");
    if (!due.is_ok() || *due != e->due_ms) fail("decode_due disagrees with decode_entry");
    if (e->name != "n") fail("the name is not the key's");
  } else if (e.status().code() != Code::kCorruption) {
    fail("a malformed entry is not Corruption");
  }
  auto d = alarm::decode_dead("n", bytes);
  if (d.is_ok() && alarm::encode_dead(*d) != bytes) fail("dead letter does not re-encode");

  fuzz::Input in(data, size);
  AlarmEntry built;
  built.name = in.bytes(8);
  built.due_ms = static_cast<UnixMs>(in.u64());
  built.repeat.kind = static_cast<Repeat::Kind>(in.pick(3));
  built.repeat.every_ms = static_cast<int64_t>(in.u64());
  built.repeat.cron = in.bytes(30);
  built.retry_count = static_cast<int>(in.u32());
  built.payload = in.bytes(64);
  auto back = alarm::decode_entry(built.name, alarm::encode_entry(built));
  if (!back.is_ok() || !(*back == built)) fail("entry round trip");
  DeadLetter dl{built, static_cast<UnixMs>(in.u64()), in.bytes(40)};
  auto dback = alarm::decode_dead(built.name, alarm::encode_dead(dl));
  if (!dback.is_ok() || !(dback->entry == built) || dback->failed_ms != dl.failed_ms ||
      dback->last_error != dl.last_error) {
    fail("dead letter round trip");
  }
  return 0;
}
