// An object's SQL pages as one read snapshot shows them, for SQLite
// connections that must not touch the engine: verify's integrity_check and
// read-only `carrel sql` beside a running engine.
//
// Invariant: nothing reaches LMDB. Pages SQLite writes (a rollback journal,
// a temporary change) stay in this object's memory and vanish with it.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "engine/sql/page_source.h"
#include "engine/store/checksum.h"
#include "engine/store/keys.h"
#include "engine/store/store.h"

namespace carrel::cli {

// One object's SQL file as of a snapshot; writes stay in memory.
class SnapshotPageSource final : public sql::PageSource {
 public:
  // no: the object's number (its key prefix, store/keys.h (2)).
  SnapshotPageSource(const store::ReadTxn& txn, const ObjectId& id, store::ObjectNo no,
                     uint32_t page_bytes, uint32_t pages)
      : txn_(txn), id_(id), no_(no), page_bytes_(page_bytes), count_(pages) {}
  uint32_t page_bytes() const override { return page_bytes_; }
  uint32_t page_count() override { return count_; }
  Result<bool> read_page(uint32_t page_no, std::string* out) override {
    if (page_no >= count_) return false;
    if (auto it = written_.find(page_no); it != written_.end()) {
      if (!it->second) return false;
      *out = *it->second;
      return true;
    }
    auto read = store::read_sealed(txn_, store::Db::kPages, store::page_key(no_, page_no));
    if (!read.is_ok()) return read.status().with_context("object " + id_.to_hex());
    const std::optional<std::string_view>& v = *read;
    if (!v) return false;
    if (v->size() != page_bytes_) {
      return Status::corruption("SQL page " + std::to_string(page_no) + " is " +
                                std::to_string(v->size()) + " bytes, not " +
                                std::to_string(page_bytes_));
    }
    out->assign(*v);
    return true;
  }
  Status write_page(uint32_t page_no, std::string_view data) override {
    written_[page_no] = std::string(data);
    count_ = std::max(count_, page_no + 1);
    return Status::ok();
  }
  Status truncate(uint32_t pages) override {
    for (uint32_t n = pages; n < count_; ++n) written_[n] = std::nullopt;
    count_ = pages;
    return Status::ok();
  }

 private:
  const store::ReadTxn& txn_;
  ObjectId id_;
  store::ObjectNo no_;
  uint32_t page_bytes_;
  uint32_t count_;
  std::map<uint32_t, std::optional<std::string>> written_;
};

}  // namespace carrel::cli
