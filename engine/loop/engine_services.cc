// The engine's background services and administrative calls: message
// delivery, eviction (hibernation), history retention, bookmarks, restore, close.
#include <algorithm>
#include <climits>
#include <future>
#include <unordered_map>

#include "engine/alarm/scheduler.h"
#include "engine/history/bookmark.h"
#include "engine/history/tail.h"
#include "engine/history/undo.h"
#include "engine/loop/engine_core.h"
#include "engine/loop/reply_slot.h"
#include "engine/store/cursor.h"
#include "engine/store/keys.h"
#include "engine/store/object_record.h"

namespace carrel::detail {
namespace {
constexpr size_t kPruneRecordsPerStep = 2000;
constexpr int64_t kPruneIntervalMs = 5000;
// Past active_objects_max the janitor evicts down to max - max / 8, not to max:
// a pass costs O(live objects), and each activation past the limit wakes the
// janitor, so evicting just one object per pass made every new object pay a
// scan of all the others (carrel-bench many-objects).
constexpr size_t kEvictHeadroomDivisor = 8;
static_assert(kEvictHeadroomDivisor >= 2);
// A process that dies in a read transaction pins every page freed after its
// snapshot until its slot is freed: check for dead readers this often.
constexpr int64_t kReaderCheckIntervalMs = 1000;

// One bounded step of history retention. The log is in commit order
// (history/undo.h (1)), so what retention drops is its head: the step deletes
// head records older than cutoff_ms, or hidden by the per-object cap
// (history_commits_max, enforced logically by ChainWalk until now), and stops
// at the first record it keeps. Its cost is the records it deletes, plus one
// object record read per object they belong to when a cap is set.
MaintenanceTask prune_history_step(int64_t cutoff, uint64_t commits_max) {
  return [cutoff, commits_max](store::Store& store, MDB_txn* txn) -> Status {
    // history/tail.h (1): the log tail rebuilds the records the checkpoint
    // has not written; it stays, whatever its age.
    CARREL_ASSIGN_OR_RETURN(uint64_t tail_no, history::checkpoint_log_no(txn, store));
    CARREL_ASSIGN_OR_RETURN(store::Cursor c, store::Cursor::open(store, txn, store::Db::kHistory));
    std::unordered_map<ObjectId, uint64_t> last_seq;  // of objects met, for the cap
    for (size_t n = 0; n < kPruneRecordsPerStep && c.first(); ++n) {
      // A damaged key is Corruption: it is neither deleted nor read past.
      CARREL_ASSIGN_OR_RETURN(uint64_t no, store::decode_u64_key(c.key(), "history"));
      if (no >= tail_no) break;
      auto h = history::LogRecord::decode_header(c.value());
      if (!h.is_ok())
        return h.status().with_context("prune history log record " + std::to_string(no));
      bool doomed = h->time_ms < cutoff;
      if (!doomed && commits_max != 0) {
        auto it = last_seq.find(h->id);
        if (it == last_seq.end()) {
          MDB_val ok = store::to_val(h->id.raw()), ov;
          uint64_t seq = 0;
          if (mdb_get(txn, store.dbi(store::Db::kObjects), &ok, &ov) == 0) {
            auto rec = store::ObjectRecord::decode(store::from_val(ov));
            if (rec.is_ok()) seq = rec->last_seq;
          }
          it = last_seq.emplace(h->id, seq).first;
        }
        doomed = h->seq <= history::cap_floor(it->second, commits_max);
      }
      if (!doomed) break;
      CARREL_RETURN_IF_ERROR(c.del());
    }
    return c.status();
  };
}

// Retention's cutoff: with history off, every record left from an earlier
// run with history on is past it.
int64_t prune_cutoff(int64_t now_ms, int64_t retention_ms) {
  return retention_ms > 0 ? now_ms - retention_ms : INT64_MAX;
}

}  // namespace

void EngineCore::deliver(std::vector<std::pair<uint64_t, OutMessage>>&& messages) {
  for (auto& [no, m] : messages) {
    Status s = Status::not_found("class not registered");
    if (has_class(m.target.class_name)) {
      Event ev;
      ev.kind = EventKind::kMessage;
      ev.object = m.target;
      ev.request = Request{m.method, m.payload};
      ev.message_no = no;
      s = post(std::move(ev));
    }
    if (!s.is_ok()) {
      MutexLock lock(janitor_mutex_);
      parked_messages_.emplace_back(no, std::move(m));
    }
  }
}

void EngineCore::redeliver_parked() {
  std::vector<std::pair<uint64_t, OutMessage>> retry;
  {
    MutexLock lock(janitor_mutex_);
    retry.assign(std::make_move_iterator(parked_messages_.begin()),
                 std::make_move_iterator(parked_messages_.end()));
    parked_messages_.clear();
  }
  if (!retry.empty()) deliver(std::move(retry));
}

namespace {
bool evictable(ObjectSlot& s) REQUIRES(s.mutex) {
  // Invariant (3) of object.h.
  if (s.scheduled || !s.mailbox.empty()) return false;
  bool in_flight =
      s.sealed_seq.load(std::memory_order_acquire) != s.durable_seq.load(std::memory_order_acquire);
  bool reset_pending = s.act.loaded && s.act.generation != s.generation.load();
  return !in_flight || reset_pending;
}
}  // namespace

void EngineCore::evict_locked(Shard& shard, ObjectSlot& slot, std::vector<Activation>& graveyard) {
  slot.retired = true;
  graveyard.push_back(std::move(slot.act));
  shard.slots.erase(slot.id);
  counters_.evictions.fetch_add(1, std::memory_order_relaxed);
  counters_.active_objects.fetch_sub(1, std::memory_order_relaxed);
}

size_t EngineCore::evict_idle() {
  UnixMs now = clock().now_ms();
  struct Candidate {
    int64_t last_used;
    std::shared_ptr<ObjectSlot> slot;
  };
  // Candidates for the LRU pass only when it will run: an idle-timeout pass
  // under the limit copies no slot references.
  const bool over_max =
      counters_.active_objects.load(std::memory_order_relaxed) > options_.active_objects_max;
  std::vector<Candidate> candidates;
  std::vector<Activation> graveyard;  // destroyed outside the locks
  size_t evicted = 0;
  for (Shard& shard : shards_) {
    MutexLock lock(shard.mutex);
    for (auto it = shard.slots.begin(); it != shard.slots.end();) {
      std::shared_ptr<ObjectSlot> slot = (it++)->second;
      if (!slot->mutex.try_lock()) continue;
      MutexLock slot_lock(slot->mutex, std::adopt_lock);
      if (!evictable(*slot)) continue;
      int64_t last = slot->last_used_ms.load(std::memory_order_relaxed);
      if (now - last >= options_.idle_timeout_ms) {
        evict_locked(shard, *slot, graveyard);
        ++evicted;
      } else if (over_max) {
        candidates.push_back({last, slot});
      }
    }
  }
  uint64_t active = counters_.active_objects.load(std::memory_order_relaxed);
  if (active > options_.active_objects_max) {
    size_t low_water =
        options_.active_objects_max - options_.active_objects_max / kEvictHeadroomDivisor;
    size_t excess = active - low_water;
    // The excess least recently used first (in any order among them: all of
    // them go), found in linear time; the rest follow, in any order, only
    // when one of those was used since the scan.
    auto older = [](const Candidate& a, const Candidate& b) { return a.last_used < b.last_used; };
    if (excess < candidates.size()) {
      std::nth_element(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(excess),
                       candidates.end(), older);
    }
    for (Candidate& c : candidates) {
      if (excess == 0) break;
      Shard& shard = shards_[std::hash<ObjectId>()(c.slot->id) % kShards];
      MutexLock lock(shard.mutex);
      MutexLock slot_lock(c.slot->mutex);
      if (c.slot->retired || !evictable(*c.slot)) continue;
      evict_locked(shard, *c.slot, graveyard);
      ++evicted;
      --excess;
    }
  }
  graveyard.clear();
  return evicted;
}

void EngineCore::janitor_main() {
  int64_t tick_ms = std::clamp<int64_t>(options_.idle_timeout_ms / 4, 10, 1000);
  auto last_prune = std::chrono::steady_clock::now();
  auto last_reader_check = last_prune;
  MutexLock lock(janitor_mutex_);
  while (!stopping_janitor_) {
    janitor_cv_.wait_for(janitor_mutex_, std::chrono::milliseconds(tick_ms));
    if (stopping_janitor_) break;
    lock.unlock();
    evict_idle();
    redeliver_parked();
    auto now = std::chrono::steady_clock::now();
    if (now - last_reader_check >= std::chrono::milliseconds(kReaderCheckIntervalMs)) {
      last_reader_check = now;
      (void)clear_dead_readers_now();  // a failed check is retried at the next interval
    }
    if (now - last_prune > std::chrono::milliseconds(kPruneIntervalMs)) {
      last_prune = now;
      int64_t cutoff = prune_cutoff(clock().now_ms(), options_.history_retention_ms);
      committer_->submit_task(prune_history_step(cutoff, options_.history_commits_max), nullptr);
    }
    lock.lock();
  }
}

Status EngineCore::prune_history_now() {
  CARREL_RETURN_IF_ERROR(check_open());
  // As post_checked: close() waits for this, so the committer takes the task
  // (after it stopped, the task would wait in its queue forever).
  InProgress in_progress(posts_in_progress_, closing_);
  if (!in_progress.open()) return Status::aborted("engine is closing");
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  int64_t cutoff = prune_cutoff(clock().now_ms(), options_.history_retention_ms);
  committer_->submit_task(prune_history_step(cutoff, options_.history_commits_max),
                          [promise](const Status& s) { promise->set_value(s); });
  return future.get();
}

Result<int> EngineCore::clear_dead_readers_now() {
  CARREL_RETURN_IF_ERROR(check_open());
  CARREL_ASSIGN_OR_RETURN(int cleared, store_->clear_dead_readers());
  counters_.dead_readers_cleared.fetch_add(static_cast<uint64_t>(cleared),
                                           std::memory_order_relaxed);
  return cleared;
}

EngineCore::SlotWatch EngineCore::watch_slot(const ObjectId& id) {
  SlotWatch w;
  Shard& shard = shards_[std::hash<ObjectId>()(id) % kShards];
  MutexLock lock(shard.mutex);
  auto it = shard.slots.find(id);
  if (it == shard.slots.end()) return w;
  w.slot = it->second;
  w.generation = w.slot->generation.load(std::memory_order_acquire);
  return w;
}

EngineCore::SlotWatch EngineCore::rewatch(const ObjectId& id, const SlotWatch& before) {
  return before.slot ? before : watch_slot(id);
}

Status EngineCore::durable_through(const ObjectRef& object, const SlotWatch& watch,
                                   uint64_t seq) {
  // No slot after the record was read: no commit of the object is in flight
  // (object.h (3): a slot goes only once its commits are durable, or failed;
  // a failed one never reached the record cache, or broke the redo log, and
  // then no snapshot is taken at all, redo.h (7)).
  const std::shared_ptr<ObjectSlot>& slot = watch.slot;
  if (!slot || slot->durable_seq.load(std::memory_order_acquire) >= seq) return Status::ok();
  if (committer_->on_committer_thread()) {
    return Status::deadlock("the bookmark of " + object.label() +
                            " waits for a commit still in flight, and this is the committer's "
                            "thread (a call_async reply or the commit hook), which must make "
                            "it: ask from another thread");
  }
  // As post_checked: close() waits for this, so the committer takes the batch.
  InProgress in_progress(posts_in_progress_, closing_);
  if (!in_progress.open()) return Status::aborted("engine is closing");
  auto batch = std::make_unique<CommitBatch>();
  batch->slot = slot;
  batch->object = object;
  batch->generation = watch.generation;
  ReplySlot<Status> done;
  batch->outputs.push_back([&done](const Status& s) { done.fill(s); });
  CARREL_RETURN_IF_ERROR(begin_blocking());
  committer_->submit(std::move(batch));
  Status s = done.wait();
  end_blocking();
  return s;
}

Result<std::string> EngineCore::current_bookmark(const ObjectRef& object) {
  CARREL_RETURN_IF_ERROR(check_open());
  const SlotWatch watch = watch_slot(object.id);  // before the record
  CARREL_ASSIGN_OR_RETURN(auto txn, store_->begin_read());
  CARREL_ASSIGN_OR_RETURN(auto found, records_->get(txn, object.id));
  if (!found) return Status::not_found("object " + object.label() + " has never committed");
  const store::ObjectRecord& rec = *found;
  CARREL_RETURN_IF_ERROR(durable_through(object, rewatch(object.id, watch), rec.last_seq));
  return history::Bookmark{rec.last_commit_ms, rec.last_seq, object.id}.to_string();
}

Result<std::string> EngineCore::bookmark_for_time(const ObjectRef& object, UnixMs t) {
  CARREL_RETURN_IF_ERROR(check_open());
  const SlotWatch watch = watch_slot(object.id);  // before the record
  CARREL_ASSIGN_OR_RETURN(auto found, record_and_snapshot(object.id));
  if (!found.first) return Status::not_found("object " + object.label() + " has never committed");
  const store::ObjectRecord& rec = *found.first;
  store::ReadTxn& txn = found.second;
  CARREL_RETURN_IF_ERROR(durable_through(object, rewatch(object.id, watch), rec.last_seq));
  if (rec.last_commit_ms <= t) {
    return history::Bookmark{rec.last_commit_ms, rec.last_seq, object.id}.to_string();
  }
  // Walk the object's chain from the newest commit back to the last one at or before t.
  history::ChainWalk walk(txn.get(), store_->dbi(store::Db::kHistory), object.id, rec,
                          history::cap_floor(rec.last_seq, options_.history_commits_max));
  uint64_t oldest_seq = 0;
  int64_t oldest_ms = 0;
  for (;;) {
    CARREL_ASSIGN_OR_RETURN(auto step, walk.next());
    if (!step) break;
    oldest_seq = step->header.seq;
    oldest_ms = step->header.time_ms;
    // The state after commit seq-1 is what commit seq's record restores.
    if (step->header.time_ms <= t) {
      return history::Bookmark{step->header.time_ms, step->header.seq, object.id}.to_string();
    }
  }
  if (oldest_seq == 1) return history::Bookmark{0, 0, object.id}.to_string();
  std::string retention =
      "history_retention_ms is " + std::to_string(options_.history_retention_ms);
  if (options_.history_commits_max != 0) {
    retention += ", history_commits_max is " + std::to_string(options_.history_commits_max);
  }
  if (oldest_seq == 0) {
    // No undo record at all: history is off, or every record was pruned.
    return Status::not_found("object " + object.label() + " keeps no history before its last " +
                             "commit (" + std::to_string(rec.last_seq) + " at " +
                             std::to_string(rec.last_commit_ms) + " ms; " + retention +
                             "); no bookmark at or before " + std::to_string(t));
  }
  return Status::not_found("history of " + object.label() + " goes back only to commit " +
                           std::to_string(oldest_seq) + " at " + std::to_string(oldest_ms) +
                           " ms (" + retention + "); no bookmark at or before " +
                           std::to_string(t));
}

Result<std::string> EngineCore::restore(const ObjectRef& object, std::string_view bookmark) {
  CARREL_ASSIGN_OR_RETURN(auto b, history::Bookmark::parse_for(bookmark, object.id));
  auto promise = std::make_shared<std::promise<Result<std::string>>>();
  auto future = promise->get_future();
  Event ev;
  ev.kind = EventKind::kRestore;
  ev.object = object;
  ev.restore_seq = b.seq;
  ev.restore_time_ms = b.time_ms;
  ev.done = [promise](Result<std::string> r) { promise->set_value(std::move(r)); };
  CARREL_RETURN_IF_ERROR(post(std::move(ev)));
  return future.get();
}

Status EngineCore::close() {
  MutexLock close_lock(close_mutex_);
  if (closed_) return Status::ok();
  closed_ = true;
  closing_.store(true);
  while (posts_in_progress_.load() != 0) std::this_thread::yield();
  if (scheduler_) scheduler_->stop();
  if (janitor_.joinable()) {
    {
      MutexLock lock(janitor_mutex_);
      stopping_janitor_ = true;
    }
    janitor_cv_.notify_all();
    janitor_.join();
  }
  std::vector<std::thread> threads;
  {
    MutexLock lock(run_mutex_);
    stopping_workers_ = true;
  }
  run_cv_.notify_all();
  for (;;) {
    {
      MutexLock lock(run_mutex_);
      if (threads_.empty()) break;
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
    threads.clear();
  }
  if (committer_) committer_->stop();
  // SQL connections and handlers go before the LMDB environment, which is
  // closed here so that the directory can be opened again at once.
  for (Shard& shard : shards_) {
    MutexLock lock(shard.mutex);
    shard.slots.clear();
  }
  scheduler_.reset();
  committer_.reset();
  records_.reset();
  // store.h (5), redo.h (7): an engine stopped by a failed sync of data.mdb,
  // or whose redo log broke (its files stay for the next open to recover),
  // closes, and says why.
  Status ended = store_ ? store_->stopped() : Status::ok();
  if (ended.is_ok() && store_ && store_->redo() && store_->redo()->broken())
    ended = store_->redo()->status();
  store_.reset();
  return ended;
}

Status EngineCore::check_open() const {
  if (closing_.load()) return Status::aborted("engine is closed");
  return Status::ok();
}

EngineCore::~EngineCore() { (void)close(); }

}  // namespace carrel::detail
