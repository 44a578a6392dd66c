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
#include "tests/sql_test_util.h"

namespace carrel::sql {
namespace {

using testing::MemoryPageSource;

struct Outcome {
  bool ok = false;
  std::vector<SqlRow> rows;
  std::string error;
};

struct Query {
  std::string sql;
  std::vector<SqlValue> args;
};

// Plain SQLite, configured like SqlDatabase where it changes results.
class ReferenceDb {
 public:
  ReferenceDb() {
    EXPECT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_ENABLE_FKEY, 1, nullptr);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_DQS_DML, 0, nullptr);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_DQS_DDL, 0, nullptr);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  }
  ~ReferenceDb() { sqlite3_close(db_); }

  void run(const char* sql) { EXPECT_EQ(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), 0); }

  // One statement.
  Outcome exec(const Query& q) {
    Outcome out;
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, q.sql.c_str(), -1, &stmt, nullptr);
    for (size_t i = 0; rc == SQLITE_OK && i < q.args.size(); ++i) {
      rc = bind(stmt, static_cast<int>(i + 1), q.args[i]);
    }
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
      rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW) out.rows.push_back(row(stmt));
    }
    out.ok = rc == SQLITE_DONE;
    if (!out.ok) out.error = sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  static int bind(sqlite3_stmt* s, int i, const SqlValue& v) {
    if (auto* n = std::get_if<int64_t>(&v)) return sqlite3_bind_int64(s, i, *n);
    if (auto* d = std::get_if<double>(&v)) return sqlite3_bind_double(s, i, *d);
    if (auto* t = std::get_if<std::string>(&v)) {
      return sqlite3_bind_text64(s, i, t->data(), t->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    }
    if (auto* b = std::get_if<Blob>(&v)) {
      return sqlite3_bind_blob64(s, i, b->bytes.data(), b->bytes.size(), SQLITE_TRANSIENT);
    }
    return sqlite3_bind_null(s, i);
  }

  static SqlRow row(sqlite3_stmt* s) {
    std::vector<SqlValue> values;
    for (int i = 0; i < sqlite3_column_count(s); ++i) {
      switch (sqlite3_column_type(s, i)) {
        case SQLITE_INTEGER:
          values.emplace_back(int64_t{sqlite3_column_int64(s, i)});
          break;
        case SQLITE_FLOAT:
          values.emplace_back(sqlite3_column_double(s, i));
          break;
        case SQLITE_TEXT:
          values.emplace_back(std::string(reinterpret_cast<const char*>(sqlite3_column_text(s, i)),
                                          sqlite3_column_bytes(s, i)));
          break;
        case SQLITE_BLOB: {
          const char* p = static_cast<const char*>(sqlite3_column_blob(s, i));
          values.emplace_back(Blob{p ? std::string(p, sqlite3_column_bytes(s, i)) : ""});
          break;
        }
        default:
          values.emplace_back(std::monostate{});
      }
    }
    return SqlRow(std::move(values));
  }

  sqlite3* db_ = nullptr;
};

const char* const kSchema[] = {
    "CREATE TABLE items(id INTEGER PRIMARY KEY, a INT, b TEXT, c BLOB, d REAL)",
    "CREATE INDEX items_a ON items(a)",
    "CREATE TABLE tags(id INTEGER PRIMARY KEY, item_id INT NOT NULL REFERENCES items(id) "
    "ON DELETE CASCADE, tag TEXT)",
    "CREATE TABLE uniq(k TEXT PRIMARY KEY, n INT NOT NULL CHECK (n >= 0)) WITHOUT ROWID",
    "CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT)",
    "CREATE VIRTUAL TABLE docs_fts USING fts5(body, content='docs', content_rowid='id')",
    "CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN "
    "INSERT INTO docs_fts(rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER docs_ad AFTER DELETE ON docs BEGIN "
    "INSERT INTO docs_fts(docs_fts, rowid, body) VALUES ('delete', old.id, old.body); END",
    "CREATE TABLE audit(n INTEGER PRIMARY KEY, what TEXT)",
    "CREATE TRIGGER items_au AFTER UPDATE OF a ON items BEGIN "
    "INSERT INTO audit(what) VALUES ('a ' || old.a || '->' || new.a); END",
};

const char* const kDumps[] = {
    "SELECT id, a, b, c, d FROM items ORDER BY id",
    "SELECT id, item_id, tag FROM tags ORDER BY id",
    "SELECT k, n FROM uniq ORDER BY k",
    "SELECT id, body FROM docs ORDER BY id",
    "SELECT n, what FROM audit ORDER BY n",
    "SELECT rowid FROM docs_fts WHERE docs_fts MATCH 'alpha OR gamma' ORDER BY rowid",
    "SELECT name, sql FROM sqlite_schema ORDER BY name",
};

const char* const kWords[] = {"alpha", "beta",  "gamma", "delta", "epsilon", "zeta",
                              "eta",   "theta", "iota",  "kappa", "lambda",  "mu"};

class ScriptGenerator {
 public:
  explicit ScriptGenerator(uint64_t seed) : rng_(seed) {}

  int64_t pick(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  std::string words(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += std::string(i ? " " : "") + kWords[pick(0, 11)];
    return s;
  }

  Blob bytes() {
    int64_t n = chance(0.1) ? pick(8000, 30000) : pick(0, 3000);  // some span many pages
    std::string b(n, '\0');
    for (char& c : b) c = static_cast<char>(pick(0, 3) == 0 ? 0 : pick(0, 255));
    return Blob{std::move(b)};
  }

  Query next() {
    switch (pick(0, 15)) {
      case 0:
      case 1:
      case 2:
        return {"INSERT INTO items(a, b, c, d) VALUES (?, ?, ?, ?)",
                {pick(0, 30), words(3), bytes(), static_cast<double>(pick(-1000, 1000)) / 7}};
      case 3:
        return {"UPDATE items SET a = a + 1, b = ? WHERE id % ? = 0", {words(2), pick(2, 7)}};
      case 4:
        return {"DELETE FROM items WHERE a = ?", {pick(0, 30)}};
      case 5:
        return {"DELETE FROM items WHERE id = ?", {pick(1, 60)}};
      case 6:
        return {"INSERT INTO tags(item_id, tag) VALUES (?, ?)", {pick(1, 70), words(1)}};
      case 7:
        return {"INSERT INTO uniq(k, n) VALUES (?, ?)", {words(1), pick(-2, 50)}};
      case 8:
        return {"INSERT INTO docs(body) VALUES (?)", {words(static_cast<int>(pick(1, 8)))}};
      case 9:
        return {"DELETE FROM docs WHERE id = ?", {pick(1, 40)}};
      case 10:
        return {"UPDATE items SET c = ? WHERE id = ?", {bytes(), pick(1, 60)}};
      case 11:
        return {"UPDATE items SET b = json_set(coalesce(json(?), '{}'), '$.a', a) WHERE id = ?",
                {std::string("{\"w\":\"" + words(1) + "\"}"), pick(1, 60)}};
      case 12:
        return {chance(0.5) ? "CREATE INDEX IF NOT EXISTS items_b ON items(b)"
                            : "DROP INDEX IF EXISTS items_b",
                {}};
      default:
        return select();
    }
  }

  Query select() {
    switch (pick(0, 5)) {
      case 0:
        return {
            "SELECT i.id, t.tag, length(i.c) FROM items i JOIN tags t ON t.item_id = i.id "
            "WHERE i.a < ? ORDER BY i.id, t.id",
            {pick(0, 30)}};
      case 1:
        return {"SELECT a, count(*), sum(length(c)), total(d) FROM items GROUP BY a ORDER BY a",
                {}};
      case 2:
        return {
            "SELECT rowid, snippet(docs_fts, 0, '[', ']', '...', 3) FROM docs_fts "
            "WHERE docs_fts MATCH ? ORDER BY rowid",
            {std::string(kWords[pick(0, 11)])}};
      case 3:
        return {
            "SELECT json_group_array(json_object('id', id, 'a', a)) FROM "
            "(SELECT id, a FROM items WHERE a < ? ORDER BY id)",
            {pick(0, 30)}};
      case 4:
        return {"SELECT c, hex(substr(c, 1, 8)) FROM items WHERE id = ?", {pick(1, 60)}};
      default:
        return {"SELECT k, n FROM uniq WHERE n > ? ORDER BY k", {pick(0, 50)}};
    }
  }

 private:
  std::mt19937_64 rng_;
};

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
