// Every authorizer rule refuses what it should and lets the allowed through
// (authorizer.h invariants 1-4).
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "engine/sql/sql_database.h"
#include "tests/memory_page_source.h"
#include "tests/sql_test_util.h"

namespace carrel::sql {
namespace {

using testing::MemoryPageSource;
using testing::must_exec;
using testing::open_sql;

class SqlAuthorizer : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = open_sql(&pages_);
    ASSERT_TRUE(db_);
    must_exec(db_.get(),
              "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);"
              "CREATE INDEX t_b ON t(b);"
              "CREATE TABLE child(id INTEGER PRIMARY KEY, t_a INT REFERENCES t(a))");
  }

  // The query must fail InvalidArgument with `reason` in the message.
  void expect_refused(const std::string& query, const std::string& reason) {
    auto r = db_->exec(query, {});
    ASSERT_FALSE(r.is_ok()) << query << " was allowed";
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().to_string();
    EXPECT_NE(r.status().message().find(reason), std::string::npos)
        << query << " -> " << r.status().to_string();
    EXPECT_NE(r.status().message().find("refused"), std::string::npos) << r.status().to_string();
    EXPECT_TRUE(db_->in_turn()) << "a refusal must not end the turn";
  }

  MemoryPageSource pages_{1024};
  std::unique_ptr<SqlDatabase> db_;
};

// Invariant 1.
TEST_F(SqlAuthorizer, TransactionControlIsRefused) {
  for (const char* q : {"BEGIN", "BEGIN IMMEDIATE", "COMMIT", "END", "ROLLBACK"}) {
    expect_refused(q, "use ctx.transaction()");
  }
  for (const char* q : {"SAVEPOINT s", "RELEASE s", "ROLLBACK TO s", "RELEASE _carrel_sp_1"}) {
    expect_refused(q, "use ctx.transaction()");
  }
}

// Invariant 2.
TEST_F(SqlAuthorizer, ReachingOutsideTheDatabaseIsRefused) {
  expect_refused("ATTACH 'other.db' AS other", "ATTACH is not allowed");
  expect_refused("ATTACH ':memory:' AS other", "ATTACH is not allowed");
  expect_refused("DETACH other", "DETACH is not allowed");
  expect_refused("SELECT load_extension('libx')", "load_extension() is not allowed");
  expect_refused("SELECT fts3_tokenizer('simple')", "fts3_tokenizer() is not allowed");
  expect_refused("VACUUM", "VACUUM is not allowed");
  expect_refused("  /* tidy */ vacuum main", "VACUUM is not allowed");
  expect_refused("VACUUM INTO 'copy.db'", "VACUUM is not allowed");
  expect_refused("SELECT 1; VACUUM", "VACUUM is not allowed");
}

TEST_F(SqlAuthorizer, PragmasOutsideTheAllowListAreRefused) {
  expect_refused("PRAGMA journal_mode=WAL", "PRAGMA journal_mode is not allowed");
  expect_refused("PRAGMA journal_mode", "PRAGMA journal_mode is not allowed");
  expect_refused("PRAGMA locking_mode=NORMAL", "PRAGMA locking_mode is not allowed");
  expect_refused("PRAGMA synchronous=FULL", "PRAGMA synchronous is not allowed");
  expect_refused("PRAGMA writable_schema=ON", "PRAGMA writable_schema is not allowed");
  expect_refused("PRAGMA cache_size=1", "PRAGMA cache_size is not allowed");
  expect_refused("PRAGMA temp_store=FILE", "PRAGMA temp_store is not allowed");
  expect_refused("PRAGMA main.auto_vacuum=FULL", "PRAGMA auto_vacuum is not allowed");
  expect_refused("PRAGMA page_size=4096", "PRAGMA page_size is read-only");
  expect_refused("PRAGMA PAGE_SIZE = 512", "read-only");
  expect_refused("PRAGMA foreign_keys=OFF", "foreign keys are always enforced");
  expect_refused("PRAGMA page_count=5", "read-only");
  expect_refused("SELECT * FROM pragma_journal_mode", "PRAGMA journal_mode is not allowed");
}

TEST_F(SqlAuthorizer, AllowedPragmasRun) {
  const std::vector<std::string> allowed = {
      "PRAGMA table_info(t)",
      "PRAGMA table_xinfo(t)",
      "PRAGMA table_list",
      "PRAGMA index_list(t)",
      "PRAGMA index_info(t_b)",
      "PRAGMA index_xinfo(t_b)",
      "PRAGMA foreign_keys",
      "PRAGMA foreign_key_check",
      "PRAGMA foreign_key_list(child)",
      "PRAGMA quick_check",
      "PRAGMA integrity_check",
      "PRAGMA integrity_check(t)",
      "PRAGMA optimize",
      "PRAGMA data_version",
      "PRAGMA page_count",
      "PRAGMA freelist_count",
      "PRAGMA page_size",
      "PRAGMA main.page_size",
      "PRAGMA defer_foreign_keys=ON",
      "PRAGMA defer_foreign_keys",
      "SELECT name FROM pragma_table_info('t')",
  };
  for (const std::string& q : allowed) must_exec(db_.get(), q);
  EXPECT_EQ(testing::exec_int(db_.get(), "PRAGMA foreign_keys"), 1);
  EXPECT_EQ(testing::exec_int(db_.get(), "PRAGMA page_size"), 1024);
}

// Invariant 3.
TEST_F(SqlAuthorizer, ReservedNamesAreRefused) {
  const std::string reserved = "names starting with _carrel_ belong to the engine";
  expect_refused("CREATE TABLE _carrel_kv(k, v)", reserved);
  expect_refused("CREATE TABLE _CARREL_Kv(k, v)", reserved);
  expect_refused("CREATE TABLE \"_carrel_q\"(k)", reserved);
  expect_refused("CREATE TEMP TABLE _carrel_tmp(k)", reserved);
  expect_refused("CREATE INDEX _carrel_i ON t(b)", reserved);
  expect_refused("CREATE VIEW _carrel_v AS SELECT 1", reserved);
  expect_refused("CREATE TRIGGER _carrel_tr AFTER INSERT ON t BEGIN SELECT 1; END", reserved);
  expect_refused("CREATE VIRTUAL TABLE _carrel_f USING fts5(x)", reserved);
  expect_refused("ALTER TABLE t RENAME TO _carrel_t", reserved);
  expect_refused("ALTER TABLE main.t RENAME TO [_Carrel_t]", reserved);
  must_exec(db_.get(), "ALTER TABLE t RENAME TO renamed");  // other renames work
  must_exec(db_.get(), "ALTER TABLE renamed RENAME COLUMN b TO _carrel_column_is_fine");
  must_exec(db_.get(), "CREATE TABLE carrel_(x)");
}

// Invariant 4.
TEST_F(SqlAuthorizer, OnlyFts5AndRtreeVirtualTables) {
  expect_refused("CREATE VIRTUAL TABLE f4 USING fts4(body)",
                 "virtual table module fts4 is not allowed");
  expect_refused("CREATE VIRTUAL TABLE f3 USING fts3(body)", "fts3 is not allowed");
  must_exec(db_.get(), "CREATE VIRTUAL TABLE docs USING fts5(title, body)");
  must_exec(db_.get(), "INSERT INTO docs VALUES ('a', 'the quick brown fox')");
  EXPECT_EQ(must_exec(db_.get(), "SELECT title FROM docs WHERE docs MATCH 'quick'").size(), 1u);
  must_exec(db_.get(), "CREATE VIRTUAL TABLE vocab USING fts5vocab(docs, 'row')");
  EXPECT_GE(must_exec(db_.get(), "SELECT term FROM vocab").size(), 4u);
  must_exec(db_.get(), "CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1, y0, y1)");
  must_exec(db_.get(), "INSERT INTO boxes VALUES (1, 0, 10, 0, 10)");
  EXPECT_EQ(must_exec(db_.get(), "SELECT id FROM boxes WHERE x0 <= 5 AND x1 >= 5").size(), 1u);
  ASSERT_TRUE(db_->commit_turn().is_ok());
  EXPECT_EQ(testing::integrity(db_.get()), "ok");
}

// The engine's own savepoints pass the rules, and a rollback to one undoes
// exactly what came after it: the row before stays, the row after is gone
// (from the table and its index), before and after the turn commits.
TEST_F(SqlAuthorizer, EngineSavepointsBypassTheRules) {
  must_exec(db_.get(), "INSERT INTO t(b) VALUES ('kept')");
  ASSERT_TRUE(db_->savepoint(1).is_ok());
  must_exec(db_.get(), "INSERT INTO t(b) VALUES ('x')");
  EXPECT_EQ(testing::exec_int(db_.get(), "SELECT count(*) FROM t WHERE b = 'x'"), 1);
  ASSERT_TRUE(db_->rollback_to(1).is_ok());
  EXPECT_EQ(testing::exec_int(db_.get(), "SELECT count(*) FROM t WHERE b = 'x'"), 0);
  ASSERT_TRUE(db_->commit_turn().is_ok());
  EXPECT_EQ(testing::exec_int(db_.get(), "SELECT count(*) FROM t WHERE b = 'x'"), 0);
  EXPECT_EQ(testing::exec_int(db_.get(), "SELECT count(*) FROM t"), 1);
  EXPECT_EQ(testing::exec_int(db_.get(), "SELECT count(*) FROM t WHERE b = 'kept'"), 1);
  EXPECT_EQ(testing::integrity(db_.get()), "ok");
}

TEST(SqlAuthorizerRules, RefusalForStatementFindsTheFirstKeyword) {
  EXPECT_TRUE(refusal_for_statement("-- c\n VACUUM").has_value());
  EXPECT_FALSE(refusal_for_statement("SELECT 'VACUUM'").has_value());
  EXPECT_FALSE(refusal_for_statement("\"vacuum\"").has_value());
  EXPECT_TRUE(refusal_for_statement("alter table x rename to `_carrel_y`").has_value());
  EXPECT_FALSE(refusal_for_statement("alter table x rename column y to _carrel_y").has_value());
}

}  // namespace
}  // namespace carrel::sql
