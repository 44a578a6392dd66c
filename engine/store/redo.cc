#include "engine/store/redo.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
// Inlined, as engine/store/checksum.cc does: the hash state can live on the
// stack (no allocation per record read).
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>
#include <vector>

#include "engine/base/check.h"
#include "engine/store/codec.h"
#include "engine/store/page_delta.h"

namespace carrel::store {
namespace {

constexpr uint32_t kRecordMagic = 0x43524432;  // "CRD2"
constexpr uint32_t kSlotMagic = 0x43524B31;    // "CRK1"
constexpr uint8_t kOpPut = 1;
constexpr uint8_t kOpDel = 2;
constexpr uint8_t kOpPutDelta = 3;  // invariant (10), format carrel-8
// magic, number, the highest record durable when it was written (2),
// payload length; then the payload and an XXH3-64 of all but the magic.
constexpr size_t kHeaderBytes = 4 + 8 + 8 + 4;
constexpr size_t kTrailerBytes = 8;

// LMDB's meta page (mdb.c, data format 1): a 16-byte page header, then
// MDB_meta: magic, version, address, mapsize, two MDB_db of 48 bytes,
// last_pg, txnid.
constexpr size_t kPageNoOffset = 0;
constexpr size_t kMetaMagicOffset = 16;
constexpr uint32_t kMetaMagic = 0xBEEFC0DE;
constexpr size_t kMetaTxnOffset = 16 + 4 + 4 + 8 + 8 + 2 * 48 + 8;
static_assert(kMetaTxnOffset + 8 <= RedoLog::kMetaBytes, "the kept prefix holds the txnid");

std::atomic<bool> g_hold_checkpoints{false};
std::atomic<uint64_t> g_replay_ops_per_txn{0};  // RedoLog::set_replay_ops_per_txn_for_tests

std::string errno_text() {
  return std::strerror(errno);
}

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

uint64_t load_host_u64(std::string_view page, size_t at) {
  uint64_t v;
  std::memcpy(&v, page.data() + at, 8);  // LMDB stores them in host order
  return v;
}
void store_host_u64(std::string* page, size_t at, uint64_t v) {
  std::memcpy(page->data() + at, &v, 8);
}

Status pwrite_all(int fd, std::string_view bytes, uint64_t at, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n =
        ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(at + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::io_error("write '" + path + "': " + errno_text());
    done += static_cast<size_t>(n);
  }
  return Status::ok();
}

// Reads up to n bytes at `at`; fewer only at the end of the file.
Result<std::string> pread_some(int fd, size_t n, uint64_t at, const std::string& path) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(at + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::io_error("read '" + path + "': " + errno_text());
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

Status sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::io_error("open directory '" + dir + "': " + errno_text());
  int rc = ::fsync(fd);
  std::string e = errno_text();
  ::close(fd);
  if (rc != 0) return Status::io_error("fsync directory '" + dir + "': " + e);
  return Status::ok();
}

struct Record {
  uint64_t number = 0;
  uint64_t durable = 0;
  std::string payload;
  uint64_t bytes = 0;  // header, payload and trailer
};

// The record at `at`, or nullopt when none valid starts there: torn,
// damaged, voided, stale bytes, or the end of the file.
Result<std::optional<Record>> read_record_at(int fd, const std::string& path, uint64_t at) {
  std::optional<Record> none;
  CARREL_ASSIGN_OR_RETURN(std::string head, pread_some(fd, kHeaderBytes, at, path));
  if (head.size() < kHeaderBytes) return none;
  Reader r(head, "redo record header");
  uint32_t magic = 0, len = 0;
  Record rec;
  if (!r.u32(&magic) || magic != kRecordMagic || !r.u64(&rec.number) || !r.u64(&rec.durable) ||
      !r.u32(&len)) {
    return none;
  }
  if (len > RedoLog::kRecordBytesMax) return none;
  CARREL_ASSIGN_OR_RETURN(std::string body,
                          pread_some(fd, len + kTrailerBytes, at + kHeaderBytes, path));
  if (body.size() < len + kTrailerBytes) return none;
  Reader t(std::string_view(body).substr(len), "redo record trailer");
  uint64_t sum = 0;
  XXH3_state_t h;
  XXH3_INITSTATE(&h);
  XXH3_64bits_reset(&h);
  XXH3_64bits_update(&h, head.data() + 4, kHeaderBytes - 4);
  XXH3_64bits_update(&h, body.data(), len);
  const uint64_t want = XXH3_64bits_digest(&h);
  if (!t.u64(&sum) || sum != want) return none;
  body.resize(len);
  rec.payload = std::move(body);
  rec.bytes = kHeaderBytes + len + kTrailerBytes;
  return std::optional<Record>(std::move(rec));
}

// One segment, read record by record (invariant (2)).
class SegmentReader {
 public:
  SegmentReader(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  // The next record, or nullopt where the segment's records end (a record
  // that breaks the sequence is stale bytes of an earlier round).
  Result<std::optional<Record>> next() {
    CARREL_ASSIGN_OR_RETURN(std::optional<Record> rec, read_record_at(fd_, path_, at_));
    if (!rec || (last_ != 0 && rec->number != last_ + 1)) return std::optional<Record>();
    at_ += rec->bytes;
    last_ = rec->number;
    return rec;
  }
  uint64_t at() const { return at_; }

 private:
  int fd_;
  std::string path_;
  uint64_t at_ = 0;
  uint64_t last_ = 0;
};

struct OpenFile {
  int fd = -1;
  std::string path;
  ~OpenFile() {
    if (fd >= 0) ::close(fd);
  }
};

// Opens DIR/name for reading; fd -1 when it does not exist.
Status open_for_reading(const std::string& dir, const char* name, OpenFile* f) {
  f->path = dir + "/" + name;
  f->fd = ::open(f->path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f->fd < 0 && errno != ENOENT)
    return Status::io_error("open '" + f->path + "': " + errno_text());
  return Status::ok();
}

// Invariant (5): the valid slot with the highest number, if any.
Result<std::optional<RedoCheckpoint>> read_slots(const std::string& dir) {
  OpenFile f;
  CARREL_RETURN_IF_ERROR(open_for_reading(dir, RedoLog::kCheckpointName, &f));
  std::optional<RedoCheckpoint> best;
  if (f.fd < 0) return best;
  for (uint64_t slot = 0; slot < 2; ++slot) {
    CARREL_ASSIGN_OR_RETURN(
        std::string b, pread_some(f.fd, RedoLog::kSlotBytes, slot * RedoLog::kSlotBytes, f.path));
    Reader r(b, "redo checkpoint slot");
    uint32_t magic = 0;
    RedoCheckpoint c;
    std::string_view meta;
    uint64_t sum = 0;
    if (!r.u32(&magic) || magic != kSlotMagic || !r.u64(&c.number) || !r.u64(&c.txnid) ||
        !r.u64(&c.base) || !r.str16(&meta) || meta.size() != RedoLog::kMetaBytes) {
      continue;
    }
    const size_t covered = 4 + 8 * 3 + 2 + meta.size();
    if (!r.u64(&sum) || sum != XXH3_64bits(b.data(), covered)) continue;  // torn: the other slot
    if (c.number % 2 != slot || load_host_u64(meta, kMetaTxnOffset) != c.txnid) continue;
    c.meta = std::string(meta);
    if (!best || c.number > best->number) best = std::move(c);
  }
  return best;
}

// The txnid of data.mdb's newest valid meta page (0 when neither is valid).
Result<uint64_t> newest_meta_txnid(const std::string& dir) {
  OpenFile f;
  CARREL_RETURN_IF_ERROR(open_for_reading(dir, "data.mdb", &f));
  if (f.fd < 0) return uint64_t{0};
  CARREL_ASSIGN_OR_RETURN(std::string first, pread_some(f.fd, RedoLog::kMetaBytes, 0, f.path));
  uint64_t newest = 0;
  // The page size is in the first meta page's MDB_db (md_pad of the free DB).
  if (first.size() < RedoLog::kMetaBytes) return newest;
  uint32_t psize = 0;
  std::memcpy(&psize, first.data() + 16 + 4 + 4 + 8 + 8, 4);
  if (psize < 512 || psize > 65536) return newest;
  for (uint64_t slot = 0; slot < 2; ++slot) {
    CARREL_ASSIGN_OR_RETURN(std::string page,
                            pread_some(f.fd, RedoLog::kMetaBytes, slot * psize, f.path));
    if (page.size() < RedoLog::kMetaBytes) continue;
    uint32_t magic = 0;
    std::memcpy(&magic, page.data() + kMetaMagicOffset, 4);
    if (magic != kMetaMagic) continue;
    newest = std::max(newest, load_host_u64(page, kMetaTxnOffset));
  }
  return newest;
}

// The meta page prefix of committed transaction `txnid`, as LMDB wrote it
// (with MDB_NOSYNC, through pwrite: the page cache holds it).
Result<std::string> read_meta_prefix(const Store& store, uint64_t txnid) {
  MDB_stat st{};
  int rc = mdb_env_stat(store.env(), &st);
  if (rc != 0) return from_mdb(rc, "mdb_env_stat");
  const std::string path = store.dir() + "/data.mdb";
  CARREL_ASSIGN_OR_RETURN(std::string page, pread_some(store.data_fd(), RedoLog::kMetaBytes,
                                                       (txnid & 1) * st.ms_psize, path));
  uint32_t magic = 0;
  if (page.size() == RedoLog::kMetaBytes) std::memcpy(&magic, page.data() + kMetaMagicOffset, 4);
  if (magic != kMetaMagic || load_host_u64(page, kMetaTxnOffset) != txnid) {
    return Status::corruption("data.mdb's meta page " + std::to_string(txnid & 1) +
                              " does not name transaction " + std::to_string(txnid) +
                              " (LMDB's meta layout is not the one carrel knows)");
  }
  return page;
}

}  // namespace

std::string encode_redo_record(uint64_t number, uint64_t durable, std::string_view payload) {
  std::string out;
  out.reserve(kHeaderBytes + payload.size() + kTrailerBytes);
  Writer w(&out);
  w.u32(kRecordMagic);
  w.u64(number);
  w.u64(durable);
  w.u32(static_cast<uint32_t>(payload.size()));
  w.raw(payload);
  w.u64(XXH3_64bits(out.data() + 4, out.size() - 4));
  return out;
}

std::string encode_redo_slot(const RedoCheckpoint& c) {
  std::string b;
  Writer w(&b);
  w.u32(kSlotMagic);
  w.u64(c.number);
  w.u64(c.txnid);
  w.u64(c.base);
  w.str16(c.meta);
  w.u64(XXH3_64bits(b.data(), b.size()));
  return b;
}

void RedoOps::put(Db db, std::string_view key, std::string_view value) {
  Writer w(&bytes_);
  w.u8(kOpPut);
  w.u8(static_cast<uint8_t>(db));
  w.str16(key);
  w.str32(value);
}

void RedoOps::put_delta(Db db, std::string_view key, std::string_view delta) {
  CARREL_ASSERT(db == Db::kPages, "redo.h (10): only SQL pages are put as deltas");
  Writer w(&bytes_);
  w.u8(kOpPutDelta);
  w.u8(static_cast<uint8_t>(db));
  w.str16(key);
  w.str32(delta);
}

void RedoOps::del(Db db, std::string_view key) {
  Writer w(&bytes_);
  w.u8(kOpDel);
  w.u8(static_cast<uint8_t>(db));
  w.str16(key);
}

Result<std::unique_ptr<RedoLog>> RedoLog::start(const Store& store, uint64_t number, uint64_t txnid,
                                                uint64_t base) {
  std::unique_ptr<RedoLog> log(new RedoLog(store));
  bool created = false;
  auto open_rw = [&](const char* name, int* fd) -> Status {
    std::string path = store.dir() + "/" + name;
    struct stat st {};
    created |= ::stat(path.c_str(), &st) != 0;
    *fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) return Status::io_error("open '" + path + "': " + errno_text());
    return Status::ok();
  };
  CARREL_RETURN_IF_ERROR(open_rw(kSegmentNames[0], &log->seg_fd_[0]));
  CARREL_RETURN_IF_ERROR(open_rw(kSegmentNames[1], &log->seg_fd_[1]));
  CARREL_RETURN_IF_ERROR(open_rw(kCheckpointName, &log->ckpt_fd_));
  if (created) CARREL_RETURN_IF_ERROR(sync_dir(store.dir()));
  // Invariant (8): both checkpoint slots' space, so a slot write never meets
  // a full disk.
  if (int rc = ::posix_fallocate(log->ckpt_fd_, 0, 2 * kSlotBytes); rc != 0) {
    return store.commit_status(rc, "reserve redo.ckpt", 2 * kSlotBytes);
  }
  for (int i = 0; i < 2; ++i) {
    struct stat st {};
    if (::fstat(log->seg_fd_[i], &st) != 0) {
      return Status::io_error("stat '" + store.dir() + "/" + kSegmentNames[i] +
                              "': " + errno_text());
    }
    log->allocated_[i] = static_cast<uint64_t>(st.st_size);
  }
  // Every record either segment holds is at most `base`: both may be written over (4).
  log->next_ = base + 1;
  log->next_number_ = number;
  log->other_last_ = base;
  {
    MutexLock lock(log->mutex_);
    log->durable_base_ = base;
    log->written_ = log->synced_ = log->syncing_ = base;
    log->sync_fd_ = log->seg_fd_[0];
  }
  CARREL_ASSIGN_OR_RETURN(Pending p, log->begin_checkpoint(txnid));
  CARREL_RETURN_IF_ERROR(log->finish_checkpoint(p));
  log->thread_ = std::thread([l = log.get()] { l->checkpointer_main(); });
  log->syncer_ = std::thread([l = log.get()] { l->syncer_main(); });
  return log;
}

RedoLog::~RedoLog() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  sync_cv_.notify_all();
  synced_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (syncer_.joinable()) syncer_.join();
  MutexLock lock(mutex_);
  if (in_flight_ && in_flight_->pin) mdb_txn_abort(in_flight_->pin);
  if (durable_pin_) mdb_txn_abort(durable_pin_);
  for (int fd : {seg_fd_[0], seg_fd_[1], ckpt_fd_})
    if (fd >= 0) ::close(fd);
}

uint64_t RedoLog::checkpoints() const {
  MutexLock lock(mutex_);
  return checkpoints_;
}

Result<uint64_t> RedoLog::append(const RedoOps& ops) {
  uint64_t durable;
  {
    MutexLock lock(mutex_);
    if (!broken_.is_ok()) return broken_;
    durable = synced_;
  }
  if (ops.bytes().size() > kRecordBytesMax) {
    Status s = Status::invalid_argument("a commit of " + std::to_string(ops.bytes().size()) +
                                        " bytes is more than a redo record holds (" +
                                        std::to_string(kRecordBytesMax) + ")");
    set_broken(s);  // the commit is in data.mdb already (1)
    return s;
  }
  const std::string rec = encode_redo_record(next_, durable, ops.bytes());
  CARREL_ASSERT(at_ + rec.size() <= allocated_[cur_],
                "redo.h (8): the record's space was reserved");
  const std::string path = store_.dir() + "/" + kSegmentNames[cur_];
  Status s = fault(RedoStep::kWrite);
  if (s.is_ok()) s = pwrite_all(seg_fd_[cur_], rec, at_, path);
  if (!s.is_ok()) {
    set_broken(s);  // (7): the commit is in data.mdb, its record is not
    return s;
  }
  at_ += rec.size();
  since_begin_ += rec.size();
  const uint64_t number = next_++;
  {
    MutexLock lock(mutex_);
    written_ = number;
  }
  sync_cv_.notify_one();
  return number;
}

Status RedoLog::reserve(size_t payload_bytes) {
  {
    MutexLock lock(mutex_);
    if (!broken_.is_ok()) return broken_;
  }
  // Invariant (6): past the cap, the checkpoint in flight ends first; the
  // next one switches segments.
  if (at_ >= kSegmentBytesMax) CARREL_RETURN_IF_ERROR(wait_idle());
  CARREL_RETURN_IF_ERROR(fault(RedoStep::kReserve));
  const uint64_t need = at_ + kHeaderBytes + payload_bytes + kTrailerBytes;
  if (need <= allocated_[cur_]) return Status::ok();
  uint64_t to = (need + kReserveBytes - 1) / kReserveBytes * kReserveBytes;
  int rc = ::posix_fallocate(seg_fd_[cur_], 0, static_cast<off_t>(to));
  if (rc == ENOSPC && to > need) {  // a nearly full disk: just this record's space
    to = need;
    rc = ::posix_fallocate(seg_fd_[cur_], 0, static_cast<off_t>(to));
  }
  if (rc != 0) {
    return store_.commit_status(rc, "reserve redo log space", need - allocated_[cur_])
        .with_context(std::string(kSegmentNames[cur_]));
  }
  allocated_[cur_] = to;
  return Status::ok();
}

RedoLog::SyncState RedoLog::sync_state() const {
  MutexLock lock(mutex_);
  if (!broken_.is_ok()) return {};
  return {.backlogged = written_ > syncing_, .in_flight = syncing_ > synced_};
}

uint64_t RedoLog::synced() const {
  MutexLock lock(mutex_);
  return synced_;
}

Status RedoLog::status() const {
  MutexLock lock(mutex_);
  return broken_;
}

void RedoLog::set_on_synced(std::function<void()> f) {
  MutexLock lock(callback_mutex_);
  on_synced_ = std::move(f);
}

void RedoLog::set_broken(const Status& s) {
  {
    MutexLock lock(mutex_);
    if (broken_.is_ok()) {
      broken_flag_.store(true, std::memory_order_release);
      broken_ =
          s.with_context("the redo log of '" + store_.dir() +
                         "' is broken: no turn runs and no commit is accepted until the engine "
                         "is reopened, whose recovery replays every acknowledged commit");
    }
  }
  synced_cv_.notify_all();
  notify();
}

Status RedoLog::fault(RedoStep step) const {
  const RedoFaultHook& hook = store_.redo_fault_hook();
  return hook ? hook(step) : Status::ok();
}

void RedoLog::syncer_main() {
  for (;;) {
    int fd;
    uint64_t target;
    {
      MutexLock lock(mutex_);
      // Bounded: one sync per wake, while records wait.
      while (!stopping_ && broken_.is_ok() && written_ <= synced_) sync_cv_.wait(mutex_);
      if (stopping_ || !broken_.is_ok()) return;
      fd = sync_fd_;
      target = syncing_ = written_;
    }
    notify();  // the committer may write the next group now
    if (!sync_to(fd, target, "the redo log segment").is_ok()) return;
  }
}

Status RedoLog::sync_to(int fd, uint64_t target, const std::string& what) {
  // Invariant (1): covers every record written before it began.
  Status s = fault(RedoStep::kSync);
  if (s.is_ok() && ::fdatasync(fd) != 0)
    s = Status::io_error("fdatasync " + what + ": " + errno_text());
  if (!s.is_ok()) {
    set_broken(s);
    return s;
  }
  {
    MutexLock lock(mutex_);
    if (!broken_.is_ok()) return broken_;  // (1): synced() stops once the log broke
    synced_ = std::max(synced_, target);
    ++syncs_;
  }
  synced_cv_.notify_all();
  notify();
  return Status::ok();
}

void RedoLog::notify() {
  MutexLock lock(callback_mutex_);
  if (on_synced_) on_synced_();
}

Status RedoLog::wait_synced() {
  MutexLock lock(mutex_);
  const uint64_t target = written_;
  // Invariant (1): the syncer syncs while records wait (syncer_main), so this
  // ends with its next sync or two, or when the log breaks or closes.
  while (broken_.is_ok() && !stopping_ && synced_ < target) synced_cv_.wait(mutex_);
  if (!broken_.is_ok()) return broken_;
  if (synced_ < target)
    return Status::aborted("the redo log closed before its last records were synced");
  return Status::ok();
}

uint64_t RedoLog::syncs() const {
  MutexLock lock(mutex_);
  return syncs_;
}

void RedoLog::hold_checkpoints_for_tests(bool on) {
  g_hold_checkpoints = on;
}

void RedoLog::set_replay_ops_per_txn_for_tests(uint64_t ops) {
  g_replay_ops_per_txn = ops;
}

uint64_t RedoLog::replay_ops_per_txn() {
  const uint64_t ops = g_replay_ops_per_txn.load(std::memory_order_relaxed);
  return ops == 0 ? kReplayOpsPerTxn : ops;
}

void RedoLog::committed(uint64_t txnid) {
  if (g_hold_checkpoints.load(std::memory_order_relaxed)) return;
  // Invariant (6).
  ++commits_since_begin_;
  if (since_begin_ < kCheckpointBytes && commits_since_begin_ < kCheckpointCommits &&
      steady_ms() - begun_ms_ < kCheckpointIdleMs) {
    return;
  }
  {
    MutexLock lock(mutex_);
    if (!in_flight_done_ || !broken_.is_ok()) return;
  }
  Result<Pending> p = begin_checkpoint(txnid);
  if (!p.is_ok()) {
    set_broken(p.status().with_context("begin a redo log checkpoint"));
    return;
  }
  MutexLock lock(mutex_);
  in_flight_ = std::move(*p);
  in_flight_done_ = false;
  cv_.notify_all();
}

Status RedoLog::checkpoint_now(uint64_t txnid) {
  CARREL_RETURN_IF_ERROR(wait_idle());
  Result<Pending> p = begin_checkpoint(txnid);
  if (!p.is_ok()) {
    // (7), (10): the commit asking has no record, and only this checkpoint
    // would cover it; as a failed checkpoint after its begin does.
    Status s = p.status().with_context("begin a redo log checkpoint");
    set_broken(s);
    return s;
  }
  return finish_checkpoint(*p);
}

Status RedoLog::close() {
  CARREL_RETURN_IF_ERROR(wait_idle());
  MDB_txn* pin = nullptr;
  {
    MutexLock lock(mutex_);
    CARREL_ASSERT(durable_base_ == next_ - 1,
                  "redo.h: close() follows a checkpoint of every record");
    broken_ = Status::aborted("the redo log of '" + store_.dir() + "' is closed");
    pin = durable_pin_;
    durable_pin_ = nullptr;
  }
  if (pin) mdb_txn_abort(pin);
  // Invariant (9): data.mdb stops saying it needs the log before the files go.
  CARREL_RETURN_IF_ERROR(write_redo_mark(store_, false));
  return remove_redo_files(store_.dir());
}

Status RedoLog::wait_idle() {
  MutexLock lock(mutex_);
  while (!in_flight_done_) cv_.wait(mutex_);
  return broken_;
}

Result<RedoLog::Pending> RedoLog::begin_checkpoint(uint64_t txnid) {
  Pending p;
  int rc = mdb_txn_begin(store_.env(), nullptr, MDB_RDONLY, &p.pin);
  if (rc != 0) return from_mdb(rc, "pin the checkpoint's snapshot");
  // Only the committer writes (committer.h (1)): the newest snapshot is T.
  CARREL_ASSERT(mdb_txn_id(p.pin) == txnid, "redo.h (3): the pin reads the checkpoint's T");
  Result<std::string> meta = read_meta_prefix(store_, txnid);
  if (!meta.is_ok()) {
    mdb_txn_abort(p.pin);
    return meta.status();
  }
  p.meta = std::move(*meta);
  p.txnid = txnid;
  p.base = next_ - 1;
  p.number = next_number_++;
  uint64_t durable_base;
  {
    MutexLock lock(mutex_);
    durable_base = durable_base_;
  }
  // Invariant (4): the other segment is written over only when nothing in
  // it is newer than the durable checkpoint, and the one left is synced.
  if (at_ > 0 && durable_base >= other_last_) {
    Status synced = wait_synced();
    if (!synced.is_ok()) {
      mdb_txn_abort(p.pin);
      return synced;
    }
    other_last_ = next_ - 1;
    cur_ ^= 1;
    at_ = 0;
    MutexLock lock(mutex_);
    sync_fd_ = seg_fd_[cur_];
  }
  since_begin_ = 0;
  begun_ms_ = steady_ms();
  commits_since_begin_ = 0;
  return p;
}

Status RedoLog::finish_checkpoint(Pending& p) {
  // Invariant (3): every page of T was written before this sync began.
  Status s = fault(RedoStep::kCheckpoint);
  if (int rc = s.is_ok() ? mdb_env_sync(store_.env(), 1) : 0; rc != 0) {
    s = Status::io_error("sync '" + store_.dir() + "/data.mdb' (fdatasync): " + mdb_strerror(rc));
  }
  if (s.is_ok()) s = write_slot(RedoCheckpoint{p.number, p.txnid, p.base, p.meta});
  MDB_txn* release = nullptr;
  {
    MutexLock lock(mutex_);
    if (s.is_ok()) {
      release = durable_pin_;
      durable_pin_ = p.pin;
      durable_base_ = p.base;
      ++checkpoints_;
    } else {
      release = p.pin;
    }
  }
  p.pin = nullptr;
  if (release) mdb_txn_abort(release);
  if (!s.is_ok()) set_broken(s.with_context("checkpoint"));  // (7)
  return s;
}

Status RedoLog::write_slot(const RedoCheckpoint& c) {
  const std::string b = encode_redo_slot(c);
  const std::string path = store_.dir() + "/" + kCheckpointName;
  CARREL_RETURN_IF_ERROR(pwrite_all(ckpt_fd_, b, (c.number % 2) * kSlotBytes, path));
  if (::fdatasync(ckpt_fd_) != 0)
    return Status::io_error("fdatasync '" + path + "': " + errno_text());
  return Status::ok();
}

void RedoLog::checkpointer_main() {
  MutexLock lock(mutex_);
  for (;;) {
    // Bounded: the committer starts at most one checkpoint at a time.
    while (in_flight_done_ && !stopping_) cv_.wait(mutex_);
    if (in_flight_done_) return;  // stopping, nothing in flight
    Pending p = std::move(*in_flight_);
    in_flight_.reset();
    lock.unlock();
    (void)finish_checkpoint(p);  // a failure breaks the log (7)
    lock.lock();
    in_flight_done_ = true;
    cv_.notify_all();
  }
}

Result<RedoState> read_redo_state(const std::string& dir) {
  RedoState out;
  {
    OpenFile f;
    CARREL_RETURN_IF_ERROR(open_for_reading(dir, RedoLog::kCheckpointName, &f));
    out.checkpoint_file = f.fd >= 0;
  }
  CARREL_ASSIGN_OR_RETURN(std::optional<RedoCheckpoint> c, read_slots(dir));
  if (!c) {
    // Invariant (9): whether a segment holds a record all the same (each
    // segment's records start at offset 0).
    for (const char* name : RedoLog::kSegmentNames) {
      OpenFile f;
      CARREL_RETURN_IF_ERROR(open_for_reading(dir, name, &f));
      if (f.fd < 0) continue;
      CARREL_ASSIGN_OR_RETURN(std::optional<Record> first, read_record_at(f.fd, f.path, 0));
      out.segment_records |= first.has_value();
    }
    return out;
  }
  out.present = true;
  out.checkpoint = std::move(*c);
  CARREL_ASSIGN_OR_RETURN(out.newest_meta_txnid, newest_meta_txnid(dir));
  for (const char* name : RedoLog::kSegmentNames) {
    OpenFile f;
    CARREL_RETURN_IF_ERROR(open_for_reading(dir, name, &f));
    if (f.fd < 0) {
      if (out.missing_segment.empty()) out.missing_segment = name;  // (9)
      continue;
    }
    SegmentReader r(f.fd, f.path);
    for (;;) {
      CARREL_ASSIGN_OR_RETURN(auto rec, r.next());
      if (!rec) break;
      if (rec->number == out.checkpoint.base + 1) {
        out.records_after = true;
        break;
      }
      if (rec->number > out.checkpoint.base + 1) break;
    }
  }
  return out;
}

Status restore_meta(const std::string& dir, const RedoCheckpoint& c) {
  const std::string path = dir + "/data.mdb";
  OpenFile f;
  f.path = path;
  f.fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (f.fd < 0) return Status::io_error("open '" + path + "' to recover it: " + errno_text());
  uint32_t psize = 0;
  std::memcpy(&psize, c.meta.data() + 16 + 4 + 4 + 8 + 8, 4);
  if (psize < 512 || psize > 65536) {
    return Status::corruption("the redo checkpoint of '" + dir +
                              "' holds a meta page with page size " + std::to_string(psize) +
                              "; restore the directory from a backup");
  }
  // T's page in its own slot; the other slot as T-1, so LMDB opens T.
  const uint64_t slot = c.txnid & 1;
  std::string page = c.meta, other = c.meta;
  store_host_u64(&page, kPageNoOffset, slot);
  store_host_u64(&other, kPageNoOffset, slot ^ 1);
  store_host_u64(&other, kMetaTxnOffset, c.txnid - 1);
  CARREL_RETURN_IF_ERROR(pwrite_all(f.fd, page, slot * psize, path));
  CARREL_RETURN_IF_ERROR(pwrite_all(f.fd, other, (slot ^ 1) * psize, path));
  if (::fdatasync(f.fd) != 0) return Status::io_error("fdatasync '" + path + "': " + errno_text());
  return Status::ok();
}

namespace {

// Applies one record's operations; how many.
Result<uint64_t> apply_ops(const Store& store, MDB_txn* txn, std::string_view ops) {
  Reader r(ops, "redo record");
  uint64_t applied = 0;
  for (; r.remaining() > 0; ++applied) {
    uint8_t op = 0, db = 0;
    std::string_view key, value;
    if (!r.u8(&op) || !r.u8(&db) || db >= kDbCount || !r.str16(&key)) return r.corruption();
    MDB_val k = to_val(key);
    int rc = 0;
    if (op == kOpPut) {
      if (!r.str32(&value)) return r.corruption();
      MDB_val v = to_val(value);
      rc = mdb_put(txn, store.dbi(static_cast<Db>(db)), &k, &v, 0);
    } else if (op == kOpPutDelta) {
      // Invariant (10): the delta rebuilds the page from the one the replay
      // left under the key, which is the page its commit changed.
      if (!r.str32(&value)) return r.corruption();
      if (db != static_cast<uint8_t>(Db::kPages)) {
        return r.corruption("a page delta for database '" +
                            std::string(db_name(static_cast<Db>(db))) +
                            "', which holds no SQL pages: the directory cannot be recovered; "
                            "restore it from a backup");
      }
      MDB_val cur;
      rc = mdb_get(txn, store.dbi(Db::kPages), &k, &cur);
      if (rc != 0 && rc != MDB_NOTFOUND) return from_mdb(rc, "replay the redo log: read pages");
      std::optional<std::string_view> current;
      if (rc == 0) current = from_val(cur);
      CARREL_ASSIGN_OR_RETURN(std::string page,
                              rebuild_page(key, value, current, "the redo delta",
                                           "data.mdb's page at the redo checkpoint is not the "
                                           "one this commit changed (data.mdb is damaged, or "
                                           "the redo files belong to another data.mdb), so the "
                                           "directory cannot be recovered: restore it from a "
                                           "backup"));
      MDB_val v = to_val(page);
      rc = mdb_put(txn, store.dbi(Db::kPages), &k, &v, 0);
    } else if (op == kOpDel) {
      rc = mdb_del(txn, store.dbi(static_cast<Db>(db)), &k, nullptr);
      if (rc == MDB_NOTFOUND) rc = 0;
    } else {
      return r.corruption("unknown operation " + std::to_string(op));
    }
    if (rc != 0) {
      return from_mdb(rc, "replay the redo log into " + std::string(db_name(static_cast<Db>(db))));
    }
  }
  return applied;
}

// Every valid record found at or after byte `from` of a segment, wherever it
// starts (the bytes between may be torn or stale): the highest durable
// claim (2) among them, and the highest number.
struct Found {
  std::optional<uint64_t> claim;
  uint64_t highest = 0;
};
Result<Found> records_from(int fd, const std::string& path, uint64_t from) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::io_error("stat '" + path + "': " + errno_text());
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  constexpr size_t kChunk = size_t{1} << 20;
  std::string magic;
  Writer(&magic).u32(kRecordMagic);
  Found found;
  for (uint64_t at = from; at + kHeaderBytes <= size; at += kChunk) {
    CARREL_ASSIGN_OR_RETURN(std::string chunk, pread_some(fd, kChunk + 3, at, path));
    for (size_t i = chunk.find(magic); i != std::string::npos && i < kChunk;
         i = chunk.find(magic, i + 1)) {
      CARREL_ASSIGN_OR_RETURN(std::optional<Record> rec, read_record_at(fd, path, at + i));
      if (!rec) continue;
      if (!found.claim || rec->durable > *found.claim) found.claim = rec->durable;
      found.highest = std::max(found.highest, rec->number);
    }
  }
  return found;
}

// After a segment's records ended at byte `from`: the highest record that a
// valid record after it says was durable when it was written (2), if any.
Result<std::optional<uint64_t>> durable_claim_after(int fd, const std::string& path,
                                                    uint64_t from) {
  CARREL_ASSIGN_OR_RETURN(Found found, records_from(fd, path, from + 1));
  return found.claim;
}

}  // namespace

Result<uint64_t> replay_redo(const Store& store, MDB_txn** txn, uint64_t base,
                             const std::function<Status(MDB_txn**)>& next_txn) {
  const uint64_t ops_per_txn = RedoLog::replay_ops_per_txn();
  uint64_t ops_in_txn = 0, bytes_in_txn = 0;
  OpenFile files[2];
  for (int i = 0; i < 2; ++i) {
    CARREL_RETURN_IF_ERROR(open_for_reading(store.dir(), RedoLog::kSegmentNames[i], &files[i]));
  }
  uint64_t expect = base + 1;
  // Invariant (4): one segment holds the records from base + 1 on, up to the
  // switch; the other, after it, those that follow. Two passes find both.
  for (int pass = 0; pass < 2; ++pass) {
    bool moved = false;
    for (OpenFile& f : files) {
      if (f.fd < 0) continue;
      SegmentReader r(f.fd, f.path);
      bool applied_here = false;
      for (;;) {
        CARREL_ASSIGN_OR_RETURN(auto rec, r.next());
        if (!rec) break;
        if (rec->number < expect) continue;
        if (rec->number > expect) break;
        // A record was one transaction when it was committed: it always fits
        // one, but not beside many others, so a large one starts its own.
        if (ops_in_txn > 0 && (ops_in_txn >= ops_per_txn ||
                               bytes_in_txn + rec->payload.size() > RedoLog::kReplayBytesPerTxn)) {
          CARREL_RETURN_IF_ERROR(next_txn(txn));
          ops_in_txn = bytes_in_txn = 0;
        }
        Result<uint64_t> ops = apply_ops(store, *txn, rec->payload);
        if (!ops.is_ok()) {
          return ops.status().with_context("redo log record " + std::to_string(rec->number) +
                                           " in '" + f.path + "'");
        }
        ops_in_txn += *ops;
        bytes_in_txn += rec->payload.size();
        ++expect;
        applied_here = moved = true;
      }
      if (applied_here) {
        // A torn or unsynced tail ends the log; a damaged record that a later
        // one says was durable would hide acknowledged commits (5).
        CARREL_ASSIGN_OR_RETURN(std::optional<uint64_t> claim,
                                durable_claim_after(f.fd, f.path, r.at()));
        if (claim && *claim >= expect) {
          return Status::corruption("redo log record " + std::to_string(expect) + " in '" + f.path +
                                    "' is damaged, and a later record says records up to " +
                                    std::to_string(*claim) +
                                    " were durable: those commits cannot be recovered; "
                                    "restore the directory from a backup");
        }
      }
    }
    if (!moved) break;
  }
  return expect - 1;
}

Result<uint64_t> highest_redo_record(const std::string& dir) {
  uint64_t highest = 0;
  for (const char* name : RedoLog::kSegmentNames) {
    OpenFile f;
    CARREL_RETURN_IF_ERROR(open_for_reading(dir, name, &f));
    if (f.fd < 0) continue;
    CARREL_ASSIGN_OR_RETURN(Found found, records_from(f.fd, f.path, 0));
    highest = std::max(highest, found.highest);
  }
  return highest;
}

Status remove_redo_files(const std::string& dir) {
  bool removed = false;
  // redo.ckpt first, durably: segments without it are never read, and a
  // segment gone beside a valid redo.ckpt would be a lost one (9).
  for (const char* name :
       {RedoLog::kCheckpointName, RedoLog::kSegmentNames[0], RedoLog::kSegmentNames[1]}) {
    std::string path = dir + "/" + name;
    if (::unlink(path.c_str()) == 0) {
      removed = true;
    } else if (errno != ENOENT) {
      return Status::io_error("remove '" + path + "': " + errno_text());
    }
    if (removed && std::string_view(name) == RedoLog::kCheckpointName) {
      CARREL_RETURN_IF_ERROR(sync_dir(dir));
    }
  }
  return removed ? sync_dir(dir) : Status::ok();
}

Status reset_redo_files(const std::string& dir) {
  // The segments first: an empty redo.ckpt beside records would read as a
  // damaged one (9).
  for (const char* name :
       {RedoLog::kSegmentNames[0], RedoLog::kSegmentNames[1], RedoLog::kCheckpointName}) {
    const std::string path = dir + "/" + name;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Status::io_error("create '" + path + "': " + errno_text());
    const bool ok = ::ftruncate(fd, 0) == 0 && ::fdatasync(fd) == 0;
    const std::string e = errno_text();
    ::close(fd);
    if (!ok) return Status::io_error("empty '" + path + "': " + e);
  }
  return sync_dir(dir);
}

Status write_redo_mark(const Store& store, bool on) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(store.env(), nullptr, 0, &txn);
  if (rc != 0) return from_mdb(rc, "begin the redo log mark's transaction");
  MDB_val k = to_val(kRedoMarkKey);
  MDB_val v = to_val(std::string_view("1"));
  rc = on ? mdb_put(txn, store.dbi(Db::kMeta), &k, &v, 0)
          : mdb_del(txn, store.dbi(Db::kMeta), &k, nullptr);
  if (rc != 0 && !(rc == MDB_NOTFOUND && !on)) {
    mdb_txn_abort(txn);
    return from_mdb(rc, on ? "write the redo log mark" : "delete the redo log mark");
  }
  // In order: without a checkpoint to rewind to, a meta page kept without
  // its pages would be a torn data.mdb.
  return store.commit_status(store.commit_durably(txn), "commit the redo log mark", 0);
}

std::string lost_redo_files(const RedoState& state, bool marked) {
  if (state.present && !state.missing_segment.empty()) {
    return state.missing_segment + " is missing beside a valid redo.ckpt";
  }
  // Without the mark, data.mdb was closed with everything in it (the mark's
  // deletion is durable before any file goes): leftovers are garbage.
  if (!state.present && state.checkpoint_file && state.segment_records && marked) {
    return "redo.ckpt holds no valid checkpoint while redo.0 or redo.1 holds records";
  }
  if (!state.present && !state.checkpoint_file && marked) {
    return "redo.ckpt is missing while data.mdb says a redo log was in use";
  }
  return "";
}

}  // namespace carrel::store
