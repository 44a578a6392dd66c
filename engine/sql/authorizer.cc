// The authorizer. See authorizer.h for the invariants this file keeps.
#include "engine/sql/authorizer.h"

#include <sqlite3.h>

#include <array>
#include <vector>

#include "engine/sql/sql_text.h"

namespace carrel::sql {
namespace {

constexpr std::string_view kReservedPrefix = "_carrel_";

bool is_reserved(const char* name) {
  if (name == nullptr) return false;
  std::string_view n(name);
  return n.size() >= kReservedPrefix.size() &&
         equals_ci(n.substr(0, kReservedPrefix.size()), kReservedPrefix);
}

// Invariant 3.
std::optional<std::string> name_refusal(const char* name) {
  if (!is_reserved(name)) return std::nullopt;
  return "the name \"" + std::string(name) +
         "\" is reserved: names starting with _carrel_ belong to the engine";
}

std::optional<std::string> names_refusal(const char* a, const char* b) {
  if (auto why = name_refusal(a)) return why;
  return name_refusal(b);
}

// A pragma of the allow-list; read_only ones may not be given a value.
struct PragmaRule {
  std::string_view name;
  bool read_only;
};

constexpr std::array<PragmaRule, 17> kPragmas = {{
    {"table_info", false},
    {"table_xinfo", false},
    {"table_list", false},
    {"index_list", false},
    {"index_info", false},
    {"index_xinfo", false},
    {"foreign_key_list", false},
    {"foreign_key_check", false},
    {"quick_check", false},
    {"integrity_check", false},
    {"optimize", false},
    {"defer_foreign_keys", false},
    {"foreign_keys", true},
    {"data_version", true},
    {"page_count", true},
    {"freelist_count", true},
    {"page_size", true},
}};

std::string allowed_pragmas() {
  std::string s;
  for (const PragmaRule& rule : kPragmas) {
    if (!s.empty()) s += ", ";
    s += rule.name;
  }
  return s;
}

std::optional<std::string> pragma_refusal(const char* name, const char* value) {
  std::string_view n = name != nullptr ? name : "";
  for (const PragmaRule& rule : kPragmas) {
    if (!equals_ci(n, rule.name)) continue;
    if (!rule.read_only || value == nullptr) return std::nullopt;
    if (rule.name == "foreign_keys") {
      return std::string("PRAGMA foreign_keys is read-only: foreign keys are always enforced; ") +
             "use PRAGMA defer_foreign_keys to check them at commit";
    }
    return "PRAGMA " + std::string(rule.name) + " is read-only: it may not be given a value";
  }
  return "PRAGMA " + std::string(n) + " is not allowed (allowed: " + allowed_pragmas() + ")";
}

std::optional<std::string> function_refusal(const char* name) {
  std::string_view n = name != nullptr ? name : "";
  if (equals_ci(n, "load_extension")) {
    return std::string("load_extension() is not allowed: carrel does not load SQLite extensions");
  }
  if (equals_ci(n, "fts3_tokenizer")) {
    return std::string("fts3_tokenizer() is not allowed: it registers native code pointers");
  }
  return std::nullopt;
}

constexpr std::array<std::string_view, 4> kVtabModules = {"fts5", "fts5vocab", "rtree",
                                                          "rtree_i32"};

// Invariant 4.
std::optional<std::string> module_refusal(const char* module) {
  std::string_view m = module != nullptr ? module : "";
  for (std::string_view allowed : kVtabModules) {
    if (equals_ci(m, allowed)) return std::nullopt;
  }
  return "virtual table module " + std::string(m) +
         " is not allowed (allowed: fts5, fts5vocab, rtree, rtree_i32)";
}

const char* kUseTransaction =
    " is not allowed in SQL: each turn runs in one transaction the engine commits; use "
    "ctx.transaction() for nested rollback";

// Actions whose arguments name schema objects (invariant 3).
std::optional<std::string> schema_name_refusal(int action, const char* a1, const char* a2) {
  switch (action) {
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_TEMP_TRIGGER:
      return names_refusal(a1, a2);  // the index or trigger, then its table
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_DROP_VTABLE:
    case SQLITE_INSERT:
    case SQLITE_DELETE:
    case SQLITE_READ:
    case SQLITE_UPDATE:
    case SQLITE_ANALYZE:
    case SQLITE_REINDEX:
      return name_refusal(a1);
    case SQLITE_ALTER_TABLE:
      return name_refusal(a2);  // a1 is the schema
    default:
      return std::nullopt;
  }
}

int authorize(void* user_data, int action, const char* a1, const char* a2, const char*,
              const char*) {
  auto* state = static_cast<AuthorizerState*>(user_data);
  if (state->internal) return SQLITE_OK;  // invariant 5
  try {
    std::optional<std::string> why = refusal_for(action, a1, a2);
    if (!why) return SQLITE_OK;
    if (state->refusal.empty()) state->refusal = std::move(*why);
  } catch (...) {  // allocation failure: refuse, never throw into SQLite
  }
  return SQLITE_DENY;
}

// ALTER TABLE x RENAME TO name: the authorizer sees only the old name.
std::optional<std::string> rename_refusal(const std::vector<SqlToken>& tokens) {
  for (size_t i = 0; i + 2 < tokens.size(); ++i) {
    if (is_keyword(tokens[i], "rename") && is_keyword(tokens[i + 1], "to")) {
      std::string name(tokens[i + 2].text);
      return name_refusal(name.c_str());
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> refusal_for(int action, const char* a1, const char* a2) {
  switch (action) {
    case SQLITE_TRANSACTION:
      return std::string("BEGIN/COMMIT/ROLLBACK") + kUseTransaction;
    case SQLITE_SAVEPOINT:
      return std::string("SAVEPOINT/RELEASE/ROLLBACK TO") + kUseTransaction;
    case SQLITE_ATTACH:
      return std::string("ATTACH is not allowed: an object's SQL sees only its own database");
    case SQLITE_DETACH:
      return std::string("DETACH is not allowed: an object's SQL sees only its own database");
    case SQLITE_PRAGMA:
      return pragma_refusal(a1, a2);
    case SQLITE_FUNCTION:
      return function_refusal(a2);  // a1 is always null
    case SQLITE_CREATE_VTABLE:
      if (auto why = module_refusal(a2)) return why;
      return name_refusal(a1);
    default:
      return schema_name_refusal(action, a1, a2);
  }
}

std::optional<std::string> refusal_for_statement(std::string_view statement) {
  // ALTER TABLE s.x RENAME TO y has at most 8 tokens before the new name.
  std::vector<SqlToken> tokens = first_tokens(statement, 9);
  if (tokens.empty()) return std::nullopt;
  if (is_keyword(tokens[0], "vacuum")) {
    return std::string(
        "VACUUM is not allowed: it cannot run inside the turn's transaction, and VACUUM INTO "
        "would write a file; freed pages are reused by later inserts");
  }
  if (is_keyword(tokens[0], "alter")) return rename_refusal(tokens);
  return std::nullopt;
}

std::optional<std::string> schema_entry_refusal(std::string_view type, const char* name,
                                                const char* tbl_name, std::string_view sql) {
  if (auto why = names_refusal(name, tbl_name)) return why;
  if (type != "table") return std::nullopt;
  // CREATE VIRTUAL TABLE [IF NOT EXISTS] [schema.]name USING module ...
  std::vector<SqlToken> tokens = first_tokens(sql, 12);
  if (tokens.size() < 2 || !is_keyword(tokens[1], "virtual")) return std::nullopt;
  for (size_t i = 2; i + 1 < tokens.size(); ++i) {
    if (is_keyword(tokens[i], "using")) {
      std::string module(tokens[i + 1].text);
      return module_refusal(module.c_str());  // invariant 4
    }
  }
  return "virtual table " + std::string(name != nullptr ? name : "") +
         ": its module cannot be read from its CREATE statement";
}

Status install_authorizer(sqlite3* db, AuthorizerState* state) {
  struct Setting {
    int op;
    int value;
    const char* name;
  };
  const Setting settings[] = {
      {SQLITE_DBCONFIG_DEFENSIVE, 1, "SQLITE_DBCONFIG_DEFENSIVE"},
      {SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, "SQLITE_DBCONFIG_TRUSTED_SCHEMA"},
      {SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, "SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION"},
      {SQLITE_DBCONFIG_ENABLE_TRIGGER, 1, "SQLITE_DBCONFIG_ENABLE_TRIGGER"},
      {SQLITE_DBCONFIG_ENABLE_VIEW, 1, "SQLITE_DBCONFIG_ENABLE_VIEW"},
  };
  for (const Setting& s : settings) {
    int now = -1;
    int rc = sqlite3_db_config(db, s.op, s.value, &now);
    if (rc != SQLITE_OK || now != s.value) {
      return Status::io_error(std::string("SQLite refused ") + s.name + "=" +
                              std::to_string(s.value));
    }
  }
  if (sqlite3_set_authorizer(db, authorize, state) != SQLITE_OK) {
    return Status::io_error("SQLite refused the carrel authorizer");
  }
  return Status::ok();
}

}  // namespace carrel::sql
