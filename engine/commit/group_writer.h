// Applies sealed batches to one LMDB write transaction.
//
// Invariants:
//  (1) Every change to a tracked database (kv, pages, alarms, dead) goes
//      through write(), which keeps the derived state in the same transaction:
//      the timetable (`schedule`) for alarms, the object record's counters,
//      and the batch's log record (before-image on first touch).
//  (2) Object records are read once per group (from the record cache, else
//      `objects`) and handed to the cache after the commit; `objects` is
//      written at finish() only for objects this group creates and at a
//      checkpoint (records.h (3), (5)); a group that creates objects raises
//      meta.next_object_no past their numbers (records.h (6)).
//  (3) A GroupWriter is used by the holder of the committer role only
//      (committer.h (1)): the committer thread, or a caller committing its
//      own batch (committer.h (10)).
//  (4) Each batch with writes appends one log record under the next log
//      number (with undo entries when history is kept, history/undo.h (8)),
//      and the object record's log_no names it (0 with history off;
//      engine/history/undo.h (1), (3)); meta.next_log_no is written only at
//      a checkpoint (undo.h (1)), so a commit dirties no `meta` page.
//  (5) write() descends the tree once per key: a cursor positioned by the
//      before-image's lookup does the put (MDB_CURRENT) or delete. Its cursors
//      belong to the write transaction, which frees them when it ends.
//  (6) A SQL page written with the bytes it already holds is not written
//      (no LMDB page is dirtied for it, and it needs no undo). A page changed
//      in place gets its undo as a delta against the new value
//      (history/undo.h (7)); when the same batch writes the key again, the
//      delta is first turned back into the whole before-image, since its
//      base is about to change.
//  (7) A batch that writes SQL pages carries the file's new length
//      (sql_pages) and stores no page at or past it: pages a truncate cut off
//      come as deletes (engine/loop/page_source.h (2)).
#pragma once

#include <lmdb.h>

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "carrel/status.h"
#include "engine/commit/batch.h"
#include "engine/commit/records.h"
#include "engine/history/undo.h"
#include "engine/store/object_record.h"
#include "engine/store/page_delta.h"
#include "engine/store/redo.h"
#include "engine/store/store.h"

namespace carrel::detail {

std::string encode_message(const OutMessage& m);
Result<OutMessage> decode_message(std::string_view bytes);

class GroupWriter {
 public:
  // history_commits_max: per-object cap on the log records a restore may
  // use, 0 for none (history/undo.h ChainWalk).
  GroupWriter(store::Store& store, Records& records, MDB_txn* txn, int64_t now_ms,
              bool keep_history, uint64_t history_commits_max)
      : store_(store),
        records_(records),
        txn_(txn),
        now_ms_(now_ms),
        keep_history_(keep_history),
        history_commits_max_(history_commits_max) {}

  // Every put and delete is also recorded in `ops` (store/redo.h), when set.
  void record_redo(store::RedoOps* ops) { redo_ = ops; }

  // Writes one batch. On error the whole transaction must be aborted.
  Status apply(const CommitBatch& batch);
  // Writes the records of created objects, or every dirty record when
  // checkpoint (records.h (3)), and the meta counters; call once after the
  // last apply().
  Status finish(bool checkpoint);

  // Objects this group wrote.
  size_t object_count() const { return objects_.size(); }
  // Their records, for the cache once the commit succeeded (records.h (2)),
  // but for the objects it created, whose records finish() stored.
  RecordList take_records();
  // Log records this group appended.
  uint64_t log_records() const { return log_records_; }
  // meta.checkpoint_log_no, when finish() wrote a checkpoint.
  std::optional<uint64_t> checkpoint_log_no() const { return checkpoint_no_; }

  size_t bytes_written() const { return bytes_written_; }
  // Messages stored by this group, with their outbox numbers.
  std::vector<std::pair<uint64_t, OutMessage>>& sent() { return sent_; }
  // The earliest due time among alarm entries this group wrote (for the scheduler).
  std::optional<int64_t> earliest_alarm() const { return earliest_alarm_; }
  // Commit time given to the batch's seq (for bookmarks).
  int64_t commit_ms_of(const ObjectId& id);

 private:
  struct ObjectState {
    ObjectId id;
    store::ObjectRecord record;
    history::LogRecord log;
    // This batch's first touches: each key's index in log.undo.
    std::map<std::pair<uint8_t, std::string>, size_t> touched;
    bool created = false;  // no record before this group (records.h (5))
  };
  Result<ObjectState*> load(const CommitBatch& batch);
  // value: the stored bytes to put, nullopt to delete.
  Status write(ObjectState& st, store::Db db, const std::string& key,
               std::optional<std::string_view> value);
  // A write's before-image and value; for a SQL page changed in place, the
  // runs where they differ (store/page_delta.h), found once, when a log first
  // asks, and encoded by each log that keeps a delta.
  struct Change {
    Change(store::Db db, const std::optional<std::string>& old_value,
           std::optional<std::string_view> new_value)
        : old(old_value),
          value(new_value),
          page_in_place(db == store::Db::kPages && old && value && old->size() == value->size()) {}
    const std::optional<std::string>& old;
    const std::optional<std::string_view> value;
    const bool page_in_place;
    std::optional<store::PageRuns> runs;
    const store::PageRuns& page_runs() {
      if (!runs) runs = store::find_page_runs(*old, *value);
      return *runs;
    }
  };
  // Records the put in the redo ops (redo_ set): a SQL page changed in
  // place as its delta from the old page (store/redo.h (10)), anything else whole.
  void note_redo(store::Db db, std::string_view key, Change& change);
  // Records key's before-image in the batch's log record on first touch
  // (invariant (6)).
  Status note_undo(ObjectState& st, store::Db db, const std::string& key, Change& change);
  // The before-image a page delta entry of log record `no` stands for,
  // rebuilt from the page's current value (history/undo.h (7)).
  Result<std::string> rebuild_page(const history::UndoEntry& e, uint64_t no);
  Status clear_range(ObjectState& st, store::Db db, const std::string& from, const std::string& to);
  Status apply_restore(ObjectState& st, const ObjectId& id, uint64_t to_seq);
  Result<MDB_cursor*> cursor(store::Db db);
  Status put_raw(store::Db db, std::string_view key, std::string_view value);
  Status del_raw(store::Db db, std::string_view key);
  Result<std::optional<std::string>> get_raw(store::Db db, std::string_view key);
  Result<uint64_t> next_message_no();
  Result<uint64_t> next_log_no();
  Result<uint64_t> peek_log_no();
  Status write_checkpoint();

  store::Store& store_;
  Records& records_;
  MDB_txn* txn_;
  int64_t now_ms_;
  bool keep_history_;
  uint64_t history_commits_max_;
  std::unordered_map<ObjectId, ObjectState> objects_;
  size_t bytes_written_ = 0;
  std::vector<std::pair<uint64_t, OutMessage>> sent_;
  std::optional<int64_t> earliest_alarm_;
  std::optional<uint64_t> message_no_;
  // Past the number of every object this group creates (records.h (6)).
  std::optional<uint64_t> next_object_no_;
  std::optional<uint64_t> log_no_;  // the next log number, read once per group
  uint64_t log_records_ = 0;
  std::optional<uint64_t> checkpoint_no_;
  MDB_cursor* cursors_[store::kDbCount] = {};  // invariant (5), opened on first use
  store::RedoOps* redo_ = nullptr;
};

}  // namespace carrel::detail
