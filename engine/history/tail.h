// The log tail: object records rebuilt from the history log.
//
// The committer writes an object's record to `objects` only at a checkpoint
// (engine/commit/records.h), not at every commit. What a commit changes in
// the record (seq, commit time, SQL pages, the counters) is in its log record
// (undo.h (8)), so the record of any object is its stored record with the log
// records from meta.checkpoint_log_no on applied. Recovery at open, the CLI
// and other processes beside a running engine read records through here.
//
// Invariants:
//  (1) Every log record at or after meta.checkpoint_log_no is present:
//      retention never deletes one (engine_services.cc prune_history_step).
//  (2) A log record applies to a record only when its seq is the record's
//      last_seq + 1; a seq at or below last_seq is already in the stored
//      record (a record written later than the checkpoint, at an object's
//      creation) and is skipped; a gap is Corruption.
//  (3) The tail is bounded: a checkpoint is due before it holds more than
//      kTailRecordsMax records, plus one group commit's.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string_view>

#include "carrel/id.h"
#include "carrel/status.h"
#include "engine/history/undo.h"
#include "engine/store/object_record.h"
#include "engine/store/store.h"

namespace carrel::history {

// Invariant (3): the committer checkpoints once the tail holds this many records.
constexpr uint64_t kTailRecordsMax = 65536;
// meta key of the first log number not covered by `objects`.
constexpr std::string_view kCheckpointLogKey = "checkpoint_log_no";

// meta.checkpoint_log_no in txn; 1 (the whole log) when never written.
Result<uint64_t> checkpoint_log_no(MDB_txn* txn, const store::Store& store);

// meta key of a floor for the next log number, written at checkpoints
// (undo.h (1)).
constexpr std::string_view kNextLogKey = "next_log_no";
// undo.h (1): the number the next log record takes in txn: one past the
// log's last record, or meta.next_log_no when that is larger (1 when neither
// exists). A malformed meta value or log key is Corruption.
Result<uint64_t> next_log_no(MDB_txn* txn, const store::Store& store);

// Applies one log record (its summary) under log number no onto r
// (invariant (2)); *applied tells whether it changed r.
Status apply_to_record(store::ObjectRecord& r, uint64_t no, const LogRecord& summary,
                       bool* applied = nullptr);

// Calls f(no, summary) on every log record at or after the checkpoint, in
// log order.
Status for_each_in_tail(MDB_txn* txn, store::Store& store,
                        const std::function<Status(uint64_t, const LogRecord&)>& f);

// The record of every object the tail changes, stored record plus tail
// (objects whose tail records are all in their stored record are left out).
Result<std::map<ObjectId, store::ObjectRecord>> tail_records(MDB_txn* txn, store::Store& store);

// The record of id as of txn (stored record plus tail); nullopt when the
// object never committed.
Result<std::optional<store::ObjectRecord>> current_record(MDB_txn* txn, store::Store& store,
                                                          const ObjectId& id);

// Calls f(id, record) on every object's record as of txn (stored record plus
// tail), in id order. A malformed stored record is Corruption naming it.
Status for_each_record(MDB_txn* txn, store::Store& store,
                       const std::function<Status(const ObjectId&, const store::ObjectRecord&)>& f);

// The stored record of id in `objects` (no tail); nullopt when absent.
Result<std::optional<store::ObjectRecord>> stored_record(MDB_txn* txn, const store::Store& store,
                                                         const ObjectId& id);

}  // namespace carrel::history
