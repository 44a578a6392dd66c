#include "engine/commit/committer.h"

#include <set>
#include <unordered_set>

#include "engine/base/check.h"
#include "engine/commit/group_writer.h"

namespace carrel::detail {

EngineStats Counters::snapshot() const {
  EngineStats s;
  auto r = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  s.turns_run = r(turns_run);
  s.turns_failed = r(turns_failed);
  s.commits = r(commits);
  s.commits_failed = r(commits_failed);
  s.turns_committed = r(turns_committed);
  s.turns_per_commit_max = r(turns_per_commit_max);
  s.fsyncs = r(fsyncs);
  s.bytes_written = r(bytes_written);
  s.active_objects = r(active_objects);
  s.evictions = r(evictions);
  s.mailbox_rejections = r(mailbox_rejections);
  s.alarms_delivered = r(alarms_delivered);
  s.alarms_failed = r(alarms_failed);
  s.messages_delivered = r(messages_delivered);
  s.turns_inline = r(turns_inline);
  s.dead_readers_cleared = r(dead_readers_cleared);
  return s;
}

Committer::Committer(store::Store& store, Clock& clock, const Options& options,
                     CommitterHooks hooks, Counters& counters)
    : store_(store),
      clock_(clock),
      sync_(options.durability == Durability::kSync),
      keep_history_(options.history_retention_ms > 0),
      history_commits_max_(options.history_commits_max),
      hook_(options.commit_hook),
      hooks_(std::move(hooks)),
      counters_(counters) {}

Committer::~Committer() { stop(); }

void Committer::start() { thread_ = std::thread([this] { run(); }); }

void Committer::submit(std::unique_ptr<CommitBatch> batch) {
  {
    MutexLock lock(mutex_);
    queue_.push_back(Item{std::move(batch), {}, {}});
  }
  cv_.notify_one();
}

void Committer::submit_task(MaintenanceTask task, std::function<void(const Status&)> done) {
  {
    MutexLock lock(mutex_);
    queue_.push_back(Item{nullptr, std::move(task), std::move(done)});
  }
  cv_.notify_one();
}

void Committer::stop() {
  {
    MutexLock lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Committer::run() {
  std::vector<Item> group;
  for (;;) {
    group.clear();
    {
      MutexLock lock(mutex_);
      while (!stopping_ && queue_.empty()) cv_.wait(mutex_);
      if (queue_.empty()) return;  // stopping, and everything queued is committed
      if (!queue_.front().batch) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      } else {
        // Invariant (2): take what is waiting, within the group limits.
        size_t bytes = 0;
        while (!queue_.empty() && queue_.front().batch && group.size() < kGroupBatchesMax &&
               bytes < kGroupBytesMax) {
          bytes += queue_.front().batch->bytes();
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
    }
    if (group.front().batch) commit_group(group);
    else run_task(group.front());
  }
}

void Committer::run_task(Item& item) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(store_.env(), nullptr, 0, &txn);
  Status s = store::from_mdb(rc, "begin maintenance transaction");
  if (s.is_ok()) {
    s = item.task(store_, txn);
    if (s.is_ok())
      s = store_.commit_status(mdb_txn_commit(txn), "commit maintenance", 0);
    else mdb_txn_abort(txn);
  }
  if (item.task_done) item.task_done(s);
}

void Committer::commit_group(std::vector<Item>& group) {
  // Invariant (4): batches sealed before their object's reset fail unwritten.
  std::vector<CommitBatch*> live;
  for (Item& item : group) {
    CommitBatch& b = *item.batch;
    if (b.slot && b.slot->generation.load(std::memory_order_acquire) != b.generation) {
      Status s = Status::aborted("object " + b.object.label() +
                                 " was reset after a failed commit that this turn depended on");
      for (auto& out : b.outputs) out(s);
      continue;
    }
    live.push_back(&b);
  }
  bool any_writes = false;
  for (CommitBatch* b : live) any_writes |= b->has_writes();
  if (!any_writes) {
    for (CommitBatch* b : live)
      for (auto& out : b->outputs) out(Status::ok());
    return;
  }

  int64_t now = clock_.now_ms();
  MDB_txn* txn = nullptr;
  Status s = store::from_mdb(mdb_txn_begin(store_.env(), nullptr, 0, &txn), "begin commit");
  std::optional<GroupWriter> writer;
  size_t turns = 0;
  if (s.is_ok()) {
    writer.emplace(store_, txn, now, keep_history_, history_commits_max_);
    for (CommitBatch* b : live) {
      if (!b->has_writes()) continue;
      ++turns;
      s = writer->apply(*b);
      if (!s.is_ok()) break;
    }
    if (s.is_ok()) s = writer->finish();
    if (s.is_ok() && hook_) {
      s = hook_(CommitInfo{commit_number_ + 1, turns, writer->bytes_written()});
    }
    if (s.is_ok()) {
      s = store_.commit_status(mdb_txn_commit(txn), "commit", writer->bytes_written());
    } else {
      mdb_txn_abort(txn);
    }
  }
  ++commit_number_;

  if (!s.is_ok()) {
    counters_.commits_failed.fetch_add(1, std::memory_order_relaxed);
    // Invariant (4): reset every object that had writes in this transaction.
    std::unordered_set<CommitProgress*> reset;
    for (CommitBatch* b : live) {
      if (b->has_writes() && b->slot) reset.insert(b->slot.get());
    }
    for (CommitProgress* slot : reset) slot->generation.fetch_add(1, std::memory_order_acq_rel);
    for (CommitBatch* b : live) {
      bool failed = b->has_writes() || (b->slot && reset.count(b->slot.get()));
      for (auto& out : b->outputs) out(failed ? s : Status::ok());
    }
    return;
  }

  counters_.commits.fetch_add(1, std::memory_order_relaxed);
  counters_.turns_committed.fetch_add(turns, std::memory_order_relaxed);
  bump_max(counters_.turns_per_commit_max, turns);
  counters_.bytes_written.fetch_add(writer->bytes_written(), std::memory_order_relaxed);
  if (sync_) counters_.fsyncs.fetch_add(1, std::memory_order_relaxed);
  // Invariant (3): durable_seq moves before any output is released.
  for (CommitBatch* b : live) {
    if (!b->has_writes() || !b->slot) continue;
    CARREL_ASSERT(b->seq > b->slot->durable_seq.load(std::memory_order_relaxed),
                  "committer.h (5): an object's batches commit in seq order");
    CARREL_ASSERT(b->seq <= b->slot->sealed_seq.load(std::memory_order_acquire),
                  "object.h (3): sealed_seq >= durable_seq");
    b->slot->durable_seq.store(b->seq, std::memory_order_release);
  }
  for (CommitBatch* b : live)
    for (auto& out : b->outputs) out(Status::ok());
  if (!writer->sent().empty() && hooks_.on_sent) hooks_.on_sent(std::move(writer->sent()));
  if (writer->earliest_alarm() && hooks_.on_alarm_written) {
    hooks_.on_alarm_written(*writer->earliest_alarm());
  }
}

}  // namespace carrel::detail
