// Cursor walks over one LMDB database of a read snapshot, for the CLI's
// inspection commands and verify: store::Cursor (engine/store/cursor.h) plus
// the CLI's stop hook, so a long scan ends at Ctrl-C, SIGTERM or a closed pipe.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "carrel/status.h"
#include "engine/store/checksum.h"
#include "engine/store/cursor.h"
#include "tools/cli/process_guard.h"

namespace carrel::cli {

class ScanCursor {
 public:
  // REQUIRES: txn outlives the cursor.
  static Result<ScanCursor> open(store::Store& store, const store::ReadTxn& txn, store::Db db) {
    CARREL_ASSIGN_OR_RETURN(auto c, store::Cursor::open(store, txn, db));
    return ScanCursor(std::move(c));
  }

  // Each positions the cursor and returns whether it is on an entry; an
  // LMDB error other than not-found, or a stop request, is kept in status().
  bool first() { return go() && c_.first(); }
  bool last() { return go() && c_.last(); }
  bool next() { return go() && c_.next(); }
  bool prev() { return go() && c_.prev(); }
  // The first entry with key >= k.
  bool seek(std::string_view k) { return go() && c_.seek(k); }
  std::string_view key() const { return c_.key(); }
  // The stored bytes; for a sealed database (checksum.h) use opened().
  std::string_view value() const { return c_.value(); }
  // The value, checked against its checksum when the database is sealed;
  // Corruption naming the object and key or page when it fails.
  Result<std::string_view> opened() const {
    if (!store::is_sealed(c_.db())) return value();
    return store::open(c_.db(), key(), value());
  }
  const Status& status() const { return stopped_.is_ok() ? c_.status() : stopped_; }

 private:
  explicit ScanCursor(store::Cursor c) : c_(std::move(c)) {}
  bool go() {
    if (!stopped_.is_ok()) return false;
    if (stop_requested()) {  // invariants (1) and (2) of process_guard.h
      stopped_ =
          Status::aborted("scan " + std::string(store::db_name(c_.db())) + ": " + stop_reason());
      return false;
    }
    return true;
  }

  store::Cursor c_;
  Status stopped_;
};

}  // namespace carrel::cli
