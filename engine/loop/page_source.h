// ObjectPageSource: one object's SQL pages, as seen by its current turn.
//
// Invariants (see also engine/sql/page_source.h):
//  (1) Writes land in turn_pages_ only; take_turn_writes() hands them to the
//      turn's commit batch, discard_turn_writes() drops them. Nothing here
//      writes to LMDB.
//  (2) Reads look in turn_pages_, then the activation's pending overlay, then
//      the turn's LMDB snapshot. A page marked deleted (truncated away) in a
//      newer layer reads as absent even when an older layer has it.
#pragma once

#include <map>
#include <optional>

#include "carrel/id.h"
#include "engine/commit/batch.h"
#include "engine/sql/page_source.h"
#include "engine/store/store.h"

namespace carrel::detail {

struct PendingOverlay;

class ObjectPageSource final : public sql::PageSource {
 public:
  // turn_bytes_max bounds the pages one turn may hold (Options::turn_dirty_bytes_max).
  ObjectPageSource(const ObjectId& id, uint32_t page_bytes, size_t turn_bytes_max,
                   PendingOverlay* pending)
      : id_(id), page_bytes_(page_bytes), turn_bytes_max_(turn_bytes_max), pending_(pending) {}

  // Binds the source to this turn's snapshot and the object's durable page count.
  void begin_turn(const store::ReadTxn* txn, uint32_t durable_pages) {
    txn_ = txn;
    durable_pages_ = durable_pages;
  }
  void end_turn() { txn_ = nullptr; }
  // The activation that owns the pending overlay moved.
  void rebind(PendingOverlay* pending) { pending_ = pending; }

  uint32_t page_bytes() const override { return page_bytes_; }
  uint32_t page_count() override;
  Result<bool> read_page(uint32_t page_no, std::string* out) override;
  Status write_page(uint32_t page_no, std::string_view data) override;
  Status truncate(uint32_t page_count) override;

  bool has_turn_writes() const { return turn_count_.has_value(); }
  // Moves the turn's pages and page count into the batch.
  void take_turn_writes(CommitBatch* batch);
  void discard_turn_writes();

 private:
  ObjectId id_;
  uint32_t page_bytes_;
  size_t turn_bytes_max_;
  PendingOverlay* pending_;
  const store::ReadTxn* txn_ = nullptr;
  uint32_t durable_pages_ = 0;
  std::map<uint32_t, std::optional<std::string>> turn_pages_;
  std::optional<uint32_t> turn_count_;
};

}  // namespace carrel::detail
