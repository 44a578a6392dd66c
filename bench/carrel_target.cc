// carrel through its public API: a registered class, Stub::call_blocking from
// the client threads, each waiting for its reply (one call in flight per client).
#include <future>
#include <memory>

#include "bench/bench_handler.h"
#include "bench/harness.h"
#include "carrel/carrel.h"

namespace carrel::bench {
namespace {

class CarrelTarget final : public Target {
 public:
  std::string name() const override { return "carrel"; }

  Status open(const Workload& w, const Params& p) override {
    keep_dir_ = !p.dir.empty();
    dir_ = keep_dir_ ? p.dir : make_temp_dir("carrel");
    if (dir_.empty()) return Status::io_error("cannot create a temp dir");
    Options o;
    o.dir = dir_;
    o.durability = p.sync ? Durability::kSync : Durability::kNoSync;
    o.redo_log = p.redo_log;
    CARREL_ASSIGN_OR_RETURN(engine_, Engine::open(o));
    Schema schema = w.sql ? Schema::kBench : Schema::kNone;
    CARREL_RETURN_IF_ERROR(engine_->register_class(kBenchClass, [schema](const ObjectRef&) {
      return std::make_unique<BenchHandler>(schema);
    }));
    uint64_t objects = w.name == "hot-object" ? 1 : p.objects;
    if (w.each_object_once) objects = 0;  // stubs made on the fly
    for (uint64_t i = 0; i < objects; ++i)
      stubs_.push_back(engine_->stub(kBenchClass, object_name(i)));
    return preload(w, p, objects);
  }

  Status preload(const Workload& w, const Params& p, uint64_t objects) {
    if (w.kv) return preload_kv(w, p, objects);
    uint64_t n = p.preload ? p.preload : w.preload_default;
    if (n == 0) return Status::ok();
    std::vector<std::future<Status>> pending;
    for (uint64_t i = 0; i < objects; ++i) {
      pending.push_back(engine_->submit(
          ObjectRef::named(kBenchClass, object_name(i)), [&w, &p, n](Context& ctx) -> Status {
            for (uint64_t k = 0; k < n; ++k) {
              std::string key = preload_key(k);
              std::string value = value_for(key, p.value_bytes);
              if (w.name == "sql-point") {
                CARREL_RETURN_IF_ERROR(ctx.sql()
                                           .exec("INSERT INTO t(id, v) VALUES (?, ?)",
                                                 static_cast<int64_t>(k + 1), Blob{value})
                                           .status());
              } else {
                CARREL_RETURN_IF_ERROR(ctx.sql()
                                           .exec("INSERT INTO messages(id, body) VALUES (?, ?)",
                                                 static_cast<int64_t>(k + 1), value)
                                           .status());
              }
            }
            return Status::ok();
          }));
      CARREL_RETURN_IF_ERROR(drain(pending, 256));
    }
    return drain(pending, 0);
  }

  // KV workloads: each object's preload_keys(), in turns of at most
  // kPreloadKeysPerTurn keys (a turn's dirty bytes are capped).
  Status preload_kv(const Workload& w, const Params& p, uint64_t objects) {
    static constexpr size_t kPreloadKeysPerTurn = 1000;
    std::vector<std::future<Status>> pending;
    for (uint64_t i = 0; i < objects; ++i) {
      auto keys = std::make_shared<const std::vector<std::string>>(preload_keys(w, p, i));
      for (size_t from = 0; from < keys->size(); from += kPreloadKeysPerTurn) {
        pending.push_back(engine_->submit(
            ObjectRef::named(kBenchClass, object_name(i)), [keys, from, &p](Context& ctx) {
              size_t to = std::min(keys->size(), from + kPreloadKeysPerTurn);
              for (size_t k = from; k < to; ++k) {
                const std::string& key = (*keys)[k];
                CARREL_RETURN_IF_ERROR(ctx.kv().put(key, value_for(key, p.value_bytes)));
              }
              return Status::ok();
            }));
        CARREL_RETURN_IF_ERROR(drain(pending, 256));
      }
    }
    return drain(pending, 0);
  }

  // Waits for the pending preload turns once more than `keep` are queued.
  static Status drain(std::vector<std::future<Status>>& pending, size_t keep) {
    if (pending.size() <= keep) return Status::ok();
    for (auto& f : pending) CARREL_RETURN_IF_ERROR(f.get());
    pending.clear();
    return Status::ok();
  }

  void begin_measure() override { before_ = engine_->stats(); }

  Status run_op(int, const Op& op) override {
    Stub stub = op.object < stubs_.size() ? stubs_[op.object]
                                          : engine_->stub(kBenchClass, object_name(op.object));
    const char* method = "put";
    std::string payload;
    switch (op.kind) {
      case OpKind::kPut:
      case OpKind::kUpdate:
      case OpKind::kInsert:
        payload = put_payload(op.key, op.value);
        break;
      case OpKind::kRmw:
        method = "rmw";
        payload = put_payload(op.key, op.value);
        break;
      case OpKind::kScan:
        method = "scan";
        payload = u64_bytes(op.limit) + op.key;
        break;
      case OpKind::kGet:
        method = "get";
        payload = op.key;
        break;
      case OpKind::kWake:
        method = "wake";
        payload = op.key;
        break;
      case OpKind::kSqlInsert:
        method = "sqlins";
        payload = u64_bytes(op.row) + op.value;
        break;
      case OpKind::kSqlPoint:
        method = "sqlget";
        payload = u64_bytes(op.row);
        break;
      case OpKind::kChat:
        method = "chat";
        payload = u64_bytes(op.row) + op.value;
        break;
    }
    return stub.call_blocking(method, payload).status();
  }

  void end_measure(EngineResult* r) override {
    EngineStats s = engine_->stats();
    r->turns = s.turns_run - before_.turns_run;
    r->commits = s.commits - before_.commits;
    uint64_t committed = s.turns_committed - before_.turns_committed;
    r->turns_per_commit = r->commits ? static_cast<double>(committed) / r->commits : 0;
    r->fsyncs = s.fsyncs - before_.fsyncs;
    r->has_fsyncs = true;
    r->bytes_written = s.bytes_written - before_.bytes_written;
    r->extra["turns_per_commit_max"] = static_cast<double>(s.turns_per_commit_max);
  }

  Status close() override {
    stubs_.clear();
    Status s = engine_ ? engine_->close() : Status::ok();
    engine_.reset();
    return s;
  }
  std::string dir() const override { return dir_; }
  bool keep_dir() const { return keep_dir_; }

 private:
  std::unique_ptr<Engine> engine_;
  std::vector<Stub> stubs_;
  EngineStats before_;
  std::string dir_;
  bool keep_dir_ = false;
};

}  // namespace

std::unique_ptr<Target> make_carrel_target() {
  return std::make_unique<CarrelTarget>();
}

}  // namespace carrel::bench
