#include "engine/sql/sqlite_status.h"

#include <sqlite3.h>

#include <string>

namespace carrel::sql {
namespace {

std::string said(std::string_view prefix, std::string_view message) {
  std::string s(prefix);
  s += message;
  return s;
}

Status io_status(const SqliteFailure& f, bool full) {
  if (f.io_error != nullptr && !f.io_error->is_ok()) {
    return f.io_error->with_context("SQL page I/O");
  }
  return full ? Status::no_space(said("SQL: ", f.message))
              : Status::io_error(said("SQL: ", f.message));
}

}  // namespace

Status status_from_sqlite(const SqliteFailure& f) {
  // SQLite reports a denied function (load_extension) as SQLITE_ERROR "not
  // authorized to use function", not SQLITE_AUTH: the authorizer's reason is
  // still the clear error.
  if ((f.rc & 0xff) == SQLITE_ERROR && !f.refusal.empty()) {
    return Status::invalid_argument(said("SQL refused: ", f.refusal));
  }
  switch (f.rc & 0xff) {
    case SQLITE_AUTH:
      return Status::invalid_argument(
          said("SQL refused: ", f.refusal.empty() ? f.message : f.refusal));
    case SQLITE_TOOBIG:
      return Status::invalid_argument(said("SQL error: ", f.message) + " (sql_value_bytes_max is " +
                                      std::to_string(f.value_bytes_max) +
                                      " bytes; it bounds each value and each row)");
    case SQLITE_NOMEM:
      return Status::aborted("SQL: out of memory");
    case SQLITE_IOERR:
      return io_status(f, /*full=*/false);
    case SQLITE_FULL:
      return io_status(f, /*full=*/true);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::corruption(said("SQL: ", f.message));
    case SQLITE_INTERRUPT:
    case SQLITE_ABORT:
      return Status::aborted(said("SQL: ", f.message));
    default:
      return Status::invalid_argument(said("SQL error: ", f.message));
  }
}

}  // namespace carrel::sql
