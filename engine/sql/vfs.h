// carrel's SQLite VFS: the main database file of a connection is a PageSource.
//
// Invariants:
//  (1) The VFS never writes to LMDB, and never touches the file system. The
//      main database file reads and writes its PageSource; every other file
//      SQLite asks for (journals, temp databases) is a private in-memory buffer.
//  (2) A main database file is only opened through a PageFileRegistration,
//      which maps a unique file name to a PageFileBinding for as long as the
//      registration lives. An unknown name fails xOpen with SQLITE_CANTOPEN.
//  (3) When a PageSource call fails, its Status is kept in the binding
//      (PageFileBinding::io_error) before the VFS returns an SQLite I/O error
//      code, so the caller can report the real cause instead of "disk I/O error".
//  (4) Locking, sync and xAccess are no-ops: the connection runs with
//      locking_mode=EXCLUSIVE and journal_mode=MEMORY, so no other process
//      shares the file and no journal ever exists outside memory.
//  (5) Every other file counts its bytes against the TempBudget of the scope
//      it was opened in, if any; a write that would pass the budget's
//      bytes_max fails SQLITE_FULL and sets TempBudget::exceeded.
#pragma once

#include <string>

#include "carrel/status.h"
#include "engine/sql/page_source.h"

namespace carrel::sql {

// The VFS name to pass to sqlite3_open_v2().
inline constexpr const char* kVfsName = "carrel";

// Registers the carrel VFS with SQLite (not as the default VFS). Thread-safe and
// idempotent: the first call registers, later calls return its result.
Status register_vfs();

// What one open main database file refers to. Owned by the connection's owner
// (SqlDatabase); must outlive the SQLite connection that opened it.
struct PageFileBinding {
  PageSource* pages = nullptr;
  // The Status of the last failed PageSource call (invariant 3); ok otherwise.
  // Written by the VFS, read and cleared by the owner.
  Status io_error;
};

// The bytes of temporary files (sorts, materialised subqueries and CTEs, temp
// tables, statement journals) one connection may hold at once (invariant 5).
// Owned by the connection's owner; must outlive the SQLite connection.
struct TempBudget {
  size_t bytes_max = 0;   // 0: no limit
  size_t bytes_used = 0;  // kept by the VFS
  bool exceeded = false;  // set by the VFS; read and cleared by the owner
};

// While it lives, files SQLite opens on this thread count against `budget`.
class TempBudgetScope {
 public:
  explicit TempBudgetScope(TempBudget* budget);
  ~TempBudgetScope();
  TempBudgetScope(const TempBudgetScope&) = delete;
  TempBudgetScope& operator=(const TempBudgetScope&) = delete;

 private:
  TempBudget* previous_;
};

// Maps a fresh, process-unique file name to a binding for its lifetime
// (invariant 2). Thread-safe.
class PageFileRegistration {
 public:
  explicit PageFileRegistration(PageFileBinding* binding);
  ~PageFileRegistration();
  PageFileRegistration(const PageFileRegistration&) = delete;
  PageFileRegistration& operator=(const PageFileRegistration&) = delete;

  // The name to open with the carrel VFS, e.g. "carrel-page-file-17".
  const std::string& file_name() const { return file_name_; }

 private:
  std::string file_name_;
};

}  // namespace carrel::sql
