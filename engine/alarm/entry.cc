#include "engine/alarm/entry.h"

#include "engine/store/codec.h"

namespace carrel::alarm {
namespace {
// Entry: version u8, due i64, repeat kind u8, every_ms i64, retries u32,
// cron str32, payload (the rest). Dead letter: failed i64, last error str32,
// the entry (the rest).
constexpr uint8_t kEntryVersion = 1;
constexpr uint8_t kKindMax = static_cast<uint8_t>(Repeat::Kind::kCron);
constexpr size_t kEntryFixed = 1 + 8 + 1 + 8 + 4 + 4;  // version due kind every retries cron_len
static_assert(static_cast<uint8_t>(Repeat::Kind::kNone) == 0 && kKindMax == 2,
              "the stored repeat kind is the enum's value");

// Names the record and its key in Corruption messages.
std::string record_name(std::string_view what, std::string_view name) {
  return std::string(what) + " '" + std::string(name) + "'";
}

Result<AlarmEntry> read_entry(std::string_view name, store::Reader& r) {
  if (!r.version(kEntryVersion)) return r.corruption("unknown version or empty");
  AlarmEntry e;
  e.name = std::string(name);
  uint8_t kind = 0;
  uint32_t retries = 0;
  bool ok = r.i64(&e.due_ms) && r.u8(&kind) && r.i64(&e.repeat.every_ms) && r.u32(&retries) &&
            r.str32(&e.repeat.cron);
  if (!ok) return r.corruption();
  if (kind > kKindMax) return r.corruption("unknown repeat kind " + std::to_string(kind));
  e.repeat.kind = static_cast<Repeat::Kind>(kind);
  e.retry_count = static_cast<int>(retries);
  e.payload.assign(r.rest());
  return e;
}
}  // namespace

std::string encode_entry(const AlarmEntry& e) {
  std::string out;
  out.reserve(kEntryFixed + e.repeat.cron.size() + e.payload.size());
  store::Writer w(&out);
  w.version(kEntryVersion);
  w.i64(e.due_ms);
  w.u8(static_cast<uint8_t>(e.repeat.kind));
  w.i64(e.repeat.every_ms);
  w.u32(static_cast<uint32_t>(e.retry_count));
  w.str32(e.repeat.cron);
  w.raw(e.payload);
  return out;
}

Result<UnixMs> decode_due(std::string_view b) {
  // The committer's fast path: the version and the due time of a whole entry.
  store::Reader r(b, "alarm entry");
  UnixMs due = 0;
  if (!r.version(kEntryVersion) || !r.i64(&due) || r.remaining() < kEntryFixed - 1 - 8) {
    return r.corruption();
  }
  return due;
}

Result<AlarmEntry> decode_entry(std::string_view name, std::string_view b) {
  const std::string what = record_name("alarm entry", name);
  store::Reader r(b, what.c_str());
  return read_entry(name, r);
}

std::string encode_dead(const DeadLetter& d) {
  std::string out;
  store::Writer w(&out);
  w.i64(d.failed_ms);
  w.str32(d.last_error);
  w.raw(encode_entry(d.entry));
  return out;
}

Result<DeadLetter> decode_dead(std::string_view name, std::string_view b) {
  const std::string what = record_name("dead letter", name);
  store::Reader r(b, what.c_str());
  DeadLetter d;
  if (!r.i64(&d.failed_ms) || !r.str32(&d.last_error)) return r.corruption();
  CARREL_ASSIGN_OR_RETURN(d.entry, read_entry(name, r));
  return d;
}

}  // namespace carrel::alarm
