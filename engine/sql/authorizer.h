// The rules user SQL must follow, enforced through SQLite's authorizer.
//
// Invariants:
//  (1) User SQL never controls the transaction: BEGIN, COMMIT, ROLLBACK,
//      SAVEPOINT and RELEASE are refused (the engine owns the turn's
//      transaction; ctx.transaction() gives nested rollback).
//  (2) User SQL never reaches outside the object's database: no ATTACH/DETACH,
//      no load_extension, no fts3_tokenizer (it registers C pointers), no
//      VACUUM (VACUUM INTO writes a file; plain VACUUM cannot run inside the
//      turn's transaction), no pragma outside the allow-list.
//  (3) Names starting "_carrel_" (any case) belong to the engine: user SQL may
//      not create, drop, alter, read or write such tables, indexes, triggers
//      or views.
//  (4) Only the FTS5 and R*Tree virtual table modules may be created.
//  (5) The engine's own statements (BEGIN, COMMIT, savepoints, size queries)
//      run with AuthorizerState::internal set and bypass every rule.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "carrel/status.h"

struct sqlite3;

namespace carrel::sql {

// Per connection; owned by SqlDatabase, passed to SQLite as user data.
struct AuthorizerState {
  bool internal = false;  // invariant 5
  // Why the last refused action was refused; read by SqlDatabase to turn
  // SQLITE_AUTH into a clear error. Cleared before each user statement.
  std::string refusal;
};

// The reason the action is refused, or nullopt when it is allowed. Arguments
// are those SQLite passes to the authorizer callback (any may be null).
std::optional<std::string> refusal_for(int action, const char* arg1, const char* arg2);

// The reason to refuse a statement before SQLite sees it (rules the
// authorizer cannot see, such as VACUUM), or nullopt. `statement` is the text
// of one statement.
std::optional<std::string> refusal_for_statement(std::string_view statement);

// The reason a schema entry (one row of sqlite_schema: its type, name,
// tbl_name and CREATE text) breaks invariant 3 or 4, or nullopt. For
// databases that did not come through user SQL, such as imported pages.
std::optional<std::string> schema_entry_refusal(std::string_view type, const char* name,
                                                const char* tbl_name, std::string_view sql);

// Installs the authorizer and the defensive connection settings: defensive
// mode, untrusted schema, no extension loading, triggers and views on.
Status install_authorizer(sqlite3* db, AuthorizerState* state);

}  // namespace carrel::sql
