// SqlDatabase: opening, configuration and the turn's transaction. Statement
// execution is in sql_exec.cc. See sql_database.h for the invariants.
#include "engine/sql/sql_database.h"

#include <sqlite3.h>
#include <time.h>

#include <algorithm>
#include <climits>

#include "engine/sql/sqlite_status.h"

namespace carrel::sql {
namespace {

// Runs the engine's own SQL past the authorizer (invariant 5).
class InternalScope {
 public:
  explicit InternalScope(AuthorizerState* auth) : auth_(auth) { auth_->internal = true; }
  ~InternalScope() { auth_->internal = false; }
  InternalScope(const InternalScope&) = delete;
  InternalScope& operator=(const InternalScope&) = delete;

 private:
  AuthorizerState* auth_;
};

Status check_limits(const SqlLimits& limits, uint32_t page_bytes) {
  if (page_bytes < 512 || page_bytes > 65536 || (page_bytes & (page_bytes - 1)) != 0) {
    return Status::invalid_argument("sql_page_bytes is " + std::to_string(page_bytes) +
                                    "; SQLite needs a power of two from 512 to 65536");
  }
  if (limits.cache_pages < 10) {
    return Status::invalid_argument("sql_cache_pages is " + std::to_string(limits.cache_pages) +
                                    "; it must be at least 10");
  }
  if (limits.params_max < 1 || limits.statement_bytes_max < 1 || limits.value_bytes_max < 1 ||
      limits.statements_cached_max < 1) {
    return Status::invalid_argument(
        "sql_params_max, sql_statement_bytes_max and sql_value_bytes_max must be positive");
  }
  return Status::ok();
}

// The progress handler runs every this many virtual-machine steps: cheap
// enough to leave on, fine enough to stop a runaway statement at once.
constexpr int kStepsPerTick = 1000;

int clamp_to_int(size_t v) {
  return static_cast<int>(std::min<size_t>(v, INT_MAX));
}

std::string savepoint_name(int depth) {
  return "_carrel_sp_" + std::to_string(depth);
}

}  // namespace

SqlLimits SqlLimits::from_options(const Options& options) {
  SqlLimits limits;
  limits.cache_pages = options.sql_cache_pages;
  limits.statement_bytes_max = options.sql_statement_bytes_max;
  limits.params_max = options.sql_params_max;
  limits.value_bytes_max = options.sql_value_bytes_max;
  limits.turn_steps_max = options.sql_turn_steps_max;
  limits.turn_ms_max = options.sql_turn_ms_max;
  limits.temp_bytes_max = options.sql_temp_bytes_max;
  limits.interrupt = options.sql_interrupt;
  return limits;
}

SqlDatabase::SqlDatabase(PageSource* pages, const SqlLimits& limits, std::string label)
    : limits_(limits), label_(std::move(label)), statements_(limits.statements_cached_max) {
  binding_.pages = pages;
}

SqlDatabase::~SqlDatabase() {
  statements_.clear();  // sqlite3_close_v2 would otherwise defer the close
  // Likewise (finalizing null is a no-op).
  for (sqlite3_stmt* stmt : txn_statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);  // rolls back an open transaction; null is a no-op
}

Result<std::unique_ptr<SqlDatabase>> SqlDatabase::open(PageSource* pages, const SqlLimits& limits,
                                                       std::string object_label) {
  CARREL_RETURN_IF_ERROR(check_limits(limits, pages->page_bytes()));
  CARREL_RETURN_IF_ERROR(register_vfs());
  std::unique_ptr<SqlDatabase> db(new SqlDatabase(pages, limits, std::move(object_label)));
  CARREL_RETURN_IF_ERROR(db->connect());
  CARREL_RETURN_IF_ERROR(db->configure());
  return Result<std::unique_ptr<SqlDatabase>>(std::move(db));
}

Status SqlDatabase::connect() {
  registration_ = std::make_unique<PageFileRegistration>(&binding_);
  // NOMUTEX: one worker uses a connection at a time (the object's owner).
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                    SQLITE_OPEN_PRIVATECACHE | SQLITE_OPEN_EXRESCODE;
  int rc = sqlite3_open_v2(registration_->file_name().c_str(), &db_, flags, kVfsName);
  if (rc != SQLITE_OK) return error(rc);
  return Status::ok();
}

Status SqlDatabase::configure() {
  CARREL_RETURN_IF_ERROR(install_authorizer(db_, &auth_).with_context("object " + label_));
  int fkeys = 0, dqs_dml = 1, dqs_ddl = 1;
  // Foreign keys are enforced (PRAGMA foreign_keys is read-only to users: it
  // cannot change inside the turn's transaction anyway). Double-quoted string
  // literals are off, as SQLite recommends: "x" is always an identifier.
  sqlite3_db_config(db_, SQLITE_DBCONFIG_ENABLE_FKEY, 1, &fkeys);
  sqlite3_db_config(db_, SQLITE_DBCONFIG_DQS_DML, 0, &dqs_dml);
  sqlite3_db_config(db_, SQLITE_DBCONFIG_DQS_DDL, 0, &dqs_ddl);
  if (fkeys != 1 || dqs_dml != 0 || dqs_ddl != 0) {
    return Status::io_error("object " + label_ + ": SQLite refused the connection settings");
  }
  sqlite3_limit(db_, SQLITE_LIMIT_SQL_LENGTH, clamp_to_int(limits_.statement_bytes_max));
  sqlite3_limit(db_, SQLITE_LIMIT_VARIABLE_NUMBER, limits_.params_max);
  sqlite3_limit(db_, SQLITE_LIMIT_LENGTH, clamp_to_int(limits_.value_bytes_max));
  sqlite3_limit(db_, SQLITE_LIMIT_ATTACHED, 0);
  // Invariant 7.
  temp_.bytes_max = limits_.temp_bytes_max;
  if (limits_.turn_steps_max != 0 || limits_.turn_ms_max != 0 || limits_.interrupt) {
    sqlite3_progress_handler(db_, kStepsPerTick, on_progress, this);
  }
  CARREL_RETURN_IF_ERROR(apply_pragmas());
  return check_page_size();
}

Status SqlDatabase::apply_pragmas() {
  // page_size only takes effect on an empty database; auto_vacuum likewise
  // (NONE: free pages are reused, never returned; see docs/sql.md).
  // temp_store=FILE: temporary files are the VFS's in-memory buffers, which
  // count against sql_temp_bytes_max (vfs.h invariant 5); MEMORY would grow
  // SQLite's heap without a bound.
  const std::string pragmas = "PRAGMA page_size=" + std::to_string(binding_.pages->page_bytes()) +
                              ";PRAGMA auto_vacuum=NONE"
                              ";PRAGMA locking_mode=EXCLUSIVE"
                              ";PRAGMA journal_mode=MEMORY"
                              ";PRAGMA synchronous=OFF"
                              ";PRAGMA temp_store=FILE"
                              ";PRAGMA secure_delete=OFF"
                              ";PRAGMA cache_spill=ON"
                              ";PRAGMA cache_size=" +
                              std::to_string(limits_.cache_pages) +
                              (limits_.query_only ? ";PRAGMA query_only=ON" : "");
  CARREL_RETURN_IF_ERROR(run_internal(pragmas));
  InternalScope internal(&auth_);
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, "PRAGMA journal_mode", -1, &stmt, nullptr);
  std::string mode;
  if (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    if (text != nullptr) mode = reinterpret_cast<const char*>(text);
  }
  sqlite3_finalize(stmt);
  if (mode != "memory") {
    return Status::io_error("object " + label_ + ": SQLite kept journal_mode " + mode +
                            "; carrel needs memory");
  }
  return Status::ok();
}

// The stored database's page size is fixed when it is created; a mismatch
// means the pages belong to another configuration (PageSource invariant 3).
Status SqlDatabase::check_page_size() {
  CARREL_ASSIGN_OR_RETURN(int64_t page_size, query_internal_int("PRAGMA page_size"));
  if (page_size != binding_.pages->page_bytes()) {
    return Status::corruption("object " + label_ + ": SQL database page size is " +
                              std::to_string(page_size) + " bytes; its page set holds " +
                              std::to_string(binding_.pages->page_bytes()) + "-byte pages");
  }
  return Status::ok();
}

Status SqlDatabase::usable() const {
  if (poisoned_) {
    return Status::aborted("object " + label_ +
                           ": SQL connection is poisoned after a failed rollback; reopen it");
  }
  if (state_ == TurnState::kLost && !budget_refusal_.empty()) {
    return Status::aborted("object " + label_ + ": the turn's SQL budget is spent (" +
                           budget_refusal_ + "); the turn must fail");
  }
  if (state_ == TurnState::kLost) {
    return Status::aborted("object " + label_ +
                           ": the turn's SQL transaction was rolled back after an earlier "
                           "error; the turn must fail");
  }
  return Status::ok();
}

Status SqlDatabase::begin_turn() {
  CARREL_RETURN_IF_ERROR(usable());
  if (state_ == TurnState::kOpen) return Status::ok();
  CARREL_RETURN_IF_ERROR(run_txn(TxnStatement::kBegin));
  state_ = TurnState::kOpen;
  turn_ticks_ = 0;  // invariant 7: the budget is the turn's
  turn_sql_ns_ = 0;
  statement_start_ns_ = 0;
  budget_refusal_.clear();
  temp_.exceeded = false;
  return Status::ok();
}

Status SqlDatabase::commit_turn() {
  CARREL_RETURN_IF_ERROR(usable());
  if (state_ == TurnState::kIdle) return Status::ok();
  CARREL_RETURN_IF_ERROR(run_txn(TxnStatement::kCommit));
  state_ = TurnState::kIdle;
  savepoints_.clear();
  return Status::ok();
}

void SqlDatabase::rollback_turn() noexcept {
  savepoints_.clear();
  state_ = TurnState::kIdle;
  if (db_ == nullptr || sqlite3_get_autocommit(db_)) return;
  try {
    Status st = run_txn(TxnStatement::kRollback);
    if (!st.is_ok() || !sqlite3_get_autocommit(db_)) poisoned_ = true;
  } catch (...) {
    poisoned_ = true;
  }
  state_ = TurnState::kIdle;  // run_internal may have marked the turn lost
}

Status SqlDatabase::savepoint(int depth) {
  CARREL_RETURN_IF_ERROR(begin_turn());
  if (!savepoints_.empty() && depth <= savepoints_.back()) {
    return Status::invalid_argument("savepoint depth " + std::to_string(depth) +
                                    " must exceed the innermost open depth " +
                                    std::to_string(savepoints_.back()));
  }
  CARREL_RETURN_IF_ERROR(run_internal("SAVEPOINT " + savepoint_name(depth)));
  savepoints_.push_back(depth);
  return Status::ok();
}

Status SqlDatabase::release(int depth) {
  CARREL_RETURN_IF_ERROR(usable());
  auto it = std::find(savepoints_.begin(), savepoints_.end(), depth);
  if (it == savepoints_.end()) {
    return Status::invalid_argument("no SQL savepoint is open at depth " + std::to_string(depth));
  }
  CARREL_RETURN_IF_ERROR(run_internal("RELEASE " + savepoint_name(depth)));
  savepoints_.erase(it, savepoints_.end());
  return Status::ok();
}

Status SqlDatabase::rollback_to(int depth) {
  CARREL_RETURN_IF_ERROR(usable());
  auto it = std::find(savepoints_.begin(), savepoints_.end(), depth);
  if (it == savepoints_.end()) {
    return Status::invalid_argument("no SQL savepoint is open at depth " + std::to_string(depth));
  }
  const std::string name = savepoint_name(depth);
  CARREL_RETURN_IF_ERROR(run_internal("ROLLBACK TO " + name + ";RELEASE " + name));
  savepoints_.erase(it, savepoints_.end());
  return Status::ok();
}

Result<uint64_t> SqlDatabase::database_size() {
  CARREL_RETURN_IF_ERROR(usable());
  CARREL_ASSIGN_OR_RETURN(int64_t pages, query_internal_int("PRAGMA page_count"));
  CARREL_ASSIGN_OR_RETURN(int64_t free_pages, query_internal_int("PRAGMA freelist_count"));
  return static_cast<uint64_t>(pages - free_pages) * binding_.pages->page_bytes();
}

Status SqlDatabase::run_internal(const std::string& sql) {
  InternalScope internal(&auth_);
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return error(rc);
  return Status::ok();
}

// Prepares the statement on first use, then steps and resets it; as
// run_internal, past the authorizer (invariant 5), which SQLite also consults
// when a schema change makes it prepare the statement again inside step.
Status SqlDatabase::run_txn(TxnStatement which) {
  static constexpr const char* kText[kTxnStatements] = {"BEGIN", "COMMIT", "ROLLBACK"};
  const size_t i = static_cast<size_t>(which);
  InternalScope internal(&auth_);
  sqlite3_stmt*& stmt = txn_statements_[i];
  if (stmt == nullptr) {
    int rc = sqlite3_prepare_v3(db_, kText[i], -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return error(rc);
  }
  int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  if (rc != SQLITE_DONE) return error(rc);
  return Status::ok();
}

Result<int64_t> SqlDatabase::query_internal_int(const char* sql) {
  InternalScope internal(&auth_);
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return error(rc);
  rc = sqlite3_step(stmt);
  int64_t value = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW) return error(rc == SQLITE_DONE ? SQLITE_ERROR : rc);
  return value;
}

// Invariant 6: SQLite rolls the whole transaction back on some errors.
void SqlDatabase::note_lost_turn() {
  if (state_ == TurnState::kOpen && db_ != nullptr && sqlite3_get_autocommit(db_)) {
    state_ = TurnState::kLost;
    savepoints_.clear();
  }
}

// Invariant 7's clock: exec() reads it before and after every statement, so
// it is the coarse monotonic clock (resolution a few ms; here 10 ns a read
// against 46 ns for CLOCK_MONOTONIC, which cost 6% of a 100-insert turn). The
// budget is in ms: a runaway statement is still stopped within one tick of
// it, and short statements add whole ticks as often as they straddle one, so
// a turn's total is right on average.
int64_t SqlDatabase::now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Invariant 7. Runs inside sqlite3_step: must not throw.
int SqlDatabase::on_progress(void* self) {
  auto* db = static_cast<SqlDatabase*>(self);
  if (db->auth_.internal) return 0;  // COMMIT and ROLLBACK always finish
  try {
    const SqlLimits& l = db->limits_;
    ++db->turn_ticks_;
    if (l.interrupt && l.interrupt()) {
      db->budget_refusal_ =
          "stopped on request (Options::sql_interrupt; the carrel REPL sets it on Ctrl-C)";
      return 1;
    }
    if (l.turn_steps_max != 0 && db->turn_ticks_ * kStepsPerTick > l.turn_steps_max) {
      db->budget_refusal_ = "the turn's SQL ran more than sql_turn_steps_max (" +
                            std::to_string(l.turn_steps_max) +
                            ") SQLite steps; raise the option or bound the query";
      return 1;
    }
    if (l.turn_ms_max != 0 && db->statement_start_ns_ != 0 &&
        db->turn_sql_ns_ + (now_ns() - db->statement_start_ns_) > l.turn_ms_max * 1000000) {
      db->budget_refusal_ = "the turn's SQL ran longer than sql_turn_ms_max (" +
                            std::to_string(l.turn_ms_max) +
                            " ms); raise the option or bound the query";
      return 1;
    }
  } catch (...) {
    return 1;  // out of memory: stop the statement
  }
  return 0;
}

Status SqlDatabase::error(int rc) {
  if (temp_.exceeded) {
    temp_.exceeded = false;
    budget_refusal_ = "the statement needed more than sql_temp_bytes_max (" +
                      std::to_string(limits_.temp_bytes_max) +
                      " bytes) of temporary storage for sorts, materialised subqueries and CTEs, "
                      "or temp tables; raise the option or bound the query";
  }
  const int primary = rc & 0xff;
  if (!budget_refusal_.empty() && (primary == SQLITE_INTERRUPT || primary == SQLITE_FULL)) {
    // Invariant 7: the turn is lost whatever the caller does with the error.
    auth_.refusal.clear();
    binding_.io_error = Status::ok();
    if (state_ == TurnState::kOpen) state_ = TurnState::kLost;
    return Status::aborted("object " + label_ + ": SQL interrupted: " + budget_refusal_ +
                           "; the turn's SQL is rolled back");
  }
  SqliteFailure failure;
  failure.rc = rc;
  failure.message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  failure.refusal = auth_.refusal;
  failure.io_error = &binding_.io_error;
  failure.value_bytes_max = limits_.value_bytes_max;
  Status st = status_from_sqlite(failure).with_context("object " + label_);
  auth_.refusal.clear();
  binding_.io_error = Status::ok();
  note_lost_turn();
  if (state_ == TurnState::kLost) {
    st = Status(
        st.code(),
        st.message() + " (SQLite rolled the turn's SQL transaction back; the turn must fail)",
        st.detail());
  }
  return st;
}

}  // namespace carrel::sql
