// The engine's insides: object table, worker pool, committer, scheduler, janitor.
//
// Threads and what they own:
//  - workers (Options::workers, plus one extra while a worker blocks in
//    ctx.call or restore, up to workers_blocked_extra_max): run objects' turns;
//    each owns the slots it took from the run queue (object.h invariant (1));
//  - the committer: the LMDB write transaction (committer.h);
//  - the scheduler: the timetable scan that posts due alarms (scheduler.h);
//  - the janitor: eviction of idle objects, redelivery, history retention,
//    freeing the LMDB reader slots of dead processes;
//  - callers of the blocking entry points (run_blocking, call_blocking): run
//    one turn inline when its object is idle (object.h invariant (5)).
//
// Invariants of the fast path:
//  (1) An inline turn holds posts_in_progress_ from claiming the slot until
//      the slot is released, so close() waits for it, and an event that
//      arrived meanwhile finds the workers still running when it is handed on.
//  (2) A thread that is not one of this engine's workers never counts in
//      blocked_threads_: begin_blocking/end_blocking compensate only for
//      workers, since an inline caller blocking in ctx.call takes no worker
//      away from the pool.
//  (3) An inline turn runs exactly the code a worker runs for the event
//      (run_event): same input gate, output gate, counters and failure paths.
//
// Invariant of the ways in:
//  (4) An object ref is checked (check_object_ref) once, where its request
//      enters: register_class, post, run_or_post_and_wait, Stub::call_async,
//      ctx.send and ctx.call (before it commits the turn). post_checked and
//      call take a ref that was checked already.
#pragma once

#include <array>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "carrel/engine.h"
#include "engine/base/mutex.h"
#include "engine/commit/committer.h"
#include "engine/commit/counters.h"
#include "engine/loop/object.h"
#include "engine/store/store.h"

namespace carrel::alarm {
class Scheduler;
}

namespace carrel::detail {

// InvalidArgument when ref's class is empty or its class or name is longer
// than kClassNameBytesMax / kObjectNameBytesMax; `use` says where it came
// from ("call", "send", ...).
Status check_object_ref(const ObjectRef& ref, std::string_view use);


class Turn;

// Holds EngineCore::posts_in_progress_ for a scope, and says whether the
// engine was still open once it held it: close() sets closing_ and then
// waits for the count to drop (both seq_cst), so a holder that saw open()
// hands its event, batch or task to workers and a committer that take it.
// Every entry that posts work takes one first and checks open() before it.
class InProgress {
 public:
  InProgress(std::atomic<int>& n, const std::atomic<bool>& closing) : n_(n) {
    n_.fetch_add(1);
    open_ = !closing.load();
  }
  ~InProgress() { n_.fetch_sub(1); }
  InProgress(const InProgress&) = delete;
  InProgress& operator=(const InProgress&) = delete;
  bool open() const { return open_; }

 private:
  std::atomic<int>& n_;
  bool open_ = false;
};

class EngineCore {
 public:
  static Result<std::unique_ptr<EngineCore>> open(Options options);
  ~EngineCore();

  const Options& options() const { return options_; }
  Clock& clock() { return *options_.clock; }
  store::Store& store() { return *store_; }
  Committer& committer() { return *committer_; }
  // Object records: the committer's cache over `objects` (commit/records.h).
  Records& records() { return *records_; }
  // The newest committed record of id and a snapshot that holds it
  // (records.h (2)): for walks of the object's history chain.
  Result<std::pair<std::optional<store::ObjectRecord>, store::ReadTxn>> record_and_snapshot(
      const ObjectId& id);
  Counters& counters() { return counters_; }
  // Connections (engine/conn): the transport's events and held frames.
  ConnectionHub& connection_hub() { return *connection_hub_; }

  Status register_class(std::string_view class_name, HandlerFactory factory);
  bool has_class(std::string_view class_name);

  // Queues an event on its object. Busy when the mailbox is full, Aborted when
  // the engine is closing. On error the event is dropped and `done` not called.
  Status post(Event event);
  // Posts a request and calls done with the reply (or the error).
  // REQUIRES: check_object_ref(object) passed (invariant (4)).
  void call(const ObjectRef& object, Request request, CallOptions options,
            std::vector<ObjectId> chain, std::function<void(Result<std::string>)> done);

  // Blocking entry points: the event runs on the calling thread when its
  // object is idle (the fast path), else it is posted; either way the caller
  // waits for the reply. Errors as for post(), or the turn's.
  Result<std::string> call_blocking(const ObjectRef& object, Request request, CallOptions options);
  Status run_blocking(const ObjectRef& object, const std::function<Status(Context&)>& fn);

  // The object's slot (null when it has none) and its generation, taken
  // before the record whose commit durable_through waits for: a commit that
  // fails after this bumps the generation past the one stamped.
  struct SlotWatch {
    std::shared_ptr<ObjectSlot> slot;
    uint64_t generation = 0;
  };
  SlotWatch watch_slot(const ObjectId& id);
  // After the record was read: `before`, or a fresh look when the object had
  // no slot then (it may have been activated, and committed, since).
  SlotWatch rewatch(const ObjectId& id, const SlotWatch& before);
  // Waits until the object's commits up to `seq` are durable: an outputs-only
  // batch behind them, released by the committer after they are (committer.h
  // (3)); their failure, when they fail. OK at once when none is in flight.
  // Deadlock on the committer's own thread (a call_async reply, the commit
  // hook), which would wait for itself.
  Status durable_through(const ObjectRef& object, const SlotWatch& watch, uint64_t seq);
  // A worker is about to wait on another thread (ctx.call, restore): keep
  // Options::workers runnable. Busy when workers_blocked_extra_max are blocked.
  Status begin_blocking();
  void end_blocking();

  // Outbox messages stored by a commit (or found at open): deliver them.
  void deliver(std::vector<std::pair<uint64_t, OutMessage>>&& messages);
  // The scheduler's and the janitor's entry points.
  // Evicts idle objects now (the janitor's pass); returns how many.
  size_t evict_idle();

  Result<std::string> restore(const ObjectRef& object, std::string_view bookmark);
  // Runs one step of history retention now (the janitor runs one every 5 s)
  // and waits for it: undo records older than the engine clock less
  // history_retention_ms are deleted. For tools and tests.
  Status prune_history_now();
  // Runs the janitor's dead-reader check now: frees the LMDB reader slots of
  // dead processes, counts them in EngineStats::dead_readers_cleared and
  // returns how many it freed. For tools and tests.
  Result<int> clear_dead_readers_now();
  // Both name only durable commits: the record cache may hold a commit that
  // still waits for its sync (committer.h (7), (9)), so they wait for it
  // (durable_through) before they answer.
  Result<std::string> bookmark_for_time(const ObjectRef& object, UnixMs t);
  Result<std::string> current_bookmark(const ObjectRef& object);
  Status close();
  // Aborted once close() has begun.
  Status check_open() const;

 private:
  explicit EngineCore(Options options);
  Status start();
  void spawn_worker_locked() REQUIRES(run_mutex_);
  // Puts a scheduled slot on the run queue and wakes (or adds) a worker.
  void enqueue_ready(std::shared_ptr<ObjectSlot> slot);
  // The fast path (object.h invariant (5)): claims the event's object when it
  // is idle and runs the event here. false, event untouched: not idle (or
  // closing); the caller posts it instead.
  bool run_inline(Event& event);
  std::shared_ptr<ObjectSlot> claim_idle(const ObjectId& id);
  void release_inline(std::shared_ptr<ObjectSlot> slot);
  // post() without the check of event.object, which the caller made
  // (invariant (4)).
  Status post_checked(Event event);
  // Runs the event inline or posts it, then waits for its reply; `use` names
  // the entry in an error about event.object.
  Result<std::string> run_or_post_and_wait(Event& event, std::string_view use);
  void worker_main();
  bool on_worker_thread() const;
  void run_slot(const std::shared_ptr<ObjectSlot>& slot);
  void run_event(const std::shared_ptr<ObjectSlot>& slot, Event& event);
  Status prepare(ObjectSlot& slot, const Event& event, store::ReadTxn& txn);
  void run_turn_event(const std::shared_ptr<ObjectSlot>& slot, Event& event, store::ReadTxn& txn);
  void run_restore(const std::shared_ptr<ObjectSlot>& slot, Event& event, store::ReadTxn& txn);
  // A failed turn: rolls it back and settles its event (an alarm retries or
  // dead-letters, a message is consumed anyway, a caller gets the error).
  // true when the event still has outputs to release, *batch its commit.
  bool settle_failed_turn(Turn& turn, Event& event, const std::optional<AlarmEntry>& alarm,
                          bool ran_start, const Status& status,
                          std::unique_ptr<CommitBatch>* batch);
  // What the event releases once its commit is durable: the scheduler's
  // done, a message's accounting, the caller's reply (at once when
  // allow_unconfirmed).
  std::vector<Completion> event_outputs(const ObjectId& id, Event& event, std::string reply);
  void finish_alarm(Turn& turn, const Event& event, const AlarmEntry& entry, const Status& result);
  // A uniform draw in [-alarm_retry_jitter, alarm_retry_jitter] for one backoff.
  double draw_jitter();
  struct Shard;
  std::shared_ptr<ObjectSlot> slot_for(Shard& shard, const ObjectId& id, bool* created)
      REQUIRES(shard.mutex);
  void janitor_main();
  // Retires an evictable slot; its activation goes to graveyard.
  void evict_locked(Shard& shard, ObjectSlot& slot, std::vector<Activation>& graveyard)
      REQUIRES(shard.mutex, slot.mutex);
  void redeliver_parked();
  Status deliver_outbox_at_open();

  Options options_;
  // Outlives the committer: commit outputs release held frames through it.
  std::unique_ptr<ConnectionHub> connection_hub_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Records> records_;  // outlives the committer, which uses it
  Counters counters_;
  std::unique_ptr<Committer> committer_;
  std::unique_ptr<alarm::Scheduler> scheduler_;
  int clock_listener_ = 0;

  // Alarm retry jitter: one generator per engine, seeded from
  // Options::random_seed, so an engine's backoffs do not depend on what other
  // engines in the process drew before it.
  Mutex jitter_mutex_;
  std::mt19937_64 jitter_rng_ GUARDED_BY(jitter_mutex_);

  Mutex classes_mutex_;
  // Entries are never erased or replaced: prepare() calls a factory through a
  // pointer taken under the lock.
  std::map<std::string, HandlerFactory, std::less<>> classes_ GUARDED_BY(classes_mutex_);

  // The object table, sharded by id to keep posting cheap.
  static constexpr size_t kShards = 16;
  struct Shard {
    Mutex mutex;
    std::unordered_map<ObjectId, std::shared_ptr<ObjectSlot>> slots GUARDED_BY(mutex);
  };
  std::array<Shard, kShards> shards_;
  std::atomic<bool> closing_{false};
  std::atomic<int> posts_in_progress_{0};

  // Worker pool.
  Mutex run_mutex_;
  CondVar run_cv_;
  std::deque<std::shared_ptr<ObjectSlot>> ready_ GUARDED_BY(run_mutex_);
  std::vector<std::thread> threads_ GUARDED_BY(run_mutex_);
  int live_threads_ GUARDED_BY(run_mutex_) = 0;
  int idle_threads_ GUARDED_BY(run_mutex_) = 0;
  int blocked_threads_ GUARDED_BY(run_mutex_) = 0;
  int workers_ = 1;
  bool stopping_workers_ GUARDED_BY(run_mutex_) = false;

  // Janitor, and messages that could not be posted yet (full mailbox,
  // unregistered class): retried by the janitor.
  Mutex janitor_mutex_;
  CondVar janitor_cv_;
  bool stopping_janitor_ GUARDED_BY(janitor_mutex_) = false;
  std::deque<std::pair<uint64_t, OutMessage>> parked_messages_ GUARDED_BY(janitor_mutex_);
  std::thread janitor_;
  Mutex close_mutex_;
  bool closed_ GUARDED_BY(close_mutex_) = false;
};

}  // namespace carrel::detail
