// carrel-micro: the cost of single operations, each beside its raw baseline
// measured in the same process and run (Google Benchmark).
//   KV get/put/list inside Engine::run     vs  raw LMDB get/put
//   SQL point select/insert in a turn      vs  a native SQLite file (synchronous=OFF, warm)
//   id_from_name, bookmark encode/parse, group commit of N concurrent turns
// Engines run in nosync mode so that the figures show CPU cost, not the disk.
// The SQL insert benchmarks report the CPU time of the whole process: a carrel
// turn's commit runs on the committer thread, which the caller's CPU time
// would leave out.
#include <benchmark/benchmark.h>
#include <lmdb.h>
#include <sqlite3.h>

#include <future>
#include <string>
#include <vector>

#include "bench/harness.h"
#include "carrel/carrel.h"
#include "engine/history/bookmark.h"

namespace carrel::bench {
namespace {

constexpr int kKeys = 1000;

// One engine per process, shared by the benchmarks that use it.
struct SharedEngine {
  std::string dir = make_temp_dir("micro");
  std::unique_ptr<Engine> engine;
  ObjectRef kv_ref = ObjectRef::named("Micro", "kv");
  ObjectRef sql_ref = ObjectRef::named("Micro", "sql");
  SharedEngine() {
    Options o;
    o.dir = dir;
    o.durability = Durability::kNoSync;
    o.history_retention_ms = int64_t{30} * 24 * 3600 * 1000;
    engine = std::move(Engine::open(o).value());
    Status s = engine->run(kv_ref, [](Context& ctx) {
      for (int i = 0; i < kKeys; ++i)
        CARREL_RETURN_IF_ERROR(ctx.kv().put(preload_key(i), value_for(preload_key(i), 100)));
      return Status::ok();
    });
    if (s.is_ok()) {
      s = engine->run(sql_ref, [](Context& ctx) {
        CARREL_RETURN_IF_ERROR(
            ctx.sql().exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)").status());
        for (int i = 1; i <= kKeys; ++i)
          CARREL_RETURN_IF_ERROR(
              ctx.sql()
                  .exec("INSERT INTO t(id, v) VALUES (?, ?)", i, Blob{std::string(100, 'v')})
                  .status());
        return Status::ok();
      });
    }
    if (!s.is_ok()) std::abort();
  }
  ~SharedEngine() {
    (void)engine->close();
    engine.reset();
    remove_tree(dir);
  }
};

SharedEngine& shared() {
  static SharedEngine e;
  return e;
}

// ---- KV in a turn ----------------------------------------------------------

void BM_CarrelKvGet(benchmark::State& state) {
  auto& e = shared();
  int i = 0;
  for (auto _ : state) {
    Status s = e.engine->run(e.kv_ref, [&](Context& ctx) -> Status {
      CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().get(preload_key(i++ % kKeys)));
      benchmark::DoNotOptimize(v);
      return Status::ok();
    });
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
  }
}
BENCHMARK(BM_CarrelKvGet)->UseRealTime();

// Many gets in one turn: the per-get cost without the turn's.
void BM_CarrelKvGetInTurn(benchmark::State& state) {
  auto& e = shared();
  for (auto _ : state) {
    Status s = e.engine->run(e.kv_ref, [&](Context& ctx) -> Status {
      for (int i = 0; i < kKeys; ++i) {
        CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().get(preload_key(i)));
        benchmark::DoNotOptimize(v);
      }
      return Status::ok();
    });
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
  }
  state.SetItemsProcessed(state.iterations() * kKeys);
}
BENCHMARK(BM_CarrelKvGetInTurn)->UseRealTime();

void BM_CarrelKvPut(benchmark::State& state) {
  auto& e = shared();
  int i = 0;
  std::string value(100, 'x');
  for (auto _ : state) {
    Status s = e.engine->run(e.kv_ref, [&](Context& ctx) {
      return ctx.kv().put(preload_key(kKeys + i++ % kKeys), value);
    });
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
  }
}
BENCHMARK(BM_CarrelKvPut)->UseRealTime();

void BM_CarrelKvList100(benchmark::State& state) {
  auto& e = shared();
  ListOptions lo;
  lo.limit = 100;
  lo.prefix = "p";
  for (auto _ : state) {
    Status s = e.engine->run(e.kv_ref, [&](Context& ctx) -> Status {
      CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().list(lo));
      benchmark::DoNotOptimize(v);
      return Status::ok();
    });
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
  }
  state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(BM_CarrelKvList100)->UseRealTime();

// ---- raw LMDB --------------------------------------------------------------

struct RawLmdb {
  std::string dir = make_temp_dir("micro-lmdb");
  MDB_env* env = nullptr;
  MDB_dbi dbi = 0;
  std::string prefix = std::string(id_from_name("Micro", "kv").raw());
  RawLmdb() {
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, uint64_t{1} << 30);
    if (mdb_env_open(env, dir.c_str(), MDB_NOTLS | MDB_NOSYNC, 0644) != 0) std::abort();
    MDB_txn* txn = nullptr;
    mdb_txn_begin(env, nullptr, 0, &txn);
    mdb_dbi_open(txn, nullptr, 0, &dbi);
    for (int i = 0; i < kKeys; ++i) {
      std::string k = prefix + preload_key(i), v = value_for(preload_key(i), 100);
      MDB_val kv{k.size(), k.data()}, vv{v.size(), v.data()};
      mdb_put(txn, dbi, &kv, &vv, 0);
    }
    if (mdb_txn_commit(txn) != 0) std::abort();
  }
  ~RawLmdb() {
    mdb_env_close(env);
    remove_tree(dir);
  }
};

RawLmdb& raw() {
  static RawLmdb r;
  return r;
}

// One read transaction (renewed) per get: what one carrel turn with one get does.
void BM_LmdbGet(benchmark::State& state) {
  auto& r = raw();
  MDB_txn* txn = nullptr;
  mdb_txn_begin(r.env, nullptr, MDB_RDONLY, &txn);
  mdb_txn_reset(txn);
  int i = 0;
  for (auto _ : state) {
    mdb_txn_renew(txn);
    std::string k = r.prefix + preload_key(i++ % kKeys);
    MDB_val kv{k.size(), k.data()}, vv;
    if (mdb_get(txn, r.dbi, &kv, &vv) != 0) state.SkipWithError("missing key");
    std::string copy(static_cast<const char*>(vv.mv_data), vv.mv_size);
    benchmark::DoNotOptimize(copy);
    mdb_txn_reset(txn);
  }
  mdb_txn_abort(txn);
}
BENCHMARK(BM_LmdbGet)->UseRealTime();

// One write transaction per put (MDB_NOSYNC), as one carrel turn that commits alone.
void BM_LmdbPut(benchmark::State& state) {
  auto& r = raw();
  std::string value(100, 'x');
  int i = 0;
  for (auto _ : state) {
    MDB_txn* txn = nullptr;
    mdb_txn_begin(r.env, nullptr, 0, &txn);
    std::string k = r.prefix + preload_key(kKeys + i++ % kKeys);
    MDB_val kv{k.size(), k.data()}, vv{value.size(), value.data()};
    mdb_put(txn, r.dbi, &kv, &vv, 0);
    if (mdb_txn_commit(txn) != 0) state.SkipWithError("commit");
  }
}
BENCHMARK(BM_LmdbPut)->UseRealTime();

// ---- SQL -------------------------------------------------------------------

void BM_CarrelSqlPointSelect(benchmark::State& state) {
  auto& e = shared();
  int i = 0;
  for (auto _ : state) {
    Status s = e.engine->run(e.sql_ref, [&](Context& ctx) -> Status {
      CARREL_ASSIGN_OR_RETURN(auto c,
                              ctx.sql().exec("SELECT v FROM t WHERE id = ?", i++ % kKeys + 1));
      benchmark::DoNotOptimize(c);
      return Status::ok();
    });
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
  }
}
BENCHMARK(BM_CarrelSqlPointSelect)->UseRealTime();

void BM_CarrelSqlInsert(benchmark::State& state) {
  auto& e = shared();
  static int64_t next = 1000000;
  std::string v(100, 'i');
  for (auto _ : state) {
    Status s = e.engine->run(e.sql_ref, [&](Context& ctx) {
      return ctx.sql().exec("INSERT INTO t(id, v) VALUES (?, ?)", next++, Blob{v}).status();
    });
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
  }
}
BENCHMARK(BM_CarrelSqlInsert)->UseRealTime()->MeasureProcessCPUTime();

struct NativeSqlite {
  std::string dir = make_temp_dir("micro-sqlite");
  sqlite3* db = nullptr;
  sqlite3_stmt* select = nullptr;
  sqlite3_stmt* insert = nullptr;
  NativeSqlite() {
    sqlite3_open((dir + "/t.db").c_str(), &db);
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
                 "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); BEGIN;",
                 nullptr, nullptr, nullptr);
    sqlite3_prepare_v2(db, "INSERT INTO t(id, v) VALUES (?, ?)", -1, &insert, nullptr);
    std::string v(100, 'v');
    for (int i = 1; i <= kKeys; ++i) {
      sqlite3_bind_int64(insert, 1, i);
      sqlite3_bind_blob(insert, 2, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
      sqlite3_step(insert);
      sqlite3_reset(insert);
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_prepare_v2(db, "SELECT v FROM t WHERE id = ?", -1, &select, nullptr);
  }
  ~NativeSqlite() {
    sqlite3_finalize(select);
    sqlite3_finalize(insert);
    sqlite3_close(db);
    remove_tree(dir);
  }
};

NativeSqlite& native() {
  static NativeSqlite n;
  return n;
}

// Autocommit: each statement is its own transaction, as each turn is.
void BM_SqliteFilePointSelect(benchmark::State& state) {
  auto& n = native();
  int i = 0;
  for (auto _ : state) {
    sqlite3_bind_int64(n.select, 1, i++ % kKeys + 1);
    if (sqlite3_step(n.select) != SQLITE_ROW) state.SkipWithError("no row");
    std::string v(static_cast<const char*>(sqlite3_column_blob(n.select, 0)),
                  sqlite3_column_bytes(n.select, 0));
    benchmark::DoNotOptimize(v);
    sqlite3_reset(n.select);
  }
}
BENCHMARK(BM_SqliteFilePointSelect)->UseRealTime();

void BM_SqliteFileInsert(benchmark::State& state) {
  auto& n = native();
  static int64_t next = 1000000;
  std::string v(100, 'i');
  for (auto _ : state) {
    sqlite3_bind_int64(n.insert, 1, next++);
    sqlite3_bind_blob(n.insert, 2, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    if (sqlite3_step(n.insert) != SQLITE_DONE) state.SkipWithError("insert");
    sqlite3_reset(n.insert);
  }
}
BENCHMARK(BM_SqliteFileInsert)->UseRealTime()->MeasureProcessCPUTime();

// ---- SQL, many statements per turn: the per-statement cost without the turn's

constexpr int kStatementsPerTurn = 100;

void BM_CarrelSqlPointSelectInTurn(benchmark::State& state) {
  auto& e = shared();
  int i = 0;
  for (auto _ : state) {
    Status s = e.engine->run(e.sql_ref, [&](Context& ctx) -> Status {
      for (int n = 0; n < kStatementsPerTurn; ++n) {
        CARREL_ASSIGN_OR_RETURN(auto c,
                                ctx.sql().exec("SELECT v FROM t WHERE id = ?", i++ % kKeys + 1));
        benchmark::DoNotOptimize(c);
      }
      return Status::ok();
    });
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
  }
  state.SetItemsProcessed(state.iterations() * kStatementsPerTurn);
}
BENCHMARK(BM_CarrelSqlPointSelectInTurn)->UseRealTime();

// An insert-heavy turn: 100 inserts, one commit (nosync).
void BM_CarrelSqlInsertTurn(benchmark::State& state) {
  auto& e = shared();
  static int64_t next = 5000000;
  std::string v(100, 'i');
  for (auto _ : state) {
    Status s = e.engine->run(e.sql_ref, [&](Context& ctx) -> Status {
      for (int n = 0; n < kStatementsPerTurn; ++n) {
        CARREL_RETURN_IF_ERROR(
            ctx.sql().exec("INSERT INTO t(id, v) VALUES (?, ?)", next++, Blob{v}).status());
      }
      return Status::ok();
    });
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
  }
  state.SetItemsProcessed(state.iterations() * kStatementsPerTurn);
}
BENCHMARK(BM_CarrelSqlInsertTurn)->UseRealTime()->MeasureProcessCPUTime();

// The same 100 inserts in one transaction on a native file (WAL,
// synchronous=OFF): what a nosync turn promises, all or nothing, written to
// the OS and not synced.
void BM_SqliteFileInsertTxn(benchmark::State& state) {
  auto& n = native();
  static int64_t next = 5000000;
  std::string v(100, 'i');
  for (auto _ : state) {
    sqlite3_exec(n.db, "BEGIN", nullptr, nullptr, nullptr);
    for (int k = 0; k < kStatementsPerTurn; ++k) {
      sqlite3_bind_int64(n.insert, 1, next++);
      sqlite3_bind_blob(n.insert, 2, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
      if (sqlite3_step(n.insert) != SQLITE_DONE) state.SkipWithError("insert");
      sqlite3_reset(n.insert);
    }
    sqlite3_exec(n.db, "COMMIT", nullptr, nullptr, nullptr);
  }
  state.SetItemsProcessed(state.iterations() * kStatementsPerTurn);
}
BENCHMARK(BM_SqliteFileInsertTxn)->UseRealTime()->MeasureProcessCPUTime();

// ---- ids and bookmarks -----------------------------------------------------

void BM_IdFromName(benchmark::State& state) {
  int i = 0;
  std::vector<std::string> names;
  for (int k = 0; k < 1024; ++k) names.push_back("user-" + std::to_string(k));
  for (auto _ : state) benchmark::DoNotOptimize(id_from_name("Workspace", names[i++ & 1023]));
}
BENCHMARK(BM_IdFromName)->UseRealTime();

void BM_BookmarkEncode(benchmark::State& state) {
  history::Bookmark b{1700000000000, 12345, id_from_name("Workspace", "a")};
  for (auto _ : state) {
    ++b.seq;
    benchmark::DoNotOptimize(b.to_string());
  }
}
BENCHMARK(BM_BookmarkEncode)->UseRealTime();

void BM_BookmarkParse(benchmark::State& state) {
  std::string text =
      history::Bookmark{1700000000000, 12345, id_from_name("Workspace", "a")}.to_string();
  for (auto _ : state) {
    auto b = history::Bookmark::parse(text);
    if (!b.is_ok()) state.SkipWithError("parse");
    benchmark::DoNotOptimize(b);
  }
}
BENCHMARK(BM_BookmarkParse)->UseRealTime();

// ---- group commit ----------------------------------------------------------

// N turns on N objects submitted together, then all awaited: the committer
// takes what waits, so they share few write transactions. Reported per turn.
void BM_CommitBatch(benchmark::State& state) {
  auto& e = shared();
  const int n = static_cast<int>(state.range(0));
  std::vector<ObjectRef> refs;
  for (int i = 0; i < n; ++i)
    refs.push_back(ObjectRef::named("Micro", "batch" + std::to_string(i)));
  std::string value(100, 'b');
  uint64_t commits0 = e.engine->stats().commits;
  std::vector<std::future<Status>> pending;
  for (auto _ : state) {
    for (int i = 0; i < n; ++i)
      pending.push_back(
          e.engine->submit(refs[i], [&value](Context& ctx) { return ctx.kv().put("k", value); }));
    for (auto& f : pending)
      if (!f.get().is_ok()) state.SkipWithError("turn failed");
    pending.clear();
  }
  state.SetItemsProcessed(state.iterations() * n);
  double commits = static_cast<double>(e.engine->stats().commits - commits0);
  state.counters["turns_per_commit"] = commits > 0 ? state.iterations() * n / commits : 0;
}
BENCHMARK(BM_CommitBatch)->Arg(1)->Arg(8)->Arg(64)->Arg(512)->UseRealTime();

}  // namespace
}  // namespace carrel::bench

BENCHMARK_MAIN();
