// The committer: the one thread that writes to LMDB.
//
// Invariants:
//  (1) Only the committer thread begins LMDB write transactions.
//  (2) Group commit: each write transaction takes every batch waiting when it
//      begins (up to kGroupBatchesMax / kGroupBytesMax), from all objects, and
//      commits them with one fsync (sync mode). No timers: the batch is
//      whatever queued while the previous commit ran.
//  (3) Outputs are released only after the commit that holds their turn (and
//      every earlier turn of the same object) returned from mdb_txn_commit.
//  (4) A failed commit fails every batch in it; each object with a write batch
//      in it has its generation bumped, which fails every later batch it
//      sealed before it noticed (stale generation), until it resets.
//  (5) A batch's writes are applied in queue order; batches of one object are
//      queued in seq order by the worker that owns the object.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "carrel/clock.h"
#include "carrel/options.h"
#include "engine/base/mutex.h"
#include "engine/commit/batch.h"
#include "engine/commit/counters.h"
#include "engine/store/store.h"

namespace carrel::detail {

struct CommitterHooks {
  // Messages stored by a commit, after it is durable.
  std::function<void(std::vector<std::pair<uint64_t, OutMessage>>&&)> on_sent;
  // A commit wrote an alarm entry due at this time.
  std::function<void(int64_t due_ms)> on_alarm_written;
};

// A maintenance task runs inside a write transaction of its own group.
using MaintenanceTask = std::function<Status(store::Store&, MDB_txn*)>;

class Committer {
 public:
  static constexpr size_t kGroupBatchesMax = 4096;
  static constexpr size_t kGroupBytesMax = size_t{64} << 20;

  Committer(store::Store& store, Clock& clock, const Options& options, CommitterHooks hooks,
            Counters& counters);
  ~Committer();

  void start();
  // Thread-safe. The batch's outputs run on the committer thread.
  void submit(std::unique_ptr<CommitBatch> batch);
  // Thread-safe. Runs in its own write transaction; done gets the result.
  void submit_task(MaintenanceTask task, std::function<void(const Status&)> done);
  // Commits everything queued, then stops the thread. Idempotent.
  void stop();

 private:
  struct Item {
    std::unique_ptr<CommitBatch> batch;
    MaintenanceTask task;
    std::function<void(const Status&)> task_done;
  };
  void run();
  void commit_group(std::vector<Item>& group);
  void run_task(Item& item);

  store::Store& store_;
  Clock& clock_;
  const bool sync_;
  const bool keep_history_;
  const uint64_t history_commits_max_;
  CommitHook hook_;
  CommitterHooks hooks_;
  Counters& counters_;
  uint64_t commit_number_ = 0;  // committer thread only

  Mutex mutex_;
  CondVar cv_;
  std::deque<Item> queue_ GUARDED_BY(mutex_);
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace carrel::detail
