// Raw LMDB: the floor carrel is built on. Same keys (16-byte id ‖ key) in one
// database of its own environment. Writes are group-committed by one writer
// thread in batches of the size carrel's group commit reached in the same run
// (so both pay the same number of fsyncs per write), fsync per commit in sync
// mode, MDB_NOSYNC in nosync mode. Reads use a per-client read transaction
// (reset/renew), as carrel does.
#include <lmdb.h>

#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "bench/harness.h"
#include "carrel/id.h"

namespace carrel::bench {
namespace {

Status mdb_status(int rc, const std::string& what) {
  if (rc == 0) return Status::ok();
  return Status::io_error(what + ": " + mdb_strerror(rc));
}

class LmdbRawTarget final : public Target {
 public:
  explicit LmdbRawTarget(LmdbBatching b)
      : batch_(std::max<size_t>(1, std::lround(b.turns_per_commit))) {}
  ~LmdbRawTarget() override { (void)close(); }
  std::string name() const override { return "lmdb-raw"; }

  Status open(const Workload& w, const Params& p) override {
    sync_ = p.sync;
    dir_ = make_temp_dir("lmdb");
    if (dir_.empty()) return Status::io_error("cannot create a temp dir");
    CARREL_RETURN_IF_ERROR(mdb_status(mdb_env_create(&env_), "mdb_env_create"));
    mdb_env_set_mapsize(env_, uint64_t{64} << 30);
    mdb_env_set_maxreaders(env_, 1024);
    unsigned flags = MDB_NOTLS | (p.sync ? 0 : MDB_NOSYNC);
    CARREL_RETURN_IF_ERROR(
        mdb_status(mdb_env_open(env_, dir_.c_str(), flags, 0644), "mdb_env_open"));
    MDB_txn* txn = nullptr;
    CARREL_RETURN_IF_ERROR(mdb_status(mdb_txn_begin(env_, nullptr, 0, &txn), "begin"));
    int rc = mdb_dbi_open(txn, nullptr, 0, &dbi_);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return mdb_status(rc, "mdb_dbi_open");
    }
    uint64_t objects = w.name == "hot-object" ? 1 : p.objects;
    ids_.reserve(objects);
    for (uint64_t i = 0; i < objects; ++i)
      ids_.push_back(id_from_name(kBenchClass, object_name(i)));
    for (uint64_t i = 0; i < objects && rc == 0 && !w.each_object_once; ++i) {
      for (const std::string& k : preload_keys(w, p, i)) {
        std::string key = std::string(ids_[i].raw()) + k;
        std::string value = value_for(k, p.value_bytes);
        MDB_val kv{key.size(), key.data()}, vv{value.size(), value.data()};
        rc = mdb_put(txn, dbi_, &kv, &vv, 0);
        if (rc != 0) break;
      }
    }
    if (rc != 0) {
      mdb_txn_abort(txn);
      return mdb_status(rc, "preload");
    }
    CARREL_RETURN_IF_ERROR(mdb_status(mdb_txn_commit(txn), "commit preload"));
    live_clients_ = std::max(1, p.clients);
    readers_.resize(live_clients_, nullptr);
    writer_ = std::thread([this] { writer_main(); });
    return Status::ok();
  }

  std::string key_of(const Op& op) {
    const ObjectId id = op.object < ids_.size() ? ids_[op.object]
                                                : id_from_name(kBenchClass, object_name(op.object));
    return std::string(id.raw()) + op.key;
  }

  Status run_op(int client, const Op& op) override {
    if (op.kind == OpKind::kGet || op.kind == OpKind::kWake || op.kind == OpKind::kScan)
      return read(client, op);
    if (op.kind != OpKind::kPut && op.kind != OpKind::kUpdate && op.kind != OpKind::kInsert &&
        op.kind != OpKind::kRmw)
      return Status::invalid_argument("lmdb-raw runs KV operations only");
    Pending w;
    w.key = key_of(op);
    w.value = op.value;
    w.rmw = op.kind == OpKind::kRmw;
    std::unique_lock lock(mutex_);
    queue_.push_back(&w);
    writer_cv_.notify_one();
    w.cv.wait(lock, [&] { return w.done; });
    return w.status;
  }

  // A get, or a scan (a cursor over the object's keys from op.key on).
  Status read(int client, const Op& op) {
    {
      std::lock_guard lock(mutex_);
      ++reading_;
    }
    std::string key = key_of(op);
    MDB_txn*& txn = readers_[client];
    int rc = txn ? mdb_txn_renew(txn) : mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
    Status s = mdb_status(rc, "begin read");
    if (s.is_ok()) {
      s = op.kind == OpKind::kScan ? scan(txn, key, key.size() - op.key.size(), op.limit)
                                   : get(txn, key);
      mdb_txn_reset(txn);
    }
    std::lock_guard lock(mutex_);
    --reading_;
    if (!queue_.empty()) writer_cv_.notify_one();
    return s;
  }

  Status get(MDB_txn* txn, std::string& key) {
    MDB_val kv{key.size(), key.data()}, vv;
    int rc = mdb_get(txn, dbi_, &kv, &vv);
    if (rc == 0) std::string copy(static_cast<const char*>(vv.mv_data), vv.mv_size);
    return rc == MDB_NOTFOUND ? Status::not_found("key") : mdb_status(rc, "get");
  }

  // Up to `limit` entries from `key` on that share its first `prefix` bytes
  // (the object id), copied out as carrel's list does.
  Status scan(MDB_txn* txn, std::string& key, size_t prefix, uint32_t limit) {
    MDB_cursor* cur = nullptr;
    int rc = mdb_cursor_open(txn, dbi_, &cur);
    if (rc != 0) return mdb_status(rc, "cursor");
    std::vector<std::pair<std::string, std::string>> rows;
    MDB_val kv{key.size(), key.data()}, vv;
    for (rc = mdb_cursor_get(cur, &kv, &vv, MDB_SET_RANGE); rc == 0 && rows.size() < limit;
         rc = mdb_cursor_get(cur, &kv, &vv, MDB_NEXT)) {
      std::string_view k(static_cast<const char*>(kv.mv_data), kv.mv_size);
      if (k.size() < prefix || k.substr(0, prefix) != std::string_view(key).substr(0, prefix))
        break;
      rows.emplace_back(std::string(k.substr(prefix)),
                        std::string(static_cast<const char*>(vv.mv_data), vv.mv_size));
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) return mdb_status(rc, "scan");
    return rows.empty() ? Status::not_found("scan start") : Status::ok();
  }

  void client_finished(int client) override {
    std::lock_guard lock(mutex_);
    --live_clients_;
    writer_cv_.notify_one();
  }

  void end_measure(EngineResult* r) override {
    std::lock_guard lock(stats_mutex_);
    r->commits = commits_;
    r->turns_per_commit = commits_ ? static_cast<double>(written_) / commits_ : 0;
    r->fsyncs = fsyncs_;
    r->has_fsyncs = true;
    r->bytes_written = bytes_;
    r->extra["batch_target"] = static_cast<double>(batch_);
  }

  Status close() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    writer_cv_.notify_one();
    if (writer_.joinable()) writer_.join();
    for (MDB_txn* t : readers_)
      if (t) mdb_txn_abort(t);
    readers_.clear();
    if (env_) mdb_env_close(env_);
    env_ = nullptr;
    return Status::ok();
  }
  std::string dir() const override { return dir_; }

 private:
  struct Pending {
    std::string key, value;
    bool rmw = false;   // read the key (it must exist) before writing it
    bool done = false;  // GUARDED_BY(mutex_)
    Status status;
    std::condition_variable cv;
  };

  // Commits when `batch_` writes wait, or when every live client that is not
  // reading waits (nobody else can add to the batch).
  void writer_main() {
    std::vector<Pending*> group;
    std::unique_lock lock(mutex_);
    for (;;) {
      writer_cv_.wait(lock, [&] {
        if (stopping_) return true;
        size_t ready_max = static_cast<size_t>(std::max(0, live_clients_ - reading_));
        return !queue_.empty() && (queue_.size() >= batch_ || queue_.size() >= ready_max);
      });
      if (queue_.empty() && stopping_) return;
      group.clear();
      while (!queue_.empty() && group.size() < batch_) {
        group.push_back(queue_.front());
        queue_.pop_front();
      }
      lock.unlock();
      Status s = commit(group);
      lock.lock();
      for (Pending* p : group) {
        p->status = s;
        p->done = true;
        p->cv.notify_one();
      }
    }
  }

  Status commit(const std::vector<Pending*>& group) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != 0) return mdb_status(rc, "begin write");
    uint64_t bytes = 0;
    for (Pending* p : group) {
      MDB_val kv{p->key.size(), p->key.data()}, vv{p->value.size(), p->value.data()};
      if (p->rmw) {
        MDB_val old;
        rc = mdb_get(txn, dbi_, &kv, &old);
        if (rc != 0) break;
      }
      rc = mdb_put(txn, dbi_, &kv, &vv, 0);
      if (rc != 0) break;
      bytes += p->key.size() + p->value.size();
    }
    if (rc != 0) {
      mdb_txn_abort(txn);
      return mdb_status(rc, "put");
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) return mdb_status(rc, "commit");
    std::lock_guard lock(stats_mutex_);
    ++commits_;
    written_ += group.size();
    bytes_ += bytes;
    fsyncs_ += sync_ ? 1 : 0;
    return Status::ok();
  }

  const size_t batch_;
  bool sync_ = true;
  std::string dir_;
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  std::vector<ObjectId> ids_;
  std::vector<MDB_txn*> readers_;  // one per client, used only by that client

  std::mutex mutex_;
  std::condition_variable writer_cv_;
  std::deque<Pending*> queue_;  // GUARDED_BY(mutex_)
  int live_clients_ = 0;        // GUARDED_BY(mutex_)
  int reading_ = 0;             // GUARDED_BY(mutex_)
  bool stopping_ = false;       // GUARDED_BY(mutex_)
  std::thread writer_;

  std::mutex stats_mutex_;
  uint64_t commits_ = 0, written_ = 0, bytes_ = 0, fsyncs_ = 0;
};

}  // namespace

std::unique_ptr<Target> make_lmdb_raw_target(const LmdbBatching& batching) {
  return std::make_unique<LmdbRawTarget>(batching);
}

}  // namespace carrel::bench
