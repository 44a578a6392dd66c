// SqlDatabase::exec: statements, bindings, limits, errors, the statement
// cache, and the SqlRow / SqlCursor accessors.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "engine/sql/sql_database.h"
#include "tests/memory_page_source.h"
#include "tests/sql_test_util.h"

namespace carrel::sql {
namespace {

using testing::exec_int;
using testing::MemoryPageSource;
using testing::must_exec;
using testing::open_sql;

Status exec_status(SqlDatabase* db, std::string_view q, std::vector<SqlValue> args = {}) {
  return db->exec(q, args).status();
}

void expect_error(const Status& st, Code code, const std::string& text) {
  EXPECT_EQ(st.code(), code) << st.to_string();
  EXPECT_NE(st.message().find(text), std::string::npos) << st.to_string();
}

TEST(SqlExec, BindingsRoundTripEveryType) {
  MemoryPageSource pages;
  auto db = open_sql(&pages);
  ASSERT_TRUE(db);
  must_exec(db.get(), "CREATE TABLE v(id INTEGER PRIMARY KEY, x)");
  const std::vector<SqlValue> values = {
      std::monostate{},
      int64_t{0},
      std::numeric_limits<int64_t>::min(),
      std::numeric_limits<int64_t>::max(),
      3.25,
      -0.0,
      std::string(),
      std::string("h\xc3\xa9llo"),
      std::string("nul\0inside", 10),
      Blob{std::string()},
      Blob{std::string("\0\0a\0b\0", 6)},
      Blob{std::string(5000, '\0')},  // spans pages
  };
  for (const SqlValue& v : values) must_exec(db.get(), "INSERT INTO v(x) VALUES (?)", {v});
  ASSERT_TRUE(db->commit_turn().is_ok());
  SqlCursor c = must_exec(db.get(), "SELECT x FROM v ORDER BY id");
  ASSERT_EQ(c.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) EXPECT_TRUE(c.rows()[i][0] == values[i]) << i;
  SqlCursor direct = must_exec(db.get(), "SELECT ?, ?, ?", {values[3], values[8], values[10]});
  EXPECT_TRUE(direct.rows()[0] == SqlRow({values[3], values[8], values[10]}));
  EXPECT_EQ(direct.columns().size(), 3u);
}

TEST(SqlExec, WrongNumberOfBindingsIsAClearError) {
  MemoryPageSource pages;
  auto db = open_sql(&pages);
  ASSERT_TRUE(db);
  expect_error(exec_status(db.get(), "SELECT ?, ?", {int64_t{1}}), Code::kInvalidArgument,
               "expects 2 bindings; 1 given");
  expect_error(exec_status(db.get(), "SELECT 1", {int64_t{1}}), Code::kInvalidArgument,
               "expects 0 bindings; 1 given");
  expect_error(exec_status(db.get(), "SELECT ?; SELECT ?", {int64_t{1}}), Code::kInvalidArgument,
               "bindings apply to the last statement only");
  expect_error(exec_status(db.get(), ""), Code::kInvalidArgument, "SQL query is empty");
  expect_error(exec_status(db.get(), " ; -- nothing\n /* here */ ;"), Code::kInvalidArgument,
               "SQL query is empty");
  expect_error(exec_status(db.get(), std::string("SELECT 1;\0 DROP TABLE x", 23)),
               Code::kInvalidArgument, "NUL byte at offset 9");
  // Named parameters bind by position.
  EXPECT_EQ(must_exec(db.get(), "SELECT :a + :b", {int64_t{2}, int64_t{3}}).rows()[0][0],
            SqlValue(int64_t{5}));
}

TEST(SqlExec, LimitsAreNamedInErrors) {
  MemoryPageSource pages;
  SqlLimits limits;
  limits.statement_bytes_max = 100;
  limits.params_max = 3;
  limits.value_bytes_max = 1000;
  auto db = open_sql(&pages, limits);
  ASSERT_TRUE(db);
  expect_error(exec_status(db.get(), "SELECT '" + std::string(200, 'x') + "'"),
               Code::kInvalidArgument, "sql_statement_bytes_max is 100");
  expect_error(
      exec_status(db.get(), "SELECT ?,?,?,?", {int64_t{1}, int64_t{1}, int64_t{1}, int64_t{1}}),
      Code::kInvalidArgument, "sql_params_max is 3");
  expect_error(exec_status(db.get(), "SELECT ?5"), Code::kInvalidArgument, "SQL error");
  expect_error(exec_status(db.get(), "SELECT ?", {Blob{std::string(2000, 'b')}}),
               Code::kInvalidArgument, "sql_value_bytes_max is 1000");
  expect_error(exec_status(db.get(), "SELECT zeroblob(5000)"), Code::kInvalidArgument,
               "sql_value_bytes_max is 1000");
  expect_error(exec_status(db.get(), "SELECT hex(zeroblob(600))"), Code::kInvalidArgument,
               "too big");
}

// exec() skips checking the text of a query it finds in the statement cache;
// the bindings of every run are still checked.
TEST(SqlExec, CachedStatementStillChecksItsBindings) {
  MemoryPageSource pages;
  SqlLimits limits;
  limits.params_max = 2;
  limits.value_bytes_max = 1000;
  auto db = open_sql(&pages, limits);
  ASSERT_TRUE(db);
  must_exec(db.get(), "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  const std::string insert = "INSERT INTO t(id, v) VALUES (?, ?)";
  must_exec(db.get(), insert, {int64_t{1}, Blob{"a"}});  // now cached
  expect_error(exec_status(db.get(), insert, {int64_t{2}, Blob{std::string(2000, 'b')}}),
               Code::kInvalidArgument, "sql_value_bytes_max is 1000");
  expect_error(exec_status(db.get(), insert, {int64_t{2}}), Code::kInvalidArgument,
               "expects 2 bindings; 1 given");
  expect_error(exec_status(db.get(), insert, {int64_t{2}, Blob{"b"}, int64_t{3}}),
               Code::kInvalidArgument, "sql_params_max is 2");
  must_exec(db.get(), insert, {int64_t{2}, Blob{"b"}});
  EXPECT_EQ(exec_int(db.get(), "SELECT count(*) FROM t"), 2);
}

TEST(SqlExec, SeveralStatementsReturnTheLastOnesRows) {
  MemoryPageSource pages;
  auto db = open_sql(&pages);
  ASSERT_TRUE(db);
  SqlCursor c = must_exec(db.get(),
                          "CREATE TABLE a(x); INSERT INTO a VALUES (1), (2), (3);\n"
                          "-- the answer:\n SELECT x AS value FROM a WHERE x > ? ORDER BY x;",
                          {int64_t{1}});
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c.columns(), std::vector<std::string>{"value"});
  EXPECT_EQ(c.rows()[0][0], SqlValue(int64_t{2}));
  EXPECT_EQ(c.rows_written(), 3u);
  EXPECT_GE(c.rows_read(), 2u);
}

TEST(SqlExec, RowsReadAndWrittenAreCounted) {
  MemoryPageSource pages;
  auto db = open_sql(&pages);
  ASSERT_TRUE(db);
  must_exec(db.get(), "CREATE TABLE t(a INTEGER PRIMARY KEY, b INT)");
  must_exec(db.get(), "CREATE TABLE log(n)");
  must_exec(db.get(),
            "CREATE TRIGGER t_log AFTER UPDATE ON t BEGIN INSERT INTO log VALUES (1); END");
  SqlCursor ins = must_exec(db.get(),
                            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s "
                            "WHERE i < 50) INSERT INTO t(b) SELECT i FROM s");
  EXPECT_EQ(ins.rows_written(), 50u);
  SqlCursor scan = must_exec(db.get(), "SELECT count(*) FROM t WHERE b > 25");
  EXPECT_GE(scan.rows_read(), 49u);  // a full scan
  SqlCursor seek = must_exec(db.get(), "SELECT b FROM t WHERE a = 7");
  EXPECT_EQ(seek.rows_read(), 1u);
  SqlCursor upd = must_exec(db.get(), "UPDATE t SET b = b + 1 WHERE a <= 10");
  EXPECT_EQ(upd.rows_written(), 20u);  // 10 rows, and 10 trigger inserts
}

TEST(SqlExec, FailedStatementKeepsTheTurn) {
  MemoryPageSource pages;
  auto db = open_sql(&pages);
  ASSERT_TRUE(db);
  must_exec(db.get(), "CREATE TABLE t(k TEXT UNIQUE, n INT CHECK (n >= 0))");
  must_exec(db.get(), "INSERT INTO t VALUES ('a', 1)");
  expect_error(exec_status(db.get(), "INSERT INTO t VALUES ('a', 2)"), Code::kInvalidArgument,
               "UNIQUE constraint failed");
  expect_error(exec_status(db.get(), "INSERT INTO t VALUES ('b', 1), ('c', -1)"),
               Code::kInvalidArgument, "CHECK constraint failed");
  expect_error(exec_status(db.get(), "SELEC 1"), Code::kInvalidArgument, "object Test:a");
  expect_error(exec_status(db.get(), "SELECT * FROM nope"), Code::kInvalidArgument,
               "no such table: nope");
  EXPECT_TRUE(db->in_turn());
  ASSERT_TRUE(db->commit_turn().is_ok());
  EXPECT_EQ(exec_int(db.get(), "SELECT count(*) FROM t"), 1);  // 'b' went with its statement
}

TEST(SqlExec, DeferredForeignKeyFailsTheCommit) {
  MemoryPageSource pages;
  auto db = open_sql(&pages);
  ASSERT_TRUE(db);
  must_exec(db.get(), "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p REFERENCES p(id))");
  ASSERT_TRUE(db->commit_turn().is_ok());
  expect_error(exec_status(db.get(), "INSERT INTO c VALUES (5)"), Code::kInvalidArgument,
               "FOREIGN KEY constraint failed");
  must_exec(db.get(), "PRAGMA defer_foreign_keys = ON");
  must_exec(db.get(), "INSERT INTO c VALUES (5)");
  expect_error(db->commit_turn(), Code::kInvalidArgument, "FOREIGN KEY constraint failed");
  db->rollback_turn();
  EXPECT_EQ(exec_int(db.get(), "SELECT count(*) FROM c"), 0);
}

TEST(SqlExec, StatementCacheSurvivesSchemaChangesAndEviction) {
  MemoryPageSource pages;
  SqlLimits limits;
  limits.statements_cached_max = 2;
  auto db = open_sql(&pages, limits);
  ASSERT_TRUE(db);
  must_exec(db.get(), "CREATE TABLE t(a)");
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) {
      must_exec(db.get(), "INSERT INTO t VALUES (?)", {int64_t{i}});
      EXPECT_EQ(exec_int(db.get(), "SELECT count(*) FROM t WHERE a = " + std::to_string(i)),
                round + 1);
    }
  }
  EXPECT_EQ(must_exec(db.get(), "SELECT * FROM t").columns().size(), 1u);
  must_exec(db.get(), "ALTER TABLE t ADD COLUMN b DEFAULT 'x'");
  EXPECT_EQ(must_exec(db.get(), "SELECT * FROM t").columns().size(), 2u);
  // A refused statement stays refused when its text comes again.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(exec_status(db.get(), "PRAGMA journal_mode").code(), Code::kInvalidArgument);
  }
}

// The turn's BEGIN, COMMIT and ROLLBACK are prepared once per connection: a
// schema change (which expires prepared statements) must not break them, and
// each still does its work: commit keeps, rollback undoes.
TEST(SqlExec, TurnTransactionsWorkAcrossSchemaChanges) {
  MemoryPageSource pages;
  auto db = open_sql(&pages);
  ASSERT_TRUE(db);
  for (int round = 0; round < 3; ++round) {
    const std::string table = "t" + std::to_string(round);
    ASSERT_TRUE(db->begin_turn().is_ok());
    must_exec(db.get(), "CREATE TABLE " + table + "(a)");
    must_exec(db.get(), "INSERT INTO " + table + " VALUES (1)");
    ASSERT_TRUE(db->commit_turn().is_ok());
    ASSERT_TRUE(db->begin_turn().is_ok());
    must_exec(db.get(), "INSERT INTO " + table + " VALUES (2)");
    must_exec(db.get(), "CREATE TABLE gone" + std::to_string(round) + "(b)");
    db->rollback_turn();
    EXPECT_FALSE(db->poisoned());
    EXPECT_EQ(exec_int(db.get(), "SELECT count(*) FROM " + table), 1);
    EXPECT_EQ(exec_int(db.get(), "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'gone%'"), 0);
    ASSERT_TRUE(db->commit_turn().is_ok());
  }
}

TEST(SqlExec, JsonAndMathFunctionsWork) {
  MemoryPageSource pages;
  auto db = open_sql(&pages);
  ASSERT_TRUE(db);
  SqlCursor c = must_exec(db.get(), "SELECT json_extract(?, '$.a[1]'), json_array_length(?)",
                          {std::string(R"({"a":[1,22,3]})"), std::string("[1,2]")});
  EXPECT_TRUE(c.rows()[0] == SqlRow({int64_t{22}, int64_t{2}}));
}

TEST(SqlCursor, OneNeedsExactlyOneRow) {
  SqlCursor c;
  EXPECT_NE(c.one().status().message().find("returned 0 rows"), std::string::npos);
  c.rows_.push_back(SqlRow({int64_t{1}}));
  ASSERT_TRUE(c.one().is_ok());
  c.rows_.push_back(SqlRow({int64_t{2}}));
  expect_error(c.one().status(), Code::kInvalidArgument, "returned 2 rows");
}

TEST(SqlCursor, TypedGettersCheckTypes) {
  SqlRow row({int64_t{7}, 1.5, std::string("t"), Blob{std::string("b\0", 2)}, std::monostate{}});
  EXPECT_EQ(row.get_int(0).value(), 7);
  EXPECT_EQ(row.get_double(0).value(), 7.0);
  EXPECT_EQ(row.get_double(1).value(), 1.5);
  EXPECT_EQ(row.get_text(2).value(), "t");
  EXPECT_EQ(row.get_blob(2).value(), "t");
  EXPECT_EQ(row.get_blob(3).value(), std::string("b\0", 2));
  EXPECT_TRUE(row.is_null(4));
  expect_error(row.get_int(1).status(), Code::kInvalidArgument, "holds real, not integer");
  expect_error(row.get_text(4).status(), Code::kInvalidArgument, "holds null, not text");
  expect_error(row.get_int(9).status(), Code::kInvalidArgument, "out of range");
}

}  // namespace
}  // namespace carrel::sql
