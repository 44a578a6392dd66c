// SqlDatabase::exec: splitting, preparing (with the statement cache), binding
// and stepping user statements. See sql_database.h for the invariants.
#include <sqlite3.h>

#include <algorithm>
#include <climits>
#include <new>

#include "engine/sql/sql_database.h"
#include "engine/sql/sql_text.h"

namespace carrel::sql {

struct SqlDatabase::Prepared {
  sqlite3_stmt* stmt = nullptr;  // null when the text held no statement
  std::string_view tail;         // the query text after this statement
  bool cached = false;           // owned by the statement cache
};

namespace {

// Returns a statement to its owner even when an exception unwinds exec():
// cached ones are reset with bindings cleared (StatementCache invariant 3),
// the others finalized.
class StatementGuard {
 public:
  StatementGuard(sqlite3_stmt* stmt, bool cached) : stmt_(stmt), cached_(cached) {}
  ~StatementGuard() {
    if (!cached_) {
      sqlite3_finalize(stmt_);
      return;
    }
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StatementGuard(const StatementGuard&) = delete;
  StatementGuard& operator=(const StatementGuard&) = delete;

 private:
  sqlite3_stmt* stmt_;
  bool cached_;
};

// The text is built only on refusal: exec() checks every query it runs.
Status refused(const std::string& label, const std::string& why) {
  return Status::invalid_argument("object " + label + ": " + why);
}

size_t value_bytes(const SqlValue& v) {
  if (const auto* t = std::get_if<std::string>(&v)) return t->size();
  if (const auto* b = std::get_if<Blob>(&v)) return b->bytes.size();
  return 0;
}

// SQLITE_STATIC: the caller's args outlive the statement's use, and the
// bindings are cleared before exec() returns.
int bind_value(sqlite3_stmt* stmt, int index, const SqlValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return sqlite3_bind_int64(stmt, index, *i);
  if (const auto* d = std::get_if<double>(&v)) return sqlite3_bind_double(stmt, index, *d);
  if (const auto* t = std::get_if<std::string>(&v)) {
    return sqlite3_bind_text64(stmt, index, t->data(), t->size(), SQLITE_STATIC, SQLITE_UTF8);
  }
  if (const auto* b = std::get_if<Blob>(&v)) {
    return sqlite3_bind_blob64(stmt, index, b->bytes.data(), b->bytes.size(), SQLITE_STATIC);
  }
  return sqlite3_bind_null(stmt, index);
}

std::string bytes_of(const void* p, int n) {
  return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
}

SqlValue column_value(sqlite3_stmt* stmt, int i) {
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
      return sqlite3_column_int64(stmt, i);
    case SQLITE_FLOAT:
      return sqlite3_column_double(stmt, i);
    case SQLITE_TEXT: {
      const unsigned char* p = sqlite3_column_text(stmt, i);
      return bytes_of(p, sqlite3_column_bytes(stmt, i));
    }
    case SQLITE_BLOB: {
      const void* p = sqlite3_column_blob(stmt, i);
      return Blob{bytes_of(p, sqlite3_column_bytes(stmt, i))};
    }
    default:
      return std::monostate{};
  }
}

SqlRow read_row(sqlite3_stmt* stmt) {
  const int n = sqlite3_column_count(stmt);
  std::vector<SqlValue> values;
  values.reserve(n);
  for (int i = 0; i < n; ++i) values.push_back(column_value(stmt, i));
  return SqlRow(std::move(values));
}

std::vector<std::string> column_names(sqlite3_stmt* stmt) {
  std::vector<std::string> names;
  for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
    const char* name = sqlite3_column_name(stmt, i);
    names.emplace_back(name != nullptr ? name : "");
  }
  return names;
}

}  // namespace

Result<SqlCursor> SqlDatabase::exec(std::string_view query, const std::vector<SqlValue>& args) {
  // A query found in the cache is one statement whose text passed
  // check_query() under these limits when it was prepared: only the bindings
  // are new. This skips scanning the text three times per statement.
  sqlite3_stmt* cached = statements_.find(query);
  CARREL_RETURN_IF_ERROR(cached != nullptr ? check_args(args) : check_query(query, args));
  CARREL_RETURN_IF_ERROR(begin_turn());
  TempBudgetScope temp_scope(&temp_);  // vfs.h invariant 5
  try {
    SqlCursor cursor;
    const int64_t changes_before = sqlite3_total_changes64(db_);
    if (cached != nullptr) {
      StatementGuard guard(cached, /*cached=*/true);
      CARREL_RETURN_IF_ERROR(run(cached, &args, &cursor));
    }
    std::string_view rest = cached != nullptr ? std::string_view() : query;
    while (!holds_no_statement(rest)) {
      CARREL_ASSIGN_OR_RETURN(Prepared p, prepare(rest));
      rest = p.tail;
      if (p.stmt == nullptr) continue;
      StatementGuard guard(p.stmt, p.cached);
      const bool last = holds_no_statement(rest);
      CARREL_RETURN_IF_ERROR(run(p.stmt, last ? &args : nullptr, &cursor));
    }
    cursor.rows_written_ = static_cast<uint64_t>(sqlite3_total_changes64(db_) - changes_before);
    return cursor;
  } catch (const std::bad_alloc&) {
    return Status::aborted("object " + label_ + ": SQL: out of memory");
  }
}

Status SqlDatabase::check_query(std::string_view query, const std::vector<SqlValue>& args) const {
  if (holds_no_statement(query)) return refused(label_, "SQL query is empty");
  // SQLite takes lengths as int; the limit is clamped like SQLITE_LIMIT_SQL_LENGTH.
  const size_t bytes_max = std::min<size_t>(limits_.statement_bytes_max, INT_MAX);
  if (query.size() > bytes_max) {
    return refused(label_, "SQL query is " + std::to_string(query.size()) +
                               " bytes; sql_statement_bytes_max is " + std::to_string(bytes_max));
  }
  // SQLite stops reading at a NUL byte; the rest of the query would never run.
  if (size_t nul = query.find('\0'); nul != std::string_view::npos) {
    return refused(label_, "SQL query has a NUL byte at offset " + std::to_string(nul));
  }
  return check_args(args);
}

Status SqlDatabase::check_args(const std::vector<SqlValue>& args) const {
  if (args.size() > static_cast<size_t>(limits_.params_max)) {
    return refused(label_, std::to_string(args.size()) + " SQL bindings given; sql_params_max is " +
                               std::to_string(limits_.params_max));
  }
  for (size_t i = 0; i < args.size(); ++i) {
    if (value_bytes(args[i]) <= limits_.value_bytes_max) continue;
    return refused(label_, "SQL binding " + std::to_string(i + 1) + " is " +
                               std::to_string(value_bytes(args[i])) +
                               " bytes; sql_value_bytes_max is " +
                               std::to_string(limits_.value_bytes_max));
  }
  return Status::ok();
}

// Prepares the first statement of sql. Only a query that is one statement is
// cached, keyed by its text: a later statement of a multi-statement query may
// depend on the schema changes of the earlier ones.
Result<SqlDatabase::Prepared> SqlDatabase::prepare(std::string_view sql) {
  std::string_view text = sql.substr(skip_space_and_comments(sql, 0));
  Prepared p;
  if ((p.stmt = statements_.find(text)) != nullptr) {
    p.cached = true;
    return p;
  }
  if (auto why = refusal_for_statement(text)) {
    return Status::invalid_argument("object " + label_ + ": SQL refused: " + *why);
  }
  auth_.refusal.clear();
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db_, text.data(), static_cast<int>(text.size()), 0, &p.stmt, &tail);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(p.stmt);
    return error(rc);
  }
  p.tail = text.substr(tail - text.data());
  if (p.stmt == nullptr && p.tail.size() == text.size()) {
    // No statement and no progress: never loop on text SQLite will not consume.
    return Status::invalid_argument("object " + label_ + ": SQL query has text SQLite cannot " +
                                    "split into statements");
  }
  if (p.stmt != nullptr && holds_no_statement(p.tail)) {
    statements_.insert(std::string(text), p.stmt);
    p.cached = true;
  }
  return p;
}

// args: the bindings of the last statement, whose rows go to the cursor;
// null for an earlier statement, which may not have parameters.
Status SqlDatabase::run(sqlite3_stmt* stmt, const std::vector<SqlValue>* args, SqlCursor* cursor) {
  const size_t expected = static_cast<size_t>(sqlite3_bind_parameter_count(stmt));
  const size_t given = args != nullptr ? args->size() : 0;
  if (args == nullptr && expected != 0) {
    return Status::invalid_argument("object " + label_ + ": SQL statement has " +
                                    std::to_string(expected) +
                                    " parameters but is not the last of the query; bindings "
                                    "apply to the last statement only");
  }
  if (expected != given) {
    return Status::invalid_argument("object " + label_ + ": SQL query expects " +
                                    std::to_string(expected) + " bindings; " +
                                    std::to_string(given) + " given");
  }
  if (args != nullptr) CARREL_RETURN_IF_ERROR(bind_all(stmt, *args));
  return step_all(stmt, args != nullptr ? cursor : nullptr, &cursor->rows_read_);
}

Status SqlDatabase::bind_all(sqlite3_stmt* stmt, const std::vector<SqlValue>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    int rc = bind_value(stmt, static_cast<int>(i + 1), args[i]);
    if (rc != SQLITE_OK) return error(rc);
  }
  return Status::ok();
}

// Steps stmt to the end; rows go to `rows_to` unless it is null.
Status SqlDatabase::step_all(sqlite3_stmt* stmt, SqlCursor* rows_to, uint64_t* rows_read) {
  auth_.refusal.clear();
  uint64_t rows = 0;
  int rc = SQLITE_OK;
  // Invariant 7: time inside SQLite counts, when the turn has a time budget;
  // without one the clock is not read (two reads cost 5% of a one-row insert).
  const bool timed = limits_.turn_ms_max != 0;
  if (timed) statement_start_ns_ = now_ns();
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    ++rows;
    if (rows_to != nullptr) rows_to->rows_.push_back(read_row(stmt));
  }
  if (timed) turn_sql_ns_ += now_ns() - statement_start_ns_;
  statement_start_ns_ = 0;
  *rows_read += rows + sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_FULLSCAN_STEP, /*reset=*/1);
  if (rc != SQLITE_DONE) return error(rc);
  if (rows_to != nullptr) rows_to->columns_ = column_names(stmt);
  return Status::ok();
}

}  // namespace carrel::sql
