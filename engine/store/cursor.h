// A cursor over one LMDB database, closed when it goes out of scope. It
// walks read and write transactions alike; del() needs a write transaction.
// (GroupWriter keeps its own cursors open for a whole group on purpose,
// engine/commit/group_writer.h (5).)
//
// Errors: a move returns whether the cursor is on an entry; MDB_NOTFOUND is
// simply false, any other LMDB error is false and kept in status(), so a walk
// ends the same way whether it ran out or failed, and the caller checks
// status() once after it.
#pragma once

#include <lmdb.h>

#include <string>
#include <string_view>

#include "carrel/status.h"
#include "engine/store/store.h"

namespace carrel::store {

class Cursor {
 public:
  // REQUIRES: txn (a read or write transaction of store) outlives the cursor.
  static Result<Cursor> open(MDB_txn* txn, MDB_dbi dbi, Db db) {
    MDB_cursor* c = nullptr;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc != 0) return from_mdb(rc, "open cursor on " + std::string(db_name(db)));
    return Cursor(c, db);
  }
  static Result<Cursor> open(Store& store, MDB_txn* txn, Db db) {
    return open(txn, store.dbi(db), db);
  }
  static Result<Cursor> open(Store& store, const ReadTxn& txn, Db db) {
    return open(store, txn.get(), db);
  }
  Cursor(Cursor&& o) noexcept
      : c_(o.c_), db_(o.db_), k_(o.k_), v_(o.v_), status_(std::move(o.status_)) {
    o.c_ = nullptr;
  }
  Cursor& operator=(Cursor&&) = delete;
  ~Cursor() {
    if (c_ != nullptr) mdb_cursor_close(c_);
  }

  bool first() { return move(MDB_FIRST); }
  bool last() { return move(MDB_LAST); }
  bool next() { return move(MDB_NEXT); }
  bool prev() { return move(MDB_PREV); }
  // The first entry with key >= k.
  bool seek(std::string_view k) {
    if (k.empty()) return first();  // LMDB refuses an empty key (MDB_BAD_VALSIZE)
    k_ = to_val(k);
    return move(MDB_SET_RANGE);
  }
  // Deletes the entry the cursor is on (REQUIRES: a write transaction); a
  // next() then goes to the entry after it.
  [[nodiscard]] Status del() {
    int rc = mdb_cursor_del(c_, 0);
    if (rc == 0) return Status::ok();
    return from_mdb(rc, "delete from " + std::string(db_name(db_)));
  }
  // Valid while the cursor stays on the entry and the transaction is open.
  std::string_view key() const { return from_val(k_); }
  std::string_view value() const { return from_val(v_); }
  Db db() const { return db_; }
  // The first LMDB error a move met (not-found is no error).
  const Status& status() const { return status_; }

 private:
  Cursor(MDB_cursor* c, Db db) : c_(c), db_(db) {}
  // Inline and lean: a list's merge steps through every entry with it.
  bool move(MDB_cursor_op op) {
    if (__builtin_expect(!status_.is_ok(), 0)) return false;
    int rc = mdb_cursor_get(c_, &k_, &v_, op);
    if (__builtin_expect(rc == 0, 1)) return true;
    if (rc != MDB_NOTFOUND) fail(rc);
    return false;
  }
  [[gnu::cold]] [[gnu::noinline]] void fail(int rc) {
    status_ = from_mdb(rc, "scan " + std::string(db_name(db_)));
  }

  MDB_cursor* c_;
  Db db_;
  MDB_val k_{}, v_{};
  Status status_;
};

}  // namespace carrel::store
