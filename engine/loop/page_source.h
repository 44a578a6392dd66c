// ObjectPageSource: one object's SQL pages, as seen by its current turn; and
// ObjectSql, the page source with the connection that reads through it.
//
// Invariants (see also engine/sql/page_source.h):
//  (1) Writes land in turn_pages_ only; take_turn_writes() hands them to the
//      turn's commit batch (and keeps them as pending until prune() sees the
//      commit durable), discard_turn_writes() drops them. Nothing here writes
//      to LMDB.
//  (2) Reads look in turn_pages_, then the pending pages of sealed commits not
//      yet durable, then the turn's LMDB snapshot. A page marked deleted
//      (truncated away) in a newer layer reads as absent even when an older
//      layer has it.
//  (3) The source holds everything it reads but the snapshot: no pointer into
//      the activation that owns it, so the activation may move freely.
//  (4) The page count bound by begin_turn() is the object's count after its
//      last sealed commit (Activation::sql_pages, kept by the turn: no lookup
//      of the object record per turn). take_turn_writes() advances the bound
//      count to the batch's, so the rest of the turn (after a ctx.call) reads
//      the file at its new length.
#pragma once

#include <map>
#include <optional>

#include "carrel/id.h"
#include "engine/commit/batch.h"
#include "engine/loop/pending.h"
#include "engine/sql/page_source.h"
#include "engine/store/keys.h"
#include "engine/store/store.h"

namespace carrel::sql {
class SqlDatabase;
}

namespace carrel::detail {

class ObjectPageSource final : public sql::PageSource {
 public:
  // turn_bytes_max bounds the pages one turn may hold (Options::turn_dirty_bytes_max).
  ObjectPageSource(const ObjectId& id, store::ObjectNo no, uint32_t page_bytes,
                   size_t turn_bytes_max)
      : id_(id), no_(no), page_bytes_(page_bytes), turn_bytes_max_(turn_bytes_max) {}
  ObjectPageSource(const ObjectPageSource&) = delete;
  ObjectPageSource& operator=(const ObjectPageSource&) = delete;

  // Binds the source to this turn's snapshot and the object's page count after
  // its last sealed commit (invariant (4)).
  void begin_turn(const store::ReadTxn* txn, uint32_t sealed_pages) {
    txn_ = txn;
    sealed_pages_ = sealed_pages;
  }
  void end_turn() { txn_ = nullptr; }

  uint32_t page_bytes() const override { return page_bytes_; }
  uint32_t page_count() override;
  Result<bool> read_page(uint32_t page_no, std::string* out) override;
  // One copy, from the layer that holds the page (invariant (2)).
  Result<bool> read_slice(uint32_t page_no, uint64_t in_page, uint64_t n, char* out) override;
  Status write_page(uint32_t page_no, std::string_view data) override;
  Status truncate(uint32_t page_count) override;

  bool has_turn_writes() const { return turn_count_.has_value(); }
  // Moves the turn's pages and page count into the batch (numbered: its seq
  // tags them), keeping the pages as pending until prune() (invariant (1))
  // and the count as the sealed one (invariant (4)).
  void take_turn_writes(CommitBatch* batch);
  void discard_turn_writes();
  // Drops the pending pages of commits up to durable_seq (LMDB has them now).
  void prune(uint64_t durable_seq);

 private:
  // The page's bytes in the layer that holds it (invariant (2)), valid until
  // the next change to this source or the end of the turn's snapshot;
  // nullopt when the page reads as absent.
  Result<std::optional<std::string_view>> find_page(uint32_t page_no);

  ObjectId id_;         // for messages
  store::ObjectNo no_;  // the prefix of its page keys (store/keys.h (2))
  uint32_t page_bytes_;
  size_t turn_bytes_max_;
  std::map<uint32_t, PendingValue> pending_pages_;
  const store::ReadTxn* txn_ = nullptr;
  uint32_t sealed_pages_ = 0;  // invariant (4)
  std::map<uint32_t, std::optional<std::string>> turn_pages_;
  std::optional<uint32_t> turn_count_;
};

// One object's SQL state. Its owner holds it by unique_ptr, so it never moves
// and the connection's pointer to the page source stays valid; the
// connection is declared last, so it closes first (closing may roll back,
// which writes pages back to the source).
struct ObjectSql {
  ObjectSql(const ObjectId& id, store::ObjectNo no, uint32_t page_bytes, size_t turn_bytes_max);
  ~ObjectSql();
  ObjectSql(const ObjectSql&) = delete;
  ObjectSql& operator=(const ObjectSql&) = delete;

  ObjectPageSource pages;
  std::unique_ptr<sql::SqlDatabase> db;  // opened by the first turn that uses SQL
};

}  // namespace carrel::detail
