// The per-object record in the `objects` database.
//
// Encoding (codec.h): version 3 (format carrel-7) is a presence mask, the
// object's number, the creation time, the nonzero fields as varints (the
// commit time as its distance from the creation) and the class and name with
// varint lengths: about 33 bytes for a KV-only object with short names.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "carrel/status.h"
#include "engine/store/keys.h"

namespace carrel::store {

struct ObjectRecord {
  ObjectNo number;  // the prefix of its keys (keys.h (2)); never 0 once stored
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
