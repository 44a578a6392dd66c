// One object's SQLite connection, opened on the carrel VFS over its PageSource.
//
// Invariants:
//  (1) Every page SQLite writes goes through the PageSource; the connection
//      never writes to LMDB or the file system (see vfs.h).
//  (2) After commit_turn() returns OK, every page the turn changed has been
//      written with PageSource::write_page (journal_mode=MEMORY,
//      synchronous=OFF: COMMIT writes all dirty pages and syncs nothing).
//  (3) After rollback_turn(), the PageSource holds the database it held before
//      the turn began: pages SQLite spilled mid-turn are written back from the
//      in-memory journal and the file is truncated to its old length. Every
//      page is byte-identical except free-list leaf pages the turn reused:
//      SQLite fetches those "no content" and does not journal them, since it
//      never reads a free page. (The engine may as well drop the turn's pages.)
//  (4) locking_mode=EXCLUSIVE: SQLite trusts its page cache across
//      transactions. The PageSource must change only through this connection.
//      If the engine drops pages this connection wrote (say, an LMDB commit
//      failed after commit_turn), it must destroy this SqlDatabase and open a
//      new one before the next SQL use.
//  (5) User SQL passes the authorizer (authorizer.h); the engine's own
//      statements (BEGIN, COMMIT, savepoints) bypass it.
//  (6) Once SQLite has rolled the whole transaction back by itself (after an
//      I/O error, a full database or out-of-memory), the turn is lost: every
//      call but rollback_turn() fails Aborted until rollback_turn() is called,
//      so a turn can never commit half of its SQL writes.
//  (7) The turn's SQL budget (SqlLimits turn_steps_max, turn_ms_max,
//      temp_bytes_max) is counted from begin_turn(). A statement that runs
//      past it is interrupted and the turn is lost as in (6), whatever the
//      caller does with the error: the budget bounds the whole turn.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "carrel/options.h"
#include "carrel/sql.h"
#include "carrel/status.h"
#include "engine/sql/authorizer.h"
#include "engine/sql/page_source.h"
#include "engine/sql/statement_cache.h"
#include "engine/sql/vfs.h"

struct sqlite3;
struct sqlite3_stmt;

namespace carrel::sql {

// The SQL limits of Options, for one connection.
struct SqlLimits {
  int cache_pages = 256;                     // PRAGMA cache_size (pages)
  size_t statement_bytes_max = 100000;       // SQLITE_LIMIT_SQL_LENGTH, whole exec() query
  int params_max = 999;                      // SQLITE_LIMIT_VARIABLE_NUMBER
  size_t value_bytes_max = size_t{2} << 20;  // SQLITE_LIMIT_LENGTH: a value, and a row
  size_t statements_cached_max = 64;         // prepared statements kept per connection
  // PRAGMA query_only: every write is refused (SQLITE_READONLY), for reading
  // a snapshot beside a running engine.
  bool query_only = false;
  uint64_t turn_steps_max = 0;               // VM steps per turn; 0: no limit
  int64_t turn_ms_max = 0;                   // ms inside SQLite per turn; 0: no limit
  size_t temp_bytes_max = 0;                 // temporary file bytes at once; 0: no limit
  std::function<bool()> interrupt;           // Options::sql_interrupt; empty: never

  static SqlLimits from_options(const Options& options);
};

class SqlDatabase {
 public:
  // Opens the database stored in `pages` (empty pages: a new database).
  // REQUIRES: `pages` outlives the SqlDatabase. `object_label` names the
  // object in error messages. Errors: InvalidArgument for bad limits or a page
  // size SQLite does not support; Corruption when the stored database's page
  // size is not pages->page_bytes(); the PageSource's Status when reading it
  // fails.
  static Result<std::unique_ptr<SqlDatabase>> open(PageSource* pages, const SqlLimits& limits,
                                                   std::string object_label);
  // Closes the connection. An open transaction is rolled back, which may write
  // the pre-turn pages back to the PageSource.
  ~SqlDatabase();
  SqlDatabase(const SqlDatabase&) = delete;
  SqlDatabase& operator=(const SqlDatabase&) = delete;

  // Starts the turn's transaction (BEGIN). OK when one is already open.
  Status begin_turn();
  bool in_turn() const { return state_ == TurnState::kOpen; }
  // Commits the turn's transaction (invariant 2). OK when none is open. On an
  // error nothing is committed and the caller must call rollback_turn().
  Status commit_turn();
  // Rolls the turn's transaction back (invariant 3). Best effort and never
  // fails; when ROLLBACK itself fails the connection is poisoned() and must be
  // reopened.
  void rollback_turn() noexcept;
  // Nested transactions for ctx.transaction(): savepoint `_carrel_sp_<depth>`.
  // savepoint() begins the turn when needed; depth must exceed every open
  // savepoint's. release() keeps the savepoint's writes, rollback_to() undoes
  // them; both end the savepoint and any deeper one. InvalidArgument for a
  // depth that is not open.
  Status savepoint(int depth);
  Status release(int depth);
  Status rollback_to(int depth);

  // Runs the ';'-separated statements of `query` in order inside the turn's
  // transaction (begun if needed). `args` bind to the last statement, whose
  // rows are returned; earlier statements may not have parameters.
  // rows_read = rows returned + rows stepped by full-table scans
  // (SQLITE_STMTSTATUS_FULLSCAN_STEP), over all statements; index seeks count
  // only through the rows they return. rows_written = sqlite3_total_changes64()
  // growth: rows inserted, updated or deleted, including by triggers and
  // foreign key actions. Errors: see sqlite_status.h; InvalidArgument for an
  // empty query, a wrong number of bindings, or a limit (named) exceeded. A
  // failed statement's own writes are undone; the turn goes on.
  Result<SqlCursor> exec(std::string_view query, const std::vector<SqlValue>& args);

  // Bytes in use: (PRAGMA page_count - PRAGMA freelist_count) * page size.
  // Free pages are not counted: later inserts reuse them.
  Result<uint64_t> database_size();

  // True after a failed rollback: SQLite's cache may disagree with the
  // PageSource, so every call fails Aborted; destroy and reopen.
  bool poisoned() const { return poisoned_; }
  const std::string& object_label() const { return label_; }

 private:
  enum class TurnState { kIdle, kOpen, kLost };
  // The turn's own statements, prepared once per connection: every turn runs
  // BEGIN and COMMIT, and parsing them each time cost a third of a point read.
  enum class TxnStatement : uint8_t { kBegin, kCommit, kRollback };
  static constexpr size_t kTxnStatements = 3;
  struct Prepared;

  SqlDatabase(PageSource* pages, const SqlLimits& limits, std::string label);
  Status connect();
  Status configure();
  Status apply_pragmas();
  Status check_page_size();
  Status usable() const;
  Status check_query(std::string_view query, const std::vector<SqlValue>& args) const;
  Status check_args(const std::vector<SqlValue>& args) const;  // check_query's bindings part
  Result<Prepared> prepare(std::string_view sql);
  Status run(sqlite3_stmt* stmt, const std::vector<SqlValue>* args, SqlCursor* cursor);
  Status bind_all(sqlite3_stmt* stmt, const std::vector<SqlValue>& args);
  Status step_all(sqlite3_stmt* stmt, SqlCursor* rows_to, uint64_t* rows_read);
  Status run_internal(const std::string& sql);
  Status run_txn(TxnStatement which);
  Result<int64_t> query_internal_int(const char* sql);
  Status error(int rc);
  void note_lost_turn();
  static int on_progress(void* self);
  static int64_t now_ns();  // coarse monotonic clock (invariant 7)

  PageFileBinding binding_;  // address given to the VFS: SqlDatabase never moves
  std::unique_ptr<PageFileRegistration> registration_;
  AuthorizerState auth_;  // address given to SQLite
  SqlLimits limits_;
  std::string label_;
  sqlite3* db_ = nullptr;
  // Finalized by ~SqlDatabase before the connection closes.
  StatementCache statements_;
  sqlite3_stmt* txn_statements_[kTxnStatements] = {};  // by TxnStatement; null until first use
  TurnState state_ = TurnState::kIdle;
  std::vector<int> savepoints_;  // open savepoint depths, innermost last
  // Invariant 7, for the current turn.
  TempBudget temp_;                 // address given to the VFS
  uint64_t turn_ticks_ = 0;         // progress-handler calls (kStepsPerTick steps each)
  int64_t turn_sql_ns_ = 0;         // time inside finished statements
  int64_t statement_start_ns_ = 0;  // steady clock at the running statement's start; 0: none
  std::string budget_refusal_;      // why the budget stopped the turn; "" while it has not
  bool poisoned_ = false;
};

}  // namespace carrel::sql
