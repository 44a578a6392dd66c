// Checks of a SQLite database image before it is imported. See image_check.h.
#include "engine/sql/image_check.h"

#include <sqlite3.h>

#include <cstring>
#include <memory>
#include <string>

#include "engine/sql/authorizer.h"

namespace carrel::sql {
namespace {

constexpr char kHeader[] = "SQLite format 3";  // and its NUL: 16 bytes
constexpr size_t kHeaderBytes = 100;
constexpr int kIntegrityErrorsMax = 5;  // integrity_check stops after this many

struct CloseDb {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct FinalizeStmt {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Db = std::unique_ptr<sqlite3, CloseDb>;
using Stmt = std::unique_ptr<sqlite3_stmt, FinalizeStmt>;

Status bad(std::string what) {
  return Status::invalid_argument("the SQL database " + std::move(what));
}

std::string text_of(sqlite3_stmt* s, int col) {
  const unsigned char* t = sqlite3_column_text(s, col);
  return t != nullptr ? reinterpret_cast<const char*>(t) : "";
}

// The 100-byte header: magic, page size, and rollback-journal file format.
Status check_header(std::string_view image, uint32_t page_bytes) {
  if (image.size() < kHeaderBytes || std::memcmp(image.data(), kHeader, sizeof(kHeader)) != 0) {
    return bad("is not a SQLite database: page 0 does not start with \"SQLite format 3\"");
  }
  auto byte = [&](size_t i) { return static_cast<unsigned char>(image[i]); };
  uint32_t size = (uint32_t{byte(16)} << 8) | byte(17);
  if (size == 1) size = 65536;
  if (size != page_bytes) {
    return bad("has " + std::to_string(size) + "-byte pages; this engine's sql_page_bytes is " +
               std::to_string(page_bytes));
  }
  if (byte(18) != 1 || byte(19) != 1) {
    return bad("is in WAL mode (file format " + std::to_string(byte(18)) + "/" +
               std::to_string(byte(19)) +
               "); run PRAGMA journal_mode=DELETE on it before importing it");
  }
  return Status::ok();
}

Result<Db> open_image(std::string_view image, AuthorizerState* auth) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK)
    return Status::aborted("cannot open SQLite in memory: " + std::string(sqlite3_errstr(rc)));
  auto* copy = static_cast<unsigned char*>(sqlite3_malloc64(image.size()));
  if (copy == nullptr) return Status::aborted("out of memory copying the SQL database");
  std::memcpy(copy, image.data(), image.size());
  rc = sqlite3_deserialize(db.get(), "main", copy, static_cast<sqlite3_int64>(image.size()),
                           static_cast<sqlite3_int64>(image.size()),
                           SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_READONLY);
  if (rc != SQLITE_OK) return bad("cannot be read: " + std::string(sqlite3_errmsg(db.get())));
  // After deserialize, which attaches internally: the image is read under the
  // same rules and defensive settings as user SQL.
  CARREL_RETURN_IF_ERROR(install_authorizer(db.get(), auth));
  return db;
}

Result<Stmt> prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
  Stmt stmt(raw);
  if (rc != SQLITE_OK) return bad("is damaged: " + std::string(sqlite3_errmsg(db)));
  return stmt;
}

// Authorizer invariants 3 and 4, applied to every schema entry.
Status check_schema(sqlite3* db) {
  CARREL_ASSIGN_OR_RETURN(Stmt s,
                          prepare(db, "SELECT type, name, tbl_name, sql FROM sqlite_schema"));
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    std::string type = text_of(s.get(), 0), name = text_of(s.get(), 1);
    std::string table = text_of(s.get(), 2), sql = text_of(s.get(), 3);
    if (auto why = schema_entry_refusal(type, name.c_str(), table.c_str(), sql)) {
      return bad("has " + type + " \"" + name + "\", which SQL would refuse: " + *why);
    }
  }
  if (rc != SQLITE_DONE) return bad("is damaged: " + std::string(sqlite3_errmsg(db)));
  return Status::ok();
}

Status check_pages(sqlite3* db, uint64_t pages_given) {
  CARREL_ASSIGN_OR_RETURN(Stmt s, prepare(db, "PRAGMA page_count"));
  if (sqlite3_step(s.get()) != SQLITE_ROW)
    return bad("is damaged: " + std::string(sqlite3_errmsg(db)));
  auto counted = static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0));
  if (counted != pages_given) {
    return bad("counts " + std::to_string(counted) + " pages but " + std::to_string(pages_given) +
               " were given");
  }
  return Status::ok();
}

Status check_integrity(sqlite3* db) {
  std::string sql = "PRAGMA integrity_check(" + std::to_string(kIntegrityErrorsMax) + ")";
  CARREL_ASSIGN_OR_RETURN(Stmt s, prepare(db, sql.c_str()));
  std::string problems;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    std::string row = text_of(s.get(), 0);
    if (row == "ok") continue;
    problems += problems.empty() ? row : "; " + row;
  }
  if (rc != SQLITE_DONE) return bad("is damaged: " + std::string(sqlite3_errmsg(db)));
  if (!problems.empty()) return bad("fails PRAGMA integrity_check: " + problems);
  return Status::ok();
}

}  // namespace

Status check_database_image(std::string_view image, uint32_t page_bytes) {
  if (image.empty()) return Status::ok();
  CARREL_RETURN_IF_ERROR(check_header(image, page_bytes));
  AuthorizerState auth;
  CARREL_ASSIGN_OR_RETURN(Db db, open_image(image, &auth));
  CARREL_RETURN_IF_ERROR(check_schema(db.get()));
  CARREL_RETURN_IF_ERROR(check_pages(db.get(), image.size() / page_bytes));
  return check_integrity(db.get());
}

}  // namespace carrel::sql
