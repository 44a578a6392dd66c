#include "engine/loop/page_source.h"

#include "engine/loop/object.h"
#include "engine/sql/sql_database.h"
#include "engine/store/checksum.h"
#include "engine/store/keys.h"

namespace carrel::detail {

uint32_t ObjectPageSource::page_count() {
  return turn_count_.value_or(sealed_pages_);
}

Result<std::optional<std::string_view>> ObjectPageSource::find_page(uint32_t page_no) {
  using View = std::optional<std::string_view>;
  if (page_no >= page_count()) return View{};
  if (auto it = turn_pages_.find(page_no); it != turn_pages_.end()) {
    if (!it->second) return View{};
    return View{*it->second};
  }
  if (auto it = pending_pages_.find(page_no); it != pending_pages_.end()) {
    if (it->second.deleted()) return View{};
    return View{it->second.view()};
  }
  if (txn_ == nullptr) return Status::aborted("SQL page read outside a turn");
  auto read = store::read_sealed(*txn_, store::Db::kPages, store::page_key(no_, page_no));
  if (!read.is_ok()) return read.status().with_context("object " + id_.to_hex());
  const std::optional<std::string_view>& v = *read;
  if (!v) return View{};
  if (v->size() != page_bytes_) {
    return Status::corruption("SQL page " + std::to_string(page_no) + " of object " + id_.to_hex() +
                              " is " + std::to_string(v->size()) + " bytes, not " +
                              std::to_string(page_bytes_));
  }
  return v;
}

Result<bool> ObjectPageSource::read_page(uint32_t page_no, std::string* out) {
  CARREL_ASSIGN_OR_RETURN(auto page, find_page(page_no));
  if (!page) return false;
  out->assign(*page);
  return true;
}

Result<bool> ObjectPageSource::read_slice(uint32_t page_no, uint64_t in_page, uint64_t n,
                                          char* out) {
  CARREL_ASSIGN_OR_RETURN(auto page, find_page(page_no));
  if (!page) return false;
  CARREL_RETURN_IF_ERROR(check_page_size(page_no, page->size()));
  std::memcpy(out, page->data() + in_page, n);
  return true;
}

Status ObjectPageSource::write_page(uint32_t page_no, std::string_view data) {
  if (data.size() != page_bytes_) {
    return Status::invalid_argument("SQL page write of " + std::to_string(data.size()) +
                                    " bytes; pages are " + std::to_string(page_bytes_));
  }
  if (!turn_pages_.count(page_no) && (turn_pages_.size() + 1) * page_bytes_ > turn_bytes_max_) {
    return Status::invalid_argument("turn would write " +
                                    std::to_string((turn_pages_.size() + 1) * page_bytes_) +
                                    " bytes of SQL pages, more than turn_dirty_bytes_max (" +
                                    std::to_string(turn_bytes_max_) + " bytes)");
  }
  uint32_t count = page_count();
  std::optional<std::string>& page = turn_pages_[page_no];
  if (page) {
    page->assign(data);  // keeps the room for the trailer
  } else {
    page = store::sealable(data);
  }
  turn_count_ = std::max(count, page_no + 1);
  return Status::ok();
}

Status ObjectPageSource::truncate(uint32_t new_count) {
  uint32_t count = page_count();
  // Invariant (2): pages past the new end are marked deleted, so an older
  // layer's copy never shows through if the file grows again.
  for (uint32_t n = new_count; n < count; ++n) turn_pages_[n] = std::nullopt;
  turn_count_ = new_count;
  return Status::ok();
}

void ObjectPageSource::take_turn_writes(CommitBatch* batch) {
  // store/checksum.h (4): each page is sealed in place, and the batch and the
  // pending pages share it.
  batch->pages.reserve(batch->pages.size() + turn_pages_.size());
  for (auto& [n, page] : turn_pages_) {
    store::SealedBytes sealed;
    if (page)
      sealed = store::seal_shared(store::Db::kPages, store::page_key(no_, n), std::move(*page));
    pending_pages_[n] = PendingValue{batch->seq, sealed};
    batch->pages.emplace_back(n, std::move(sealed));
  }
  batch->sql_pages = turn_count_;
  sealed_pages_ = *turn_count_;  // invariant (4)
  turn_pages_.clear();
  turn_count_.reset();
}

void ObjectPageSource::prune(uint64_t durable_seq) {
  for (auto it = pending_pages_.begin(); it != pending_pages_.end();) {
    it = it->second.seq <= durable_seq ? pending_pages_.erase(it) : std::next(it);
  }
}

void ObjectPageSource::discard_turn_writes() {
  turn_pages_.clear();
  turn_count_.reset();
}

ObjectSql::ObjectSql(const ObjectId& id, store::ObjectNo no, uint32_t page_bytes,
                     size_t turn_bytes_max)
    : pages(id, no, page_bytes, turn_bytes_max) {}
ObjectSql::~ObjectSql() = default;

Activation::Activation() = default;
Activation::~Activation() = default;
Activation::Activation(Activation&&) noexcept = default;
Activation& Activation::operator=(Activation&&) noexcept = default;

}  // namespace carrel::detail
