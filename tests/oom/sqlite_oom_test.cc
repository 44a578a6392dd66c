// SQLite running out of memory inside a turn: the turn fails with an error
// (never a crash), nothing of it is applied, and later turns work.
//
// main() wraps SQLite's allocator before SQLite initializes; the wrapper fails
// allocations once a countdown, armed inside a turn, reaches zero: either the
// one allocation (transient) or every one after it until disarmed
// (persistent), as SQLite's own malloc tests do. The countdown sweeps every
// allocation point of one turn's workload, including its COMMIT at seal.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <cstdio>

#include "carrel/carrel.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

sqlite3_mem_methods g_real{};
std::atomic<long> g_countdown{-1};  // < 0: disarmed
std::atomic<bool> g_persistent{false};
std::atomic<long> g_failures{0};

bool should_fail() {
  long n = g_countdown.load();
  if (n < 0) return false;
  if (n == 0) {
    g_failures.fetch_add(1);
    if (!g_persistent.load()) g_countdown.store(-1);
    return true;
  }
  g_countdown.fetch_sub(1);
  return false;
}

void* oom_malloc(int n) {
  return should_fail() ? nullptr : g_real.xMalloc(n);
}
void* oom_realloc(void* p, int n) {
  return should_fail() ? nullptr : g_real.xRealloc(p, n);
}

void install_oom_allocator() {
  if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &g_real) != SQLITE_OK) std::abort();
  sqlite3_mem_methods wrapped = g_real;
  wrapped.xMalloc = oom_malloc;
  wrapped.xRealloc = oom_realloc;
  if (sqlite3_config(SQLITE_CONFIG_MALLOC, &wrapped) != SQLITE_OK) std::abort();
}

// One turn's workload: 20 rows, a counter in SQL and the same counter in KV.
Status workload(Context& ctx) {
  CARREL_ASSIGN_OR_RETURN(SqlCursor c, ctx.sql().exec("SELECT n FROM meta"));
  CARREL_ASSIGN_OR_RETURN(SqlRow row, c.one());
  CARREL_ASSIGN_OR_RETURN(int64_t n, row.get_int(0));
  for (int i = 0; i < 20; ++i) {
    CARREL_RETURN_IF_ERROR(
        ctx.sql()
            .exec("INSERT INTO t(turn, body) VALUES (?, printf('%.*c', 300, 'x'))", n + 1)
            .status());
  }
  CARREL_RETURN_IF_ERROR(ctx.sql().exec("UPDATE meta SET n = n + 1").status());
  return ctx.kv().put("n", std::to_string(n + 1));
}

struct Counts {
  int64_t sql_n = -1, rows = -1, kv_n = -1;
  std::string integrity;
};

Result<Counts> read_counts(Engine& engine, const ObjectRef& ref) {
  Counts c;
  Status s = engine.run(ref, [&](Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(SqlCursor a,
                            ctx.sql().exec("SELECT n, (SELECT count(*) FROM t) FROM meta"));
    CARREL_ASSIGN_OR_RETURN(SqlRow row, a.one());
    CARREL_ASSIGN_OR_RETURN(c.sql_n, row.get_int(0));
    CARREL_ASSIGN_OR_RETURN(c.rows, row.get_int(1));
    CARREL_ASSIGN_OR_RETURN(auto kv, ctx.kv().get("n"));
    c.kv_n = kv ? std::stoll(*kv) : 0;
    CARREL_ASSIGN_OR_RETURN(SqlCursor check, ctx.sql().exec("PRAGMA integrity_check"));
    CARREL_ASSIGN_OR_RETURN(SqlRow first, check.one());
    CARREL_ASSIGN_OR_RETURN(c.integrity, first.get_text(0));
    return Status::ok();
  });
  if (!s.is_ok()) return s;
  return c;
}

void sweep(bool persistent) {
  testing::TempDir dir;
  Options o;
  o.dir = dir.path();
  o.durability = Durability::kNoSync;
  auto engine = Engine::open(o);
  ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
  const auto ref = ObjectRef::named("Oom", persistent ? "persistent" : "transient");
  ASSERT_TRUE(
      (*engine)
          ->run(ref,
                [](Context& ctx) {
                  CARREL_RETURN_IF_ERROR(
                      ctx.sql()
                          .exec("CREATE TABLE t(id INTEGER PRIMARY KEY, turn INT, body TEXT)")
                          .status());
                  CARREL_RETURN_IF_ERROR(
                      ctx.sql().exec("CREATE INDEX t_turn ON t(turn, body)").status());
                  CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE TABLE meta(n INT)").status());
                  return ctx.sql().exec("INSERT INTO meta VALUES (0)").status();
                })
          .is_ok());

  int failed = 0, succeeded = 0;
  int64_t n = 0;
  for (long after = 0; after < 5000; ++after) {
    SCOPED_TRACE((persistent ? "persistent" : "transient") + std::string(" failure after ") +
                 std::to_string(after) + " allocations");
    const long failures_before = g_failures.load();
    Status s = (*engine)->run(ref, [&](Context& ctx) {
      g_persistent = persistent;
      g_countdown = after;
      return workload(ctx);
    });
    g_countdown = -1;
    const bool hit = g_failures.load() != failures_before;
    if (s.is_ok()) {
      ++succeeded;
      ++n;
    } else {
      ++failed;
      EXPECT_TRUE(hit) << "the turn failed without an injected failure: " << s.to_string();
    }
    auto c = read_counts(**engine, ref);
    ASSERT_TRUE(c.is_ok()) << "the engine did not recover: " << c.status().to_string();
    ASSERT_EQ(c->integrity, "ok");
    ASSERT_EQ(c->sql_n, n) << "turn half-applied: " << s.to_string();
    ASSERT_EQ(c->kv_n, n);
    ASSERT_EQ(c->rows, 20 * n);
    if (!hit) break;  // the workload needs fewer allocations than `after`: swept them all
  }
  std::printf("[ sqlite oom %s ] %d turns failed, %d succeeded\n",
              persistent ? "persistent" : "transient", failed, succeeded);
  EXPECT_GT(failed, 10);
  EXPECT_GT(succeeded, 0);
  // And a plain turn still works.
  EXPECT_TRUE((*engine)->run(ref, workload).is_ok());
}

TEST(CommitSqliteOomTest, TransientAllocationFailureFailsTheTurnCleanly) {
  sweep(false);
}
TEST(CommitSqliteOomTest, PersistentAllocationFailureFailsTheTurnCleanly) {
  sweep(true);
}

}  // namespace
}  // namespace carrel

int main(int argc, char** argv) {
  carrel::install_oom_allocator();  // before anything initializes SQLite
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
