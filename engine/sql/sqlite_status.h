// SQLite result codes as carrel Status values.
#pragma once

#include <string_view>

#include "carrel/status.h"

namespace carrel::sql {

// What is known about one failed SQLite call.
struct SqliteFailure {
  int rc = 0;                        // the (extended) result code
  std::string_view message;          // sqlite3_errmsg()
  std::string_view refusal;          // the authorizer's reason, for SQLITE_AUTH
  const Status* io_error = nullptr;  // the PageSource's Status, for I/O errors
  size_t value_bytes_max = 0;        // SqlLimits::value_bytes_max, for SQLITE_TOOBIG
};

// SQL errors and refusals: InvalidArgument; SQLITE_NOMEM: Aborted ("out of
// memory"); SQLITE_IOERR and SQLITE_FULL: the PageSource's Status when there
// is one, else IOError / NoSpace; SQLITE_CORRUPT / SQLITE_NOTADB: Corruption.
Status status_from_sqlite(const SqliteFailure& failure);

}  // namespace carrel::sql
