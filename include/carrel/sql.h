// carrel/sql.h — one object's SQL database.
//
// Each object has its own SQLite database whose pages live in carrel's LMDB
// store. Statements run inside the current turn's transaction and commit with
// its KV and alarm writes, or not at all. Use ctx.transaction() for nested
// rollback; BEGIN/COMMIT/SAVEPOINT in user SQL are refused.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "carrel/status.h"

namespace carrel {

namespace detail {
class Turn;
}  // namespace detail
class Context;

struct Blob {
  std::string bytes;
  bool operator==(const Blob&) const = default;
};

// null, integer, real, text, blob: SQLite's five storage classes.
using SqlValue = std::variant<std::monostate, int64_t, double, std::string, Blob>;

// Converts the usual C++ argument types to a binding.
template <typename T>
SqlValue to_sql_value(T&& v) {
  using D = std::decay_t<T>;
  if constexpr (std::is_same_v<D, SqlValue>) return std::forward<T>(v);
  else if constexpr (std::is_same_v<D, std::nullptr_t> || std::is_same_v<D, std::monostate>)
    return std::monostate{};
  else if constexpr (std::is_same_v<D, bool>) return int64_t{v ? 1 : 0};
  else if constexpr (std::is_integral_v<D>) return static_cast<int64_t>(v);
  else if constexpr (std::is_floating_point_v<D>) return static_cast<double>(v);
  else if constexpr (std::is_same_v<D, Blob> || std::is_same_v<D, std::string>)
    return std::forward<T>(v);
  else return std::string(std::string_view(v));
}

class SqlRow {
 public:
  SqlRow() = default;
  explicit SqlRow(std::vector<SqlValue> values) : values_(std::move(values)) {}
  size_t size() const { return values_.size(); }
  const SqlValue& operator[](size_t i) const { return values_[i]; }
  const std::vector<SqlValue>& values() const { return values_; }
  bool is_null(size_t i) const { return std::holds_alternative<std::monostate>(values_[i]); }
  // Typed getters: InvalidArgument when the column is out of range or holds another type
  // (an integer converts to double).
  Result<int64_t> get_int(size_t i) const;
  Result<double> get_double(size_t i) const;
  Result<std::string> get_text(size_t i) const;
  Result<std::string> get_blob(size_t i) const;  // a blob's bytes (text also accepted)
  bool operator==(const SqlRow&) const = default;

 private:
  std::vector<SqlValue> values_;
};

// The rows of the last statement of one exec() call, read in full.
class SqlCursor {
 public:
  const std::vector<std::string>& columns() const { return columns_; }
  const std::vector<SqlRow>& rows() const { return rows_; }
  auto begin() const { return rows_.begin(); }
  auto end() const { return rows_.end(); }
  size_t size() const { return rows_.size(); }
  // The single row; InvalidArgument when there are zero or several.
  Result<SqlRow> one() const;
  std::vector<SqlRow> to_vector() const { return rows_; }
  // Rows SQLite read / wrote for all statements of the exec() call.
  uint64_t rows_read() const { return rows_read_; }
  uint64_t rows_written() const { return rows_written_; }

  // Filled by the engine.
  std::vector<std::string> columns_;
  std::vector<SqlRow> rows_;
  uint64_t rows_read_ = 0;
  uint64_t rows_written_ = 0;
};

class Sql {
 public:
  // Runs one or more ';'-separated statements in order; the bindings apply to
  // the last one, whose rows are returned. Errors: InvalidArgument for SQL
  // errors and refusals by the authorizer (the message names the rule).
  template <typename... Args>
  Result<SqlCursor> exec(std::string_view query, Args&&... args) {
    // Not a braced list: its elements would be copied, a text or blob twice.
    std::vector<SqlValue> values;
    values.reserve(sizeof...(Args));
    (values.push_back(to_sql_value(std::forward<Args>(args))), ...);
    return exec_values(query, std::move(values));
  }
  Result<SqlCursor> exec_values(std::string_view query, std::vector<SqlValue> args);
  // Used pages x page size, in bytes.
  Result<uint64_t> database_size();

 private:
  friend class detail::Turn;
  friend class Context;
  explicit Sql(detail::Turn* turn) : turn_(turn) {}
  detail::Turn* turn_;
};

}  // namespace carrel
