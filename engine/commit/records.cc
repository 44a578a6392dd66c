#include "engine/commit/records.h"

#include <algorithm>

#include "engine/base/check.h"
#include "engine/commit/committer.h"
#include "engine/history/tail.h"

namespace carrel::detail {

Records::Records(store::Store& store, bool follow_log, size_t dirty_max)
    : store_(store), follow_log_(follow_log), dirty_max_(dirty_max) {}

Status Records::recover() {
  if (follow_log_) return Status::ok();
  CARREL_ASSIGN_OR_RETURN(auto txn, store_.begin_read());
  CARREL_ASSIGN_OR_RETURN(uint64_t from, history::checkpoint_log_no(txn.get(), store_));
  uint64_t records = 0;
  CARREL_RETURN_IF_ERROR(
      history::for_each_in_tail(txn.get(), store_, [&](uint64_t, const history::LogRecord&) {
        ++records;
        return Status::ok();
      }));
  CARREL_ASSIGN_OR_RETURN(auto rebuilt, history::tail_records(txn.get(), store_));
  CARREL_ASSIGN_OR_RETURN(auto next, txn.get(store::Db::kMeta, store::kNextObjectNoKey));
  MDB_stat objects{};
  int rc = mdb_stat(txn.get(), store_.dbi(store::Db::kObjects), &objects);
  if (rc != 0) return store::from_mdb(rc, "count the object records");
  // Invariant (6): numbering that restarted below a stored number would give
  // a new object another object's keys, so a damaged counter stops the open.
  if ((next && next->size() != 8) || (!next && objects.ms_entries > 0)) {
    return Status::corruption(
        "'" + store_.dir() + "': meta." + std::string(store::kNextObjectNoKey) + " is " +
        (next ? std::to_string(next->size()) + " bytes, not 8" : std::string("missing")) +
        " while `objects` holds " + std::to_string(objects.ms_entries) +
        " records, so new objects cannot be numbered safely; run `carrel verify`, which names "
        "the highest number stored, and restore the directory from a backup");
  }
  next_number_.store(next ? std::max<uint64_t>(1, store::read_u64(*next, 0)) : 1,
                     std::memory_order_relaxed);
  MutexLock lock(mutex_);
  dirty_.clear();
  for (auto& [id, r] : rebuilt) dirty_.emplace(id, std::move(r));
  checkpoint_no_ = from;
  tail_records_ = records;
  return Status::ok();
}

store::ObjectNo Records::give_number() {
  CARREL_ASSERT(!follow_log_, "records.h (6): only a writable engine creates objects");
  return store::ObjectNo{next_number_.fetch_add(1, std::memory_order_relaxed)};
}

Result<std::optional<store::ObjectRecord>> Records::get(const store::ReadTxn& txn,
                                                        const ObjectId& id) {
  if (follow_log_) return history::current_record(txn.get(), store_, id);
  uint64_t known = 0;
  {
    MutexLock lock(mutex_);
    auto it = dirty_.find(id);
    if (it != dirty_.end()) return std::optional<store::ObjectRecord>{it->second};
    known = checkpoint_no_;
  }
  // Invariant (3): a snapshot older than the last checkpoint may hold an
  // older record of an object the checkpoint cleaned; read a newer one.
  CARREL_ASSIGN_OR_RETURN(uint64_t at, history::checkpoint_log_no(txn.get(), store_));
  if (at >= known) return history::stored_record(txn.get(), store_, id);
  CARREL_ASSIGN_OR_RETURN(auto fresh, store_.begin_read());
  CARREL_ASSIGN_OR_RETURN(uint64_t fresh_at, history::checkpoint_log_no(fresh.get(), store_));
  CARREL_ASSERT(fresh_at >= known, "records.h (3): a checkpoint is committed before it is known");
  return history::stored_record(fresh.get(), store_, id);
}

std::optional<store::ObjectRecord> Records::find_dirty(const ObjectId& id) {
  MutexLock lock(mutex_);
  auto it = dirty_.find(id);
  if (it == dirty_.end()) return std::nullopt;
  return it->second;
}

bool Records::checkpoint_due(size_t group_objects, int64_t now_ms) {
  MutexLock lock(mutex_);
  if (!checkpoint_ms_) checkpoint_ms_ = now_ms;
  if (dirty_.size() + group_objects > dirty_max_) return true;                 // invariant (4)
  if (tail_records_ + group_objects >= history::kTailRecordsMax) return true;  // tail.h (3)
  if (dirty_.empty()) return false;
  return groups_since_ >= kCheckpointGroupsMax || now_ms - *checkpoint_ms_ >= kCheckpointIntervalMs;
}

RecordList Records::checkpoint_set(const RecordList& group) {
  RecordList out;
  {
    MutexLock lock(mutex_);
    out.reserve(dirty_.size() + group.size());
    for (const auto& [id, r] : dirty_) out.emplace_back(id, r);
  }
  out.insert(out.end(), group.begin(), group.end());
  // The group's record is newer: stable sort keeps it after the cached one.
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  RecordList unique;
  unique.reserve(out.size());
  for (auto& e : out) {
    if (!unique.empty() && unique.back().first == e.first)
      unique.back() = std::move(e);
    else
      unique.push_back(std::move(e));
  }
  return unique;
}

void Records::publish(RecordList group, uint64_t log_records,
                      std::optional<uint64_t> checkpoint_log_no, int64_t now_ms) {
  MutexLock lock(mutex_);
  if (checkpoint_log_no) {
    // Invariant (3): the checkpoint wrote every dirty record and the group's.
    CARREL_ASSERT(*checkpoint_log_no >= checkpoint_no_,
                  "records.h (3): checkpoints move forward in the log");
    dirty_.clear();
    checkpoint_no_ = *checkpoint_log_no;
    tail_records_ = 0;
    groups_since_ = 0;
    checkpoint_ms_ = now_ms;
    return;
  }
  for (auto& [id, r] : group) dirty_[id] = std::move(r);
  tail_records_ += log_records;
  ++groups_since_;
  CARREL_ASSERT(dirty_.size() <= dirty_max_ + Committer::kGroupBatchesMax,
                "records.h (4): dirty records stay within the cap plus one group");
}

size_t Records::dirty_count() {
  MutexLock lock(mutex_);
  return dirty_.size();
}

uint64_t Records::checkpoint_log_no() {
  MutexLock lock(mutex_);
  return checkpoint_no_;
}

}  // namespace carrel::detail
