#include "engine/store/object_record.h"

#include "engine/store/codec.h"

namespace carrel::store {
namespace {
// 1 (carrel-3): fixed-width fields. 2 (carrel-4): a presence mask, then
// varints for the fields present, so a new object's record is about its
// names (object_record.h). Both decode; encode writes the newest.
constexpr uint8_t kFixedVersion = 1;
constexpr uint8_t kCompactVersion = 2;
// version, mask, every field's longest varint, two name lengths
constexpr size_t kCompactBytesMax = 1 + 1 + 6 * kVarintBytesMax + 3 * 5 + 2 * 3;

// The presence mask of version 2: a field whose bit is clear is zero.
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

Result<ObjectRecord> decode_fixed(Reader& r) {
  ObjectRecord o;
  bool ok = r.i64(&o.created_ms) && r.u64(&o.last_seq) && r.i64(&o.last_commit_ms) &&
            r.u64(&o.kv_keys) && r.u64(&o.kv_bytes) && r.u64(&o.log_no) && r.u32(&o.sql_pages) &&
            r.u32(&o.alarms) && r.u32(&o.dead_letters) && r.str16(&o.class_name) &&
            r.str16(&o.name);
  if (!ok || !r.done()) return r.corruption();
  return o;
}

// Reads the field of `bit` when the mask has it; it stays zero otherwise.
template <typename T>
bool optional_varint(Reader& r, uint8_t mask, uint8_t bit, T* v) {
  return (mask & bit) == 0 || r.varint(v);
}

Result<ObjectRecord> decode_compact(Reader& r) {
  ObjectRecord o;
  uint8_t mask = 0;
  uint64_t commit_after_created = 0;
  bool ok = r.u8(&mask) && r.svarint(&o.created_ms) &&
            optional_varint(r, mask, kLastSeq, &o.last_seq) &&
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
  out.reserve(kCompactBytesMax + class_name.size() + name.size());
  Writer w(&out);
  w.version(kCompactVersion);
  uint8_t mask = (last_seq ? kLastSeq : 0) | (last_commit_ms ? kLastCommit : 0) |
                 (kv_keys ? kKvKeys : 0) | (kv_bytes ? kKvBytes : 0) | (log_no ? kLogNo : 0) |
                 (sql_pages ? kSqlPages : 0) | (alarms ? kAlarms : 0) |
                 (dead_letters ? kDeadLetters : 0);
  w.u8(mask);
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
  uint8_t version = 0;
  if (!r.version_in(kFixedVersion, kCompactVersion, &version)) {
    return r.corruption("unknown version or empty");
  }
  return version == kFixedVersion ? decode_fixed(r) : decode_compact(r);
}

}  // namespace carrel::store
