// The per-object record in the `objects` database.
//
// Encoding (codec.h): version 2 (format carrel-4) is a presence mask, the
// creation time, the nonzero fields as varints (the commit time as its
// distance from the creation) and the class and name with varint lengths:
// 30 bytes for a KV-only object with short names, where version 1 (carrel-3)
// took 78 with every field fixed-width. decode reads both, so a directory
// migrated from carrel-3 holds records of either version; encode writes 2.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "carrel/status.h"

namespace carrel::store {

struct ObjectRecord {
  std::string class_name;
  std::string name;
  int64_t created_ms = 0;
  uint64_t last_seq = 0;        // 0: never committed
  int64_t last_commit_ms = 0;
  uint64_t kv_keys = 0;
  uint64_t kv_bytes = 0;        // key + value bytes
  uint32_t sql_pages = 0;       // the SQL main database file's length in pages
  uint32_t alarms = 0;          // entries in the alarm queue
  uint32_t dead_letters = 0;
  uint64_t log_no = 0;  // the newest history log record (0: none)

  std::string encode() const;
  // Any known version; a malformed record is Corruption.
  static Result<ObjectRecord> decode(std::string_view bytes);
  bool operator==(const ObjectRecord&) const = default;
};

}  // namespace carrel::store
