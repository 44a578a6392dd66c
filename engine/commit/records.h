// The object-record cache: the committer keeps the records it changed since
// the last checkpoint here instead of rewriting an `objects` leaf per object
// per group commit.
//
// Invariants:
//  (1) For every object committed since the last checkpoint, the cache holds
//      its newest committed record (dirty); `objects` holds the newest record
//      of every other object. The log records from meta.checkpoint_log_no on
//      rebuild the dirty ones from `objects` (history/tail.h), which is how
//      recovery at open and other processes read them.
//  (2) The cache changes only after mdb_txn_commit succeeded, and before the
//      committer publishes the commit's durable_seqs: a reader that read an
//      object's durable_seq D, then looks its record up, gets last_seq >= D.
//      A failed commit leaves the cache as it was.
//  (3) A checkpoint writes every dirty record (in id order, through one
//      cursor) and meta.checkpoint_log_no in one group's write transaction;
//      its records leave the cache only after that transaction committed, so
//      a lookup that misses finds the record in `objects` of any snapshot
//      whose checkpoint_log_no is at least the cache's.
//  (4) Bounded memory: a checkpoint is due once the dirty records would pass
//      kDirtyRecordsMax, so the cache holds at most kDirtyRecordsMax plus one
//      group's objects. No clean record is kept.
//  (5) A new object's record is written to `objects` by the group that
//      creates it (so class and name are always stored), and after that only
//      by checkpoints. It does not become dirty: `objects` holds it whole.
//  (6) Numbers (store/keys.h (3)): an object with no record is given the
//      next number when it is first loaded (give_number), before any of its
//      values is sealed under a key that holds it; the group that creates it
//      stores the number in its record and raises meta.next_object_no past
//      it, which is where the count resumes at open. A number is given once
//      per engine lifetime; one whose object never commits is skipped.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "carrel/id.h"
#include "carrel/status.h"
#include "engine/base/mutex.h"
#include "engine/store/object_record.h"
#include "engine/store/store.h"

namespace carrel::detail {

using RecordList = std::vector<std::pair<ObjectId, store::ObjectRecord>>;

class Records {
 public:
  // Invariant (4).
  static constexpr size_t kDirtyRecordsMax = 16384;
  // A checkpoint is also due after this many group commits or this long
  // since the last one (when anything is dirty), so the log tail recovery
  // reads stays short under any load.
  static constexpr uint64_t kCheckpointGroupsMax = 1024;
  static constexpr int64_t kCheckpointIntervalMs = 2000;
  static_assert(kDirtyRecordsMax >= 1024 && kDirtyRecordsMax <= (size_t{1} << 20),
                "the dirty cap bounds the cache's memory and a checkpoint's size");
  static_assert(kCheckpointGroupsMax > 0 && kCheckpointIntervalMs > 0);

  // follow_log: another process writes (a read-only engine), so every
  // lookup rebuilds the record from the log tail instead of the cache.
  // dirty_max: the cap of invariant (4), lower only in tests.
  Records(store::Store& store, bool follow_log, size_t dirty_max = kDirtyRecordsMax);

  // At open, before any commit or lookup: every record the log tail changes
  // becomes dirty (invariant (1)), and numbering resumes (invariant (6)).
  Status recover();

  // Any thread of a writable engine: the number for an object that has no
  // record (invariant (6)).
  store::ObjectNo give_number();

  // Any thread. The newest committed record of id, at least as new as what
  // txn holds (invariant (2), (3)); nullopt when it never committed.
  Result<std::optional<store::ObjectRecord>> get(const store::ReadTxn& txn, const ObjectId& id);

  // The committer thread only, below.
  // The dirty record of id, if any.
  std::optional<store::ObjectRecord> find_dirty(const ObjectId& id);
  // Whether the next group checkpoints, given how many objects it writes.
  bool checkpoint_due(size_t group_objects, int64_t now_ms);
  // Every dirty record with the group's records over them, in id order.
  RecordList checkpoint_set(const RecordList& group);
  // After a successful commit (invariant (2)): the group's records, how many
  // log records it appended, and the checkpoint it wrote, if any.
  void publish(RecordList group, uint64_t log_records, std::optional<uint64_t> checkpoint_log_no,
               int64_t now_ms);
  size_t dirty_count();
  uint64_t checkpoint_log_no();

 private:
  store::Store& store_;
  const bool follow_log_;
  const size_t dirty_max_;
  Mutex mutex_;
  std::unordered_map<ObjectId, store::ObjectRecord> dirty_ GUARDED_BY(mutex_);
  uint64_t checkpoint_no_ GUARDED_BY(mutex_) = 1;  // meta.checkpoint_log_no, as committed
  uint64_t tail_records_ GUARDED_BY(mutex_) = 0;   // log records since the checkpoint
  uint64_t groups_since_ GUARDED_BY(mutex_) = 0;
  std::optional<int64_t> checkpoint_ms_ GUARDED_BY(mutex_);
  std::atomic<uint64_t> next_number_{1};  // invariant (6)
};

}  // namespace carrel::detail
