// The redo log: sync commits made durable by sequential fdatasyncs.
//
// LMDB's own sync commit flushes twice, and both flushes land on random
// pages: the data pages, then the meta page that points at them. With the redo
// log, data.mdb is written with MDB_NOSYNC; after each commit, its puts and
// deletes (RedoOps, made by the group writer) are written to a segment file,
// and a syncer thread fdatasyncs the segment again and again while records
// wait, each sync covering every record written before it began. A commit's
// outputs wait for the sync that covers its record (committer.h (9)), so the
// committer never waits for a disk. data.mdb is made durable by checkpoints,
// on a thread of their own.
//
// Files: DIR/redo.0 and DIR/redo.1 (segments, written in turn, each from
// offset 0 over its earlier contents) and DIR/redo.ckpt (two checkpoint
// slots of one block each).
//
// Invariants:
//  (1) A commit is durable once the syncer's fdatasync that began after its
//      record was written returned (synced() >= its record), or once a
//      checkpoint of a transaction at or after it is durable. Nothing else
//      makes it durable: data.mdb's pages past the checkpoint are never
//      trusted (5). A record that could not be written breaks the log (7).
//      Only the syncer fdatasyncs a segment (others wait for it: wait_synced):
//      Linux reports a failed writeback once per open file, so of two syncs
//      of one descriptor one could return 0 over pages whose write failed.
//      Once the log broke, synced() no longer moves.
//  (2) A segment holds records with consecutive numbers from its first one; a
//      reader stops at the first record that fails its checksum or breaks the
//      sequence (the stale bytes of an earlier round always have lower
//      numbers than the round written over them). Each record names the
//      highest record that was durable when it was written.
//  (3) Checkpoint k: T is a committed LMDB transaction and B the last record
//      written, which T includes. A read transaction on T (the pin) is taken
//      before any later commit, and T's meta page prefix is copied; then
//      data.mdb is fdatasynced and slot k % 2 of redo.ckpt is written and
//      fdatasynced. The pin of checkpoint k-1 is released only after that:
//      LMDB never reuses a page of a snapshot a reader holds, so T's pages
//      stay on disk as the sync left them, whatever later unsynced commits
//      wrote or tore.
//  (4) The committer switches to the other segment (from offset 0) only when
//      the durable checkpoint covers every record that segment holds, and
//      after the syncer synced every record of the segment it leaves, so no record recovery could
//      need is ever written over and the syncer only ever syncs one segment.
//  (5) Recovery (the first writable open): the valid slot with the highest
//      k names (T, B, meta). If data.mdb's newest meta page is not T's, T's
//      meta page is written into both meta slots (LMDB then opens T, intact
//      by (3)). Records B+1, B+2, ... are replayed (whole records per write
//      transaction, the next one begun once kReplayOpsPerTxn operations were
//      applied: LMDB bounds a transaction's dirty pages),
//      data.mdb is synced, and a fresh checkpoint is made, all under a pin on
//      T: an interrupted recovery starts again from the same T. The records
//      end at the first one missing or damaged; if a valid record after it
//      says that one was durable (2), that is Corruption, never skipped.
//  (6) Bounds: a segment past kSegmentBytesMax waits for the checkpoint in
//      flight before it grows; a record is at most kRecordBytesMax; a
//      checkpoint starts once kCheckpointBytes were appended since the last
//      one began, or kCheckpointCommits commits were made since then, or
//      kCheckpointIdleMs passed with records it does not cover. (The pin
//      keeps LMDB from reusing a page freed after it, so between two
//      checkpoints every commit takes pages the last one did not free, and
//      data.mdb settles near twice what one interval takes beyond the data.
//      One-turn commits, as a single writer makes, fill 256 KiB of log only
//      after ~1,300 of them: 80 MB for 3 MB of data before the commit cap.)
//  (7) A failed record write, sync, data sync or slot write breaks the log:
//      every later append fails, synced() stops, and no segment is switched,
//      so the records after the last durable checkpoint stay for recovery at
//      the next open. The commit whose record failed is in data.mdb already
//      and that recovery rolls it back, so nothing may read it: broken() is
//      set before any turn learns of the failure, and Store::begin_read
//      refuses every snapshot from then on (a turn already running on that
//      object waits for the failed commit, and fails with it).
//      Options::redo_fault_hook injects a failure before each step.
//  (8) A record is written only into space allocated before its commit
//      (reserve(), in steps of kReserveBytes, or just the record's when the
//      disk has less): a full disk fails the commit, and writes resume when
//      space returns.
//  (9) The mark. While a log is in use, data.mdb's meta database holds
//      kRedoMarkKey, so data.mdb itself says it is not the whole state. A log
//      creates its files and syncs the directory, then commits the mark and
//      syncs data.mdb, and only then writes its first checkpoint; a closing
//      log (or an open without the log, after its recovery) commits the mark's
//      deletion and syncs data.mdb before it removes the files. So files an
//      operator removed or damaged are found at the next open (lost_redo_files;
//      a read-only open with no writer alive looks twice, since a writer
//      starting or closing beside it changes what one look reads):
//      the mark with no redo.ckpt; the mark and a redo.ckpt with no valid slot
//      beside a segment that holds a record (a log cut short between its mark
//      and its first checkpoint has no record yet); a valid checkpoint with a
//      segment missing. Without the mark, leftover files are garbage: data.mdb
//      was closed whole. The open is refused with Corruption naming what is missing,
//      unless it was told to discard the log (Options::discard_lost_redo_log):
//      then a valid checkpoint is recovered with the records that follow it
//      without a gap, or, with none valid, data.mdb as it was last written is
//      the state. A new log empties the files in place (reset_redo_files), so
//      with the mark set redo.ckpt never goes missing; the mark is committed
//      with LMDB's ordered sync (Store::commit_durably), since a fresh log has
//      no checkpoint to rewind a torn commit to.
//  (10) A SQL page changed in place is recorded as a delta from the page
//      before the write (put_delta; store/page_delta.h), not whole: a one-row
//      INSERT's record holds about the row's bytes. Replay rebuilds the page
//      from the one under its key, which is the page the commit changed,
//      because T holds every record up to B that replay can reach and no
//      later one: a commit's record is appended before committed() may begin
//      a checkpoint of it, a commit without a record is checkpointed at once
//      (checkpoint_now; committer.h (9)), and start() numbers its records
//      past any left behind after a torn one (2). Records replay in order from
//      T, and a recovery cut short starts over from T (5), so each record
//      meets the state its commit met. A rebuilt page whose checksum does not
//      verify is Corruption, never stored: data.mdb's page at the checkpoint
//      is damaged, or the log is another data.mdb's. (Whole values would have
//      overwritten such a page; a delta cannot, and the open is refused.)
#pragma once

#include <lmdb.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "carrel/status.h"
#include "engine/base/mutex.h"
#include "engine/store/store.h"

namespace carrel::store {

// The puts and deletes of one write transaction, in the order they were made.
class RedoOps {
 public:
  void put(Db db, std::string_view key, std::string_view value);
  // Invariant (10): a put of the page that `delta` rebuilds from the one
  // under key. REQUIRES: db is Db::kPages.
  void put_delta(Db db, std::string_view key, std::string_view delta);
  void del(Db db, std::string_view key);
  const std::string& bytes() const { return bytes_; }
  bool empty() const { return bytes_.empty(); }
  void clear() { bytes_.clear(); }

 private:
  std::string bytes_;
};

// What redo.ckpt says (5).
struct RedoCheckpoint {
  uint64_t number = 0;  // k
  uint64_t txnid = 0;   // T
  uint64_t base = 0;    // B
  std::string meta;     // the first kMetaBytes of T's meta page
};

class RedoLog {
 public:
  static constexpr const char* kSegmentNames[2] = {"redo.0", "redo.1"};
  static constexpr const char* kCheckpointName = "redo.ckpt";
  // Invariant (6).
  static constexpr uint64_t kCheckpointBytes = uint64_t{256} << 10;
  static constexpr uint64_t kCheckpointCommits = 128;
  static constexpr int64_t kCheckpointIdleMs = 1000;
  static constexpr uint64_t kSegmentBytesMax = uint64_t{64} << 20;
  static constexpr uint64_t kRecordBytesMax = uint64_t{160} << 20;
  static constexpr uint64_t kReserveBytes = uint64_t{1} << 20;  // (8)
  static_assert(kCheckpointBytes < kSegmentBytesMax, "(6): a checkpoint starts before the cap");
  // replay_redo: operations per recovery transaction. One dirties at most a
  // leaf, its branches and an overflow run of the largest value; with 16 pages
  // each, a transaction stays well inside LMDB's 131,072 dirty pages.
  static constexpr uint64_t kReplayOpsPerTxn = 4096;
  static_assert(kReplayOpsPerTxn * 16 < (uint64_t{1} << 17), "LMDB's dirty page bound");
  // ... and bytes of records per recovery transaction (32 MiB); a larger
  // record is alone. A page delta (10) may rewrite more bytes than it holds,
  // but only one SQL page of at most 64 KiB (17 LMDB pages with its leaf and
  // branches, ~22 for the operation): 4,096 of them stay well inside the bound.
  static constexpr uint64_t kReplayBytesPerTxn = uint64_t{32} << 20;
  static_assert(kReplayOpsPerTxn * 16 + (kReplayBytesPerTxn >> 12) < (uint64_t{1} << 17),
                "LMDB's dirty page bound");
  static_assert(kReplayOpsPerTxn * 22 + (kReplayBytesPerTxn >> 12) < (uint64_t{1} << 17),
                "LMDB's dirty page bound, every operation a delta of a 64 KiB page");
  // The prefix of LMDB's meta page kept per checkpoint: the page header and
  // MDB_meta (mdb.c, data format 1) fit in it.
  static constexpr size_t kMetaBytes = 256;
  static constexpr size_t kSlotBytes = 4096;
  static_assert(kMetaBytes + 64 <= kSlotBytes, "a slot holds its header and the meta prefix");

  // Tests only (tests/redo_test.cc): while set, no checkpoint starts after
  // a commit (the one at start and checkpoint_now still run), so data.mdb's
  // durable state stays the one the log started from.
  static void hold_checkpoints_for_tests(bool on);
  // Tests only: replay_redo's operations per transaction (0: kReplayOpsPerTxn).
  static void set_replay_ops_per_txn_for_tests(uint64_t ops);
  static uint64_t replay_ops_per_txn();

  // Starts the log of a store whose data.mdb was just made durable at
  // transaction `txnid`, holding every record up to `base` (recovery, or a
  // directory without a log): writes checkpoint `number` at once.
  static Result<std::unique_ptr<RedoLog>> start(const Store& store, uint64_t number, uint64_t txnid,
                                                uint64_t base);
  ~RedoLog();
  RedoLog(const RedoLog&) = delete;
  RedoLog& operator=(const RedoLog&) = delete;

  // Invariant (8): allocates the current segment's space for a record of
  // `payload_bytes`, before the commit: a full disk fails the commit here
  // (NoSpace, nothing applied), never the append after it.
  Status reserve(size_t payload_bytes);
  // Writes the next record (the commit's, after mdb_txn_commit) and wakes the
  // syncer; its number. The committer thread only, as are committed,
  // checkpoint_now and close.
  Result<uint64_t> append(const RedoOps& ops);
  // Invariant (1): every record up to this one is durable.
  uint64_t synced() const;
  // What the syncer is doing, read under one lock (committer.h (9) asks on
  // every evaluation of its gathering rule). Both false when broken.
  struct SyncState {
    // A written record waits for a sync that has not begun: another commit
    // now would only join it.
    bool backlogged = false;
    // A sync has begun and not yet returned.
    bool in_flight = false;
  };
  SyncState sync_state() const;
  // Called on the syncer thread when a sync begins and after it moved
  // synced(), and when the log breaks; set before the first append, cleared before the
  // callee goes away.
  void set_on_synced(std::function<void()> f);
  // The committer thread: waits until the syncer covered every record written
  // so far (committer.h (4): before a failed commit resets its objects); the
  // log's status, broken when a sync failed (7).
  Status wait_synced();
  // Ok, or why the log is broken (7).
  Status status() const;
  // The log broke (7): data.mdb may hold a commit whose record was never
  // written, which the next open rolls back, so the store takes no new
  // snapshot (Store::begin_read). Lock-free, for the read path.
  bool broken() const { return broken_flag_.load(std::memory_order_acquire); }
  // LMDB transaction `txnid` committed (with or without a record): a
  // checkpoint starts in the background when (6) says so.
  void committed(uint64_t txnid);
  // A checkpoint of `txnid`, waited for: after a commit with no record (a
  // maintenance task) and at close.
  Status checkpoint_now(uint64_t txnid);

  // After a checkpoint of the last commit (committer.h (9)): releases the
  // pins and removes the redo files, redo.ckpt first, so the directory is
  // data.mdb alone. Every later append fails.
  Status close();

  uint64_t checkpoints() const;
  // The segment fdatasyncs so far (all the syncer's, invariant (1)).
  uint64_t syncs() const;

 private:
  struct Pending {
    uint64_t number = 0;
    uint64_t txnid = 0;
    uint64_t base = 0;
    std::string meta;
    MDB_txn* pin = nullptr;
  };
  RedoLog(const Store& store) : store_(store) {}
  // Invariant (3), on the committer thread: pin T, copy its meta page, and
  // switch segments when (4) allows. Fails when the log is broken (7).
  Result<Pending> begin_checkpoint(uint64_t txnid);

  // Invariant (1): fdatasyncs fd, then synced() covers `target`; a failure breaks the log (7).
  Status sync_to(int fd, uint64_t target, const std::string& what);
  // Calls on_synced_ (set_on_synced).
  void notify();
  void syncer_main();
  void set_broken(const Status& s);
  // Options::redo_fault_hook's verdict on the step about to run.
  Status fault(RedoStep step) const;
  // Invariant (3): the data sync and the slot write.
  Status finish_checkpoint(Pending& p);
  void checkpointer_main();
  Status wait_idle();
  Status write_slot(const RedoCheckpoint& c);

  const Store& store_;
  int seg_fd_[2] = {-1, -1};
  int ckpt_fd_ = -1;
  // Committer thread only.
  int cur_ = 0;                     // the segment appended to
  uint64_t at_ = 0;                 // where the next record goes in it
  uint64_t allocated_[2] = {0, 0};  // each segment's space allocated so far (8)
  uint64_t next_ = 1;               // the next record's number
  uint64_t other_last_ = 0;         // the last record the other segment holds (4)
  uint64_t since_begin_ = 0;        // bytes appended since the last checkpoint began (6)
  uint64_t commits_since_begin_ = 0;  // commits since the last checkpoint began (6)
  int64_t begun_ms_ = 0;            // when it began (steady clock)
  uint64_t next_number_ = 1;        // k of the next checkpoint

  mutable Mutex mutex_;
  CondVar cv_;
  std::optional<Pending> in_flight_ GUARDED_BY(mutex_);
  bool in_flight_done_ GUARDED_BY(mutex_) = true;  // no checkpoint in flight
  MDB_txn* durable_pin_ GUARDED_BY(mutex_) = nullptr;
  uint64_t durable_base_ GUARDED_BY(mutex_) = 0;
  uint64_t checkpoints_ GUARDED_BY(mutex_) = 0;
  Status broken_ GUARDED_BY(mutex_);
  std::atomic<bool> broken_flag_{false};  // set with broken_ by set_broken, never cleared
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread thread_;

  // The syncer (1).
  CondVar sync_cv_;
  uint64_t written_ GUARDED_BY(mutex_) = 0;  // the last record written
  uint64_t synced_ GUARDED_BY(mutex_) = 0;   // the last record durable
  uint64_t syncing_ GUARDED_BY(mutex_) = 0;  // the last record the running (or last) sync covers
  uint64_t syncs_ GUARDED_BY(mutex_) = 0;
  int sync_fd_ GUARDED_BY(mutex_) = -1;  // the segment written to (4)
  std::thread syncer_;
  CondVar synced_cv_;  // synced_ moved, or the log broke (wait_synced)
  Mutex callback_mutex_;
  std::function<void()> on_synced_ GUARDED_BY(callback_mutex_);
};

// What the directory's redo files ask of an open (5).
struct RedoState {
  bool present = false;  // redo.ckpt holds a valid checkpoint
  RedoCheckpoint checkpoint;
  uint64_t newest_meta_txnid = 0;  // data.mdb's newest meta page
  bool records_after = false;      // a segment holds record checkpoint.base + 1
  // Invariant (9): what the files say of themselves.
  bool checkpoint_file = false;      // redo.ckpt exists (valid or not)
  bool segment_records = false;      // without a valid checkpoint: a segment holds a record
  std::string missing_segment;       // with one: the name of a segment that is missing
  // data.mdb alone is not the state: recovery must run before any read.
  bool needs_recovery() const {
    return present && (records_after || newest_meta_txnid != checkpoint.txnid);
  }
};

// Reads redo.ckpt and the segments' heads, and data.mdb's meta pages. A
// directory without redo.ckpt has no redo state.
Result<RedoState> read_redo_state(const std::string& dir);
// Invariant (5): writes the checkpoint's meta page into both meta slots of
// DIR/data.mdb and syncs it.
Status restore_meta(const std::string& dir, const RedoCheckpoint& c);
// Invariant (5): replays records base+1, base+2, ... into *txn; returns the
// last record replayed (base when none). A damaged record followed by later
// valid ones is Corruption, never skipped. Once the operations applied since
// the transaction began reach RedoLog::replay_ops_per_txn(), or the next
// record would take its bytes past kReplayBytesPerTxn, `next_txn` commits
// *txn and begins the next, between two records: LMDB bounds the
// pages one write transaction may dirty, which a long log (a checkpoint that
// could not keep up) would pass in one. Safe under the caller's pin on T: a
// recovery cut short starts again from T (5).
Result<uint64_t> replay_redo(const Store& store, MDB_txn** txn, uint64_t base,
                             const std::function<Status(MDB_txn**)>& next_txn);
// The redo files' encodings (invariant (2), redo.ckpt's slots), for the
// log itself, the tests and the fuzz target.
std::string encode_redo_record(uint64_t number, uint64_t durable, std::string_view payload);
std::string encode_redo_slot(const RedoCheckpoint& c);
// Removes the redo files (a store opened without the log after recovery):
// redo.ckpt first, then the directory is synced.
Status remove_redo_files(const std::string& dir);
// Invariant (2): the highest-numbered valid record either segment holds,
// wherever in it (0: none). A log started after recovery numbers its records
// past it, so a record left behind (after a torn one, or in a segment beside a
// lost one) is never read as one of the new log's.
Result<uint64_t> highest_redo_record(const std::string& dir);
// Invariant (9): the files a new log writes, created or emptied in place
// (each synced), then the directory synced.
Status reset_redo_files(const std::string& dir);
// Invariant (9): the key of the mark in the meta database.
inline constexpr std::string_view kRedoMarkKey = "redo_log";
// Invariant (9): commits the mark (on) or its deletion in a write transaction
// of its own and syncs data.mdb. The writing thread's, with no other write
// transaction open.
Status write_redo_mark(const Store& store, bool on);
// Invariant (9): what of the log is lost, given what the files say and whether
// data.mdb holds the mark; empty when nothing is.
std::string lost_redo_files(const RedoState& state, bool marked);

}  // namespace carrel::store
