#include "engine/store/object_record.h"

#include "engine/store/codec.h"

namespace carrel::store {
namespace {
constexpr uint8_t kRecordVersion = 1;
constexpr size_t kFixedBytes = 1 + 8 * 6 + 4 * 3 + 2 + 2;
}  // namespace

std::string ObjectRecord::encode() const {
  std::string out;
  out.reserve(kFixedBytes + class_name.size() + name.size());
  Writer w(&out);
  w.version(kRecordVersion);
  w.i64(created_ms);
  w.u64(last_seq);
  w.i64(last_commit_ms);
  w.u64(kv_keys);
  w.u64(kv_bytes);
  w.u64(log_no);
  w.u32(sql_pages);
  w.u32(alarms);
  w.u32(dead_letters);
  w.str16(class_name);
  w.str16(name);
  return out;
}

Result<ObjectRecord> ObjectRecord::decode(std::string_view b) {
  Reader r(b, "object record");
  ObjectRecord o;
  if (!r.version(kRecordVersion)) return r.corruption("unknown version or empty");
  bool ok = r.i64(&o.created_ms) && r.u64(&o.last_seq) && r.i64(&o.last_commit_ms) &&
            r.u64(&o.kv_keys) && r.u64(&o.kv_bytes) && r.u64(&o.log_no) && r.u32(&o.sql_pages) &&
            r.u32(&o.alarms) && r.u32(&o.dead_letters) && r.str16(&o.class_name) &&
            r.str16(&o.name);
  if (!ok || !r.done()) return r.corruption();
  return o;
}

}  // namespace carrel::store
