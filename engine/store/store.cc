#include "engine/store/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include "engine/store/keys.h"

namespace carrel::store {
namespace {

constexpr std::string_view kFormatKey = "format";
constexpr std::string_view kFormatValue = "carrel-1";
constexpr std::string_view kPageBytesKey = "sql_page_bytes";
constexpr unsigned kMaxReaders = 1024;

// Invariant (1): directories this process has open, by (device, inode).
std::mutex g_open_mutex;
std::set<std::pair<uint64_t, uint64_t>> g_open_dirs;  // GUARDED_BY(g_open_mutex)

std::string errno_text(int e) { return std::strerror(e); }

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
    case MDB_INVALID:
    case MDB_PAGE_NOTFOUND:
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
  {
    std::lock_guard lock(g_open_mutex);
    if (!g_open_dirs.emplace(st.st_dev, st.st_ino).second) {
      return Status::busy("engine directory '" + options.dir +
                          "' is already open in this process (LMDB allows one handle per process)");
    }
    store->dev_ = st.st_dev;
    store->ino_ = st.st_ino;
  }
  CARREL_RETURN_IF_ERROR(store->open_env(options, !has_data));
  CARREL_RETURN_IF_ERROR(store->check_meta());
  return store;
}

Status Store::open_env(const StoreOptions& options, bool creating) {
  if (!read_only_) {
    std::string lock_path = dir_ + "/writer.lock";
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0) return Status::io_error("open '" + lock_path + "': " + errno_text(errno));
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      char buf[32] = {};
      ssize_t n = ::pread(lock_fd_, buf, sizeof(buf) - 1, 0);
      std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      return Status::busy("engine directory '" + dir_ + "' is open for writing by process " + pid);
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, pid.data(), pid.size(), 0) < 0) {
      return Status::io_error("write '" + lock_path + "': " + errno_text(errno));
    }
  }
  int rc = mdb_env_create(&env_);
  if (rc != 0) return from_mdb(rc, "mdb_env_create");
  mdb_env_set_maxdbs(env_, kDbCount + 2);
  mdb_env_set_maxreaders(env_, kMaxReaders);
  rc = mdb_env_set_mapsize(env_, options.map_bytes_max);
  if (rc != 0) return from_mdb(rc, "mdb_env_set_mapsize");
  // MDB_NOTLS: read transactions are pooled across threads (invariant (3)).
  // MDB_NOSYNC in nosync mode: commits reach the page cache, not the disk.
  unsigned flags = MDB_NOTLS;
  if (!options.sync) flags |= MDB_NOSYNC;
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
  int dead = 0;
  mdb_reader_check(env_, &dead);  // clears reader slots of crashed processes

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
  rc = mdb_txn_commit(txn);
  return from_mdb(rc, "commit database handles");
}

Status Store::check_meta() {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return from_mdb(rc, "begin meta transaction");
  MDB_dbi meta = dbi(Db::kMeta);
  MDB_val k = to_val(kFormatKey), v;
  rc = mdb_get(txn, meta, &k, &v);
  if (rc != 0 || from_val(v) != kFormatValue) {
    std::string found = rc == 0 ? std::string(from_val(v)) : std::string("none");
    mdb_txn_abort(txn);
    return Status::corruption("'" + dir_ + "' has engine format '" + found + "'; this build reads '" +
                              std::string(kFormatValue) + "'");
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

Result<ReadTxn> Store::begin_read() {
  MDB_txn* txn = nullptr;
  {
    std::lock_guard lock(pool_mutex_);
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
  std::lock_guard lock(pool_mutex_);
  pool_.push_back(txn);
}

Status Store::copy_compact(const std::string& dest_dir,
                           const std::function<void(int)>& on_copy_fd) {
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
  if (s.is_ok() && ::fsync(fd) != 0)
    s = Status::io_error("fsync '" + partial + "': " + errno_text(errno));
  ::close(fd);
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

Store::~Store() {
  if (env_ != nullptr) {
    {
      std::lock_guard lock(pool_mutex_);
      for (MDB_txn* t : pool_) mdb_txn_abort(t);
      pool_.clear();
    }
    mdb_env_close(env_);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
  if (dev_ != 0 || ino_ != 0) {
    std::lock_guard lock(g_open_mutex);
    g_open_dirs.erase({dev_, ino_});
  }
}

}  // namespace carrel::store
