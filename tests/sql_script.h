// A randomized SQL workload and a plain SQLite reference, shared by the
// differential tests (tests/sql_differential_test.cc runs it through
// SqlDatabase over an in-memory page set; tests/sql_object_test.cc through
// real objects): the same statements must give the same results.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <random>
#include <string>
#include <vector>

#include "carrel/sql.h"
#include "tests/sql_test_util.h"

namespace carrel::testing {

struct Query {
  std::string sql;
  std::vector<SqlValue> args;
};

struct Outcome {
  bool ok = false;
  std::vector<SqlRow> rows;
  std::string error;
};

// A plain SQLite database file, configured like carrel's connections where
// that changes results.
class ReferenceDb {
 public:
  explicit ReferenceDb(const std::string& path = ":memory:") {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_ENABLE_FKEY, 1, nullptr);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_DQS_DML, 0, nullptr);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_DQS_DDL, 0, nullptr);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
    run("PRAGMA synchronous=OFF");
  }
  ~ReferenceDb() { sqlite3_close(db_); }

  void run(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << sql << ": " << (err ? err : "");
    sqlite3_free(err);
  }

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
    int64_t n = chance(0.1) ? pick(8000, 40000) : pick(0, 3000);  // some span many pages
    std::string b(n, '\0');
    for (char& c : b) c = static_cast<char>(pick(0, 3) == 0 ? 0 : pick(0, 255));
    return Blob{std::move(b)};
  }

  Query next() {
    switch (pick(0, 17)) {
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
      case 13:
        return {chance(0.5) ? "CREATE TABLE IF NOT EXISTS scratch(x INTEGER PRIMARY KEY, y BLOB)"
                            : "DROP TABLE IF EXISTS scratch",
                {}};
      case 14:
        return {"INSERT INTO scratch(y) SELECT c FROM items WHERE a < ?", {pick(0, 30)}};
      default:
        return select();
    }
  }

  Query select() {
    switch (pick(0, 6)) {
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
      case 5:
        return {"SELECT count(*), sum(length(y)) FROM scratch", {}};
      default:
        return {"SELECT k, n FROM uniq WHERE n > ? ORDER BY k", {pick(0, 50)}};
    }
  }

 private:
  std::mt19937_64 rng_;
};
}  // namespace carrel::testing
