// Undo records: the before-images of one commit, stored in `history`.
//
// Invariants:
//  (1) An undo record holds, for every LMDB key the commit changed, the value
//      that key had before the commit (or its absence), captured on first touch.
//  (2) Applying an object's undo records newest first, down to seq s + 1,
//      yields exactly the state after commit s (KV, pages, alarms, timetable,
//      dead letters, and the object record's sql_pages).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carrel/status.h"
#include "engine/store/store.h"

namespace carrel::history {

struct UndoEntry {
  store::Db db;
  std::string key;                   // the full LMDB key (object prefix included)
  std::optional<std::string> before; // nullopt: the key did not exist
};

struct UndoRecord {
  int64_t time_ms = 0;
  uint64_t seq = 0;
  uint32_t sql_pages_before = 0;
  std::vector<UndoEntry> entries;

  std::string encode() const;
  static Result<UndoRecord> decode(std::string_view bytes);
  // Reads only time and seq (cheap: for bookmark_for_time and retention).
  static Result<std::pair<int64_t, uint64_t>> decode_header(std::string_view bytes);
};

}  // namespace carrel::history
