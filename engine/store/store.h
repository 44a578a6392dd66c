// The LMDB environment behind one engine directory.
//
// Invariants:
//  (1) One directory is opened at most once per process (LMDB must never be
//      opened twice in one process: closing a second handle drops the first's
//      locks), and for writing by at most one process: flock on writer.lock
//      (which records the owner's pid) and on data.mdb itself, so deleting
//      writer.lock does not let a second writer in. A Busy error names the
//      running holder, or says carrel cannot tell; never a dead pid.
//  (2) Only the committer thread begins write transactions (see
//      engine/commit/committer.h); everyone else reads through ReadTxn.
//  (3) The environment uses MDB_NOTLS, so a read transaction is not bound to a
//      thread: ReadTxns are pooled, reset when released and renewed when taken.
//  (4) Recovery (redo.h (5)) runs only while no other process has the
//      directory open read-only. It rewinds data.mdb's meta pages to the
//      checkpoint and replays onto pages of the commits after it: a reader's
//      snapshot taken before the crash would be read while recovery writes
//      over its pages, and a reader that opened mid-recovery would miss
//      acknowledged commits. So a read-only open holds a shared flock on
//      lock.mdb for its lifetime, taken before LMDB reads a meta page, and
//      looks at the redo state again under it; a writable open takes it
//      exclusively before it reads the redo state and keeps it until
//      recovery ended (or it found none needed); each side is Busy, naming
//      the other's pid, when it cannot. That descriptor is closed only after
//      mdb_env_close: closing any descriptor of lock.mdb drops LMDB's own
//      fcntl locks on it (the reason for (1)).
//  (5) Fail-stop after a failed sync of data.mdb (sync mode without the redo
//      log: sync_data, or committer.h (6)'s rule for a failed commit while
//      one is held). Under Options::defer_meta_sync a commit is in data.mdb,
//      and read, before the sync that makes it durable (committer.h (6)); a
//      failed fdatasync may have dropped its pages, and
//      the kernel reports that once: a later sync returns success over the
//      loss. So the first failed sync stops the store for this process:
//      begin_read and copy_compact refuse and the committer takes no commit
//      (committer.h (6)), each naming the failed sync; the directory must be
//      reopened (Engine::close returns the cause).
//      The redo log's failures stop it the same way (redo.h (7)).
#pragma once

#include <lmdb.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carrel/options.h"
#include "carrel/status.h"
#include "engine/base/mutex.h"

namespace carrel::store {

enum class Db : uint8_t {
  kObjects,   // id -> ObjectRecord
  kKv,        // number ‖ key -> value (keys.h (2))
  kPages,     // number ‖ page_no -> SQLite page
  kAlarms,    // number ‖ name -> AlarmEntry
  kSchedule,  // due ‖ id ‖ name -> empty
  kHistory,   // log number -> log record (engine/history/undo.h)
  kOutbox,    // message_no -> message
  kDead,      // number ‖ name -> dead letter
  kMeta,      // setting -> value
  kCount,
};
constexpr size_t kDbCount = static_cast<size_t>(Db::kCount);
std::string_view db_name(Db db);

// Maps an LMDB return code to a Status; `what` names the operation. A damaged
// page (MDB_PAGE_NOTFOUND, MDB_CORRUPTED) is Corruption with
// Detail::kDamagedPage; a call in a transaction an earlier failure ended
// (MDB_BAD_TXN) is IOError with Detail::kFailedTxn.
Status from_mdb(int rc, std::string_view what);

inline MDB_val to_val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view from_val(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

class Store;

// A pooled read-only snapshot. Views it returns stay valid until it is released.
class ReadTxn {
 public:
  ReadTxn() = default;
  ReadTxn(Store* store, MDB_txn* txn) : store_(store), txn_(txn) {}
  ReadTxn(ReadTxn&& o) noexcept : store_(o.store_), txn_(o.txn_) { o.txn_ = nullptr; }
  ReadTxn& operator=(ReadTxn&& o) noexcept;
  ~ReadTxn() { release(); }

  MDB_txn* get() const { return txn_; }
  explicit operator bool() const { return txn_ != nullptr; }
  // nullopt when the key is absent.
  Result<std::optional<std::string_view>> get(Db db, std::string_view key) const;
  void release();

 private:
  Store* store_ = nullptr;
  MDB_txn* txn_ = nullptr;
};

struct StoreOptions {
  std::string dir;
  bool create_if_missing = true;
  bool read_only = false;
  bool sync = true;
  uint64_t map_bytes_max = uint64_t{64} << 30;
  uint32_t sql_page_bytes = 1024;  // stored at creation; the stored value wins later
  // sync: data.mdb is written with MDB_NOSYNC and made durable by the redo
  // log and its checkpoints (redo.h). Any writable open recovers a directory
  // the log left unclean, whatever this says.
  bool redo_log = false;
  // Fault injection into the redo log's file operations (Options::redo_fault_hook).
  RedoFaultHook redo_fault_hook;
  // Fault injection into sync_data (Options::data_sync_fault_hook).
  DataSyncFaultHook data_sync_fault_hook;
  // redo.h (9): a writable open of a directory whose redo files were lost
  // opens data.mdb as it was last written instead of refusing.
  bool discard_lost_redo_log = false;
  // Tests: called by a read-only open whose first look found the log lost,
  // before it asks whether a writer is alive (redo.h (9)).
  std::function<void()> reader_first_look_hook;
};

class RedoLog;
struct RedoState;

// What this open's recovery did (redo.h (5)); found is false when the
// directory held no redo files.
struct RedoRecovery {
  bool found = false;          // the directory held a checkpoint (it was not closed cleanly)
  uint64_t checkpoint = 0;     // k of the checkpoint it started from
  uint64_t txnid = 0;          // T, the transaction that checkpoint made durable
  bool meta_restored = false;  // T's meta page was written back (data.mdb had a newer one)
  uint64_t records = 0;        // records replayed after the checkpoint
  uint64_t transactions = 0;   // write transactions the replay took (redo.h replay_redo)
  // redo.h (9): what of the log was lost, when StoreOptions::discard_lost_redo_log
  // let the open go on without it (empty otherwise).
  std::string discarded;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> open(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  MDB_env* env() const { return env_; }
  MDB_dbi dbi(Db db) const { return dbis_[static_cast<size_t>(db)]; }
  const std::string& dir() const { return dir_; }
  bool read_only() const { return read_only_; }
  uint32_t sql_page_bytes() const { return sql_page_bytes_; }
  // The redo log (redo.h) of a writable sync store opened with
  // StoreOptions::redo_log, else null.
  RedoLog* redo() const { return redo_.get(); }
  // A process (another, or this one) holds DIR/data.mdb's writer flock: an
  // engine has the directory open for writing.
  static bool writer_alive(const std::string& dir);
  // What recovery did at this open (a writable one; a read-only open recovers nothing).
  const RedoRecovery& recovery() const { return recovery_; }
  // StoreOptions::redo_fault_hook (null when none).
  const RedoFaultHook& redo_fault_hook() const { return redo_fault_hook_; }
  // data.mdb, open read-write (writable stores only; -1 otherwise).
  int data_fd() const { return data_fd_; }

  // A snapshot of the latest committed state.
  Result<ReadTxn> begin_read();

  // An fdatasync of data.mdb (mdb_env_sync), after
  // StoreOptions::data_sync_fault_hook; `after` says what it makes durable,
  // for the error. A failure stops the store (5).
  Status sync_data(std::string_view after);
  // Invariant (5): stops the store; the first cause is the one kept.
  void fail_stop(Status cause);
  // Invariant (5): why the store stopped; ok while it runs.
  Status stopped() const;

  // Frees the reader slots of processes that died holding a read transaction
  // (mdb_reader_check), so LMDB can reuse the pages those snapshots pinned.
  // Returns how many slots it freed.
  Result<int> clear_dead_readers();
  // Slots clear_dead_readers() freed while the environment was opened.
  int dead_readers_at_open() const { return dead_readers_at_open_; }

  // The Status of a failed LMDB commit (rc from mdb_txn_commit) of `bytes`
  // key and value bytes. A full file system is NoSpace naming the directory,
  // also when LMDB reports it as EIO (a short write) and the file system has
  // less free space than the commit needed.
  Status commit_status(int rc, std::string_view what, uint64_t bytes) const;
  // mdb_txn_commit as LMDB's default does it, whatever the environment's
  // flags: the pages synced, then the meta page written and synced. For
  // commits nothing else makes durable (creation, the redo log's
  // mark: redo.h (9)). Only where no other write transaction can run.
  int commit_durably(MDB_txn* txn) const;

  // Copies the environment with compaction to dest_dir (created, must be
  // empty but for a leftover kBackupPartialFile, which is removed).
  // Consistent: it reads one snapshot while writers go on. The copy goes to
  // dest_dir/kBackupPartialFile, is fsynced, renamed to data.mdb, and the
  // directory is fsynced: a copy cut short (even by SIGKILL) is never a
  // data.mdb, so it cannot be mistaken for an engine. on_copy_fd, when set, is
  // called with the descriptor being written before the copy and with -1
  // after it (the CLI points it elsewhere on SIGINT/SIGTERM to stop the copy).
  Status copy_compact(const std::string& dest_dir,
                      const std::function<void(int)>& on_copy_fd = nullptr);
  static constexpr const char* kBackupPartialFile = "data.mdb.partial";

 private:
  friend class ReadTxn;
  Store() = default;
  Status open_env(const StoreOptions& options, bool creating);
  // Reads the format marker and the SQL page size; Corruption when absent or foreign.
  Status check_meta();
  // Takes the writer locks of invariant (1); Busy when another process has them.
  Status lock_for_writing();
  // Ok when this build reads format `found` (store.cc kFormatValue: its own,
  // or carrel-7, which a writable open upgrades); InvalidArgument naming an
  // older one, this build's and the remedy; Corruption naming any other
  // (a newer build's, or none), what this build reads and the remedy.
  Status check_format(const std::string& found) const;
  // What the open changed before a refusal (a recovery's first step, or nothing).
  std::string changed_before_refusal() const;
  // redo.h (5): replays what the redo log holds past its checkpoint, then
  // starts the log (use_redo) or removes its files.
  Status start_redo(const RedoState& redo, bool use_redo, bool marked);
  // redo.h (9): Corruption naming what of the log is lost, or ok (lost is empty).
  Status refuse_lost(const std::string& lost) const;
  // redo.h (9): a read-only open's look at the files and the mark, and a
  // second one kSecondLookMs later when the first finds a loss.
  Status check_lost_for_reader(const RedoState& redo, bool marked) const;
  static constexpr int kSecondLookMs = 20;
  // The mark, in a read transaction of its own.
  Result<bool> read_mark() const;
  // The mark as txn sees it.
  Result<bool> mark_in(MDB_txn* txn) const;
  // redo.h (9): a copy (copy_compact) of a directory whose log is in use
  // holds the mark; this deletes it and syncs the copy.
  static Status delete_mark_in_copy(const std::string& path);
  bool writer_alive() const;
  // Invariant (4): the writer's exclusive flock on lock.mdb (false: a reader
  // holds it), the Busy naming that reader, and the flock's release once no
  // recovery is needed or recovery ended (the descriptor stays open).
  Result<bool> exclude_readers();
  Status recovery_blocked() const;
  void end_reader_exclusion();
  // Invariant (4): a reader's shared flock on lock.mdb, held until ~Store.
  Status share_with_readers();
  // A read-only open of a directory that needs recovery, with no writer alive: Busy.
  Status refuse_unrecovered(const RedoState& redo) const;
  void recycle(MDB_txn* txn);

  std::string dir_;
  bool read_only_ = false;
  uint32_t sql_page_bytes_ = 0;
  MDB_env* env_ = nullptr;
  MDB_dbi dbis_[kDbCount] = {};
  int lock_fd_ = -1;
  int data_fd_ = -1;  // data.mdb, open only to hold its flock
  int readers_fd_ = -1;  // lock.mdb, open only for the flock of invariant (4)
  int dead_readers_at_open_ = 0;
  std::unique_ptr<RedoLog> redo_;
  RedoFaultHook redo_fault_hook_;
  std::function<void()> reader_first_look_hook_;  // StoreOptions::reader_first_look_hook
  RedoRecovery recovery_;
  uint64_t dev_ = 0, ino_ = 0;  // registry key for invariant (1)
  Mutex pool_mutex_;
  std::vector<MDB_txn*> pool_ GUARDED_BY(pool_mutex_);  // reset read transactions
  DataSyncFaultHook data_sync_fault_hook_;
  // Invariant (5): set once, with stop_cause_ written first.
  std::atomic<bool> stopped_{false};
  mutable Mutex stop_mutex_;
  Status stop_cause_ GUARDED_BY(stop_mutex_);
};

}  // namespace carrel::store
