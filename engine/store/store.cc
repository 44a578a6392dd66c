#include "engine/store/store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "engine/store/keys.h"
#include "engine/store/redo.h"

namespace carrel::store {
namespace {

constexpr std::string_view kFormatKey = "format";
// carrel-3: KV values, SQL pages, alarm entries and dead letters carry a
// checksum (checksum.h). Directories of an older format are refused by name.
// History is one append-only log keyed by commit number
// (engine/history/undo.h); carrel-1 kept it per object (id ‖ seq). A log
// record may hold a SQL page's undo as a delta from the page the commit left
// (undo.h (7)); carrel-2 log records held whole before-images only.
// Every commit appends a log record (with history off too), and `objects`
// is written at checkpoints (meta.checkpoint_log_no), the log tail after it
// rebuilding the newer records (engine/history/tail.h); carrel-2 rewrote
// each record per commit.
// carrel-4: object records and log records use varints and presence
// masks (object_record.h, history/undo.h (9)).
// carrel-5: sync commits may be made durable by the redo log (redo.h): the
// directory's state is data.mdb together with redo.ckpt and the segments, so
// a build that knows only data.mdb must not open it.
// carrel-6: while the redo log is in use, the meta database holds its mark
// (redo.h (9)), so an open finds redo files that were removed or damaged
// instead of taking data.mdb alone for the state.
// carrel-7: per-object keys start with the object's number, given in
// creation order, not its 16 id bytes (keys.h (2), (3)); object records and
// log records carry the number (object_record.h, undo.h (9)). Every key and
// every checksum of kv, pages, alarms and dead letters changes with it (the
// checksum covers the key), and a log record's page deltas rebuild pages
// sealed under the old keys, so no older directory converts in place: each
// is refused by name before anything in it is touched, redo files included,
// with the remedy (export with the carrel that wrote it, import with this).
// carrel-8: the redo log may hold a SQL page as a delta from the page before
// its commit (redo.h (10)), which a carrel-7 build cannot replay. Nothing
// else changed, and a carrel-7 redo log holds whole values only, which this
// build replays: a carrel-7 directory is upgraded in place by its first
// writable open (the format key, in the open's first transaction, before its
// redo log is replayed or a new one starts), and read as it is by a
// read-only one.
constexpr std::string_view kFormatValue = "carrel-8";
constexpr std::string_view kUpgradedFormat = "carrel-7";
constexpr std::string_view kOlderFormats[] = {"carrel-1", "carrel-2", "carrel-3",
                                              "carrel-4", "carrel-5", "carrel-6"};
constexpr std::string_view kPageBytesKey = "sql_page_bytes";
constexpr unsigned kMaxReaders = 1024;

bool older_format(std::string_view format) {
  return std::find(std::begin(kOlderFormats), std::end(kOlderFormats), format) !=
         std::end(kOlderFormats);
}

// Invariant (1): directories this process has open, by (device, inode).
// Function-local, so an engine opened during static initialization (a test
// program's child role, an embedder's global) finds it constructed.
struct OpenDirs {
  Mutex mutex;
  std::set<std::pair<uint64_t, uint64_t>> dirs GUARDED_BY(mutex);
};
OpenDirs& open_dirs() {
  static OpenDirs* d = new OpenDirs;  // never destroyed: engines may close during exit
  return *d;
}

std::string errno_text(int e) { return std::strerror(e); }

// Bytes a commit may need beyond its key and value bytes (B-tree pages,
// history, meta): a failed commit with less than this free was out of space.
constexpr uint64_t kCommitSlackBytes = uint64_t{1} << 20;

bool process_alive(long pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

// The live process holding a flock on the file open as fd, read from
// /proc/locks (which names the process that took each lock), or 0.
long flock_holder(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return 0;
  std::ifstream locks("/proc/locks");
  std::string line;
  for (int n = 0; n < 100000 && std::getline(locks, line); ++n) {
    // "1: FLOCK  ADVISORY  WRITE 4242 fe:00:123456 0 EOF"; waiters have "->".
    std::istringstream in(line);
    std::string id, kind, mode, access, file;
    long pid = 0;
    if (!(in >> id >> kind >> mode >> access >> pid >> file) || kind != "FLOCK") continue;
    unsigned maj = 0, min = 0;
    unsigned long long ino = 0;
    if (std::sscanf(file.c_str(), "%x:%x:%llu", &maj, &min, &ino) != 3) continue;
    if (maj == major(st.st_dev) && min == minor(st.st_dev) && ino == st.st_ino &&
        process_alive(pid)) {
      return pid;
    }
  }
  return 0;
}

// The pid a writer recorded in writer.lock, when that process is alive.
long recorded_pid(int lock_fd) {
  char buf[32] = {};
  ssize_t n = ::pread(lock_fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return 0;
  char* end = nullptr;
  long pid = std::strtol(buf, &end, 10);
  return end != buf && process_alive(pid) ? pid : 0;
}

// Invariant (1): takes the flock on fd, or is Busy naming its live holder,
// or saying that it cannot be told; never a pid that is not running.
Status take_writer_flock(const std::string& dir, int fd, int record_fd) {
  constexpr int kAttemptsMax = 3;  // a holder that exits between looks is not an error
  for (int attempt = 0; attempt < kAttemptsMax; ++attempt) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return Status::ok();
    long pid = flock_holder(fd);
    if (pid == 0 && record_fd >= 0) pid = recorded_pid(record_fd);
    if (pid != 0) {
      return Status::busy("engine directory '" + dir + "' is open for writing by process " +
                          std::to_string(pid));
    }
  }
  return Status::busy("engine directory '" + dir +
                      "' is open for writing by another process, which carrel cannot identify "
                      "(no running process is recorded as holding its lock); stop that writer "
                      "first");
}

}  // namespace

std::string_view db_name(Db db) {
  static constexpr std::string_view kNames[kDbCount] = {
      "objects", "kv", "pages", "alarms", "schedule", "history", "outbox", "dead", "meta"};
  return kNames[static_cast<size_t>(db)];
}

Status from_mdb(int rc, std::string_view what) {
  if (rc == MDB_SUCCESS) return Status::ok();
  std::string m = std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_NOTFOUND: return Status::not_found(m);
    case MDB_MAP_FULL:
      return Status::no_space(m + " (the LMDB map is full; raise Options::map_bytes_max)");
    case ENOSPC: return Status::no_space(m);
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
      return Status(Code::kCorruption, m, Detail::kDamagedPage);
    case MDB_BAD_TXN:
      return Status(Code::kIOError, m, Detail::kFailedTxn);
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE: return Status::corruption(m);
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_DBS_FULL: return Status::busy(m);
    case EACCES:
    case EAGAIN: return Status::busy(m);
    default: return Status::io_error(m);
  }
}

ReadTxn& ReadTxn::operator=(ReadTxn&& o) noexcept {
  if (this != &o) {
    release();
    store_ = o.store_;
    txn_ = o.txn_;
    o.txn_ = nullptr;
  }
  return *this;
}

void ReadTxn::release() {
  if (txn_ != nullptr) {
    store_->recycle(txn_);
    txn_ = nullptr;
  }
}

Result<std::optional<std::string_view>> ReadTxn::get(Db db, std::string_view key) const {
  MDB_val k = to_val(key), v;
  int rc = mdb_get(txn_, store_->dbi(db), &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>{};
  if (rc != MDB_SUCCESS) return from_mdb(rc, "read from " + std::string(db_name(db)));
  return std::optional<std::string_view>{from_val(v)};
}

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options) {
  namespace fs = std::filesystem;
  if (options.dir.empty()) return Status::invalid_argument("engine directory is empty");
  std::error_code ec;
  bool exists = fs::exists(options.dir, ec);
  if (!exists) {
    if (!options.create_if_missing || options.read_only) {
      return Status::not_found("engine directory '" + options.dir + "' does not exist");
    }
    fs::create_directories(options.dir, ec);
    if (ec) return Status::io_error("cannot create '" + options.dir + "': " + ec.message());
  } else if (!fs::is_directory(options.dir, ec)) {
    return Status::invalid_argument("'" + options.dir + "' is not a directory");
  }
  bool has_data = fs::exists(fs::path(options.dir) / "data.mdb", ec);
  if (!has_data && (options.read_only || !options.create_if_missing)) {
    return Status::not_found("'" + options.dir + "' is not a carrel engine directory (no data.mdb)");
  }

  struct stat st {};
  if (::stat(options.dir.c_str(), &st) != 0) {
    return Status::io_error("stat '" + options.dir + "': " + errno_text(errno));
  }
  std::unique_ptr<Store> store(new Store());
  store->dir_ = options.dir;
  store->read_only_ = options.read_only;
  store->redo_fault_hook_ = options.redo_fault_hook;
  store->data_sync_fault_hook_ = options.data_sync_fault_hook;
  store->reader_first_look_hook_ = options.reader_first_look_hook;
  {
    MutexLock lock(open_dirs().mutex);
    if (!open_dirs().dirs.emplace(st.st_dev, st.st_ino).second) {
      return Status::busy("engine directory '" + options.dir +
                          "' is already open in this process (LMDB allows one handle per process)");
    }
    store->dev_ = st.st_dev;
    store->ino_ = st.st_ino;
  }
  CARREL_RETURN_IF_ERROR(store->open_env(options, !has_data));
  store->end_reader_exclusion();
  CARREL_RETURN_IF_ERROR(store->check_meta());
  return store;
}

Status Store::open_env(const StoreOptions& options, bool creating) {
  // Invariant (4): the writer excludes readers before it reads the redo
  // state, so none opens between its decision and its recovery.
  bool readers_excluded = false;
  if (!read_only_) {
    CARREL_RETURN_IF_ERROR(lock_for_writing());
    CARREL_ASSIGN_OR_RETURN(readers_excluded, exclude_readers());
  }
  // redo.h (5): what the redo files ask of this open, before LMDB reads a meta page.
  CARREL_ASSIGN_OR_RETURN(RedoState redo, read_redo_state(dir_));
  CARREL_RETURN_IF_ERROR(refuse_unrecovered(redo));
  if (read_only_) {
    // Invariant (4): then again under the shared flock, since a recovery
    // that began after the first look may have died halfway.
    CARREL_RETURN_IF_ERROR(share_with_readers());
    CARREL_ASSIGN_OR_RETURN(redo, read_redo_state(dir_));
    CARREL_RETURN_IF_ERROR(refuse_unrecovered(redo));
  } else if (redo.needs_recovery() && !readers_excluded) {
    return recovery_blocked();
  } else if (!redo.needs_recovery()) {
    end_reader_exclusion();  // nothing to recover: readers may come at once
  }
  // redo.h (9): a writer finds lost files before anything acts on them (a
  // reader looks once LMDB is open: check_lost_for_reader). Told to discard,
  // it recovers from a valid checkpoint with what the surviving segment holds
  // after it, or takes data.mdb as it was last written when none is valid.
  if (std::string lost = read_only_ ? "" : lost_redo_files(redo, false); !lost.empty()) {
    if (!options.discard_lost_redo_log) return refuse_lost(lost);
    recovery_.discarded = lost;
  }
  if (!read_only_ && redo.present) {
    recovery_.found = true;
    recovery_.checkpoint = redo.checkpoint.number;
    recovery_.txnid = redo.checkpoint.txnid;
  }
  if (redo.needs_recovery() && !read_only_ &&
      redo.newest_meta_txnid != redo.checkpoint.txnid) {
    CARREL_RETURN_IF_ERROR(restore_meta(dir_, redo.checkpoint));
    recovery_.meta_restored = true;
  }
  const bool use_redo = options.sync && options.redo_log && !read_only_;
  int rc = mdb_env_create(&env_);
  if (rc != 0) return from_mdb(rc, "mdb_env_create");
  mdb_env_set_maxdbs(env_, kDbCount + 2);
  mdb_env_set_maxreaders(env_, kMaxReaders);
  rc = mdb_env_set_mapsize(env_, options.map_bytes_max);
  if (rc != 0) return from_mdb(rc, "mdb_env_set_mapsize");
  // MDB_NOTLS: read transactions are pooled across threads (invariant (3)).
  // MDB_NOSYNC in nosync mode: commits reach the page cache, not the disk.
  // MDB_NOMETASYNC in sync mode: one fdatasync per commit, the meta page is
  // made durable by the next one; the committer holds outputs until then
  // (engine/commit/committer.h (6)).
  // With the redo log (sync), data.mdb is written with MDB_NOSYNC: the log
  // makes commits durable and checkpoints sync data.mdb (redo.h).
  unsigned flags = MDB_NOTLS;
  flags |= options.sync && !use_redo ? MDB_NOMETASYNC : MDB_NOSYNC;
  if (read_only_) flags |= MDB_RDONLY;
  rc = mdb_env_open(env_, dir_.c_str(), flags, 0644);
  if (rc != 0) {
    Status s = from_mdb(rc, "open LMDB environment in '" + dir_ + "'");
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
      return Status::corruption("'" + dir_ + "' does not hold a valid LMDB environment: " +
                                mdb_strerror(rc));
    }
    return s;
  }
  CARREL_ASSIGN_OR_RETURN(dead_readers_at_open_, clear_dead_readers());
  // redo.h (5): the recovered snapshot stays pinned until a fresh checkpoint
  // is durable, so an interrupted recovery starts again from it.
  MDB_txn* pin = nullptr;
  if (!read_only_ && (redo.present || use_redo)) {
    rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &pin);
    if (rc != 0) return from_mdb(rc, "pin the redo checkpoint's snapshot");
  }
  struct Unpin {
    MDB_txn*& t;
    ~Unpin() {
      if (t) mdb_txn_abort(t);
    }
  } unpin{pin};

  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(env_, nullptr, read_only_ ? MDB_RDONLY : 0, &txn);
  if (rc != 0) return from_mdb(rc, "begin transaction to open databases");
  // An environment whose main database is empty never finished its creation
  // (a crash before the first commit): create it now rather than refuse it.
  MDB_dbi main_db;
  MDB_stat main_stat{};
  if (mdb_dbi_open(txn, nullptr, 0, &main_db) == 0 && mdb_stat(txn, main_db, &main_stat) == 0 &&
      main_stat.ms_entries == 0 && !read_only_ && options.create_if_missing) {
    creating = true;
  }
  for (size_t i = 0; i < kDbCount; ++i) {
    std::string name(db_name(static_cast<Db>(i)));
    rc = mdb_dbi_open(txn, name.c_str(), creating && !read_only_ ? MDB_CREATE : 0, &dbis_[i]);
    if (rc == MDB_NOTFOUND) {
      mdb_txn_abort(txn);
      return Status::corruption("'" + dir_ + "' is not a carrel engine directory (no '" + name +
                                "' database)");
    }
    if (rc != 0) {
      mdb_txn_abort(txn);
      return from_mdb(rc, "open database " + name);
    }
  }
  if (creating) {
    // The format marker commits with the databases: creation is atomic.
    std::string page_bytes;
    append_u32(&page_bytes, options.sql_page_bytes);
    MDB_val k1 = to_val(kFormatKey), v1 = to_val(kFormatValue);
    MDB_val k2 = to_val(kPageBytesKey), v2 = to_val(page_bytes);
    MDB_dbi meta = dbis_[static_cast<size_t>(Db::kMeta)];
    rc = mdb_put(txn, meta, &k1, &v1, 0);
    if (rc == 0) rc = mdb_put(txn, meta, &k2, &v2, 0);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return from_mdb(rc, "write engine format");
    }
  }
  // A format this build does not read is refused before its redo files are
  // read or recovered: they hold that format's keys or operations, and only
  // the build that wrote them may replay them (kFormatValue).
  if (!creating) {
    MDB_val fk = to_val(kFormatKey), fv;
    rc = mdb_get(txn, dbis_[static_cast<size_t>(Db::kMeta)], &fk, &fv);
    if (rc != 0 && rc != MDB_NOTFOUND) {
      mdb_txn_abort(txn);
      return from_mdb(rc, "read the engine format of '" + dir_ + "'");
    }
    const std::string found = rc == 0 ? std::string(from_val(fv)) : std::string("none");
    if (Status s = check_format(found); !s.is_ok()) {
      mdb_txn_abort(txn);
      return s;
    }
    // kFormatValue: carrel-7 becomes carrel-8 in place, in this transaction.
    if (found == kUpgradedFormat && !read_only_) {
      MDB_val nv = to_val(kFormatValue);
      rc = mdb_put(txn, dbis_[static_cast<size_t>(Db::kMeta)], &fk, &nv, 0);
      if (rc != 0) {
        mdb_txn_abort(txn);
        return from_mdb(rc, "upgrade the engine format of '" + dir_ + "' from '" +
                                std::string(kUpgradedFormat) + "' to '" +
                                std::string(kFormatValue) +
                                "' (nothing was changed; the directory still opens read-only, "
                                "and a writable open tries again)");
      }
    }
  }
  // redo.h (9): the mark without redo.ckpt is a log whose files were removed.
  bool marked = false;
  if (!creating) {
    Result<bool> mark = mark_in(txn);
    if (!mark.is_ok()) {
      mdb_txn_abort(txn);
      return mark.status();
    }
    marked = *mark;
  }
  if (std::string lost = marked && !read_only_ ? lost_redo_files(redo, true) : "";
      !lost.empty()) {
    if (!options.discard_lost_redo_log) {
      mdb_txn_abort(txn);
      return refuse_lost(lost);
    }
    if (recovery_.discarded.empty()) recovery_.discarded = lost;
  }
  // A creation in sync mode is made durable before open() returns, in order
  // (pages, then the meta page), so a power loss cannot keep a meta page
  // whose pages it lost: no checkpoint covers it yet.
  rc = creating && options.sync && !read_only_ ? commit_durably(txn) : mdb_txn_commit(txn);
  CARREL_RETURN_IF_ERROR(commit_status(rc, "commit database handles", 0));
  if (read_only_) return check_lost_for_reader(redo, marked);
  if (!redo.present && !use_redo && !marked && recovery_.discarded.empty()) return Status::ok();
  return start_redo(redo, use_redo, marked);
}

Status Store::start_redo(const RedoState& redo, bool use_redo, bool marked) {
  // redo.h (5): the commits after the checkpoint, in as few transactions as
  // LMDB's dirty page bound allows (replay_redo), all under open_env's pin.
  uint64_t last = 0;
  if (redo.present) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != 0) return from_mdb(rc, "begin redo log recovery");
    uint64_t txns = 1;
    auto next_txn = [&](MDB_txn** t) -> Status {
      const int committed = mdb_txn_commit(*t);  // frees *t, whatever it returns
      *t = nullptr;
      CARREL_RETURN_IF_ERROR(commit_status(committed, "commit part of the redo log recovery", 0));
      ++txns;
      return from_mdb(mdb_txn_begin(env_, nullptr, 0, t), "begin redo log recovery");
    };
    Result<uint64_t> replayed = replay_redo(*this, &txn, redo.checkpoint.base, next_txn);
    recovery_.transactions = txns;
    if (!replayed.is_ok()) {
      if (txn) mdb_txn_abort(txn);
      return replayed.status().with_context("recover '" + dir_ + "'");
    }
    last = *replayed;
    recovery_.records = last - redo.checkpoint.base;
    CARREL_RETURN_IF_ERROR(commit_status(mdb_txn_commit(txn), "commit redo log recovery", 0));
  }
  int rc = mdb_env_sync(env_, 1);
  if (rc != 0) return from_mdb(rc, "sync '" + dir_ + "/data.mdb' after redo log recovery");
  if (!use_redo) {
    // data.mdb alone is the state now; redo.h (9): it says so before the files go.
    if (marked) CARREL_RETURN_IF_ERROR(write_redo_mark(*this, false));
    return remove_redo_files(dir_);
  }
  // A log that starts without a checkpoint must not meet records of an
  // earlier one (numbers restart at 1).
  // redo.h (9): the files exist (and are empty) before the mark is set; with
  // the mark set they are emptied in place, never removed, so no crash leaves
  // the mark without redo.ckpt.
  if (!redo.present) CARREL_RETURN_IF_ERROR(reset_redo_files(dir_));
  if (!marked) CARREL_RETURN_IF_ERROR(write_redo_mark(*this, true));
  MDB_envinfo info{};
  rc = mdb_env_info(env_, &info);
  if (rc != 0) return from_mdb(rc, "mdb_env_info");
  // redo.h (2): records past the replay (a torn record's successors, or a
  // segment's beside a lost one) were not replayed; the new log's numbers
  // start past them, so none is ever taken for a record of the new log.
  if (redo.present) {
    CARREL_ASSIGN_OR_RETURN(uint64_t highest, highest_redo_record(dir_));
    last = std::max(last, highest);
  }
  CARREL_ASSIGN_OR_RETURN(redo_, RedoLog::start(*this, redo.present ? redo.checkpoint.number + 1 : 1,
                                                info.me_last_txnid, last));
  return Status::ok();
}

bool Store::writer_alive() const {
  return writer_alive(dir_);
}

bool Store::writer_alive(const std::string& dir) {
  int fd = ::open((dir + "/data.mdb").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool alive = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return alive;
}

namespace {
std::string flock_holder_text(int fd) {
  const long pid = flock_holder(fd);
  return pid != 0 ? "process " + std::to_string(pid) : "another process";
}
}  // namespace

int Store::commit_durably(MDB_txn* txn) const {
  unsigned flags = 0;
  mdb_env_get_flags(env_, &flags);
  const unsigned lazy = flags & (MDB_NOSYNC | MDB_NOMETASYNC);
  // The committer's own commits never run beside this (committer.h (1)): it
  // is called at open, before the committer starts, and on its thread.
  if (lazy != 0) mdb_env_set_flags(env_, lazy, 0);
  const int rc = mdb_txn_commit(txn);
  if (lazy != 0) mdb_env_set_flags(env_, lazy, 1);
  return rc;
}

Result<bool> Store::mark_in(MDB_txn* txn) const {
  MDB_val k = to_val(kRedoMarkKey), v;
  int rc = mdb_get(txn, dbis_[static_cast<size_t>(Db::kMeta)], &k, &v);
  if (rc != 0 && rc != MDB_NOTFOUND) return from_mdb(rc, "read the redo log mark");
  return rc == 0;
}

Result<bool> Store::read_mark() const {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return from_mdb(rc, "begin a read transaction for the redo log mark");
  Result<bool> mark = mark_in(txn);
  mdb_txn_abort(txn);
  return mark;
}

Status Store::check_lost_for_reader(const RedoState& redo, bool marked) const {
  // redo.h (9): a writer starting or closing beside a reader changes the
  // files and the mark between what one look reads (the files first, the mark
  // later), and it holds the writer lock from before its first change to
  // after its last. So a loss counts only when two looks, with no writer
  // alive after either, agree.
  std::string lost = lost_redo_files(redo, marked);
  if (lost.empty()) return Status::ok();
  if (reader_first_look_hook_) reader_first_look_hook_();
  if (writer_alive()) return Status::ok();
  std::this_thread::sleep_for(std::chrono::milliseconds(kSecondLookMs));
  CARREL_ASSIGN_OR_RETURN(RedoState again, read_redo_state(dir_));
  CARREL_ASSIGN_OR_RETURN(bool marked_again, read_mark());
  lost = lost_redo_files(again, marked_again);
  if (lost.empty() || writer_alive()) return Status::ok();
  return refuse_lost(lost);
}

Status Store::refuse_lost(const std::string& lost) const {
  return Status::corruption(
      "'" + dir_ + "' lost part of its redo log: " + lost +
      ". data.mdb alone may lack commits acknowledged after the log's last checkpoint, and its "
      "pages past that checkpoint may be torn. Put back redo.ckpt, redo.0 and redo.1 if they were "
      "moved; otherwise `carrel --dir '" + dir_ +
      "' recover --discard-lost-redo` (Options::discard_lost_redo_log in a program) recovers "
      "what remains and accepts the loss of the rest, and `carrel --dir '" + dir_ +
      "' verify` then checks it");
}

Status Store::refuse_unrecovered(const RedoState& redo) const {
  if (!read_only_ || !redo.needs_recovery() || writer_alive()) return Status::ok();
  // Beside a live writer the page cache holds every commit; after a crash,
  // data.mdb's unsynced pages may be torn, and only recovery knows.
  return Status::busy("'" + dir_ + "' was not closed cleanly: its redo log holds commits that "
                      "data.mdb may lack; recover it with `carrel --dir '" + dir_ +
                      "' recover` (or open it for writing: the engine, or any carrel command "
                      "that writes, recovers it first), then read it");
}

// Invariant (4). lock.mdb is made as LMDB makes it; false when a reader
// holds its shared flock.
Result<bool> Store::exclude_readers() {
  const std::string path = dir_ + "/lock.mdb";
  readers_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (readers_fd_ < 0) return Status::io_error("open '" + path + "': " + errno_text(errno));
  if (::flock(readers_fd_, LOCK_EX | LOCK_NB) == 0) return true;
  if (errno != EWOULDBLOCK) return Status::io_error("flock '" + path + "': " + errno_text(errno));
  return false;
}

Status Store::recovery_blocked() const {
  return Status::busy("'" + dir_ + "' must be recovered from its redo log (a writer stopped "
                      "without closing it), but " + flock_holder_text(readers_fd_) +
                      " has it open read-only (a read-only engine, or a carrel command "
                      "reading it); recovery rewinds data.mdb to its last checkpoint under "
                      "such a reader: close it, then open the directory for writing again");
}

void Store::end_reader_exclusion() {
  if (!read_only_ && readers_fd_ >= 0) ::flock(readers_fd_, LOCK_UN);
}

// Invariant (4). Before LMDB reads a meta page. lock.mdb is made here as
// mdb_env_open would make it next; where it cannot be (a read-only file
// system), no writer can recover either, and the reader goes on unlocked.
Status Store::share_with_readers() {
  readers_fd_ = ::open((dir_ + "/lock.mdb").c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
  if (readers_fd_ < 0 || ::flock(readers_fd_, LOCK_SH | LOCK_NB) == 0) return Status::ok();
  // A file system without flock has no writer either (invariant (1) needs it).
  if (errno != EWOULDBLOCK) return Status::ok();
  return Status::busy("'" + dir_ + "' is being opened for writing by " +
                      flock_holder_text(readers_fd_) +
                      ", which first recovers it from its redo log when a writer stopped "
                      "without closing it; open it again once that open has finished");
}

std::string Store::changed_before_refusal() const {
  // open_env refuses before the redo log is replayed; only a recovery's first
  // step, rewinding data.mdb's meta page to the log's checkpoint, may precede it.
  return recovery_.meta_restored
             ? "this open rewound data.mdb's meta page to the redo log's last checkpoint (the "
               "first step of the recovery the carrel that wrote it makes at its next open) and "
               "changed nothing else"
             : "nothing in '" + dir_ + "' was changed";
}

Status Store::check_format(const std::string& found) const {
  if (found == kFormatValue || found == kUpgradedFormat) return Status::ok();
  if (older_format(found)) {
    const std::string remedy =
        "with the older carrel, open the directory once (it recovers its redo log, if any) and "
        "export each object (carrel export), then import the exports into a new directory with "
        "this build (point-in-time history does not carry over)";
    return Status::invalid_argument("'" + dir_ + "' has engine format '" + found +
                                    "', written by an older carrel; this build reads '" +
                                    std::string(kFormatValue) + "' and '" +
                                    std::string(kUpgradedFormat) +
                                    "' and does not convert older ones in place (their keys "
                                    "start with each object's id, not its number): " +
                                    remedy + "; " + changed_before_refusal());
  }
  return Status::corruption(
      "'" + dir_ + "' has engine format '" + found +
      "', which this build does not read (it reads '" + std::string(kFormatValue) + "', and '" +
      std::string(kUpgradedFormat) +
      "', which a writable open upgrades in place): open it with the carrel that wrote it (its "
      "redo log, if any, is that build's to replay); " +
      changed_before_refusal());
}

// Invariant (1). writer.lock is taken first (older carrel builds look only
// at it, and it records the writer's pid); then data.mdb itself, so a deleted
// writer.lock never lets a second writer in: removing data.mdb would destroy
// the engine anyway. flock locks belong to the open file, so they never mix
// with LMDB's fcntl locks on lock.mdb.
Status Store::lock_for_writing() {
  std::string lock_path = dir_ + "/writer.lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return Status::io_error("open '" + lock_path + "': " + errno_text(errno));
  CARREL_RETURN_IF_ERROR(take_writer_flock(dir_, lock_fd_, lock_fd_));
  // LMDB initialises an empty data.mdb as a new environment.
  std::string data_path = dir_ + "/data.mdb";
  data_fd_ = ::open(data_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (data_fd_ < 0) return Status::io_error("open '" + data_path + "': " + errno_text(errno));
  CARREL_RETURN_IF_ERROR(take_writer_flock(dir_, data_fd_, -1));
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, pid.data(), pid.size(), 0) < 0) {
    return Status::io_error("write '" + lock_path + "': " + errno_text(errno));
  }
  return Status::ok();
}

Status Store::commit_status(int rc, std::string_view what, uint64_t bytes) const {
  if (rc == MDB_SUCCESS) return Status::ok();
  // LMDB reports a short write (a full file system) as EIO: free space tells.
  if (rc == ENOSPC || rc == EDQUOT || rc == EIO) {
    struct statvfs fs {};
    bool known = ::statvfs(dir_.c_str(), &fs) == 0;
    uint64_t blocks = ::geteuid() == 0 ? fs.f_bfree : fs.f_bavail;
    uint64_t free_bytes = known ? blocks * fs.f_frsize : 0;
    if (rc != EIO || (known && free_bytes < bytes + kCommitSlackBytes)) {
      std::string space = known ? std::to_string(free_bytes) + " bytes free" : "free space unknown";
      return Status::no_space(std::string(what) + ": no space left on device for '" + dir_ + "' (" +
                              space + "; this commit writes " + std::to_string(bytes) +
                              " bytes and more): free space on that file system; the commit was "
                              "not applied, nothing acknowledged is lost, and writes resume when "
                              "space returns");
    }
  }
  return from_mdb(rc, what);
}

Status Store::check_meta() {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return from_mdb(rc, "begin meta transaction");
  MDB_dbi meta = dbi(Db::kMeta);
  MDB_val k = to_val(kFormatKey), v;
  rc = mdb_get(txn, meta, &k, &v);
  // A read-only open reads a carrel-7 directory as it is (kFormatValue).
  const bool readable =
      rc == 0 && (from_val(v) == kFormatValue || (read_only_ && from_val(v) == kUpgradedFormat));
  if (!readable) {
    std::string found = rc == 0 ? std::string(from_val(v)) : std::string("none");
    mdb_txn_abort(txn);
    Status s = check_format(found);
    // open_env upgraded a writable open's carrel-7 marker before this reads it.
    if (s.is_ok()) {
      return Status::corruption("'" + dir_ + "' still has engine format '" + found +
                                "' after its upgrade to '" + std::string(kFormatValue) +
                                "' committed; run `carrel verify` on it");
    }
    return s;
  }
  MDB_val k2 = to_val(kPageBytesKey), v2;
  rc = mdb_get(txn, meta, &k2, &v2);
  if (rc != 0 || v2.mv_size != 4) {
    mdb_txn_abort(txn);
    return Status::corruption("'" + dir_ + "' lacks its SQL page size setting");
  }
  sql_page_bytes_ = read_u32(from_val(v2), 0);
  mdb_txn_abort(txn);
  return Status::ok();
}

Status Store::sync_data(std::string_view after) {
  CARREL_RETURN_IF_ERROR(stopped());
  Status s = data_sync_fault_hook_ ? data_sync_fault_hook_() : Status::ok();
  if (s.is_ok()) s = from_mdb(mdb_env_sync(env_, 1), "sync");
  if (s.is_ok()) return s;
  s = Status::io_error("sync '" + dir_ + "/data.mdb' (fdatasync) after " + std::string(after) +
                       ": " + s.message() +
                       "; commits written since the last sync may not survive a power loss, so "
                       "their turns fail and this engine stops; check the disk and its log, "
                       "then reopen the directory");
  fail_stop(s);
  return s;
}

void Store::fail_stop(Status cause) {
  MutexLock lock(stop_mutex_);
  if (stopped_.load(std::memory_order_relaxed)) return;
  stop_cause_ = std::move(cause);
  stopped_.store(true, std::memory_order_release);
}

Status Store::stopped() const {
  if (!stopped_.load(std::memory_order_acquire)) return Status::ok();
  MutexLock lock(stop_mutex_);
  return stop_cause_;
}

Result<int> Store::clear_dead_readers() {
  int dead = 0;
  int rc = mdb_reader_check(env_, &dead);
  if (rc != 0) return from_mdb(rc, "check the reader table of '" + dir_ + "' for dead processes");
  return dead;
}

Result<ReadTxn> Store::begin_read() {
  // redo.h (7): a broken log may have left a commit in data.mdb that the
  // next open rolls back; nothing may read it.
  if (redo_ && redo_->broken()) return redo_->status();
  // Invariant (5): nor a commit whose sync failed.
  if (stopped_.load(std::memory_order_acquire)) return stopped();
  MDB_txn* txn = nullptr;
  {
    MutexLock lock(pool_mutex_);
    if (!pool_.empty()) {
      txn = pool_.back();
      pool_.pop_back();
    }
  }
  if (txn != nullptr) {
    int rc = mdb_txn_renew(txn);
    if (rc == 0) return ReadTxn(this, txn);
    mdb_txn_abort(txn);
  }
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return from_mdb(rc, "begin read transaction");
  return ReadTxn(this, txn);
}

void Store::recycle(MDB_txn* txn) {
  mdb_txn_reset(txn);
  MutexLock lock(pool_mutex_);
  pool_.push_back(txn);
}

Status Store::copy_compact(const std::string& dest_dir,
                           const std::function<void(int)>& on_copy_fd) {
  // Invariant (5), redo.h (7): as begin_read, no copy of a commit that may
  // not be durable.
  CARREL_RETURN_IF_ERROR(stopped());
  if (redo_ && redo_->broken()) return redo_->status();
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dest_dir, ec);
  if (ec) return Status::io_error("cannot create '" + dest_dir + "': " + ec.message());
  const std::string partial = dest_dir + "/" + kBackupPartialFile;
  // A copy cut short earlier left only its partial file: it holds nothing.
  for (const auto& e : fs::directory_iterator(dest_dir, ec)) {
    if (e.path().filename() != kBackupPartialFile) {
      return Status::invalid_argument("backup destination '" + dest_dir + "' is not empty");
    }
  }
  if (ec) return Status::io_error("cannot list '" + dest_dir + "': " + ec.message());
  fs::remove(partial, ec);
  int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error("create '" + partial + "': " + errno_text(errno));
  if (on_copy_fd) on_copy_fd(fd);
  int rc = mdb_env_copyfd2(env_, fd, MDB_CP_COMPACT);
  if (on_copy_fd) on_copy_fd(-1);
  Status s = from_mdb(rc, "copy engine to '" + partial + "'");
  ::close(fd);
  // redo.h (9): the copy is data.mdb alone, so it must not say a log is in use.
  if (s.is_ok()) s = delete_mark_in_copy(partial);
  if (s.is_ok() && ::rename(partial.c_str(), (dest_dir + "/data.mdb").c_str()) != 0) {
    s = Status::io_error("rename '" + partial + "' to data.mdb: " + errno_text(errno));
  }
  if (!s.is_ok()) {
    fs::remove(partial, ec);
    return s;
  }
  int dfd = ::open(dest_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || ::fsync(dfd) != 0)
    s = Status::io_error("fsync '" + dest_dir + "': " + errno_text(errno));
  if (dfd >= 0) ::close(dfd);
  return s;
}

Status Store::delete_mark_in_copy(const std::string& path) {
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return from_mdb(rc, "mdb_env_create");
  struct Close {
    MDB_env* e;
    ~Close() { mdb_env_close(e); }
  } close_env{env};
  mdb_env_set_maxdbs(env, kDbCount + 2);
  // No lock file: nothing else knows of the copy before its rename.
  rc = mdb_env_open(env, path.c_str(), MDB_NOSUBDIR | MDB_NOLOCK, 0644);
  if (rc != 0) return from_mdb(rc, "open the copy '" + path + "'");
  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(env, nullptr, 0, &txn);
  if (rc != 0) return from_mdb(rc, "begin a transaction on the copy '" + path + "'");
  MDB_dbi meta;
  const std::string name(db_name(Db::kMeta));
  rc = mdb_dbi_open(txn, name.c_str(), 0, &meta);
  MDB_val k = to_val(kRedoMarkKey);
  if (rc == 0) rc = mdb_del(txn, meta, &k, nullptr);
  if (rc == MDB_NOTFOUND) {
    mdb_txn_abort(txn);
  } else if (rc != 0) {
    mdb_txn_abort(txn);
    return from_mdb(rc, "delete the redo log mark in the copy '" + path + "'");
  } else if ((rc = mdb_txn_commit(txn)) != 0) {
    return from_mdb(rc, "commit the copy '" + path + "'");
  }
  // The copy's pages and meta page, on disk before its rename.
  rc = mdb_env_sync(env, 1);
  if (rc != 0) return from_mdb(rc, "sync the copy '" + path + "'");
  return Status::ok();
}

Store::~Store() {
  redo_.reset();  // its pins are read transactions of env_
  if (env_ != nullptr) {
    {
      MutexLock lock(pool_mutex_);
      for (MDB_txn* t : pool_) mdb_txn_abort(t);
      pool_.clear();
    }
    mdb_env_close(env_);
  }
  if (data_fd_ >= 0) ::close(data_fd_);  // releases the flocks
  if (lock_fd_ >= 0) ::close(lock_fd_);
  if (readers_fd_ >= 0) ::close(readers_fd_);  // after mdb_env_close: invariant (4)
  if (dev_ != 0 || ino_ != 0) {
    MutexLock lock(open_dirs().mutex);
    open_dirs().dirs.erase({dev_, ino_});
  }
}

}  // namespace carrel::store
