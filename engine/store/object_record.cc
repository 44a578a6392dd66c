#include "engine/store/object_record.h"

#include "engine/store/codec.h"

namespace carrel::store {
namespace {
// 3 (carrel-7): version 2's presence mask and varints (carrel-4 to carrel-6),
// with the object's number after the mask. Only version 3 decodes: a carrel-7
// directory holds no other (store.cc refuses older formats at open), and an
// older record would not say which keys are the object's.
constexpr uint8_t kVersion = 3;
// version, mask, the number and every field's longest varint, two name lengths
constexpr size_t kRecordBytesMax = 1 + 1 + 7 * kVarintBytesMax + 3 * 5 + 2 * 3;

// The presence mask: a field whose bit is clear is zero.
enum Present : uint8_t {
  kLastSeq = 1 << 0,
  kLastCommit = 1 << 1,
  kKvKeys = 1 << 2,
  kKvBytes = 1 << 3,
  kLogNo = 1 << 4,
  kSqlPages = 1 << 5,
  kAlarms = 1 << 6,
  kDeadLetters = 1 << 7,
};

// Reads the field of `bit` when the mask has it; it stays zero otherwise.
template <typename T>
bool optional_varint(Reader& r, uint8_t mask, uint8_t bit, T* v) {
  return (mask & bit) == 0 || r.varint(v);
}

Result<ObjectRecord> decode_fields(Reader& r) {
  ObjectRecord o;
  uint8_t mask = 0;
  uint64_t commit_after_created = 0;
  bool ok = r.u8(&mask) && r.varint(&o.number.value) && o.number.value != 0 &&
            r.svarint(&o.created_ms) && optional_varint(r, mask, kLastSeq, &o.last_seq) &&
            optional_varint(r, mask, kLastCommit, &commit_after_created) &&
            optional_varint(r, mask, kKvKeys, &o.kv_keys) &&
            optional_varint(r, mask, kKvBytes, &o.kv_bytes) &&
            optional_varint(r, mask, kLogNo, &o.log_no) &&
            optional_varint(r, mask, kSqlPages, &o.sql_pages) &&
            optional_varint(r, mask, kAlarms, &o.alarms) &&
            optional_varint(r, mask, kDeadLetters, &o.dead_letters) && r.vstr(&o.class_name) &&
            r.vstr(&o.name);
  if (!ok || !r.done()) return r.corruption();
  if (mask & kLastCommit) {
    // The inverse of encode's wrapping difference: exact for every pair.
    o.last_commit_ms = static_cast<int64_t>(static_cast<uint64_t>(o.created_ms) +
                                            static_cast<uint64_t>(unzigzag(commit_after_created)));
  }
  return o;
}

}  // namespace

std::string ObjectRecord::encode() const {
  std::string out;
  CARREL_ASSERT(number.value != 0, "keys.h (3): a stored object has a number");
  out.reserve(kRecordBytesMax + class_name.size() + name.size());
  Writer w(&out);
  w.version(kVersion);
  uint8_t mask = (last_seq ? kLastSeq : 0) | (last_commit_ms ? kLastCommit : 0) |
                 (kv_keys ? kKvKeys : 0) | (kv_bytes ? kKvBytes : 0) | (log_no ? kLogNo : 0) |
                 (sql_pages ? kSqlPages : 0) | (alarms ? kAlarms : 0) |
                 (dead_letters ? kDeadLetters : 0);
  w.u8(mask);
  w.varint(number.value);
  w.svarint(created_ms);
  if (last_seq) w.varint(last_seq);
  // The commit time as its distance from the creation: a few bytes, not 8.
  if (last_commit_ms) {
    w.svarint(static_cast<int64_t>(static_cast<uint64_t>(last_commit_ms) -
                                   static_cast<uint64_t>(created_ms)));
  }
  if (kv_keys) w.varint(kv_keys);
  if (kv_bytes) w.varint(kv_bytes);
  if (log_no) w.varint(log_no);
  if (sql_pages) w.varint(sql_pages);
  if (alarms) w.varint(alarms);
  if (dead_letters) w.varint(dead_letters);
  w.vstr(class_name);
  w.vstr(name);
  return out;
}

Result<ObjectRecord> ObjectRecord::decode(std::string_view b) {
  Reader r(b, "object record");
  if (!r.version(kVersion)) return r.corruption("unknown version or empty");
  return decode_fields(r);
}

}  // namespace carrel::store
