// The per-object record in the `objects` database.
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
  static Result<ObjectRecord> decode(std::string_view bytes);
  bool operator==(const ObjectRecord&) const = default;
};

}  // namespace carrel::store
