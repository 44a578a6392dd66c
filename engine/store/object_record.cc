#include "engine/store/object_record.h"

#include "engine/store/keys.h"

namespace carrel::store {
namespace {
constexpr uint8_t kRecordVersion = 1;
constexpr size_t kFixedBytes = 1 + 8 * 6 + 4 * 3 + 2 + 2;
}  // namespace

std::string ObjectRecord::encode() const {
  std::string out;
  out.reserve(kFixedBytes + class_name.size() + name.size());
  out.push_back(static_cast<char>(kRecordVersion));
  append_u64(&out, static_cast<uint64_t>(created_ms));
  append_u64(&out, last_seq);
  append_u64(&out, static_cast<uint64_t>(last_commit_ms));
  append_u64(&out, kv_keys);
  append_u64(&out, kv_bytes);
  append_u64(&out, 0);  // reserved
  append_u32(&out, sql_pages);
  append_u32(&out, alarms);
  append_u32(&out, dead_letters);
  out.push_back(static_cast<char>(class_name.size() >> 8));
  out.push_back(static_cast<char>(class_name.size() & 0xff));
  out.append(class_name);
  out.push_back(static_cast<char>(name.size() >> 8));
  out.push_back(static_cast<char>(name.size() & 0xff));
  out.append(name);
  return out;
}

Result<ObjectRecord> ObjectRecord::decode(std::string_view b) {
  if (b.size() < kFixedBytes || static_cast<uint8_t>(b[0]) != kRecordVersion) {
    return Status::corruption("object record of " + std::to_string(b.size()) +
                              " bytes is malformed or of an unknown version");
  }
  ObjectRecord r;
  size_t at = 1;
  r.created_ms = static_cast<int64_t>(read_u64(b, at)), at += 8;
  r.last_seq = read_u64(b, at), at += 8;
  r.last_commit_ms = static_cast<int64_t>(read_u64(b, at)), at += 8;
  r.kv_keys = read_u64(b, at), at += 8;
  r.kv_bytes = read_u64(b, at), at += 8;
  at += 8;  // reserved
  r.sql_pages = read_u32(b, at), at += 4;
  r.alarms = read_u32(b, at), at += 4;
  r.dead_letters = read_u32(b, at), at += 4;
  auto read_str = [&](std::string* s) {
    if (at + 2 > b.size()) return false;
    size_t n = static_cast<uint8_t>(b[at]) << 8 | static_cast<uint8_t>(b[at + 1]);
    at += 2;
    if (at + n > b.size()) return false;
    s->assign(b.substr(at, n));
    at += n;
    return true;
  };
  if (!read_str(&r.class_name) || !read_str(&r.name) || at != b.size()) {
    return Status::corruption("object record strings are truncated");
  }
  return r;
}

}  // namespace carrel::store
