// Helpers shared by the SQL tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string_view>
#include <vector>

#include "engine/sql/sql_database.h"
#include "tests/memory_page_source.h"

namespace carrel::testing {

inline std::unique_ptr<sql::SqlDatabase> open_sql(sql::PageSource* pages,
                                                  const sql::SqlLimits& limits = {}) {
  auto db = sql::SqlDatabase::open(pages, limits, "Test:a");
  EXPECT_TRUE(db.is_ok()) << db.status().to_string();
  if (!db.is_ok()) return nullptr;
  return std::move(db).value();
}

// Runs a query that must succeed.
inline SqlCursor must_exec(sql::SqlDatabase* db, std::string_view query,
                           std::vector<SqlValue> args = {}) {
  auto r = db->exec(query, args);
  EXPECT_TRUE(r.is_ok()) << query << ": " << r.status().to_string();
  return r.is_ok() ? std::move(r).value() : SqlCursor{};
}

// The single integer a query returns.
inline int64_t exec_int(sql::SqlDatabase* db, std::string_view query) {
  SqlCursor c = must_exec(db, query);
  auto row = c.one();
  EXPECT_TRUE(row.is_ok()) << query << ": " << row.status().to_string();
  if (!row.is_ok()) return -1;
  auto v = row->get_int(0);
  EXPECT_TRUE(v.is_ok()) << query << ": " << v.status().to_string();
  return v.value_or(-1);
}

inline std::string integrity(sql::SqlDatabase* db) {
  SqlCursor c = must_exec(db, "PRAGMA integrity_check");
  if (c.size() != 1) return "rows: " + std::to_string(c.size());
  return c.rows()[0].get_text(0).value_or("not text");
}

}  // namespace carrel::testing
