#include "engine/alarm/entry.h"

#include "engine/store/keys.h"

namespace carrel::alarm {
namespace {
constexpr uint8_t kEntryVersion = 1;
constexpr size_t kEntryFixed = 1 + 8 + 1 + 8 + 4 + 4;  // version due kind every retries cron_len

Status truncated(std::string_view what, std::string_view name) {
  return Status::corruption(std::string(what) + " '" + std::string(name) + "' is malformed");
}
}  // namespace

std::string encode_entry(const AlarmEntry& e) {
  std::string out;
  out.push_back(static_cast<char>(kEntryVersion));
  store::append_u64(&out, static_cast<uint64_t>(e.due_ms));
  out.push_back(static_cast<char>(e.repeat.kind));
  store::append_u64(&out, static_cast<uint64_t>(e.repeat.every_ms));
  store::append_u32(&out, static_cast<uint32_t>(e.retry_count));
  store::append_u32(&out, static_cast<uint32_t>(e.repeat.cron.size()));
  out.append(e.repeat.cron);
  out.append(e.payload);
  return out;
}

Result<UnixMs> decode_due(std::string_view b) {
  if (b.size() < kEntryFixed || static_cast<uint8_t>(b[0]) != kEntryVersion) {
    return Status::corruption("alarm entry is malformed");
  }
  return static_cast<UnixMs>(store::read_u64(b, 1));
}

Result<AlarmEntry> decode_entry(std::string_view name, std::string_view b) {
  if (b.size() < kEntryFixed || static_cast<uint8_t>(b[0]) != kEntryVersion) {
    return truncated("alarm entry", name);
  }
  AlarmEntry e;
  e.name = std::string(name);
  e.due_ms = static_cast<UnixMs>(store::read_u64(b, 1));
  uint8_t kind = static_cast<uint8_t>(b[9]);
  if (kind > 2) return truncated("alarm entry", name);
  e.repeat.kind = static_cast<Repeat::Kind>(kind);
  e.repeat.every_ms = static_cast<int64_t>(store::read_u64(b, 10));
  e.retry_count = static_cast<int>(store::read_u32(b, 18));
  uint32_t cron_len = store::read_u32(b, 22);
  if (kEntryFixed + cron_len > b.size()) return truncated("alarm entry", name);
  e.repeat.cron.assign(b.substr(kEntryFixed, cron_len));
  e.payload.assign(b.substr(kEntryFixed + cron_len));
  return e;
}

std::string encode_dead(const DeadLetter& d) {
  std::string out;
  store::append_u64(&out, static_cast<uint64_t>(d.failed_ms));
  store::append_u32(&out, static_cast<uint32_t>(d.last_error.size()));
  out.append(d.last_error);
  out.append(encode_entry(d.entry));
  return out;
}

Result<DeadLetter> decode_dead(std::string_view name, std::string_view b) {
  if (b.size() < 12) return truncated("dead letter", name);
  DeadLetter d;
  d.failed_ms = static_cast<UnixMs>(store::read_u64(b, 0));
  uint32_t n = store::read_u32(b, 8);
  if (n > b.size() - 12) return truncated("dead letter", name);  // 12 + n could wrap in 32 bits
  d.last_error.assign(b.substr(12, n));
  CARREL_ASSIGN_OR_RETURN(d.entry, decode_entry(name, b.substr(12 + n)));
  return d;
}

}  // namespace carrel::alarm
