// Differential fuzzing of carrel's SQL against a plain in-memory SQLite
// database: statements are drawn from a grammar of fragments (not raw bytes),
// each runs as one turn on a fresh object of one Engine (opened once per
// process in a temporary directory) and, in autocommit, on the reference
// connection (configured like carrel's: foreign keys on, no double-quoted
// strings, defensive). Rows and error/no-error must agree. Statements of a
// refused kind (transaction control, ATTACH, pragmas off the allow-list,
// VACUUM, load_extension, _carrel_ names) must be refused by carrel and are
// not run on the reference; nothing else may be refused. No file is created in
// the working directory: the reference is ":memory:".
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "carrel/carrel.h"
#include "fuzz/fuzz_engine.h"
#include "fuzz/fuzz_input.h"

namespace {

using namespace carrel;

[[noreturn]] void fail(const std::string& what) { carrel::fuzz::fail("sql_diff", what); }

carrel::fuzz::EngineFixture& fixture() {
  static carrel::fuzz::EngineFixture f("sql_diff");
  return f;
}

sqlite3* open_reference() {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    fail("open reference");
  }
  int v = 0;
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_FKEY, 1, &v);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, &v);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, &v);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &v);
  sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &v);
  return db;
}

// ---- the grammar ----
const char* kValues[] = {"0",
                         "1",
                         "-1",
                         "42",
                         "9223372036854775807",
                         "-9223372036854775808",
                         "1.5",
                         "-0.0",
                         "1e308",
                         "'a'",
                         "'b'",
                         "''",
                         "'abc'",
                         "x'00ff'",
                         "NULL",
                         "(1/0)",
                         "(5 % 3)",
                         "length('xyz')",
                         "upper('q')",
                         "abs(-7)",
                         "(9223372036854775807 + 1)",
                         "abs(-9223372036854775808)",
                         "'1' + 1",
                         "CAST('12' AS INTEGER)",
                         "coalesce(NULL, 3)",
                         "typeof(1.0)",
                         "json_array(1, 'x')",
                         "printf('%05d', 12)",
                         "hex('hi')",
                         "zeroblob(3)"};
const char* kTables[] = {"t1", "t2", "t3"};
const char* kColumns[] = {"a", "b", "c"};
const char* kOps[] = {"=", "<", ">", "<=", "<>", "IS", "IS NOT"};

std::string value(fuzz::Input& in) {
  return kValues[in.pick(std::size(kValues))];
}
std::string table(fuzz::Input& in) {
  return kTables[in.pick(std::size(kTables))];
}
std::string column(fuzz::Input& in) {
  return kColumns[in.pick(std::size(kColumns))];
}
std::string condition(fuzz::Input& in) {
  switch (in.pick(4)) {
    case 0:
      return column(in) + " " + kOps[in.pick(std::size(kOps))] + " " + value(in);
    case 1:
      return column(in) + " IS NULL";
    case 2:
      return column(in) + " IN (" + value(in) + ", " + value(in) + ")";
    default:
      return "1";
  }
}

struct Statement {
  std::string sql;
  bool refused = false;  // of a kind carrel must refuse
};

Statement statement(fuzz::Input& in) {
  const std::string t = table(in);
  switch (in.pick(24)) {
    case 0:
      return {"CREATE TABLE " + t + "(a INTEGER PRIMARY KEY, b TEXT UNIQUE, c)"};
    case 1:
      return {"CREATE TABLE IF NOT EXISTS " + t + "(a, b, c NOT NULL)"};
    case 2:
      return {"DROP TABLE " + t};
    case 3:
      return {"DROP TABLE IF EXISTS " + t};
    case 4:
    case 5: {
      const char* mode[] = {"INSERT", "INSERT OR REPLACE", "INSERT OR IGNORE", "REPLACE"};
      std::string rows = "(" + value(in) + ", " + value(in) + ", " + value(in) + ")";
      if (in.byte() & 1) rows += ", (" + value(in) + ", " + value(in) + ", " + value(in) + ")";
      return {std::string(mode[in.pick(4)]) + " INTO " + t + "(a, b, c) VALUES " + rows};
    }
    case 6:
      return {"UPDATE " + t + " SET " + column(in) + " = " + value(in) + " WHERE " + condition(in)};
    case 7:
      return {"DELETE FROM " + t + " WHERE " + condition(in)};
    case 8:
    case 9:
      return {"SELECT a, b, c, typeof(c) FROM " + t + " WHERE " + condition(in) +
              " ORDER BY a, b, c"};
    case 10:
      return {"SELECT count(*), total(a), max(b), min(c) FROM " + t};
    case 11:
      return {"SELECT " + value(in) + ", " + value(in) + " " + kOps[in.pick(std::size(kOps))] +
              " " + value(in)};
    case 12:
      return {"CREATE INDEX IF NOT EXISTS i_" + t + " ON " + t + "(" + column(in) + ")"};
    case 13:
      return {"CREATE UNIQUE INDEX u_" + t + " ON " + t + "(c)"};
    case 14:
      return {"CREATE VIEW IF NOT EXISTS v_" + t + " AS SELECT a, c FROM " + t + " WHERE " +
              condition(in)};
    case 15:
      return {"SELECT * FROM v_" + t + " ORDER BY 1, 2"};
    case 16: {
      const std::string other = table(in);
      return {"CREATE TRIGGER IF NOT EXISTS tr_" + t + " AFTER INSERT ON " + t +
              " BEGIN INSERT INTO " + other + "(a, b, c) VALUES (NULL, NULL, " + value(in) +
              "); END"};
    }
    case 17:
      return {"ALTER TABLE " + t + " ADD COLUMN d DEFAULT " + value(in)};
    case 18:
      return {"ALTER TABLE " + t + " RENAME TO " + table(in)};
    case 19:
      return {"WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < " +
              std::to_string(in.pick(50)) + ") INSERT INTO " + t + "(a, b, c) SELECT x, " +
              value(in) + ", x * 2 FROM n"};
    case 20: {
      const std::string pragmas[] = {"PRAGMA table_info(" + t + ")", "PRAGMA index_list(" + t + ")",
                                     "PRAGMA foreign_key_check", "PRAGMA quick_check"};
      return {pragmas[in.pick(std::size(pragmas))]};
    }
    case 21:
    case 22: {
      const char* refused[] = {"BEGIN",
                               "COMMIT",
                               "ROLLBACK",
                               "SAVEPOINT s",
                               "RELEASE s",
                               "ATTACH ':memory:' AS x",
                               "DETACH x",
                               "PRAGMA user_version = 3",
                               "PRAGMA journal_mode = DELETE",
                               "PRAGMA foreign_keys = OFF",
                               "VACUUM",
                               "SELECT load_extension('x')",
                               "CREATE TABLE _carrel_x(a)",
                               "CREATE VIEW _CARREL_v AS SELECT 1",
                               "PRAGMA writable_schema = ON",
                               "CREATE VIRTUAL TABLE vt USING fts3(a)"};
      return {refused[in.pick(std::size(refused))], true};
    }
    default:
      return {"SELECT sqlite_version() = sqlite_version(), " + value(in) + " || " + value(in)};
  }
}

// ---- running ----
struct Outcome {
  bool ok = false;
  std::string error;
  std::vector<std::string> columns;
  std::vector<SqlRow> rows;
};

Outcome run_reference(sqlite3* db, const std::string& sql) {
  Outcome out;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    out.error = sqlite3_errmsg(db);
    return out;
  }
  for (int i = 0; i < sqlite3_column_count(stmt); ++i)
    out.columns.push_back(sqlite3_column_name(stmt, i));
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    std::vector<SqlValue> row;
    for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
      switch (sqlite3_column_type(stmt, i)) {
        case SQLITE_INTEGER:
          row.emplace_back(int64_t{sqlite3_column_int64(stmt, i)});
          break;
        case SQLITE_FLOAT:
          row.emplace_back(sqlite3_column_double(stmt, i));
          break;
        case SQLITE_TEXT:
          row.emplace_back(std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, i)),
                                       static_cast<size_t>(sqlite3_column_bytes(stmt, i))));
          break;
        case SQLITE_BLOB: {
          const void* p = sqlite3_column_blob(stmt, i);
          row.emplace_back(Blob{std::string(static_cast<const char*>(p ? p : ""),
                                            static_cast<size_t>(sqlite3_column_bytes(stmt, i)))});
          break;
        }
        default:
          row.emplace_back(std::monostate{});
      }
    }
    out.rows.emplace_back(std::move(row));
  }
  if (rc != SQLITE_DONE)
    out.error = sqlite3_errmsg(db);
  else
    out.ok = true;
  sqlite3_finalize(stmt);
  if (!out.ok) out.rows.clear();
  return out;
}

Outcome run_carrel(Engine& engine, const ObjectRef& ref, const std::string& sql) {
  Outcome out;
  Status s = engine.run(ref, [&](Context& ctx) {
    auto c = ctx.sql().exec(sql);
    if (!c.is_ok()) return c.status();
    out.columns = c->columns();
    out.rows = c->rows();
    return Status::ok();
  });
  out.ok = s.is_ok();
  if (!out.ok) {
    out.error = s.to_string();
    out.rows.clear();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static uint64_t object_no = 0;
  Engine& engine = *fixture().engine;
  const ObjectRef ref = ObjectRef::named("SqlDiff", std::to_string(++object_no));
  sqlite3* reference = open_reference();
  fuzz::Input in(data, size);
  for (int i = 0; i < 24 && !in.empty(); ++i) {
    const Statement st = statement(in);
    Outcome got = run_carrel(engine, ref, st.sql);
    const bool refused = !got.ok && got.error.find("SQL refused") != std::string::npos;
    if (st.refused) {
      if (!refused) fail("carrel did not refuse '" + st.sql + "': " + (got.ok ? "ok" : got.error));
      continue;
    }
    if (refused) fail("carrel refused an allowed statement '" + st.sql + "': " + got.error);
    Outcome want = run_reference(reference, st.sql);
    if (got.ok != want.ok) {
      fail("'" + st.sql + "': carrel " + (got.ok ? "ok" : got.error) + ", SQLite " +
           (want.ok ? "ok" : want.error));
    }
    if (got.ok && (got.columns != want.columns || got.rows != want.rows)) {
      fail("'" + st.sql + "': rows differ (" + std::to_string(got.rows.size()) + " vs " +
           std::to_string(want.rows.size()) + ")");
    }
  }
  sqlite3_close(reference);
  return 0;
}
