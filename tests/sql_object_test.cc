// SQL through real objects: every check here goes through the public API
// (Engine::run, Stub::call, ctx.sql(), ctx.transaction()) on a real LMDB
// environment, and compares with plain SQLite where results are compared.
//
//  - EngineSqlDifferential: randomized turns (DDL, DML, joins, indexes,
//    triggers, FTS5, JSON, constraint errors, multi-page blobs, nested
//    transactions, failing turns, failing commits) against a plain SQLite
//    file, with restarts and evictions between turns.
//  - EngineSqlTest: atomicity with KV, commit failures, pipelining,
//    isolation, no files beside LMDB, database_size, row counters, authorizer.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "carrel/carrel.h"
#include "engine/loop/engine_core.h"
#include "engine/store/keys.h"
#include "engine/store/store.h"
#include "tests/sql_script.h"
#include "tests/store_probe.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

using testing::TempDir;

using testing::Outcome;
using testing::Query;
using testing::ReferenceDb;
using testing::ScriptGenerator;
using testing::kDumps;
using testing::kSchema;
using testing::kWords;

std::string describe(const Query& q) {
  return q.sql;
}

Outcome run_ours(Context& ctx, const Query& q) {
  Outcome out;
  auto r = ctx.sql().exec_values(q.sql, q.args);
  out.ok = r.is_ok();
  if (r.is_ok())
    out.rows = r->rows();
  else
    out.error = r.status().to_string();
  return out;
}



void expect_same(const Outcome& ours, const Outcome& ref, const Query& q) {
  ASSERT_EQ(ours.ok, ref.ok) << describe(q) << "\nours: " << ours.error << "\nref: " << ref.error;
  if (!ref.ok) {
    EXPECT_NE(ours.error.find(ref.error), std::string::npos) << ours.error << " vs " << ref.error;
    return;
  }
  ASSERT_EQ(ours.rows.size(), ref.rows.size()) << describe(q);
  for (size_t i = 0; i < ref.rows.size(); ++i) {
    EXPECT_TRUE(ours.rows[i] == ref.rows[i]) << describe(q) << " row " << i;
  }
}

// A turn's plan: a block of steps; a step is a query, a KV write or a nested
// ctx.transaction block. Blocks other than the turn itself may fail on
// purpose (return an error or throw) after their writes.
struct Block {
  struct Step {
    std::optional<Query> query;
    std::optional<std::pair<std::string, std::string>> kv;
    std::unique_ptr<Block> child;
  };
  std::vector<Step> steps;
  bool fails = false;
  bool throws = false;
};

enum class Ending { kCommit, kReturnError, kThrow, kCommitFails };

// Options shared by the engines of one test.
Options engine_options(const std::string& dir, std::shared_ptr<ManualClock> clock) {
  Options o;
  o.dir = dir;
  o.durability = Durability::kNoSync;  // durability is not what is tested; speed is welcome
  o.workers = 2;
  o.clock = std::move(clock);
  return o;
}

std::unique_ptr<Engine> must_open(const Options& o) {
  auto e = Engine::open(o);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return e.is_ok() ? std::move(e).value() : nullptr;
}

// Reads every KV entry of an object.
std::map<std::string, std::string> kv_dump(Engine& e, const ObjectRef& ref) {
  std::map<std::string, std::string> out;
  Status s = e.run(ref, [&](Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(auto all, ctx.kv().list({}));
    for (auto& [k, v] : all) out[k] = v;
    return Status::ok();
  });
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return out;
}

// Runs one query in its own turn.
Result<SqlCursor> query(Engine& e, const ObjectRef& ref, const std::string& sql,
                        std::vector<SqlValue> args = {}) {
  Result<SqlCursor> out = Status::aborted("not run");
  Status s = e.run(ref, [&](Context& ctx) {
    out = ctx.sql().exec_values(sql, args);
    return Status::ok();
  });
  if (!s.is_ok()) return s;
  return out;
}

int64_t query_int(Engine& e, const ObjectRef& ref, const std::string& sql) {
  auto c = query(e, ref, sql);
  EXPECT_TRUE(c.is_ok()) << sql << ": " << c.status().to_string();
  if (!c.is_ok()) return -1;
  auto row = c->one();
  EXPECT_TRUE(row.is_ok()) << sql;
  if (!row.is_ok()) return -1;
  return row->get_int(0).value_or(-1);
}

std::string integrity(Engine& e, const ObjectRef& ref) {
  auto c = query(e, ref, "PRAGMA integrity_check");
  if (!c.is_ok()) return c.status().to_string();
  if (c->size() != 1) return "rows: " + std::to_string(c->size());
  return c->rows()[0].get_text(0).value_or("not text");
}

// Pages the `pages` db holds for one object (keys start with its number,
// store/keys.h (2)).
size_t stored_pages(Engine& e, const ObjectId& id) {
  store::Store& st = e.core()->store();
  auto txn = st.begin_read();
  EXPECT_TRUE(txn.is_ok());
  if (!txn.is_ok()) return 0;
  MDB_cursor* c = nullptr;
  EXPECT_EQ(mdb_cursor_open(txn->get(), st.dbi(store::Db::kPages), &c), 0);
  std::string prefix = store::object_prefix(testing::object_no(e, id));
  MDB_val k = store::to_val(prefix), v;
  size_t n = 0;
  for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
       rc == 0 && store::from_val(k).starts_with(prefix);
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    ++n;
  }
  mdb_cursor_close(c);
  return n;
}

std::set<std::string> dir_entries(const std::string& dir) {
  std::set<std::string> out;
  for (auto& e : std::filesystem::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

const std::set<std::string> kEngineFiles = {"data.mdb", "lock.mdb", "writer.lock"};

class Differential {
 public:
  Differential(uint64_t seed, const std::string& engine_dir, const std::string& ref_path)
      : gen_(seed), clock_(std::make_shared<ManualClock>(1'700'000'000'000)), ref_(ref_path) {
    options_ = engine_options(engine_dir, clock_);
    options_.active_objects_max = 1;
    options_.idle_timeout_ms = 60'000;
    options_.sql_cache_pages = gen_.chance(0.5) ? 10 : 256;  // 10: pages spill mid-turn
    options_.commit_hook = [this](const CommitInfo&) {
      if (fail_next_commit_.exchange(false)) return Status::io_error("injected commit failure");
      return Status::ok();
    };
    engine_ = must_open(options_);
  }

  Engine& engine() { return *engine_; }
  const ObjectRef& object() const { return object_; }

  int successes = 0;
  int failures = 0;
  int restarts = 0;
  int lru_evictions = 0;
  int idle_evictions = 0;
  int failed_turns = 0;
  int failed_commits = 0;
  int rolled_back_blocks = 0;

  void setup() {
    ref_.run("BEGIN");
    std::vector<Outcome> ours;
    Status s = engine_->run(object_, [&](Context& ctx) {
      for (const char* ddl : kSchema) ours.push_back(run_ours(ctx, {ddl, {}}));
      return Status::ok();
    });
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    for (size_t i = 0; i < std::size(kSchema); ++i) {
      Query q{kSchema[i], {}};
      expect_same(ours[i], ref_.exec(q), q);
    }
    ref_.run("COMMIT");
  }

  void turn(int n) {
    Block plan = make_block(0, n);
    Ending ending = Ending::kCommit;
    int64_t e = gen_.pick(0, 99);
    if (e >= 94)
      ending = Ending::kCommitFails;
    else if (e >= 88)
      ending = Ending::kThrow;
    else if (e >= 80)
      ending = Ending::kReturnError;

    // Ours.
    std::vector<Outcome> ours;
    std::map<std::string, std::string> kv_written;
    fail_next_commit_ = ending == Ending::kCommitFails;
    Status s = engine_->run(object_, [&](Context& ctx) -> Status {
      // Every turn writes, so the commit hook sees every turn's commit.
      CARREL_RETURN_IF_ERROR(ctx.kv().put("turn", std::to_string(n)));
      kv_written["turn"] = std::to_string(n);
      CARREL_RETURN_IF_ERROR(run_block(ctx, plan, &ours, &kv_written));
      if (ending == Ending::kThrow) throw std::runtime_error("turn fails on purpose");
      if (ending == Ending::kReturnError) return Status::invalid_argument("turn fails on purpose");
      return Status::ok();
    });
    fail_next_commit_ = false;

    // The reference, in the same order.
    ref_.run("BEGIN");
    std::vector<Outcome> theirs;
    std::vector<Query> queries;
    ref_block(plan, 0, &theirs, &queries);
    ASSERT_EQ(ours.size(), theirs.size());
    for (size_t i = 0; i < ours.size(); ++i) {
      expect_same(ours[i], theirs[i], queries[i]);
      (theirs[i].ok ? successes : failures)++;
    }
    switch (ending) {
      case Ending::kCommit:
        ASSERT_TRUE(s.is_ok()) << s.to_string();
        ref_.run("COMMIT");
        for (auto& [k, v] : kv_written) kv_model_[k] = v;
        break;
      case Ending::kReturnError:
      case Ending::kThrow:
        ASSERT_FALSE(s.is_ok());
        EXPECT_NE(s.message().find("turn fails on purpose"), std::string::npos) << s.to_string();
        ref_.run("ROLLBACK");
        ++failed_turns;
        break;
      case Ending::kCommitFails:
        ASSERT_EQ(s.code(), Code::kIOError) << s.to_string();
        ref_.run("ROLLBACK");
        ++failed_commits;
        break;
    }
    between_turns();
  }

  void between_turns() {
    int64_t r = gen_.pick(0, 99);
    if (r < 5) {
      ASSERT_TRUE(engine_->close().is_ok());
      engine_.reset();
      engine_ = must_open(options_);
      ASSERT_TRUE(engine_);
      ++restarts;
    } else if (r < 10) {
      // Least recently used eviction: another object becomes active.
      uint64_t before = engine_->stats().evictions;
      clock_->advance_ms(1);
      other_turn();
      clock_->advance_ms(1);
      engine_->core()->evict_idle();
      if (engine_->stats().evictions > before) ++lru_evictions;
    } else if (r < 15) {
      uint64_t before = engine_->stats().evictions;
      clock_->advance_ms(options_.idle_timeout_ms + 1);
      engine_->core()->evict_idle();
      if (engine_->stats().evictions > before) ++idle_evictions;
    }
  }

  // Another object with a table of the same name: it must never see ours.
  void other_turn() {
    Status s = engine_->run(other_, [&](Context& ctx) -> Status {
      CARREL_RETURN_IF_ERROR(
          ctx.sql()
              .exec("CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, a INT)")
              .status());
      CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO items(a) VALUES (?)", -1).status());
      return Status::ok();
    });
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    ++other_rows_;
  }

  void compare_dumps() {
    ref_.run("BEGIN");
    std::vector<Outcome> ours;
    Status s = engine_->run(object_, [&](Context& ctx) {
      for (const char* q : kDumps) ours.push_back(run_ours(ctx, {q, {}}));
      return Status::ok();
    });
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    for (size_t i = 0; i < std::size(kDumps); ++i) {
      Query q{kDumps[i], {}};
      expect_same(ours[i], ref_.exec(q), q);
    }
    ref_.run("COMMIT");
    EXPECT_EQ(kv_dump(*engine_, object_), kv_model_);
    if (other_rows_ > 0) {
      EXPECT_EQ(query_int(*engine_, other_, "SELECT count(*) FROM items WHERE a = -1"),
                other_rows_);
      EXPECT_EQ(query_int(*engine_, other_, "SELECT count(*) FROM items"), other_rows_);
    }
  }

  void reopen() {
    ASSERT_TRUE(engine_->close().is_ok());
    engine_.reset();
    engine_ = must_open(options_);
    ASSERT_TRUE(engine_);
  }

 private:
  Block make_block(int depth, int turn_no) {
    Block b;
    int ops = static_cast<int>(gen_.pick(1, 8));
    for (int i = 0; i < ops; ++i) {
      Block::Step step;
      if (depth < 2 && gen_.chance(0.12)) {
        step.child = std::make_unique<Block>(make_block(depth + 1, turn_no));
        step.child->fails = gen_.chance(0.5);
        step.child->throws = step.child->fails && gen_.chance(0.3);
      } else if (gen_.chance(0.15)) {
        step.kv = {"k" + std::to_string(gen_.pick(0, 40)),
                   "t" + std::to_string(turn_no) + "." + std::to_string(i)};
      } else {
        step.query = gen_.next();
      }
      b.steps.push_back(std::move(step));
    }
    return b;
  }

  Status run_block(Context& ctx, const Block& b, std::vector<Outcome>* ours,
                   std::map<std::string, std::string>* kv) {
    for (const Block::Step& step : b.steps) {
      if (step.query) {
        ours->push_back(run_ours(ctx, *step.query));
      } else if (step.kv) {
        CARREL_RETURN_IF_ERROR(ctx.kv().put(step.kv->first, step.kv->second));
        (*kv)[step.kv->first] = step.kv->second;
      } else {
        const Block& child = *step.child;
        std::map<std::string, std::string> child_kv = *kv;
        Status s = ctx.transaction([&]() -> Status {
          CARREL_RETURN_IF_ERROR(run_block(ctx, child, ours, &child_kv));
          if (child.throws) throw std::runtime_error("block fails on purpose");
          if (child.fails) return Status::invalid_argument("block fails on purpose");
          return Status::ok();
        });
        if (child.fails) {
          if (s.is_ok() || s.message().find("block fails on purpose") == std::string::npos) {
            ADD_FAILURE() << "nested transaction should fail on purpose: " << s.to_string();
            return Status::aborted("nested transaction: " + s.to_string());
          }
        } else {
          CARREL_RETURN_IF_ERROR(s);
          *kv = std::move(child_kv);
        }
      }
    }
    return Status::ok();
  }

  void ref_block(const Block& b, int depth, std::vector<Outcome>* out, std::vector<Query>* qs) {
    for (const Block::Step& step : b.steps) {
      if (step.query) {
        out->push_back(ref_.exec(*step.query));
        qs->push_back(*step.query);
      } else if (step.child) {
        std::string sp = "s" + std::to_string(depth + 1);
        ref_.run("SAVEPOINT " + sp);
        ref_block(*step.child, depth + 1, out, qs);
        if (step.child->fails) {
          ref_.run("ROLLBACK TO " + sp + "; RELEASE " + sp);
          ++rolled_back_blocks;
        } else {
          ref_.run("RELEASE " + sp);
        }
      }
    }
  }

  ScriptGenerator gen_;
  std::shared_ptr<ManualClock> clock_;
  Options options_;
  std::unique_ptr<Engine> engine_;
  ReferenceDb ref_;
  std::atomic<bool> fail_next_commit_{false};
  ObjectRef object_ = ObjectRef::named("Db", "main");
  ObjectRef other_ = ObjectRef::named("Db", "other");
  int64_t other_rows_ = 0;
  std::map<std::string, std::string> kv_model_;
};

class EngineSqlDifferential : public ::testing::TestWithParam<uint64_t> {};

TEST_P(EngineSqlDifferential, RandomTurnsThroughAnObjectMatchPlainSqlite) {
  TempDir engine_dir, ref_dir;
  Differential d(GetParam(), engine_dir.path(), ref_dir.sub("ref.db"));
  d.setup();
  for (int t = 0; t < 150 && !::testing::Test::HasFatalFailure(); ++t) {
    d.turn(t);
    if (t % 50 == 49) d.compare_dumps();
  }
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  d.compare_dumps();
  std::printf(
      "statements ok %d, failed %d; turns failed %d, commits failed %d, blocks rolled "
      "back %d; restarts %d, evictions lru %d idle %d\n",
      d.successes, d.failures, d.failed_turns, d.failed_commits, d.rolled_back_blocks, d.restarts,
      d.lru_evictions, d.idle_evictions);
  EXPECT_GT(d.failures, 5);
  EXPECT_GT(d.successes, 200);
  EXPECT_GT(d.failed_turns + d.failed_commits, 5);
  EXPECT_GT(d.rolled_back_blocks, 2);
  EXPECT_GT(d.restarts + d.lru_evictions + d.idle_evictions, 5);
  EXPECT_EQ(integrity(d.engine(), d.object()), "ok");
  auto fts =
      query(d.engine(), d.object(), "INSERT INTO docs_fts(docs_fts) VALUES ('integrity-check')");
  EXPECT_TRUE(fts.is_ok()) << fts.status().to_string();
  d.reopen();
  d.compare_dumps();
  EXPECT_EQ(integrity(d.engine(), d.object()), "ok");
  EXPECT_EQ(dir_entries(engine_dir.path()), kEngineFiles);
}

INSTANTIATE_TEST_SUITE_P(Seeds, EngineSqlDifferential, ::testing::Values(1u, 2u, 3u, 4u, 5u));

// A class whose requests write KV and SQL together.
class Ledger : public Handler {
 public:
  Status on_start(Context& ctx) override {
    return ctx.sql()
        .exec("CREATE TABLE IF NOT EXISTS entries(id INTEGER PRIMARY KEY, amount INT, memo TEXT)")
        .status();
  }

  // add:<n> inserts n rows and sets kv "count"; fail:<n> does the same, then fails.
  Result<std::string> on_request(Context& ctx, const Request& req) override {
    if (req.method == "count") {
      CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec("SELECT count(*) FROM entries"));
      CARREL_ASSIGN_OR_RETURN(auto row, c.one());
      CARREL_ASSIGN_OR_RETURN(int64_t n, row.get_int(0));
      CARREL_ASSIGN_OR_RETURN(auto kv, ctx.kv().get("count"));
      return std::to_string(n) + "/" + kv.value_or("none");
    }
    int n = std::stoi(req.payload);
    for (int i = 0; i < n; ++i) {
      CARREL_RETURN_IF_ERROR(ctx.sql()
                                 .exec("INSERT INTO entries(amount, memo) VALUES (?, ?)", i,
                                       std::string(200, static_cast<char>('a' + i % 26)))
                                 .status());
    }
    CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec("SELECT count(*) FROM entries"));
    CARREL_ASSIGN_OR_RETURN(auto row, c.one());
    CARREL_ASSIGN_OR_RETURN(int64_t total, row.get_int(0));
    CARREL_RETURN_IF_ERROR(ctx.kv().put("count", std::to_string(total)));
    if (req.method == "fail") return Status::invalid_argument("ledger fails on purpose");
    if (req.method == "throw") throw std::runtime_error("ledger throws on purpose");
    return std::to_string(total);
  }
};

HandlerFactory ledger_factory() {
  return [](const ObjectRef&) { return std::make_unique<Ledger>(); };
}

TEST(EngineSqlTest, TurnCommitsKvAndSqlTogetherOrNeither) {
  TempDir dir;
  auto e = must_open(engine_options(dir.path(), nullptr));
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->register_class("Ledger", ledger_factory()).is_ok());
  Stub s = e->stub("Ledger", "l1");
  EXPECT_EQ(*s.call("add", "3").get(), "3");

  auto failed = s.call("fail", "50").get();
  EXPECT_EQ(failed.status().code(), Code::kInvalidArgument);
  EXPECT_NE(failed.status().message().find("ledger fails on purpose"), std::string::npos);
  EXPECT_EQ(*s.call("count", "").get(), "3/3");

  auto threw = s.call("throw", "50").get();
  EXPECT_EQ(threw.status().code(), Code::kAborted);
  EXPECT_EQ(*s.call("count", "").get(), "3/3");

  // The same through Engine::run, with a table created in the failing turn.
  ObjectRef ref = ObjectRef::named("Plain", "p");
  Status st = e->run(ref, [](Context& ctx) -> Status {
    CARREL_RETURN_IF_ERROR(ctx.kv().put("a", "1"));
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE TABLE t(v TEXT)").status());
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t VALUES ('x')").status());
    throw std::runtime_error("after writes");
  });
  EXPECT_EQ(st.code(), Code::kAborted);
  EXPECT_TRUE(kv_dump(*e, ref).empty());
  auto missing = query(*e, ref, "SELECT count(*) FROM t");
  EXPECT_EQ(missing.status().code(), Code::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("no such table: t"), std::string::npos)
      << missing.status().to_string();

  ASSERT_TRUE(e->run(ref, [](Context& ctx) -> Status {
                 CARREL_RETURN_IF_ERROR(ctx.kv().put("a", "1"));
                 CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE TABLE t(v TEXT)").status());
                 return ctx.sql().exec("INSERT INTO t VALUES ('x')").status();
               }).is_ok());
  EXPECT_EQ(kv_dump(*e, ref), (std::map<std::string, std::string>{{"a", "1"}}));
  EXPECT_EQ(query_int(*e, ref, "SELECT count(*) FROM t"), 1);

  // Restart: both are durable.
  ASSERT_TRUE(e->close().is_ok());
  e.reset();
  e = must_open(engine_options(dir.path(), nullptr));
  ASSERT_TRUE(e);
  EXPECT_EQ(kv_dump(*e, ref), (std::map<std::string, std::string>{{"a", "1"}}));
  EXPECT_EQ(query_int(*e, ref, "SELECT count(*) FROM t"), 1);
}

TEST(EngineSqlTest, NestedTransactionRollsBackSqlAndKvTogether) {
  TempDir dir;
  auto e = must_open(engine_options(dir.path(), nullptr));
  ASSERT_TRUE(e);
  ObjectRef ref = ObjectRef::named("Nest", "n");
  ASSERT_TRUE(query(*e, ref, "CREATE TABLE t(v INT)").is_ok());
  Status st = e->run(ref, [](Context& ctx) -> Status {
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t VALUES (1)").status());
    Status inner = ctx.transaction([&]() -> Status {
      CARREL_RETURN_IF_ERROR(ctx.kv().put("inner", "x"));
      CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t VALUES (2)").status());
      return Status::busy("inner fails");
    });
    if (inner.code() != Code::kBusy) return Status::aborted("inner: " + inner.to_string());
    CARREL_RETURN_IF_ERROR(ctx.kv().put("outer", "y"));
    return ctx.sql().exec("INSERT INTO t VALUES (3)").status();
  });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(kv_dump(*e, ref), (std::map<std::string, std::string>{{"outer", "y"}}));
  auto c = query(*e, ref, "SELECT group_concat(v, '') FROM t");
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->one()->get_text(0).value_or("?"), "13");

  // A transaction opened before the turn's first SQL use (the SQL
  // transaction begins inside it) that fails, then SQL again after it.
  st = e->run(ref, [](Context& ctx) -> Status {
    Status inner = ctx.transaction([&]() -> Status {
      CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t VALUES (4)").status());
      Status deeper = ctx.transaction(
          [&]() -> Status { return ctx.sql().exec("INSERT INTO t VALUES (5)").status(); });
      CARREL_RETURN_IF_ERROR(deeper);
      CARREL_RETURN_IF_ERROR(ctx.kv().put("lost", "z"));
      return Status::busy("inner fails");
    });
    if (inner.code() != Code::kBusy) return Status::aborted("inner: " + inner.to_string());
    return ctx.sql().exec("INSERT INTO t VALUES (6)").status();
  });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  c = query(*e, ref, "SELECT group_concat(v, '') FROM t");
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->one()->get_text(0).value_or("?"), "136");
  EXPECT_EQ(kv_dump(*e, ref), (std::map<std::string, std::string>{{"outer", "y"}}));
  EXPECT_EQ(integrity(*e, ref), "ok");
}

// A commit hook that fails or holds commits on request.
struct HookControl {
  std::mutex mutex;
  std::condition_variable cv;
  bool fail_next = false;  // GUARDED_BY(mutex)
  bool hold = false;       // GUARDED_BY(mutex)
  int held = 0;            // GUARDED_BY(mutex): commits waiting in the hook
  Status fail_held;        // GUARDED_BY(mutex): what held commits return

  CommitHook hook() {
    return [this](const CommitInfo&) {
      std::unique_lock lock(mutex);
      if (hold) {
        ++held;
        cv.notify_all();
        cv.wait(lock, [&] { return !hold; });
        --held;
        return fail_held;
      }
      if (fail_next) {
        fail_next = false;
        return Status::io_error("injected commit failure");
      }
      return Status::ok();
    };
  }
  void set_fail_next() {
    std::lock_guard lock(mutex);
    fail_next = true;
  }
  void start_holding() {
    std::lock_guard lock(mutex);
    hold = true;
  }
  // Waits (bounded) until a commit waits in the hook.
  bool wait_held() {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, std::chrono::seconds(30), [&] { return held > 0; });
  }
  void release(Status result = Status::ok()) {
    std::lock_guard lock(mutex);
    fail_held = std::move(result);
    hold = false;
    cv.notify_all();
  }
};

TEST(EngineSqlTest, FailedCommitResetsTheSqlConnectionToDurablePages) {
  TempDir dir;
  HookControl control;
  Options o = engine_options(dir.path(), nullptr);
  o.sql_cache_pages = 2000;  // the failed turn's pages all stay in SQLite's cache
  o.commit_hook = control.hook();
  auto e = must_open(o);
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->register_class("Ledger", ledger_factory()).is_ok());
  Stub s = e->stub("Ledger", "l1");
  ASSERT_EQ(*s.call("add", "500").get(), "500");

  control.set_fail_next();
  auto failed = s.call("add", "2000").get();
  EXPECT_EQ(failed.status().code(), Code::kIOError) << failed.status().to_string();
  EXPECT_EQ(e->stats().commits_failed, 1u);

  // The next activation reads the last durable pages, not the cached ones.
  EXPECT_EQ(*s.call("count", "").get(), "500/500");
  ObjectRef ref = s.object();
  EXPECT_EQ(integrity(*e, ref), "ok");
  EXPECT_EQ(query_int(*e, ref, "SELECT max(id) FROM entries"), 500);
  EXPECT_EQ(*s.call("add", "10").get(), "510");

  // A failed commit also fails the turns pipelined behind it.
  control.start_holding();
  auto t1 = s.call("add", "300");
  ASSERT_TRUE(control.wait_held());
  // Turns 2 and 3 run (and seal) on top of turn 1 before its commit fails.
  std::promise<int64_t> ran2, ran3;
  auto count_rows = [](Context& ctx) -> int64_t {
    auto c = ctx.sql().exec("SELECT count(*) FROM entries");
    return c.is_ok() ? c->one()->get_int(0).value_or(-1) : -1;
  };
  auto t2 = e->submit(ref, [&](Context& ctx) -> Status {
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO entries(amount) VALUES (7)").status());
    CARREL_RETURN_IF_ERROR(ctx.kv().put("count", "811"));
    ran2.set_value(count_rows(ctx));
    return Status::ok();
  });
  auto t3 = e->submit(ref, [&](Context& ctx) -> Status {
    ran3.set_value(count_rows(ctx));
    return Status::ok();
  });
  auto seen2 = ran2.get_future(), seen3 = ran3.get_future();
  ASSERT_EQ(seen2.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  ASSERT_EQ(seen3.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(seen2.get(), 811);
  EXPECT_EQ(seen3.get(), 811);
  control.release(Status::io_error("injected commit failure"));
  EXPECT_EQ(t1.get().status().code(), Code::kIOError);
  Status s2 = t2.get(), s3 = t3.get();
  EXPECT_EQ(s2.code(), Code::kAborted) << s2.to_string();
  EXPECT_EQ(s3.code(), Code::kAborted) << s3.to_string();
  EXPECT_EQ(*s.call("count", "").get(), "510/510");
  EXPECT_EQ(integrity(*e, ref), "ok");

  ASSERT_TRUE(e->close().is_ok());
  e.reset();
  e = must_open(o);
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->register_class("Ledger", ledger_factory()).is_ok());
  EXPECT_EQ(*e->stub(ref).call("count", "").get(), "510/510");
  EXPECT_EQ(integrity(*e, ref), "ok");
}

TEST(EngineSqlTest, NextTurnReadsRowsOfASealedTurnNotYetDurable) {
  TempDir dir;
  HookControl control;
  Options o = engine_options(dir.path(), nullptr);
  o.sql_cache_pages = 10;  // later turns re-read pages from the pending overlay
  o.commit_hook = control.hook();
  auto e = must_open(o);
  ASSERT_TRUE(e);
  ObjectRef ref = ObjectRef::named("Pipe", "p");
  ASSERT_TRUE(query(*e, ref, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)").is_ok());

  control.start_holding();
  auto t1 = e->submit(ref, [](Context& ctx) -> Status {
    for (int i = 0; i < 300; ++i) {
      CARREL_RETURN_IF_ERROR(
          ctx.sql().exec("INSERT INTO t(v) VALUES (?)", std::string(100, 'x')).status());
    }
    return ctx.kv().put("rows", "300");
  });
  ASSERT_TRUE(control.wait_held());
  std::promise<std::pair<int64_t, std::string>> seen2;
  auto t2 = e->submit(ref, [&](Context& ctx) -> Status {
    CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec("SELECT count(*), sum(length(v)) FROM t"));
    CARREL_ASSIGN_OR_RETURN(auto row, c.one());
    CARREL_ASSIGN_OR_RETURN(auto kv, ctx.kv().get("rows"));
    seen2.set_value({row.get_int(0).value_or(-1), kv.value_or("none")});
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("DELETE FROM t WHERE id % 3 = 0").status());
    return ctx.sql().exec("INSERT INTO t(v) VALUES ('late')").status();
  });
  auto f2 = seen2.get_future();
  ASSERT_EQ(f2.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(f2.get(), (std::pair<int64_t, std::string>{300, "300"}));
  std::promise<int64_t> seen3;
  auto t3 = e->submit(ref, [&](Context& ctx) -> Status {
    CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec("SELECT count(*) FROM t"));
    seen3.set_value(c.one()->get_int(0).value_or(-1));
    return Status::ok();
  });
  auto f3 = seen3.get_future();
  ASSERT_EQ(f3.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(f3.get(), 201);
  // Nothing is durable while the first commit is held.
  EXPECT_EQ(t1.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  EXPECT_EQ(t3.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  control.release();
  EXPECT_TRUE(t1.get().is_ok());
  EXPECT_TRUE(t2.get().is_ok());
  EXPECT_TRUE(t3.get().is_ok());

  ASSERT_TRUE(e->close().is_ok());
  e.reset();
  e = must_open(o);
  ASSERT_TRUE(e);
  EXPECT_EQ(query_int(*e, ref, "SELECT count(*) FROM t"), 201);
  EXPECT_EQ(query_int(*e, ref, "SELECT count(*) FROM t WHERE v = 'late'"), 1);
  EXPECT_EQ(integrity(*e, ref), "ok");
}

TEST(EngineSqlTest, ObjectsNeverShareTablesAndKvOnlyObjectsStoreNoPages) {
  TempDir dir;
  auto e = must_open(engine_options(dir.path(), nullptr));
  ASSERT_TRUE(e);
  ObjectRef a = ObjectRef::named("Room", "a");
  ObjectRef b = ObjectRef::named("Room", "b");
  ObjectRef kv_only = ObjectRef::named("Room", "kv-only");
  ObjectRef reader = ObjectRef::named("Room", "reads-only");
  ObjectRef unique = ObjectRef::of("Room", new_unique_id("Room"));
  for (const ObjectRef* r : {&a, &b, &unique}) {
    ASSERT_TRUE(query(*e, *r, "CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT)").is_ok());
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(query(*e, a, "INSERT INTO t(who) VALUES ('a')").is_ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(query(*e, b, "INSERT INTO t(who) VALUES ('b')").is_ok());
  ASSERT_TRUE(e->run(kv_only, [](Context& ctx) { return ctx.kv().put("k", "v"); }).is_ok());
  auto one = query(*e, reader, "SELECT 1");
  ASSERT_TRUE(one.is_ok()) << one.status().to_string();

  auto check = [&] {
    EXPECT_EQ(query_int(*e, a, "SELECT count(*) FROM t"), 3);
    EXPECT_EQ(query_int(*e, a, "SELECT count(*) FROM t WHERE who = 'a'"), 3);
    EXPECT_EQ(query_int(*e, b, "SELECT count(*) FROM t"), 5);
    EXPECT_EQ(query_int(*e, b, "SELECT count(*) FROM t WHERE who = 'b'"), 5);
    EXPECT_EQ(query_int(*e, unique, "SELECT count(*) FROM t"), 0);
    EXPECT_GT(stored_pages(*e, a.id), 0u);
    EXPECT_GT(stored_pages(*e, b.id), 0u);
    EXPECT_EQ(stored_pages(*e, kv_only.id), 0u);
    EXPECT_EQ(stored_pages(*e, reader.id), 0u);
  };
  check();
  // Dropping b's table leaves a's alone.
  ASSERT_TRUE(query(*e, b, "DROP TABLE t").is_ok());
  EXPECT_EQ(query_int(*e, a, "SELECT count(*) FROM t"), 3);
  ASSERT_TRUE(query(*e, b, "CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT)").is_ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(query(*e, b, "INSERT INTO t(who) VALUES ('b')").is_ok());
  ASSERT_TRUE(e->close().is_ok());
  e.reset();
  e = must_open(engine_options(dir.path(), nullptr));
  ASSERT_TRUE(e);
  check();
}

TEST(EngineSqlTest, NoSqliteFileOrJournalEverAppearsInTheEngineDirectory) {
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(1'700'000'000'000);
  Options o = engine_options(dir.path(), clock);
  o.sql_cache_pages = 10;  // spill pages, sort and build temp structures beyond the cache
  auto e = must_open(o);
  ASSERT_TRUE(e);
  ObjectRef ref = ObjectRef::named("Files", "f");
  Status st = e->run(ref, [](Context& ctx) -> Status {
    CARREL_RETURN_IF_ERROR(
        ctx.sql().exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INT)").status());
    for (int i = 0; i < 2000; ++i) {
      CARREL_RETURN_IF_ERROR(ctx.sql()
                                 .exec("INSERT INTO t(v, n) VALUES (?, ?)",
                                       std::string(300, static_cast<char>('a' + i % 26)),
                                       (i * 7919) % 2000)
                                 .status());
    }
    return Status::ok();
  });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(dir_entries(dir.path()), kEngineFiles);
  st = e->run(ref, [](Context& ctx) -> Status {
    // An unindexed sort, a temp table, an index build and a rolled-back write.
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("SELECT v, n FROM t ORDER BY v DESC, n").status());
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE TEMP TABLE tt AS SELECT * FROM t").status());
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE INDEX t_n ON t(n, v)").status());
    Status inner = ctx.transaction([&]() -> Status {
      CARREL_RETURN_IF_ERROR(ctx.sql().exec("DELETE FROM t WHERE n % 2 = 0").status());
      return Status::busy("roll back");
    });
    return inner.code() == Code::kBusy ? Status::ok() : inner;
  });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(dir_entries(dir.path()), kEngineFiles);
  uint64_t evictions = e->stats().evictions;
  clock->advance_ms(o.idle_timeout_ms + 1);
  e->core()->evict_idle();
  EXPECT_GT(e->stats().evictions, evictions);
  EXPECT_EQ(query_int(*e, ref, "SELECT count(*) FROM t"), 2000);
  EXPECT_EQ(integrity(*e, ref), "ok");
  EXPECT_EQ(dir_entries(dir.path()), kEngineFiles);
  ASSERT_TRUE(e->close().is_ok());
  e.reset();
  EXPECT_EQ(dir_entries(dir.path()), kEngineFiles);
}

TEST(EngineSqlTest, DatabaseSizeCountsUsedPages) {
  TempDir dir;
  auto e = must_open(engine_options(dir.path(), nullptr));
  ASSERT_TRUE(e);
  ObjectRef ref = ObjectRef::named("Size", "s");
  auto size_and_pages = [&](uint64_t* size, int64_t* used) {
    Status st = e->run(ref, [&](Context& ctx) -> Status {
      CARREL_ASSIGN_OR_RETURN(*size, ctx.sql().database_size());
      CARREL_ASSIGN_OR_RETURN(auto pc, ctx.sql().exec("PRAGMA page_count"));
      CARREL_ASSIGN_OR_RETURN(auto fc, ctx.sql().exec("PRAGMA freelist_count"));
      *used = pc.one()->get_int(0).value_or(-1) - fc.one()->get_int(0).value_or(-1);
      return Status::ok();
    });
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  };
  uint64_t empty = 1;
  int64_t used = -1;
  size_and_pages(&empty, &used);
  EXPECT_EQ(empty, 0u);
  ASSERT_TRUE(query(*e, ref, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)").is_ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(query(*e, ref, "INSERT INTO t(v) VALUES (zeroblob(10000))").is_ok());
  }
  uint64_t full = 0;
  size_and_pages(&full, &used);
  EXPECT_EQ(full, static_cast<uint64_t>(used) * 1024);
  EXPECT_GE(full, 20u * 10000);
  EXPECT_LE(full, 20u * 10000 * 12 / 10);
  EXPECT_EQ(stored_pages(*e, ref.id), static_cast<size_t>(query_int(*e, ref, "PRAGMA page_count")));
  ASSERT_TRUE(query(*e, ref, "DELETE FROM t WHERE id > 5").is_ok());
  uint64_t after_delete = 0;
  size_and_pages(&after_delete, &used);
  EXPECT_EQ(after_delete, static_cast<uint64_t>(used) * 1024);
  EXPECT_LT(after_delete, full / 2);
  EXPECT_GT(query_int(*e, ref, "PRAGMA freelist_count"), 100);
}

TEST(EngineSqlTest, RowCountersCountRowsReadAndWritten) {
  TempDir dir;
  auto e = must_open(engine_options(dir.path(), nullptr));
  ASSERT_TRUE(e);
  ObjectRef ref = ObjectRef::named("Rows", "r");
  auto ddl = query(*e, ref,
                   "CREATE TABLE t(id INTEGER PRIMARY KEY, n INT); CREATE INDEX t_n ON t(n); "
                   "CREATE TABLE log(what TEXT); "
                   "CREATE TRIGGER t_au AFTER UPDATE ON t BEGIN INSERT INTO log VALUES ('u'); END");
  ASSERT_TRUE(ddl.is_ok()) << ddl.status().to_string();
  auto ins = query(*e, ref,
                   "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100) "
                   "INSERT INTO t(n) SELECT x FROM c");
  ASSERT_TRUE(ins.is_ok()) << ins.status().to_string();
  EXPECT_EQ(ins->rows_written(), 100u);
  EXPECT_EQ(ins->size(), 0u);
  auto upd = query(*e, ref, "UPDATE t SET n = n + 1000 WHERE n <= 10");
  ASSERT_TRUE(upd.is_ok());
  EXPECT_EQ(upd->rows_written(), 20u);  // 10 rows and 10 trigger inserts
  auto scan = query(*e, ref, "SELECT count(*) FROM t WHERE n % 2 = 0");
  ASSERT_TRUE(scan.is_ok());
  EXPECT_GE(scan->rows_read(), 100u);
  EXPECT_EQ(scan->rows_written(), 0u);
  auto seek = query(*e, ref, "SELECT id FROM t WHERE n = ?", {int64_t{50}});
  ASSERT_TRUE(seek.is_ok());
  EXPECT_EQ(seek->size(), 1u);
  EXPECT_LT(seek->rows_read(), 5u);
  auto del = query(*e, ref, "DELETE FROM t WHERE id > 90");
  ASSERT_TRUE(del.is_ok());
  EXPECT_EQ(del->rows_written(), 10u);
}

TEST(EngineSqlTest, AuthorizerRefusesThroughAnObjectAndTheTurnGoesOn) {
  TempDir dir;
  auto e = must_open(engine_options(dir.path(), nullptr));
  ASSERT_TRUE(e);
  ObjectRef ref = ObjectRef::named("Auth", "a");
  std::vector<Status> refusals;
  Status st = e->run(ref, [&](Context& ctx) -> Status {
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE TABLE t(v INT)").status());
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t VALUES (1)").status());
    for (const char* q : {"ATTACH DATABASE 'other.db' AS other", "BEGIN", "COMMIT", "SAVEPOINT x",
                          "VACUUM", "PRAGMA journal_mode=DELETE", "CREATE TABLE _carrel_x(v)"}) {
      refusals.push_back(ctx.sql().exec(q).status());
    }
    return ctx.sql().exec("INSERT INTO t VALUES (2)").status();
  });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  ASSERT_EQ(refusals.size(), 7u);
  for (const Status& r : refusals) {
    EXPECT_EQ(r.code(), Code::kInvalidArgument) << r.to_string();
    EXPECT_NE(r.message().find("Auth:a"), std::string::npos) << r.to_string();
  }
  EXPECT_NE(refusals[0].message().find("ATTACH"), std::string::npos) << refusals[0].to_string();
  EXPECT_NE(refusals[0].message().find("refused"), std::string::npos) << refusals[0].to_string();
  EXPECT_NE(refusals[1].message().find("ctx.transaction"), std::string::npos)
      << refusals[1].to_string();
  EXPECT_NE(refusals[3].message().find("ctx.transaction"), std::string::npos)
      << refusals[3].to_string();
  EXPECT_EQ(query_int(*e, ref, "SELECT sum(v) FROM t"), 3);
  EXPECT_EQ(dir_entries(dir.path()), kEngineFiles);
}

}  // namespace
}  // namespace carrel
