// The history log: one append-only record per commit of an object, in the
// `history` database keyed by a global commit number (store::log_key).
//
// Invariants:
//  (1) Log numbers grow with commit order: a record is appended (MDB_APPEND)
//      under the next number (tail.h next_log_no: one past the log's last
//      record, or meta.next_log_no when larger), so one group commit's records
//      share the log's tail pages, and the log's head is its oldest record.
//      meta.next_log_no is written only at checkpoints (equal to
//      meta.checkpoint_log_no then), not per commit: it matters only when
//      retention deleted the whole log, which it does only below that
//      checkpoint (tail.h (1)), so no number is ever used twice.
//  (2) A record holds, for every LMDB key its commit changed, the value that
//      key had before the commit (or its absence), captured on first touch.
//  (3) An object's records form a chain, newest first: the object record's
//      log_no names its newest record, each record's prev_no the object's
//      record before it (0: none). Along the chain seqs fall by exactly one.
//      The chain ends at prev_no 0 (the first commit, or a commit made with
//      history off) or at a record retention pruned; pruning takes only the
//      log's head, so every missing record is older than every present one.
//  (4) Applying an object's records newest first, down to seq s + 1, yields
//      exactly the state after commit s (KV, pages, alarms, timetable, dead
//      letters, and the object record's sql_pages).
//  (5) The redo section is counted and empty in this build; a later one fills
//      it with after-images in the undo entries' form without a format change.
//  (6) Every log record is encoded and decoded here (LogRecord), nowhere else
//      in the engine.
//  (7) An undo entry of a SQL page the commit changed in place (the page
//      existed before and after, at one size) may hold a delta
//      (page_delta.h) instead of the whole before-image: the bytes that
//      rebuild the before-image from the page the commit left. Restore
//      applies it to the page's current value, which is exactly that page:
//      it applies the object's records newest first (4), so when it reaches
//      commit s every later commit is undone and the page holds what s left
//      (the group writer takes the delta against the key's last value in
//      the commit, and turns it back into a whole before-image if the same
//      commit writes the key again). The rebuilt page is a stored value, so
//      its checksum trailer (store/checksum.h) must verify; a delta whose
//      result does not is Corruption naming the log record. KV values,
//      alarms, dead letters, pages that did not exist and deleted pages keep
//      whole before-images. Entries of the redo section (5) may use the same
//      form, against the value before the commit.
//  (8) Every commit appends a record, also with history off: then it holds no
//      undo entries (undo_kept false) and ends its object's chain (the object
//      record's log_no is 0). Its summary (seq, time, sql_pages_after, the
//      counter deltas) is what rebuilds the object record from the log
//      (history/tail.h).
//  (9) Encoding (store/codec.h): version 4 (format carrel-7) writes the
//      object's id and number, then seqs, times, log numbers, page counts,
//      counter deltas, entry counts and lengths as varints, and an entry
//      whose key starts with the object's prefix (its number, store/keys.h
//      (2)) stores only the rest of the key: a first KV write's record is
//      about 43 bytes (version 2, carrel-3's fixed-width form, took 113).
//      Only version 4 decodes (store.cc refuses older formats).
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carrel/id.h"
#include "carrel/status.h"
#include "engine/store/keys.h"
#include "engine/store/object_record.h"
#include "engine/store/store.h"

namespace carrel::history {

struct UndoEntry {
  store::Db db;
  std::string key;                    // the full LMDB key (object prefix included)
  std::optional<std::string> before;  // nullopt: the key did not exist
  // Invariant (7): `before` holds a page delta against the value the commit
  // left under key, not the before-image itself. Only for Db::kPages.
  bool delta = false;
  bool operator==(const UndoEntry&) const = default;
};

// What the commit changed in the object record's counters (after - before).
struct CounterDeltas {
  int64_t kv_keys = 0;
  int64_t kv_bytes = 0;
  int64_t alarms = 0;
  int64_t dead_letters = 0;
  bool operator==(const CounterDeltas&) const = default;
};

// The fixed head of a record: enough to walk a chain and to prune.
struct LogHeader {
  ObjectId id;
  store::ObjectNo number;  // the object's key prefix (store/keys.h (2))
  uint64_t seq = 0;
  int64_t time_ms = 0;
  uint64_t prev_no = 0;  // invariant (3)
  bool operator==(const LogHeader&) const = default;
};

struct LogRecord {
  LogHeader header;
  uint32_t sql_pages_before = 0;
  uint32_t sql_pages_after = 0;
  CounterDeltas deltas;
  bool undo_kept = true;  // invariant (8): false when the commit ran with history off
  std::vector<UndoEntry> undo;
  std::vector<UndoEntry> redo;  // invariant (5): empty in this build

  std::string encode() const;
  // Any known version (invariant (9)); a malformed record is Corruption.
  static Result<LogRecord> decode(std::string_view bytes);
  // Reads only the header (cheap: for chain walks and retention).
  static Result<LogHeader> decode_header(std::string_view bytes);
  // Reads the header, the page counts, the deltas and undo_kept, not the
  // entries (cheap: for rebuilding object records, history/tail.h).
  static Result<LogRecord> decode_summary(std::string_view bytes);
  bool operator==(const LogRecord&) const = default;
};

// Walks one object's chain newest first (invariant (3)), in any transaction.
// Records with seq <= floor_seq count as absent: the per-object cap
// (history_commits_max) is enforced here, before retention deletes them.
class ChainWalk {
 public:
  // From the newest record the object record of id names (its log_no and
  // last_seq), for the object's number.
  ChainWalk(MDB_txn* txn, MDB_dbi log, const ObjectId& id, const store::ObjectRecord& record,
            uint64_t floor_seq)
      : txn_(txn),
        log_(log),
        id_(id),
        number_(record.number),
        no_(record.log_no),
        seq_(record.last_seq),
        floor_(floor_seq) {}

  struct Step {
    uint64_t no = 0;
    LogHeader header;
    std::string_view bytes;  // valid while the transaction is
  };
  // The next record, nullopt at the chain's end. Corruption when the record
  // under the expected number is another object's, holds another object
  // number (its own keys would decode under another object's prefix), or
  // another seq's, or is
  // missing from the middle of the log (retention prunes only its head), or
  // when the log's first key is not a log number.
  Result<std::optional<Step>> next();

 private:
  // At a missing record: OK when retention pruned it (invariant (3)).
  Status check_pruned() const;
  MDB_txn* txn_;
  MDB_dbi log_;
  ObjectId id_;
  store::ObjectNo number_;
  uint64_t no_;
  uint64_t seq_;
  uint64_t floor_;
};

// The lowest seq whose record the per-object cap still counts (see ChainWalk).
inline uint64_t cap_floor(uint64_t last_seq, uint64_t history_commits_max) {
  return history_commits_max != 0 && last_seq > history_commits_max ? last_seq - history_commits_max
                                                                    : 0;
}

// The before-image that the undo delta of the SQL page under `key` (a pages
// key) in log record `no` rebuilds from `current`, the stored page the
// commit left (nullopt: there is none), as (7) has it: the rebuilt page's
// checksum trailer must verify (store/page_delta.h rebuild_page). Corruption
// naming the record and the page otherwise. Restore and `carrel verify`
// both rebuild through here.
Result<std::string> rebuild_before_image(std::string_view key, std::string_view delta,
                                         std::optional<std::string_view> current, uint64_t no);

}  // namespace carrel::history
