// RocksDB: what an embedder would otherwise pick for per-key state. One
// database in the engine's directory, the same keys as lmdb-raw (16-byte id ‖
// key) in the default column family. Every writing turn is one WriteBatch that
// holds the write and an undo entry, as carrel keeps history: the key's
// previous value, keyed by a global turn number (big-endian, so the undo log is
// appended in order) in the `undo` column family. Each client writes on its own
// thread; RocksDB groups concurrent writers into one WAL write (its group
// commit), synced per group in sync mode (WriteOptions::sync) and left to the
// OS in nosync mode. Reads are plain gets and iterators.
//
// Invariants:
//  (1) A turn's write and its undo entry commit together or not at all (one
//      WriteBatch).
//  (2) The undo entry of turn n holds the value the key had before turn n
//      (read in the same turn, before the batch is written); a key only one
//      client writes (every workload but YCSB's) cannot change in between.
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <rocksdb/write_batch.h>

#include <atomic>

#include "bench/harness.h"
#include "carrel/id.h"
#include "engine/store/codec.h"

namespace carrel::bench {
namespace {

constexpr uint8_t kUndoVersion = 1;
constexpr const char* kUndoFamily = "undo";

Status rocks_status(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::ok();
  if (s.IsNotFound()) return Status::not_found(what);
  return Status::io_error("rocksdb " + what + ": " + s.ToString());
}

// An undo entry's value: the key and, when it existed, its previous value.
std::string encode_undo(std::string_view key, const std::string* before) {
  std::string out;
  store::Writer w(&out);
  w.version(kUndoVersion);
  w.str32(key);
  w.u8(before ? 1 : 0);
  if (before) w.str32(*before);
  return out;
}

class RocksdbTarget final : public Target {
 public:
  ~RocksdbTarget() override { (void)close(); }
  std::string name() const override { return "rocksdb"; }

  Status open(const Workload& w, const Params& p) override {
    dir_ = make_temp_dir("rocksdb");
    if (dir_.empty()) return Status::io_error("cannot create a temp dir");
    write_options_.sync = p.sync;
    rocksdb::Options options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    options.statistics = rocksdb::CreateDBStatistics();
    options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
    stats_ = options.statistics;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(options)},
        {kUndoFamily, rocksdb::ColumnFamilyOptions(options)}};
    rocksdb::DB* db = nullptr;
    CARREL_RETURN_IF_ERROR(
        rocks_status(rocksdb::DB::Open(options, dir_, families, &handles_, &db), "open " + dir_));
    db_.reset(db);
    uint64_t objects = w.name == "hot-object" ? 1 : p.objects;
    ids_.reserve(objects);
    for (uint64_t i = 0; i < objects; ++i)
      ids_.push_back(id_from_name(kBenchClass, object_name(i)));
    if (w.each_object_once) return Status::ok();
    rocksdb::WriteOptions preload_options;
    preload_options.disableWAL = true;  // flushed below
    for (uint64_t i = 0; i < objects; ++i) {
      rocksdb::WriteBatch batch;
      for (const std::string& k : preload_keys(w, p, i))
        batch.Put(handles_[0], std::string(ids_[i].raw()) + k, value_for(k, p.value_bytes));
      CARREL_RETURN_IF_ERROR(rocks_status(db_->Write(preload_options, &batch), "preload"));
    }
    // The preloaded keys in a table file, as a store that has run a while holds them.
    return rocks_status(db_->Flush(rocksdb::FlushOptions()), "flush preload");
  }

  std::string key_of(const Op& op) const {
    const ObjectId id = op.object < ids_.size() ? ids_[op.object]
                                                : id_from_name(kBenchClass, object_name(op.object));
    return std::string(id.raw()) + op.key;
  }

  Status run_op(int client, const Op& op) override {
    std::string key = key_of(op);
    switch (op.kind) {
      case OpKind::kGet:
      case OpKind::kWake: {
        std::string value;
        return rocks_status(db_->Get(rocksdb::ReadOptions(), handles_[0], key, &value), "get");
      }
      case OpKind::kScan:
        return scan(key, key.size() - op.key.size(), op.limit);
      case OpKind::kPut:
      case OpKind::kUpdate:
      case OpKind::kInsert:
      case OpKind::kRmw:
        return write(key, op.value, op.kind == OpKind::kRmw);
      default:
        return Status::invalid_argument("rocksdb runs KV operations only");
    }
  }

  // One turn: read the previous value, then one batch with the put and its
  // undo entry (invariants (1), (2)).
  Status write(const std::string& key, const std::string& value, bool must_exist) {
    std::string before;
    rocksdb::Status g = db_->Get(rocksdb::ReadOptions(), handles_[0], key, &before);
    if (!g.ok() && !(g.IsNotFound() && !must_exist)) return rocks_status(g, "read before write");
    std::string undo = encode_undo(key, g.ok() ? &before : nullptr);
    std::string undo_key = u64_bytes(next_turn_.fetch_add(1, std::memory_order_relaxed));
    rocksdb::WriteBatch batch;
    batch.Put(handles_[0], key, value);
    batch.Put(handles_[1], undo_key, undo);
    CARREL_RETURN_IF_ERROR(rocks_status(db_->Write(write_options_, &batch), "write"));
    writes_.fetch_add(1, std::memory_order_relaxed);
    bytes_.fetch_add(key.size() + value.size() + undo_key.size() + undo.size(),
                     std::memory_order_relaxed);
    return Status::ok();
  }

  // Up to `limit` entries from `key` on that share its first `prefix` bytes
  // (the object id), copied out as carrel's list does.
  Status scan(const std::string& key, size_t prefix, uint32_t limit) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[0]));
    std::vector<std::pair<std::string, std::string>> rows;
    const rocksdb::Slice object(key.data(), prefix);
    for (it->Seek(key); it->Valid() && rows.size() < limit && it->key().starts_with(object);
         it->Next())
      rows.emplace_back(it->key().ToString().substr(prefix), it->value().ToString());
    CARREL_RETURN_IF_ERROR(rocks_status(it->status(), "scan"));
    return rows.empty() ? Status::not_found("scan start") : Status::ok();
  }

  void begin_measure() override {
    writes0_ = writes_.load();
    bytes0_ = bytes_.load();
    groups0_ = stats_->getTickerCount(rocksdb::WRITE_DONE_BY_SELF);
    syncs0_ = stats_->getTickerCount(rocksdb::WAL_FILE_SYNCED);
  }

  // A commit is a write group (its leader's WAL write); fsyncs are WAL syncs.
  void end_measure(EngineResult* r) override {
    uint64_t writes = writes_.load() - writes0_;
    r->commits = stats_->getTickerCount(rocksdb::WRITE_DONE_BY_SELF) - groups0_;
    r->turns_per_commit = r->commits ? static_cast<double>(writes) / r->commits : 0;
    r->fsyncs = stats_->getTickerCount(rocksdb::WAL_FILE_SYNCED) - syncs0_;
    r->has_fsyncs = true;
    r->bytes_written = bytes_.load() - bytes0_;
  }

  Status close() override {
    Status s;
    if (db_) {
      for (rocksdb::ColumnFamilyHandle* h : handles_) {
        rocksdb::Status d = db_->DestroyColumnFamilyHandle(h);
        if (s.is_ok()) s = rocks_status(d, "close family");
      }
      handles_.clear();
      rocksdb::Status c = db_->Close();
      if (s.is_ok()) s = rocks_status(c, "close");
      db_.reset();
    }
    return s;
  }
  std::string dir() const override { return dir_; }

 private:
  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // [0] default, [1] undo
  std::shared_ptr<rocksdb::Statistics> stats_;
  rocksdb::WriteOptions write_options_;
  std::vector<ObjectId> ids_;
  std::atomic<uint64_t> next_turn_{0};
  std::atomic<uint64_t> writes_{0}, bytes_{0};
  uint64_t writes0_ = 0, bytes0_ = 0, groups0_ = 0, syncs0_ = 0;
};

}  // namespace

std::unique_ptr<Target> make_rocksdb_target() {
  return std::make_unique<RocksdbTarget>();
}

}  // namespace carrel::bench
