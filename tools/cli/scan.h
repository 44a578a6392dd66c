// Cursor walks over one LMDB database of a read snapshot, for the CLI's
// inspection commands and verify.
#pragma once

#include <lmdb.h>

#include <string>
#include <string_view>

#include "carrel/status.h"
#include "engine/store/checksum.h"
#include "engine/store/store.h"
#include "tools/cli/process_guard.h"

namespace carrel::cli {

class ScanCursor {
 public:
  // REQUIRES: txn outlives the cursor.
  static Result<ScanCursor> open(store::Store& store, const store::ReadTxn& txn, store::Db db) {
    MDB_cursor* c = nullptr;
    int rc = mdb_cursor_open(txn.get(), store.dbi(db), &c);
    if (rc != 0) return store::from_mdb(rc, "open cursor on " + std::string(store::db_name(db)));
    return ScanCursor(c, db);
  }
  ScanCursor(ScanCursor&& o) noexcept : c_(o.c_), db_(o.db_), k_(o.k_), v_(o.v_) { o.c_ = nullptr; }
  ScanCursor& operator=(ScanCursor&&) = delete;
  ~ScanCursor() {
    if (c_ != nullptr) mdb_cursor_close(c_);
  }

  // Each positions the cursor and returns whether it is on an entry;
  // an LMDB error other than not-found is kept in status().
  bool first() { return move(MDB_FIRST); }
  bool last() { return move(MDB_LAST); }
  bool next() { return move(MDB_NEXT); }
  bool prev() { return move(MDB_PREV); }
  // The first entry with key >= k.
  bool seek(std::string_view k) {
    if (k.empty()) return first();  // LMDB refuses an empty key (MDB_BAD_VALSIZE)
    k_ = store::to_val(k);
    return move(MDB_SET_RANGE);
  }
  std::string_view key() const { return store::from_val(k_); }
  // The stored bytes; for a sealed database (checksum.h) use opened().
  std::string_view value() const { return store::from_val(v_); }
  // The value, checked against its checksum when the database is sealed;
  // Corruption naming the object and key or page when it fails.
  Result<std::string_view> opened() const {
    if (!store::is_sealed(db_)) return value();
    return store::open(db_, key(), value());
  }
  const Status& status() const { return status_; }

 private:
  ScanCursor(MDB_cursor* c, store::Db db) : c_(c), db_(db) {}
  bool move(MDB_cursor_op op) {
    if (stop_requested()) {  // invariants (1) and (2) of process_guard.h
      status_ = Status::aborted("scan " + std::string(store::db_name(db_)) + ": " + stop_reason());
      return false;
    }
    int rc = mdb_cursor_get(c_, &k_, &v_, op);
    if (rc == MDB_NOTFOUND) return false;
    if (rc != 0) {
      status_ = store::from_mdb(rc, "scan " + std::string(store::db_name(db_)));
      return false;
    }
    return true;
  }
  MDB_cursor* c_;
  store::Db db_;
  MDB_val k_{}, v_{};
  Status status_;
};

}  // namespace carrel::cli
