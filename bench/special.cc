// Workloads with their own drivers: cold-wake, alarms, pitr; and the
// --verify-ack-log checker.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "bench/bench_handler.h"
#include "bench/harness.h"
#include "carrel/carrel.h"
#include "engine/loop/engine_core.h"

namespace carrel::bench {
namespace {

int64_t realtime_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status wait_all(std::vector<std::future<Status>>& pending) {
  Status first;
  for (auto& f : pending) {
    Status s = f.get();
    if (first.is_ok() && !s.is_ok()) first = s;
  }
  pending.clear();
  return first;
}

void finish_timing(EngineResult* r, double seconds) {
  std::sort(r->latencies_us.begin(), r->latencies_us.end());
  r->ops = r->turns = r->latencies_us.size();
  r->seconds = seconds;
}

// ---- cold-wake -------------------------------------------------------------

Status carrel_cold_wake(const Params& p, bool ten_tables, EngineResult* r) {
  std::string dir = make_temp_dir("wake");
  Options o;
  o.dir = dir;
  o.durability = p.sync ? Durability::kSync : Durability::kNoSync;
  o.idle_timeout_ms = 0;  // everything idle hibernates on the next evict_idle()
  reset_peak_rss();
  CARREL_ASSIGN_OR_RETURN(auto engine, Engine::open(o));
  Schema schema = ten_tables ? Schema::kTenTables : Schema::kNone;
  CARREL_RETURN_IF_ERROR(engine->register_class(
      kBenchClass, [schema](const ObjectRef&) { return std::make_unique<BenchHandler>(schema); }));
  std::vector<std::future<Status>> pending;
  for (uint64_t i = 0; i < p.objects; ++i) {
    pending.push_back(engine->submit(
        ObjectRef::named(kBenchClass, object_name(i)), [&p, ten_tables](Context& ctx) -> Status {
          if (ten_tables) {
            return ctx.sql().exec("INSERT INTO t3(id, a, b, c) VALUES (1, 'x', 2, NULL)").status();
          }
          for (uint64_t k = 0; k < 10; ++k) {
            CARREL_RETURN_IF_ERROR(
                ctx.kv().put(preload_key(k), value_for(preload_key(k), p.value_bytes)));
          }
          return Status::ok();
        }));
    if (pending.size() >= 256) CARREL_RETURN_IF_ERROR(wait_all(pending));
  }
  CARREL_RETURN_IF_ERROR(wait_all(pending));
  // Hibernate everything; the janitor may race us, which is fine.
  for (int i = 0; i < 200 && engine->stats().active_objects > 0; ++i) {
    engine->core()->evict_idle();
    if (engine->stats().active_objects > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (engine->stats().active_objects > 0) {
    return Status::busy("cold-wake: " + std::to_string(engine->stats().active_objects) +
                        " objects still active after evict_idle()");
  }
  EngineStats before = engine->stats();
  int64_t t0 = wall_us();
  for (uint64_t i = 0; i < p.objects; ++i) {
    Stub stub = engine->stub(kBenchClass, object_name(i));
    int64_t a = wall_us();
    auto reply = stub.call("wake", preload_key(0)).get();
    int64_t b = wall_us();
    if (!reply.is_ok()) {
      if (r->errors++ == 0) r->first_error = reply.status().to_string();
    }
    r->latencies_us.push_back(static_cast<uint32_t>(b - a));
  }
  finish_timing(r, (wall_us() - t0) / 1e6);
  EngineStats after = engine->stats();
  r->commits = after.commits - before.commits;
  r->fsyncs = after.fsyncs - before.fsyncs;
  r->has_fsyncs = true;
  r->bytes_written = after.bytes_written - before.bytes_written;
  r->peak_rss_bytes = peak_rss_bytes();
  CARREL_RETURN_IF_ERROR(engine->close());
  engine.reset();
  r->dir_bytes = dir_bytes(dir);
  remove_tree(dir);
  return Status::ok();
}

Status sqlite_exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "?";
    sqlite3_free(err);
    return Status::io_error(sql + ": " + m);
  }
  return Status::ok();
}

// Activation of a SQLite file: open, pragmas, migration, then the query.
Status sqlite_wake(const std::string& path, bool sync, bool ten_tables, bool setup) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    sqlite3_close_v2(db);
    return Status::io_error("open " + path);
  }
  Status s = sqlite_exec(db, "PRAGMA journal_mode=WAL");
  if (s.is_ok())
    s = sqlite_exec(db, sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  // Setup creates the file in one transaction (one sync), not one per statement.
  if (s.is_ok() && setup) s = sqlite_exec(db, "BEGIN");
  if (s.is_ok())
    s = sqlite_exec(db, "CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID");
  for (const std::string& stmt :
       schema_statements(ten_tables ? Schema::kTenTables : Schema::kNone)) {
    if (s.is_ok()) s = sqlite_exec(db, stmt);
  }
  if (s.is_ok() && setup) {
    s = ten_tables ? sqlite_exec(db, "INSERT INTO t3(id, a, b, c) VALUES (1, 'x', 2, NULL)")
                   : sqlite_exec(db, "INSERT INTO kv(k, v) VALUES (CAST('" + preload_key(0) +
                                         "' AS BLOB), 'v')");
  }
  if (s.is_ok() && setup) s = sqlite_exec(db, "COMMIT");
  if (s.is_ok() && !setup) {
    sqlite3_stmt* st = nullptr;
    const char* q = ten_tables ? "SELECT a FROM t3 WHERE id = 1" : "SELECT v FROM kv WHERE k = ?";
    if (sqlite3_prepare_v2(db, q, -1, &st, nullptr) != SQLITE_OK) s = Status::io_error(q);
    if (s.is_ok()) {
      std::string key = preload_key(0);
      if (!ten_tables)
        sqlite3_bind_blob(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
      if (sqlite3_step(st) != SQLITE_ROW) s = Status::not_found(std::string("wake row: ") + q);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close_v2(db);
  return s;
}

Status sqlite_cold_wake(const Params& p, bool ten_tables, EngineResult* r) {
  std::string dir = make_temp_dir("sqlite-wake");
  reset_peak_rss();
  for (uint64_t i = 0; i < p.objects; ++i) {
    CARREL_RETURN_IF_ERROR(
        sqlite_wake(dir + "/" + object_name(i) + ".db", p.sync, ten_tables, true));
  }
  int64_t t0 = wall_us();
  for (uint64_t i = 0; i < p.objects; ++i) {
    int64_t a = wall_us();
    Status s = sqlite_wake(dir + "/" + object_name(i) + ".db", p.sync, ten_tables, false);
    int64_t b = wall_us();
    if (!s.is_ok() && r->errors++ == 0) r->first_error = s.to_string();
    r->latencies_us.push_back(static_cast<uint32_t>(b - a));
  }
  finish_timing(r, (wall_us() - t0) / 1e6);
  r->peak_rss_bytes = peak_rss_bytes();
  r->dir_bytes = dir_bytes(dir);
  remove_tree(dir);
  return Status::ok();
}

bool wants(const Params& p, const std::string& engine) {
  return std::find(p.engines.begin(), p.engines.end(), engine) != p.engines.end();
}

// The alternatives have nothing to compare for these workloads: say so.
void add_skipped(const Params& p, const std::string& why, std::vector<EngineResult>* results) {
  for (const std::string& e : p.engines) {
    if (e == "carrel") continue;
    EngineResult r;
    r.engine = e;
    r.skipped = why;
    results->push_back(std::move(r));
  }
}

}  // namespace

Status run_cold_wake(const Params& p, std::vector<EngineResult>* results) {
  for (bool ten : {false, true}) {
    std::string variant = ten ? "10-table schema" : "KV only";
    if (wants(p, "carrel")) {
      EngineResult r;
      r.engine = "carrel";
      r.extra["schema_tables"] = ten ? 10 : 0;
      r.variant = variant;
      CARREL_RETURN_IF_ERROR(carrel_cold_wake(p, ten, &r));
      results->push_back(std::move(r));
    }
    if (wants(p, "sqlite-files")) {
      EngineResult r;
      r.engine = "sqlite-files";
      r.extra["schema_tables"] = ten ? 10 : 0;
      r.variant = variant;
      CARREL_RETURN_IF_ERROR(sqlite_cold_wake(p, ten, &r));
      results->push_back(std::move(r));
    }
    if (wants(p, "lmdb-raw")) {
      EngineResult r;
      r.engine = "lmdb-raw";
      r.variant = variant;
      r.skipped = "no activation to measure";
      results->push_back(std::move(r));
    }
  }
  return Status::ok();
}

// ---- alarms ----------------------------------------------------------------

namespace {

struct AlarmSink {
  std::mutex mutex;
  std::vector<uint32_t> lags_us;      // GUARDED_BY(mutex)
  std::vector<int64_t> scheduled_ms;  // GUARDED_BY(mutex); parallel to lags_us
  std::atomic<uint64_t> delivered{0};
};

class AlarmHandler : public Handler {
 public:
  explicit AlarmHandler(AlarmSink* sink) : sink_(sink) {}
  Result<std::string> on_request(Context&, const Request&) override { return std::string(); }
  Status on_alarm(Context&, const AlarmInfo& alarm) override {
    int64_t lag = realtime_us() - alarm.scheduled_ms * 1000;
    {
      std::lock_guard lock(sink_->mutex);
      sink_->lags_us.push_back(static_cast<uint32_t>(std::clamp<int64_t>(lag, 0, UINT32_MAX)));
      sink_->scheduled_ms.push_back(alarm.scheduled_ms);
    }
    sink_->delivered.fetch_add(1, std::memory_order_relaxed);
    return Status::ok();
  }

 private:
  AlarmSink* sink_;
};

}  // namespace

Status run_alarms(const Params& p, std::vector<EngineResult>* results) {
  add_skipped(p, "no alarm queue", results);
  if (!wants(p, "carrel")) return Status::ok();
  EngineResult r;
  r.engine = "carrel";
  uint64_t objects = std::max<uint64_t>(1, p.objects);
  uint64_t per_object = (p.alarms + objects - 1) / objects;
  std::string dir = p.dir.empty() ? make_temp_dir("alarms") : p.dir;
  Options o;
  o.dir = dir;
  o.durability = p.sync ? Durability::kSync : Durability::kNoSync;
  o.alarms_per_object_max = std::max<size_t>(o.alarms_per_object_max, per_object);
  reset_peak_rss();
  AlarmSink sink;
  CARREL_ASSIGN_OR_RETURN(auto engine, Engine::open(o));
  CARREL_RETURN_IF_ERROR(engine->register_class(
      kBenchClass, [&sink](const ObjectRef&) { return std::make_unique<AlarmHandler>(&sink); }));
  // Due times spread evenly over [t0, t0 + seconds); t0 leaves time to schedule.
  const int64_t span_ms = std::max<int64_t>(1, static_cast<int64_t>(p.seconds * 1000));
  const int64_t lead_ms = 1000 + static_cast<int64_t>(p.alarms / 25);
  const int64_t t0 = realtime_us() / 1000 + lead_ms;
  int64_t s0 = wall_us();
  std::vector<std::future<Status>> pending;
  uint64_t scheduled = 0;
  for (uint64_t j = 0; j < objects && scheduled < p.alarms; ++j) {
    uint64_t count = std::min(per_object, p.alarms - scheduled);
    scheduled += count;
    pending.push_back(engine->submit(
        ObjectRef::named(kBenchClass, object_name(j)),
        [j, objects, count, t0, span_ms, total = p.alarms](Context& ctx) -> Status {
          for (uint64_t i = 0; i < count; ++i) {
            // Interleave objects in time: the i-th alarm of object j has slot i*M+j.
            uint64_t slot = std::min(i * objects + j, total - 1);
            int64_t due = t0 + static_cast<int64_t>(slot * span_ms / total);
            std::string name = std::to_string(i);  // "a" + ...: a false -Wrestrict in GCC 12
            name.insert(name.begin(), 'a');
            CARREL_RETURN_IF_ERROR(ctx.alarms().schedule(name, due));
          }
          return Status::ok();
        }));
    if (pending.size() >= 256) CARREL_RETURN_IF_ERROR(wait_all(pending));
  }
  CARREL_RETURN_IF_ERROR(wait_all(pending));
  double schedule_s = (wall_us() - s0) / 1e6;
  int64_t scheduled_done_ms = realtime_us() / 1000;
  // Wait for delivery: bounded by the span plus a generous grace period.
  int64_t deadline_ms = t0 + span_ms + 30000;
  {
    ProgressMeter progress(p, "alarms", "carrel", {}, "alarms delivered");
    while (sink.delivered.load() < scheduled && realtime_us() / 1000 < deadline_ms) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      progress.tick(sink.delivered.load(), scheduled);
    }
  }
  // A moment more, to catch duplicate deliveries of the last ones.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::vector<uint32_t> after_setup;  // lags of alarms due after scheduling finished
  {
    std::lock_guard lock(sink.mutex);
    r.latencies_us = sink.lags_us;
    for (size_t i = 0; i < sink.lags_us.size(); ++i)
      if (sink.scheduled_ms[i] > scheduled_done_ms) after_setup.push_back(sink.lags_us[i]);
  }
  std::sort(after_setup.begin(), after_setup.end());
  if (!after_setup.empty()) {
    auto at = [&](double q) {
      return static_cast<double>(after_setup[static_cast<size_t>(q * (after_setup.size() - 1))]);
    };
    r.extra["lag_after_setup_count"] = static_cast<double>(after_setup.size());
    r.extra["lag_after_setup_p50_us"] = at(0.5);
    r.extra["lag_after_setup_p99_us"] = at(0.99);
  }
  finish_timing(&r, span_ms / 1000.0);
  r.extra["scheduled"] = static_cast<double>(scheduled);
  r.extra["delivered"] = static_cast<double>(sink.delivered.load());
  r.extra["schedule_seconds"] = schedule_s;
  r.extra["scheduling_overran_first_due_ms"] =
      static_cast<double>(std::max<int64_t>(0, scheduled_done_ms - t0));
  EngineStats st = engine->stats();
  r.commits = st.commits;
  r.turns_per_commit = st.turns_per_commit_mean();
  r.fsyncs = st.fsyncs;
  r.has_fsyncs = true;
  r.bytes_written = st.bytes_written;
  r.turns = st.turns_run;
  r.peak_rss_bytes = peak_rss_bytes();
  CARREL_RETURN_IF_ERROR(engine->close());
  engine.reset();
  r.dir_bytes = dir_bytes(dir);
  if (p.dir.empty()) remove_tree(dir);
  if (sink.delivered.load() < scheduled) {
    r.first_error = "delivered " + std::to_string(sink.delivered.load()) + " of " +
                    std::to_string(scheduled) + " alarms";
    r.errors = scheduled - sink.delivered.load();
  }
  results->push_back(std::move(r));
  return Status::ok();
}

// ---- pitr ------------------------------------------------------------------

Status run_pitr(const Params& p, std::vector<EngineResult>* results) {
  add_skipped(p, "no point-in-time restore", results);
  if (!wants(p, "carrel")) return Status::ok();
  std::string dir = p.dir.empty() ? make_temp_dir("pitr") : p.dir;
  Options o;
  o.dir = dir;
  o.durability = p.sync ? Durability::kSync : Durability::kNoSync;
  reset_peak_rss();
  CARREL_ASSIGN_OR_RETURN(auto engine, Engine::open(o));
  for (uint64_t k : p.history_commits) {
    EngineResult r;
    r.engine = "carrel";
    r.variant = std::to_string(k) + " commits";
    auto ref = ObjectRef::named(kBenchClass, "pitr-" + std::to_string(k));
    CARREL_RETURN_IF_ERROR(engine->run(
        ref, [&](Context& ctx) { return ctx.kv().put("k0", value_for("first", p.value_bytes)); }));
    CARREL_ASSIGN_OR_RETURN(std::string first, engine->current_bookmark(ref));
    std::vector<std::future<Status>> pending;
    int64_t h0 = wall_us();
    for (uint64_t i = 1; i < k; ++i) {
      pending.push_back(engine->submit(ref, [i, &p](Context& ctx) {
        std::string key = "k" + std::to_string(i % 16);
        return ctx.kv().put(key, value_for(key + "-" + std::to_string(i), p.value_bytes));
      }));
      if (pending.size() >= 512) CARREL_RETURN_IF_ERROR(wait_all(pending));
    }
    CARREL_RETURN_IF_ERROR(wait_all(pending));
    double build_s = (wall_us() - h0) / 1e6;
    int64_t a = wall_us();
    auto undo = engine->restore(ref, first);
    int64_t b = wall_us();
    if (!undo.is_ok()) {
      r.errors = 1;
      r.first_error = undo.status().to_string();
    }
    // The restore must have brought back exactly the first commit's state.
    std::string seen;
    size_t keys = 0;
    Status check = engine->run(ref, [&](Context& ctx) -> Status {
      CARREL_ASSIGN_OR_RETURN(auto all, ctx.kv().list());
      keys = all.size();
      if (!all.empty()) seen = all[0].second;
      return Status::ok();
    });
    if (undo.is_ok() &&
        (!check.is_ok() || keys != 1 || seen != value_for("first", p.value_bytes))) {
      r.errors = 1;
      r.first_error =
          "after restore: " + std::to_string(keys) + " keys (want 1 with the first value)";
    }
    r.latencies_us.push_back(static_cast<uint32_t>(b - a));
    finish_timing(&r, (b - a) / 1e6);
    r.extra["history_commits"] = static_cast<double>(k);
    r.extra["restore_us"] = static_cast<double>(b - a);
    r.extra["history_build_commits_per_s"] = k > 1 ? (k - 1) / build_s : 0;
    r.peak_rss_bytes = peak_rss_bytes();
    results->push_back(std::move(r));
  }
  CARREL_RETURN_IF_ERROR(engine->close());
  engine.reset();
  uint64_t bytes = dir_bytes(dir);
  for (auto& r : *results)
    if (r.engine == "carrel") r.dir_bytes = bytes;
  if (p.dir.empty()) remove_tree(dir);
  return Status::ok();
}

// ---- --verify-ack-log ------------------------------------------------------

Status verify_ack_log(const std::string& log_path, const std::string& dir, uint64_t* checked) {
  std::ifstream in(log_path);
  if (!in) return Status::not_found("ack log " + log_path);
  // object label -> (key, value) in log order
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> by_object;
  std::string line;
  uint64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    size_t t1 = line.find('\t'), t2 = t1 == std::string::npos ? t1 : line.find('\t', t1 + 1);
    if (t2 == std::string::npos)
      return Status::corruption("ack log line " + std::to_string(lineno) +
                                " is not OBJ\\tKEY\\tVALUE");
    by_object[line.substr(0, t1)].emplace_back(line.substr(t1 + 1, t2 - t1 - 1),
                                               line.substr(t2 + 1));
  }
  Options o;
  o.dir = dir;
  o.create_if_missing = false;
  CARREL_ASSIGN_OR_RETURN(auto engine, Engine::open(o));
  *checked = 0;
  for (const auto& object_writes : by_object) {
    const std::string& label = object_writes.first;
    const auto& writes = object_writes.second;  // not a binding: the turn's lambda captures it
    size_t colon = label.find(':');
    if (colon == std::string::npos)
      return Status::corruption("ack log object " + label + " is not CLASS:NAME");
    auto ref = ObjectRef::named(label.substr(0, colon), label.substr(colon + 1));
    std::string missing;
    Status s = engine->run(ref, [&](Context& ctx) -> Status {
      for (const auto& [key, value] : writes) {
        std::string got;
        if (key.rfind("sql:", 0) == 0) {
          size_t slash = key.find('/');
          std::string table = key.substr(4, slash - 4);
          int64_t row = std::stoll(key.substr(slash + 1));
          std::string col = table == "messages" ? "body" : "v";
          CARREL_ASSIGN_OR_RETURN(
              auto c, ctx.sql().exec("SELECT " + col + " FROM " + table + " WHERE id = ?", row));
          if (c.size() == 1)
            got = c.rows()[0].get_blob(0).value_or("<not text>");
          else
            got = "<missing>";
        } else {
          CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().get(key));
          got = v ? *v : "<missing>";
        }
        if (got != value) {
          missing = key + " (found " + got.substr(0, 40) + ")";
          return Status::ok();
        }
        ++*checked;
      }
      return Status::ok();
    });
    CARREL_RETURN_IF_ERROR(s);
    if (!missing.empty())
      return Status::corruption("acknowledged write lost: " + label + " " + missing);
  }
  return engine->close();
}

}  // namespace carrel::bench
