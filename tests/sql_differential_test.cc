// Differential test: the same randomized turns through SqlDatabase (carrel VFS
// over an in-memory page set, with commits, rollbacks, savepoints and
// reopens) and through a plain in-memory SQLite database must give identical
// results, and the carrel database must pass integrity_check.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/sql/sql_database.h"
#include "tests/memory_page_source.h"
#include "tests/sql_script.h"
#include "tests/sql_test_util.h"

namespace carrel::sql {
namespace {

using testing::MemoryPageSource;

using testing::Outcome;
using testing::Query;
using testing::ReferenceDb;
using testing::ScriptGenerator;
using testing::kDumps;
using testing::kSchema;
using testing::kWords;

void expect_same(const Outcome& ours, const Outcome& ref, const Query& q) {
  ASSERT_EQ(ours.ok, ref.ok) << q.sql << "\nours: " << ours.error << "\nref: " << ref.error;
  if (!ref.ok) {
    EXPECT_NE(ours.error.find(ref.error), std::string::npos) << ours.error << " vs " << ref.error;
    return;
  }
  ASSERT_EQ(ours.rows.size(), ref.rows.size()) << q.sql;
  for (size_t i = 0; i < ref.rows.size(); ++i) EXPECT_TRUE(ours.rows[i] == ref.rows[i]) << q.sql;
}

class Differential {
 public:
  Differential(uint64_t seed, int cache_pages) : gen_(seed) {
    limits_.cache_pages = cache_pages;
    limits_.statements_cached_max = 8;
    reopen();
  }

  Outcome ours(const Query& q) {
    Outcome out;
    auto r = db_->exec(q.sql, q.args);
    out.ok = r.is_ok();
    if (r.is_ok())
      out.rows = r->rows();
    else
      out.error = r.status().message();
    return out;
  }

  void step(const Query& q) {
    Outcome ref = ref_.exec(q);
    (ref.ok ? successes : failures)++;
    expect_same(ours(q), ref, q);
  }

  int successes = 0;
  int failures = 0;  // constraint errors: the script must provoke some

  void setup() {
    ref_.run("BEGIN");
    for (const char* ddl : kSchema) step({ddl, {}});
    commit();
  }

  void commit() {
    ASSERT_TRUE(db_->commit_turn().is_ok());
    ref_.run("COMMIT");
  }

  void reopen() {
    db_.reset();
    db_ = testing::open_sql(&pages_, limits_);
    ASSERT_TRUE(db_);
  }

  // Some ops, the later ones perhaps inside a savepoint that is released or
  // rolled back; then commit, roll back, or commit and reopen.
  void turn() {
    const MemoryPageSource::Contents before = pages_.contents();
    ref_.run("BEGIN");
    const int ops = static_cast<int>(gen_.pick(1, 10));
    const int savepoint_at = gen_.chance(0.2) ? static_cast<int>(gen_.pick(0, ops - 1)) : -1;
    for (int i = 0; i < ops; ++i) {
      if (i == savepoint_at) {
        ASSERT_TRUE(db_->savepoint(1).is_ok());
        ref_.run("SAVEPOINT s1");
      }
      step(gen_.next());
    }
    if (savepoint_at >= 0) end_savepoint();
    const int64_t ending = gen_.pick(0, 99);
    if (ending < 65) {
      commit();
    } else if (ending < 85) {
      db_->rollback_turn();
      ref_.run("ROLLBACK");
      ASSERT_FALSE(db_->poisoned());
      // sql_database.h invariant 3.
      EXPECT_TRUE(testing::same_database(before, pages_.contents()))
          << "rollback_turn changed the page set";
    } else {
      commit();
      reopen();
    }
  }

  void end_savepoint() {
    if (gen_.chance(0.5)) {
      ASSERT_TRUE(db_->rollback_to(1).is_ok());
      ref_.run("ROLLBACK TO s1; RELEASE s1");
    } else {
      ASSERT_TRUE(db_->release(1).is_ok());
      ref_.run("RELEASE s1");
    }
  }

  void compare_dumps() {
    ref_.run("BEGIN");
    for (const char* q : kDumps) step({q, {}});
    commit();
  }

  SqlDatabase* db() { return db_.get(); }
  MemoryPageSource& pages() { return pages_; }

 private:
  ScriptGenerator gen_;
  SqlLimits limits_;
  MemoryPageSource pages_{1024};
  std::unique_ptr<SqlDatabase> db_;
  ReferenceDb ref_;
};

class SqlDifferential : public ::testing::TestWithParam<std::tuple<uint64_t, int>> {};

TEST_P(SqlDifferential, RandomTurnsMatchPlainSqlite) {
  const auto [seed, cache_pages] = GetParam();
  Differential d(seed, cache_pages);
  d.setup();
  for (int t = 0; t < 120 && !::testing::Test::HasFatalFailure(); ++t) d.turn();
  d.compare_dumps();
  EXPECT_GT(d.failures, 5);
  EXPECT_GT(d.successes, 200);
  EXPECT_EQ(testing::integrity(d.db()), "ok");
  ASSERT_TRUE(d.db()->commit_turn().is_ok());
  d.reopen();
  d.compare_dumps();
  SqlCursor check =
      testing::must_exec(d.db(), "INSERT INTO docs_fts(docs_fts) VALUES ('integrity-check')");
  EXPECT_EQ(check.size(), 0u);
}

INSTANTIATE_TEST_SUITE_P(SqlSeeds, SqlDifferential,
                         ::testing::Combine(::testing::Values(1u, 2u, 3u, 4u),
                                            ::testing::Values(10, 256)));

}  // namespace
}  // namespace carrel::sql
