#include "engine/commit/committer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>

#include "engine/base/check.h"
#include "engine/commit/group_writer.h"

namespace carrel::detail {
namespace {
// Committer::release_before_sync_for_tests: read by each committer at construction.
std::atomic<bool> g_release_before_sync{false};
// Committer::delay_rounds_for_tests: likewise.
std::atomic<int> g_round_delay_ms{0};
// The committer whose thread this is (Committer::on_committer_thread).
thread_local const Committer* tl_committer = nullptr;
}  // namespace

size_t Committer::queued() const {
  MutexLock lock(mutex_);
  return queue_.size();
}

bool Committer::on_committer_thread() const {
  return tl_committer == this;
}

void Committer::release_before_sync_for_tests(bool on) {
  g_release_before_sync.store(on);
}

void Committer::delay_rounds_for_tests(int ms) {
  CARREL_ASSERT(ms >= 0 && ms <= kRoundDelayMsMax, "committer.h: a test's round delay is short");
  g_round_delay_ms.store(ms);
}

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
  s.commits_on_caller = r(commits_on_caller);
  s.dead_readers_cleared = r(dead_readers_cleared);
  return s;
}

Committer::Committer(store::Store& store, Records& records, Clock& clock, const Options& options,
                     CommitterHooks hooks, Counters& counters)
    : store_(store),
      records_(records),
      clock_(clock),
      sync_(options.durability == Durability::kSync),
      keep_history_(options.history_retention_ms > 0),
      history_commits_max_(options.history_commits_max),
      hook_(options.commit_hook),
      hooks_(std::move(hooks)),
      counters_(counters),
      defer_meta_sync_(options.defer_meta_sync),
      release_before_sync_(g_release_before_sync.load()),
      round_delay_ms_(g_round_delay_ms.load()),
      linger_(sync_ && options.group_commit_linger && store.redo() == nullptr) {
  if (store::RedoLog* redo = store_.redo()) {
    // Invariant (9): a sync (or a broken log) wakes the committer to release.
    redo->set_on_synced([this] {
      {
        MutexLock lock(mutex_);
        synced_moved_ = true;
      }
      cv_.notify_one();
    });
  }
}

Committer::~Committer() {
  stop();
  if (store::RedoLog* redo = store_.redo()) redo->set_on_synced(nullptr);
}

void Committer::start() { thread_ = std::thread([this] { run(); }); }

void Committer::submit(std::unique_ptr<CommitBatch> batch) {
  {
    MutexLock lock(mutex_);
    queue_.push_back(Item{std::move(batch), {}, {}});
  }
  cv_.notify_one();
}

void Committer::submit_or_commit_here(std::unique_ptr<CommitBatch> batch) {
  if (sync_ || hook_ || on_committer_thread()) {  // invariant (10)
    submit(std::move(batch));
    return;
  }
  {
    MutexLock lock(mutex_);
    // Invariant (10): only while callers come one at a time; under load
    // the thread's groups batch them.
    if (role_taken_ || stopping_ || !queue_.empty() || last_group_batches_ > 1) {
      queue_.push_back(Item{std::move(batch), {}, {}});
      lock.unlock();
      cv_.notify_one();
      return;
    }
    role_taken_ = true;  // invariant (1)
  }
  std::vector<Item> group;
  group.push_back(Item{std::move(batch), {}, {}});
  const uint64_t commits = counters_.commits.load(std::memory_order_relaxed);
  // noexcept: an exception out of a commit (an output's callback, say) ends
  // the process here as it does on the committer thread, rather than leaving
  // the role taken and the engine hung. The previous value is restored: this
  // thread may hold another engine's role (an output calling Engine::run).
  [&]() noexcept {
    const Committer* outer = std::exchange(tl_committer, this);
    commit_group(group);
    tl_committer = outer;
  }();
  // Only a commit that wrote counts (the role excludes any other meanwhile).
  if (counters_.commits.load(std::memory_order_relaxed) != commits) {
    counters_.commits_on_caller.fetch_add(1, std::memory_order_relaxed);
  }
  free_role();
}

void Committer::free_role() {
  bool wake;
  {
    MutexLock lock(mutex_);
    role_taken_ = false;
    last_group_batches_ = 1;  // its group of one
    // The thread waits while the role is taken only when it has work; an
    // idle one is not woken for nothing (a futex wake of another core).
    wake = !queue_.empty() || stopping_ || synced_moved_;
  }
  if (wake) cv_.notify_one();
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
  tl_committer = this;
  std::vector<Item> group;
  store::RedoLog* const redo = store_.redo();
  bool holds_role = false;
  size_t committed_batches = 0;  // the last round's group, 0 for none (8), (9), (10)
  for (;;) {
    group.clear();
    bool stopping = false;
    if (round_delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(round_delay_ms_));
    {
      MutexLock lock(mutex_);
      // Invariant (1): the role the last round took goes back here, in the
      // lock this round takes anyway.
      if (holds_role) {
        role_taken_ = false;
        if (committed_batches > 0) last_group_batches_ = committed_batches;
        holds_role = false;
      }
      // Invariant (6): a held commit waits for the next group only while one is queued.
      // Invariant (9): a sync of the redo log wakes it to release what it covers.
      // Invariant (1): a caller holding the role (10) hands it back, then notifies.
      while (role_taken_ || (!stopping_ && queue_.empty() && !held_ && !synced_moved_)) {
        cv_.wait(mutex_);
      }
      linger();
      // Invariant (9): while a written group waits for a sync that has not
      // begun, or a sync runs and fewer batches wait than the last group
      // held, the next group gathers; each sync (begun or done) wakes this.
      // A sync that returned meanwhile, before this round or during its
      // gathering, first releases what it covered.
      bool release_first = false;
      while (!stopping_ && !queue_.empty() && queue_.front().batch && redo &&
             queue_.size() < kGroupBatchesMax) {
        const store::RedoLog::SyncState sync = redo->sync_state();
        if (!sync.backlogged && !(sync.in_flight && queue_.size() < last_group_batches_)) break;
        if (synced_moved_) {
          release_first = true;
          break;
        }
        cv_.wait(mutex_);
      }
      synced_moved_ = false;  // release_synced() below covers every sync so far
      role_taken_ = holds_role = true;  // invariant (1): given back next round
      committed_batches = 0;
      if (release_first) {
        // Takes no group: the next round gathers again.
      } else if (!queue_.empty() && !queue_.front().batch) {
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
      stopping = stopping_;
    }
    release_synced();
    if (group.empty()) {
      if (!held_ && !stopping) continue;  // woken by a sync of the redo log (9)
      if (!held_) {  // stopping: everything queued is committed, synced and released
        checkpoint_at_stop();
        close_redo();
        return;  // the role stays taken: no caller commits after the stop (10)
      }
      // Invariant (6): nothing waits to cover the held commit, so sync now. A
      // failure fails the held turns and stops the store (store.h (5)).
      (void)sync_and_release();
      continue;
    }
    committed_batches = group.front().batch ? group.size() : 0;  // commit_group takes them
    if (group.front().batch && !linger_) {
      commit_group(group);
    } else if (group.front().batch) {
      // Invariant (8): what the next linger is measured against.
      const auto begin = std::chrono::steady_clock::now();
      commit_group(group);
      last_commit_us_ = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - begin)
                            .count();
    } else {
      run_task(group.front());
    }
  }
}

void Committer::linger() {
  // Invariant (8): only before a commit of batches, never before a task, and
  // only while the queue is shorter than the last group.
  if (!linger_ || stopping_ || queue_.empty() || !queue_.front().batch) return;
  if (queue_.size() >= last_group_batches_) return;
  const int64_t us = std::min(last_commit_us_ / kLingerDivisor, kLingerMaxUs);
  if (us <= 0) return;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  // Bounded by the deadline; submit() and stop() notify.
  while (!stopping_ && queue_.size() < last_group_batches_) {
    if (cv_.wait_until(mutex_, deadline) == std::cv_status::timeout) break;
  }
}

void Committer::run_task(Item& item) {
  MDB_txn* txn = nullptr;
  Status s = store_.stopped();  // store.h (5)
  if (s.is_ok())
    s = store::from_mdb(mdb_txn_begin(store_.env(), nullptr, 0, &txn),
                        "begin maintenance transaction");
  if (s.is_ok()) {
    const uint64_t id = mdb_txn_id(txn);
    s = item.task(store_, txn);
    bool txn_commit_failed = false;
    if (s.is_ok()) {
      s = store_.commit_status(mdb_txn_commit(txn), "commit maintenance", 0);
      txn_commit_failed = !s.is_ok();
    } else {
      mdb_txn_abort(txn);
    }
    stop_if_held_uncovered(s, txn_commit_failed, "a maintenance task");
    // Invariant (9): a task writes no redo record; a checkpoint covers it.
    if (s.is_ok() && store_.redo() && last_txnid() == id) {
      s = store_.redo()->checkpoint_now(id);
      if (s.is_ok()) release_waiting_through(UINT64_MAX);  // the checkpoint covers all
    }
    release_synced();
  }
  // Invariant (6): a task ends with its commit and the held one durable and released.
  if (sync_ && !store_.redo()) {
    Status synced = sync_and_release();
    if (s.is_ok()) s = synced;
  }
  if (item.task_done) item.task_done(s);
}

void Committer::checkpoint_at_stop() {
  if (records_.dirty_count() == 0 || !store_.stopped().is_ok()) return;
  // A failure here loses nothing: the next open rebuilds the dirty records
  // from the log tail (records.h (1)).
  MDB_txn* txn = nullptr;
  if (mdb_txn_begin(store_.env(), nullptr, 0, &txn) != 0) return;
  int64_t now = clock_.now_ms();
  GroupWriter writer(store_, records_, txn, now, keep_history_, history_commits_max_);
  if (!writer.finish(/*checkpoint=*/true).is_ok()) {
    mdb_txn_abort(txn);
    return;
  }
  if (mdb_txn_commit(txn) != 0) return;  // the commit freed the transaction
  // Invariant (9): no redo record; close_redo's checkpoint covers it (a crash
  // before that loses only this checkpoint of records, as a failure here does).
  // Invariant (6): its meta page may be deferred; nothing follows it.
  if (sync_ && !store_.redo() && !store_.sync_data("the records' checkpoint at stop").is_ok())
    return;
  records_.publish({}, 0, writer.checkpoint_log_no(), now);
}

void Committer::close_redo() {
  store::RedoLog* redo = store_.redo();
  if (!redo) return;
  // Invariant (9): a closed directory is data.mdb alone. On failure the redo
  // files stay, and the next open recovers from them.
  if (redo->checkpoint_now(last_txnid()).is_ok()) {
    release_waiting_through(UINT64_MAX);  // the checkpoint covers all
    (void)redo->close();
  }
  release_synced();
  // Whatever the log could not cover fails; nothing is left waiting.
  while (!waiting_.empty()) {
    fail(waiting_.front().second.batches, Status::io_error("the engine closed before the redo log "
                                                           "made this commit durable"));
    waiting_.pop_front();
  }
}

uint64_t Committer::last_txnid() const {
  MDB_envinfo info{};
  return mdb_env_info(store_.env(), &info) == 0 ? info.me_last_txnid : 0;
}

void Committer::commit_group(std::vector<Item>& group) {
  // Invariant (4): batches sealed before their object's reset fail unwritten.
  std::vector<std::unique_ptr<CommitBatch>> live;
  for (Item& item : group) {
    CommitBatch& b = *item.batch;
    if (b.slot && b.slot->generation.load(std::memory_order_acquire) != b.generation) {
      Status s = Status::aborted("object " + b.object.label() +
                                 " was reset after a failed commit that this turn depended on");
      for (auto& out : b.outputs) out(s);
      continue;
    }
    live.push_back(std::move(item.batch));
  }
  store::RedoLog* redo = store_.redo();
  if (redo && !redo->status().is_ok()) {
    // (9): a broken log takes no commit, and releases no output: a turn may
    // have read a commit whose record was never written, or one still waiting
    // for the sync that failed (redo.h (7)). What waits fails first.
    release_synced();
    fail(live, redo->status(), /*every_output=*/true);
    return;
  }
  if (Status stopped = store_.stopped(); !stopped.is_ok()) {
    // (4), store.h (5): likewise after a failed sync of data.mdb; a turn may
    // have read the commit it failed to make durable.
    fail(live, stopped, /*every_output=*/true);
    return;
  }
  bool any_writes = false;
  for (auto& b : live) any_writes |= b->has_writes();
  if (!any_writes) {
    // Outputs only: their turns read state of commits up to the held one (3), (6).
    Release outputs{0, std::move(live), {}, {}};
    if (held_)
      absorb(std::move(outputs));
    else if (!waiting_.empty())
      absorb_into(waiting_.back().second, std::move(outputs));  // (9)
    else
      release(outputs);
    return;
  }
  int64_t now = clock_.now_ms();
  MDB_txn* txn = nullptr;
  Status s = store::from_mdb(mdb_txn_begin(store_.env(), nullptr, 0, &txn), "begin commit");
  std::optional<GroupWriter> writer;
  size_t turns = 0;
  bool wrote = false;
  uint64_t record = 0;  // (9): the redo record that makes this commit durable
  bool meta_synced = !sync_;
  bool txn_commit_failed = false;  // (6): mdb_txn_commit itself failed
  if (s.is_ok()) {
    writer.emplace(store_, records_, txn, now, keep_history_, history_commits_max_);
    redo_ops_.clear();
    if (redo) writer->record_redo(&redo_ops_);
    for (auto& b : live) {
      if (!b->has_writes()) continue;
      ++turns;
      s = writer->apply(*b);
      if (!s.is_ok()) break;
    }
    if (s.is_ok()) s = writer->finish(records_.checkpoint_due(writer->object_count(), now));
    if (s.is_ok() && hook_) {
      s = hook_(CommitInfo{commit_number_ + 1, turns, writer->bytes_written()});
    }
    if (s.is_ok()) {
      const size_t id = mdb_txn_id(txn);
      if (redo) {
        meta_synced = true;  // (9): durability is the record's, never (6)'s holding
        // redo.h (8): a full disk fails the commit here, before it applies.
        if (!redo_ops_.empty()) s = redo->reserve(redo_ops_.bytes().size());
      } else if (sync_) {
        s = choose_meta_sync(&meta_synced);
      }
      if (s.is_ok()) {
        s = store_.commit_status(mdb_txn_commit(txn), "commit", writer->bytes_written());
        txn_commit_failed = !s.is_ok();
      } else {
        mdb_txn_abort(txn);
      }
      // LMDB skips an empty transaction: no sync and no meta page (6).
      wrote = s.is_ok() && last_txnid() == id;
      if (wrote && redo) {
        if (redo_ops_.empty()) {
          // A commit that wrote without a record (none is known) is covered
          // by a checkpoint before anything is released.
          s = redo->checkpoint_now(id);
          if (s.is_ok()) release_waiting_through(UINT64_MAX);  // the checkpoint covers all
        } else {
          Result<uint64_t> r = redo->append(redo_ops_);
          if (r.is_ok()) {
            record = *r;
            redo->committed(id);
          } else {
            s = r.status();  // the log is broken (redo.h (7))
          }
        }
      }
    } else {
      mdb_txn_abort(txn);
    }
  }
  ++commit_number_;

  if (!s.is_ok()) {
    counters_.commits_failed.fetch_add(1, std::memory_order_relaxed);
    // Invariant (4), (6): the held commit's meta page is not covered by this
    // one; sync explicitly, so it is released (or failed) before these fail,
    // unless this failure may have been the sync that was to cover it.
    stop_if_held_uncovered(s, txn_commit_failed, "commit " + std::to_string(commit_number_));
    if (held_) (void)sync_and_release();
    // Invariant (4), (9): likewise what waits for the log, once the syncer
    // covered it (a failed sync breaks the log, and then what waits fails).
    // What a broken log leaves waiting fails first (its objects reset), and
    // then every output here, as above.
    if (redo && !waiting_.empty()) (void)redo->wait_synced();
    release_synced();
    fail(live, s, /*every_output=*/(redo && !redo->status().is_ok()) || !store_.stopped().is_ok());
    return;
  }

  counters_.commits.fetch_add(1, std::memory_order_relaxed);
  counters_.turns_committed.fetch_add(turns, std::memory_order_relaxed);
  bump_max(counters_.turns_per_commit_max, turns);
  counters_.bytes_written.fetch_add(writer->bytes_written(), std::memory_order_relaxed);
  // The data fdatasync, and the O_DSYNC meta page write when it was not
  // deferred.
  // (With the redo log, release_synced counts the log's syncs.)
  if (sync_ && wrote && !redo) {
    counters_.fsyncs.fetch_add(meta_synced ? 2 : 1, std::memory_order_relaxed);
  }
  // Invariant (7): the cache first; durable_seq moves when the commit is released.
  records_.publish(writer->take_records(), writer->log_records(), writer->checkpoint_log_no(), now);
  Release done{commit_number_, std::move(live), std::move(writer->sent()), writer->earliest_alarm()};
  if (redo) {
    committed_redo(std::move(done), record);
  } else {
    committed(std::move(done), wrote, meta_synced);
  }
}

void Committer::committed_redo(Release&& r, uint64_t record) {
  if (release_before_sync_ || record == 0) {
    // The power-cut test's broken committer; or durable already (a
    // checkpoint covered it) or nothing written: after what waits, in order.
    if (!waiting_.empty() && !release_before_sync_) {
      absorb_into(waiting_.back().second, std::move(r));
      return;
    }
    synced_number_ = std::max(synced_number_, r.commit_number);
    release(r);
    return;
  }
  waiting_.emplace_back(record, std::move(r));
}

void Committer::release_synced() {
  store::RedoLog* redo = store_.redo();
  if (!redo) return;
  const uint64_t syncs = redo->syncs();
  counters_.fsyncs.fetch_add(syncs - syncs_seen_, std::memory_order_relaxed);
  syncs_seen_ = syncs;
  if (waiting_.empty()) return;
  // Invariant (9), redo.h (1): what the last sync covered, in commit order.
  release_waiting_through(redo->synced());
  Status s = redo->status();
  if (s.is_ok()) return;
  // Broken (redo.h (7)): the rest will never be covered; they fail as a
  // failed commit does (4).
  while (!waiting_.empty()) {
    Release r = std::move(waiting_.front().second);
    waiting_.pop_front();
    fail(r.batches, s);
  }
}

void Committer::release_waiting_through(uint64_t record) {
  while (!waiting_.empty() && waiting_.front().first <= record) {
    Release r = std::move(waiting_.front().second);
    waiting_.pop_front();
    synced_number_ = std::max(synced_number_, r.commit_number);
    release(r);
  }
}

Status Committer::choose_meta_sync(bool* meta_synced) {
  // Invariant (6): defer this commit's meta page sync only when a group is
  // already queued whose commit will cover it; else LMDB writes the meta page
  // through its O_DSYNC descriptor and the commit is durable when it returns,
  // so an idle committer pays exactly what LMDB's default does.
  bool waiting = false;
  if (defer_meta_sync_) {  // without it the queue does not matter: no lock per commit
    MutexLock lock(mutex_);
    waiting = !queue_.empty();
  }
  *meta_synced = !(defer_meta_sync_ && waiting) && !release_before_sync_;
  // lmdb.h: MDB_NOMETASYNC "may be changed at any time using
  // mdb_env_set_flags()"; only write commits read it (committer.h (1)). It
  // is set only when it changes: without defer_meta_sync, once.
  const bool on = !*meta_synced;
  if (on == meta_flag_on_) return Status::ok();
  meta_flag_on_ = on;
  return store::from_mdb(mdb_env_set_flags(store_.env(), MDB_NOMETASYNC, on ? 1 : 0),
                         "set MDB_NOMETASYNC");
}

void Committer::committed(Release&& r, bool wrote, bool meta_synced) {
  if (!sync_ || (wrote && meta_synced)) {
    // nosync: as durable as that mode promises. sync: LMDB synced the data
    // pages (covering the held commit's meta page), then this meta page.
    synced_number_ = r.commit_number;
    if (held_) {
      Release durable = std::move(*held_);
      held_.reset();
      release(durable);
    }
    release(r);
    return;
  }
  if (!wrote) {
    // Nothing written, nothing synced: it is exactly as durable as the held commit.
    if (held_) {
      absorb(std::move(r));
      return;
    }
    synced_number_ = r.commit_number;
    release(r);
    return;
  }
  // Invariant (6): this commit's data sync came after the held commit's meta page write.
  CARREL_ASSERT(r.commit_number - 1 >= synced_number_,
                "committer.h (6): synced_number_ only grows");
  synced_number_ = r.commit_number - 1;
  if (held_) {
    Release durable = std::move(*held_);
    held_.reset();
    release(durable);
  }
  if (release_before_sync_) {
    release(r);
    return;
  }
  held_ = std::move(r);
}

void Committer::absorb(Release&& r) {
  CARREL_ASSERT(held_.has_value(), "committer.h (6): absorb joins the held commit");
  absorb_into(*held_, std::move(r));
}

void Committer::absorb_into(Release& into, Release&& r) {
  for (auto& b : r.batches) into.batches.push_back(std::move(b));
  for (auto& m : r.sent) into.sent.push_back(std::move(m));
  if (r.earliest_alarm && (!into.earliest_alarm || *r.earliest_alarm < *into.earliest_alarm))
    into.earliest_alarm = r.earliest_alarm;
}

void Committer::stop_if_held_uncovered(const Status& failed, bool in_txn_commit,
                                       const std::string& what) {
  // Invariant (6), store.h (5): LMDB reports a failed fdatasync of the data
  // pages as it reports a failed write of them, and the kernel reports a
  // failed writeback once: the explicit sync after it could succeed over the
  // held commit's lost meta page. A failure inside mdb_txn_commit, or any I/O
  // error, may have been that sync; a full disk or map before the commit was not.
  if (failed.is_ok() || !held_ || (!in_txn_commit && failed.code() != Code::kIOError)) return;
  store_.fail_stop(Status::io_error(
      what + " failed (" + failed.message() + ") while commit " +
      std::to_string(held_->commit_number) +
      " waited for its sync to make it durable; its turns fail and this engine stops; check the "
      "disk and its log, then reopen the directory"));
}

Status Committer::sync_and_release() {
  // store.h (5): a failed sync stops the store; a stopped one syncs nothing more.
  Status s = store_.sync_data("commit " + std::to_string(commit_number_));
  if (s.is_ok()) {
    counters_.fsyncs.fetch_add(1, std::memory_order_relaxed);
    synced_number_ = commit_number_;
  }
  if (!held_) return s;
  Release r = std::move(*held_);
  held_.reset();
  if (s.is_ok()) {
    release(r);
  } else {
    // As a failed commit (4), and the store stopped (store.h (5)): every
    // output of it fails. Its messages stay in the outbox and its alarms in
    // the timetable for the engine that reopens the directory.
    fail(r.batches, s, /*every_output=*/true);
  }
  return s;
}

void Committer::release(Release& r) {
  CARREL_ASSERT(release_before_sync_ || r.commit_number <= synced_number_,
                "committer.h (6): a commit's outputs are released only once it is durable");
  // Invariant (3): durable_seq moves before any output is released.
  for (auto& b : r.batches) {
    if (!b->has_writes() || !b->slot) continue;
    CARREL_ASSERT(b->seq > b->slot->durable_seq.load(std::memory_order_relaxed),
                  "committer.h (5): an object's batches commit in seq order");
    CARREL_ASSERT(b->seq <= b->slot->sealed_seq.load(std::memory_order_acquire),
                  "object.h (3): sealed_seq >= durable_seq");
    b->slot->durable_seq.store(b->seq, std::memory_order_release);
  }
  for (auto& b : r.batches)
    for (auto& out : b->outputs) out(Status::ok());
  if (!r.sent.empty() && hooks_.on_sent) hooks_.on_sent(std::move(r.sent));
  if (r.earliest_alarm && hooks_.on_alarm_written) hooks_.on_alarm_written(*r.earliest_alarm);
}

void Committer::fail(std::vector<std::unique_ptr<CommitBatch>>& batches, const Status& s,
                     bool every_output) {
  // Invariant (4): reset every object that had writes in them.
  std::unordered_set<CommitProgress*> reset;
  for (auto& b : batches) {
    if (b->has_writes() && b->slot) reset.insert(b->slot.get());
  }
  for (CommitProgress* slot : reset) slot->generation.fetch_add(1, std::memory_order_acq_rel);
  // An outputs-only batch fails when its object was reset since it was sealed
  // (here, or by a failed sync of the held commit just before).
  for (auto& b : batches) {
    bool failed = every_output || b->has_writes() ||
                  (b->slot && b->slot->generation.load(std::memory_order_acquire) != b->generation);
    for (auto& out : b->outputs) out(failed ? s : Status::ok());
  }
}

}  // namespace carrel::detail
