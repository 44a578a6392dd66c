// The per-turn SQL budget (Options sql_turn_steps_max, sql_turn_ms_max,
// sql_temp_bytes_max; sql_database.h invariant 7): a runaway statement is
// interrupted, the error names the option, and the whole turn rolls back even
// when the handler ignores the error.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "carrel/carrel.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

constexpr const char* kRunaway =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
constexpr const char* kHugeUnion =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION SELECT x + 1 FROM c WHERE x < 100000000) "
    "SELECT count(*) FROM c";
// About 50 000 SQLite steps.
constexpr const char* kSmall =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000) "
    "SELECT count(*) FROM c";

class SqlBudgetTest : public ::testing::Test {
 protected:
  void open(Options o) {
    o.dir = dir_.path();
    o.workers = 1;
    engine_ = testing::open_engine(o);
    ASSERT_TRUE(engine_);
    ASSERT_TRUE(
        engine_
            ->run(obj_,
                  [](Context& ctx) {
                    return ctx.sql().exec("CREATE TABLE t(x); INSERT INTO t VALUES (1)").status();
                  })
            .is_ok());
  }
  // Runs `query` in a turn that first inserts a row and then ignores the
  // query's error; returns the query's error and the turn's result.
  std::pair<Status, Status> run_ignoring(const std::string& query) {
    Status query_status;
    Status turn = engine_->run(obj_, [&](Context& ctx) -> Status {
      CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t VALUES (2)").status());
      query_status = ctx.sql().exec(query).status();
      return Status::ok();  // a handler that swallows the error
    });
    return {query_status, turn};
  }
  int64_t rows_in_t() {
    int64_t n = -1;
    Status s = engine_->run(obj_, [&](Context& ctx) -> Status {
      CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec("SELECT count(*) FROM t"));
      n = std::get<int64_t>(c.to_vector().at(0)[0]);
      return Status::ok();
    });
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    return n;
  }
  void expect_stopped_by(const std::pair<Status, Status>& r, const std::string& option) {
    EXPECT_EQ(r.first.code(), Code::kAborted) << r.first.to_string();
    EXPECT_NE(r.first.message().find(option), std::string::npos) << r.first.message();
    EXPECT_EQ(r.second.code(), Code::kAborted) << r.second.to_string();
    EXPECT_NE(r.second.message().find(option), std::string::npos) << r.second.message();
    EXPECT_EQ(rows_in_t(), 1) << "the turn's insert must roll back";
  }

  testing::TempDir dir_;
  ObjectRef obj_ = ObjectRef::named("Budget", "one");
  std::unique_ptr<Engine> engine_;
};

// A runaway query, the limit that stops it, and the text its error names.
struct Runaway {
  const char* name;
  std::function<void(Options&)> limit;
  const char* query;
  const char* names;
};

void PrintTo(const Runaway& r, std::ostream* os) {
  *os << r.name;
}

class SqlBudgetStops : public SqlBudgetTest, public ::testing::WithParamInterface<Runaway> {};

TEST_P(SqlBudgetStops, ARunawayQueryStopsAtItsLimitAndTheTurnRollsBack) {
  Options o;
  GetParam().limit(o);
  open(o);
  expect_stopped_by(run_ignoring(GetParam().query), GetParam().names);
}

INSTANTIATE_TEST_SUITE_P(
    SqlBudgetLimits, SqlBudgetStops,
    ::testing::Values(Runaway{"RecursiveCteAtTheStepLimit",
                              [](Options& o) {
                                o.sql_turn_steps_max = 1000000;
                                o.sql_turn_ms_max = 0;
                              },
                              kRunaway, "sql_turn_steps_max (1000000)"},
                      Runaway{"RecursiveCteAtTheTimeLimit",
                              [](Options& o) { o.sql_turn_ms_max = 100; }, kRunaway,
                              "sql_turn_ms_max (100 ms)"},
                      Runaway{"HugeUnionCteAtTheTemporaryStorageLimit",
                              [](Options& o) {
                                o.sql_temp_bytes_max = size_t{4} << 20;
                                o.sql_turn_ms_max = 0;
                                o.sql_turn_steps_max = 0;
                              },
                              kHugeUnion, "sql_temp_bytes_max (4194304 bytes)"}),
    [](const ::testing::TestParamInfo<Runaway>& info) { return std::string(info.param.name); });

TEST_F(SqlBudgetTest, ARunawayStatementStopsWhenSqlInterruptSaysSoAndTheTurnRollsBack) {
  auto polls = std::make_shared<std::atomic<int>>(0);
  Options o;
  o.sql_turn_ms_max = 0;
  o.sql_interrupt = [polls] { return polls->fetch_add(1) >= 100; };  // stop after 100 polls
  open(o);
  expect_stopped_by(run_ignoring(kRunaway), "stopped on request (Options::sql_interrupt");
  EXPECT_GE(polls->load(), 100);
}

TEST_F(SqlBudgetTest, AStatementRunsToItsEndWhileSqlInterruptSaysNo) {
  Options o;
  o.sql_interrupt = [] { return false; };
  open(o);
  auto r = run_ignoring(kSmall);
  EXPECT_TRUE(r.first.is_ok()) << r.first.to_string();
  EXPECT_TRUE(r.second.is_ok()) << r.second.to_string();
  EXPECT_EQ(rows_in_t(), 2);
}

TEST_F(SqlBudgetTest, TheBudgetIsCountedPerTurn) {
  Options o;
  o.sql_turn_steps_max = 200000;
  open(o);
  for (int i = 0; i < 10; ++i) {
    Status s = engine_->run(obj_, [](Context& ctx) { return ctx.sql().exec(kSmall).status(); });
    ASSERT_TRUE(s.is_ok()) << "turn " << i << ": " << s.to_string();
  }
  Status all_in_one = engine_->run(obj_, [](Context& ctx) -> Status {
    for (int i = 0; i < 10; ++i) CARREL_RETURN_IF_ERROR(ctx.sql().exec(kSmall).status());
    return Status::ok();
  });
  EXPECT_EQ(all_in_one.code(), Code::kAborted) << all_in_one.to_string();
  EXPECT_NE(all_in_one.message().find("sql_turn_steps_max"), std::string::npos);
}

// A time limit Engine::open refuses, and the text its error names.
struct BadTimeLimit {
  const char* name;
  int64_t sql_turn_ms_max;
  const char* names;
};

void PrintTo(const BadTimeLimit& b, std::ostream* os) {
  *os << b.name;
}

class SqlBudgetRefuses : public SqlBudgetTest,
                         public ::testing::WithParamInterface<BadTimeLimit> {};

TEST_P(SqlBudgetRefuses, OpenRefusesTheTimeLimitNamingIt) {
  Options o = testing::options_in(dir_);
  o.sql_turn_ms_max = GetParam().sql_turn_ms_max;
  auto e = Engine::open(std::move(o));
  EXPECT_EQ(e.status().code(), Code::kInvalidArgument) << e.status().to_string();
  EXPECT_NE(e.status().message().find(GetParam().names), std::string::npos)
      << e.status().to_string();
}

INSTANTIATE_TEST_SUITE_P(
    SqlBudgetTimeLimits, SqlBudgetRefuses,
    ::testing::Values(BadTimeLimit{"Negative", -1, "sql_turn_ms_max"},
                      // Its nanoseconds would overflow int64_t: the error names the one-year cap.
                      BadTimeLimit{"PastOneYear", int64_t{1} << 62, "31536000000"}),
    [](const ::testing::TestParamInfo<BadTimeLimit>& info) {
      return std::string(info.param.name);
    });

}  // namespace
}  // namespace carrel
