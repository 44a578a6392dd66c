// The committer: the one role that writes to LMDB.
//
// Invariants:
//  (1) Only the holder of the committer role begins LMDB write transactions:
//      the committer thread, or a caller committing its own batch (10). The
//      role is taken under mutex_ with the group it commits, and handed back
//      under it; what the comments below call committer-thread-only state
//      belongs to the role's holder.
//  (2) Group commit: each write transaction takes every batch waiting when it
//      begins (up to kGroupBatchesMax / kGroupBytesMax), from all objects, and
//      commits them with one fsync (sync mode). The batch is whatever queued
//      while the previous commit ran, with one bounded wait (8).
//  (3) Outputs are released only after the commit that holds their turn (and
//      every earlier turn of the same object) is durable (6); in nosync mode,
//      after it returned from mdb_txn_commit.
//  (4) A failed commit fails every batch in it; each object with a write batch
//      in it has its generation bumped, which fails every later batch it
//      sealed before it noticed (stale generation), until it resets. Every
//      earlier commit is released (or failed) first: (6)'s held one after a
//      sync of data.mdb, (9)'s waiting ones once the log's syncer covered
//      them (RedoLog::wait_synced; only the syncer syncs the log). A reset
//      object reloads its record, which holds those commits, and takes its
//      durable_seq from it; one still waiting would be read and replied to
//      before it was durable, and released behind its own durable_seq.
//  (5) A batch's writes are applied in queue order; batches of one object are
//      queued in seq order by the worker that owns the object.
//  (6) Delayed release (sync mode). LMDB runs with MDB_NOMETASYNC: its commit
//      fdatasyncs the data pages, then writes the meta page without a sync.
//      So commit N is durable once a later fdatasync of data.mdb returned:
//      commit N+1's (LMDB syncs N+1's pages after N's meta page was written;
//      one file) or an explicit mdb_env_sync(env, 1). The committer holds N's
//      outputs (replies, durable_seq, on_sent, on_alarm_written) until then:
//      a released commit's number is <= synced_number_. Only with
//      Options::defer_meta_sync (off by default: measured slower for clients
//      that wait for their replies) is the flag ever on; then it is set per
//      commit: on when a group is already queued behind the commit (whose
//      commit then covers it: one sync per group under load), off when none
//      is (LMDB writes the meta page through its O_DSYNC descriptor, the
//      commit is durable when it returns: an idle committer pays the two
//      flushes LMDB's default does, no more). A held commit whose successor
//      did not come (a task, or no group after all) is synced explicitly;
//      so is one whose successor (N+1, or a maintenance task) failed before
//      its mdb_txn_commit with no I/O error (a full disk or map), and a
//      maintenance task and stop() sync before they release. A failed sync
//      fails the held turns as a failed commit does (4) and stops the store
//      (store.h (5)); so does a successor that failed inside mdb_txn_commit
//      or with an I/O error, without the explicit sync: it may have been the
//      successor's data sync, which was to cover N, and the kernel reports
//      such a failure once, so a sync after it could succeed over N's lost
//      meta page. A stopped store takes no commit: every batch fails,
//      outputs too. At most one commit is held at a time.
//  (7) The record cache (records.h) is published after mdb_txn_commit
//      succeeded and before durable_seq moves (records.h (2)); stop() ends
//      with a checkpoint, so a directory closed cleanly has no log tail.
//  (8) Linger (sync mode, Options::group_commit_linger). Clients that wait
//      for their replies split into cohorts: the callers a commit releases
//      run their next turns while the next commit already runs with the
//      other callers' turns, so each commit holds about half of them. Before
//      a sync commit, while fewer batches are queued than the last commit
//      held, the committer waits for more, at most a quarter of the last
//      commit's duration and never more than kLingerMaxUs. With one batch in
//      the last commit, or nosync, it never waits; a submit ends the wait as
//      soon as the queue holds as many batches as the last commit did.
//  (9) Redo log (sync mode, Options::redo_log; engine/store/redo.h). Every
//      write the group writer makes is also recorded; after mdb_txn_commit
//      the record is written (not synced) and the commit's Release waits in
//      `waiting_`, in commit order, until the log's syncer thread covered its
//      record (redo.h (1)): the committer goes on to the next group at once,
//      and one sync covers every group written while the last one ran. The
//      next group gathers while a written record waits for a sync to begin,
//      and while a sync runs with fewer batches queued than the last group
//      held (bounded by that sync; after a group of one, never): a group
//      then holds what arrived during the whole sync, not what arrived by
//      the time it began.
//      Measured (kv-write sync, 1000 objects, 64 clients): 15 -> 22 turns a
//      group, ioB/turn 9.5 -> 8.6 KB (1.37x -> 1.28x lmdb-raw's at the same
//      batch), throughput within noise.
//      (6)'s holding and (8)'s linger never apply. A commit with no record (a
//      maintenance task) is followed by a checkpoint, which covers everything
//      waiting. A broken log fails what waits, then every later commit and
//      every output sent here, even of a turn that wrote nothing (it waits on
//      a commit whose record was never written, or whose sync failed; the
//      store then takes no new snapshot either, Store::begin_read). stop()
//      ends with a checkpoint and closes the log, leaving data.mdb alone.
//  (10) Commit on the caller's thread (nosync, no Options::commit_hook). A
//      caller that waits for its own turn's reply (Engine::run,
//      call_blocking: submit_or_commit_here) commits its batch itself when
//      the role is free, nothing is queued and the last group held one batch
//      (callers come one at a time; under load the thread's groups batch
//      them, and a caller's commit of one would halve them): a group of one, in queue
//      order (5) since nothing waits before it, released on that thread, so
//      neither the committer nor the caller sleeps and wakes for it. Handing
//      a turn to an idle committer cost two cross-thread wakes, most of a
//      one-insert turn on a 2-core VM. Sync mode keeps the thread: a sync
//      commit's release waits for the log's syncer (9) or the next commit
//      (6), which the committer thread follows. The commit hook, documented
//      to run on the committer's thread, keeps that too. The caller counts as
//      the committer's thread while it holds the role (on_committer_thread).
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
#include "engine/commit/records.h"
#include "engine/store/redo.h"
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
  static_assert(kGroupBatchesMax > 0 && kGroupBytesMax > 0, "a group takes at least one batch");
  // Invariant (8): the longest linger, and the share of the last commit's duration.
  static constexpr int64_t kLingerMaxUs = 2000;
  static constexpr int64_t kLingerDivisor = 4;
  static_assert(kLingerMaxUs > 0 && kLingerDivisor >= 2, "a linger is short beside a commit");

  // Breaks invariant (6) on purpose, for the power-cut test's check of the
  // checker (tests/crash/worker.cc): committers constructed while it is set
  // release a sync commit's outputs as soon as mdb_txn_commit returns, before
  // the sync that makes its meta page durable; with the redo log (9), its
  // record is appended without a sync. Never set outside that test.
  static void release_before_sync_for_tests(bool on);
  // Tests: committers constructed while it is set sleep this long before
  // each round of run(), so that what other threads do between two rounds
  // (a sync of the redo log returning, say) lands there. Never set outside tests.
  static constexpr int kRoundDelayMsMax = 1000;
  static void delay_rounds_for_tests(int ms);

  Committer(store::Store& store, Records& records, Clock& clock, const Options& options,
            CommitterHooks hooks, Counters& counters);
  ~Committer();

  void start();
  // Thread-safe. The batch's outputs run on the committer thread (or on a
  // caller's, when its own batch commits there first: (10)).
  void submit(std::unique_ptr<CommitBatch> batch);
  // Invariant (10): commits the batch on this thread when the role is free
  // and nothing is queued (nosync, no commit hook); its outputs then run
  // here before this returns. Otherwise as submit().
  void submit_or_commit_here(std::unique_ptr<CommitBatch> batch);
  // Thread-safe. Runs in its own write transaction; done gets the result.
  void submit_task(MaintenanceTask task, std::function<void(const Status&)> done);
  // Commits everything queued, then stops the thread. Idempotent.
  void stop();
  // The caller is this committer's thread (outputs run there), or holds the
  // role (10): it must never wait for a commit.
  bool on_committer_thread() const;
  // Thread-safe: batches and tasks waiting for the role (tests, stats).
  size_t queued() const;

 private:
  struct Item {
    std::unique_ptr<CommitBatch> batch;
    MaintenanceTask task;
    std::function<void(const Status&)> task_done;
  };
  // One successful commit's outputs, held until it is durable (6).
  struct Release {
    uint64_t commit_number = 0;
    std::vector<std::unique_ptr<CommitBatch>> batches;  // outputs-only ones too
    std::vector<std::pair<uint64_t, OutMessage>> sent;
    std::optional<int64_t> earliest_alarm;
  };
  void run();
  // Invariant (1): a caller hands the role back and lets the thread take what
  // queued; its group of one is the last group (10). (The thread gives the
  // role back when it takes its lock for the next round.)
  void free_role();
  // Invariant (8): waits (mutex_ held) while the queue is shorter than the last group.
  void linger() REQUIRES(mutex_);
  void commit_group(std::vector<Item>& group);
  void run_task(Item& item);
  // Invariant (6): sets MDB_NOMETASYNC for the next commit: on when a group is
  // queued behind it, off (meta page through O_DSYNC) when none is.
  Status choose_meta_sync(bool* meta_synced);
  // Invariant (6): a commit that just returned covers the held one; it is
  // released too when its own meta page was synced, else held.
  void committed(Release&& release, bool wrote_meta, bool meta_synced);
  // Invariant (6): Store::sync_data, then the held commit is released, or
  // failed with the sync's error (or the stopped store's). Returns that error.
  Status sync_and_release();
  // Invariant (6): stops the store when a commit or task failed (`failed`)
  // while a commit is held, and the failure may have been the sync that was
  // to cover it: inside mdb_txn_commit (`in_txn_commit`), or an I/O error.
  // `what` names the failed commit or task for the error.
  void stop_if_held_uncovered(const Status& failed, bool in_txn_commit, const std::string& what);
  // Joins an outputs-only group, or a commit that wrote nothing, to the held commit.
  void absorb(Release&& release);
  void release(Release& release);
  // Invariant (4): fails `batches`, resetting every object with writes in them:
  // every turn with writes, and an outputs-only one when its object was
  // reset, or always with every_output (a broken log, (9)).
  void fail(std::vector<std::unique_ptr<CommitBatch>>& batches, const Status& s,
            bool every_output = false);
  // Invariant (7): the checkpoint at stop.
  void checkpoint_at_stop();
  // Invariant (9): the redo log's last checkpoint, and its files removed.
  void close_redo();
  // Invariant (9): a commit that wrote `record` (0: durable already) waits for its sync.
  void committed_redo(Release&& release, uint64_t record);
  // Invariant (9): releases what the log's last sync covered; fails all when it broke.
  void release_synced();
  // Invariant (9): releases, in order, what waits with a record up to `record`.
  void release_waiting_through(uint64_t record);
  void absorb_into(Release& into, Release&& release);
  // The last committed LMDB transaction.
  uint64_t last_txnid() const;

  store::Store& store_;
  store::RedoOps redo_ops_;  // committer thread only: the group's writes (9)
  std::deque<std::pair<uint64_t, Release>> waiting_;  // committer thread only (9)
  uint64_t syncs_seen_ = 0;  // committer thread only: the redo log's syncs counted
  Records& records_;
  Clock& clock_;
  const bool sync_;
  const bool keep_history_;
  const uint64_t history_commits_max_;
  CommitHook hook_;
  CommitterHooks hooks_;
  Counters& counters_;
  const bool defer_meta_sync_;      // Options::defer_meta_sync (6)
  bool meta_flag_on_ = true;        // committer thread only: MDB_NOMETASYNC as last set (the store opens with it)
  const bool release_before_sync_;  // release_before_sync_for_tests() at construction
  const int round_delay_ms_;        // delay_rounds_for_tests() at construction
  uint64_t commit_number_ = 0;      // committer thread only
  uint64_t synced_number_ = 0;      // committer thread only: commits up to it are durable (6)
  std::optional<Release> held_;     // committer thread only: the commit (6) waits on
  const bool linger_;               // Options::group_commit_linger, sync mode only (8)
  int64_t last_commit_us_ = 0;      // committer thread only: how long it took (8)

  mutable Mutex mutex_;
  CondVar cv_;
  std::deque<Item> queue_ GUARDED_BY(mutex_);
  bool stopping_ GUARDED_BY(mutex_) = false;
  bool role_taken_ GUARDED_BY(mutex_) = false;  // invariant (1)
  size_t last_group_batches_ GUARDED_BY(mutex_) = 0;  // the last commit's batches (8), (9), (10)
  bool synced_moved_ GUARDED_BY(mutex_) = false;  // (9): the redo log synced since the last look
  std::thread thread_;
};

}  // namespace carrel::detail
