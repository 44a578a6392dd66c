#include "engine/kv/turn_kv.h"

#include <algorithm>

#include "engine/base/check.h"
#include "engine/base/limit_text.h"
#include "engine/store/checksum.h"
#include "engine/store/cursor.h"
#include "engine/store/keys.h"

namespace carrel::kv {
namespace {

using detail::bytes_text;

// Invariant (4), for CARREL_DASSERT: every key once, in the list's order.
bool strictly_ordered(const Entries& out, bool reverse) {
  auto out_of_order = [reverse](const auto& a, const auto& b) {
    return reverse ? a.first <= b.first : a.first >= b.first;
  };
  return std::adjacent_find(out.begin(), out.end(), out_of_order) == out.end();
}

Result<KeyRange> range_of(const ListOptions& o) {
  if (o.start && o.start_after) {
    return Status::invalid_argument("list: start and start_after cannot both be given");
  }
  if (o.limit && *o.limit == 0) return Status::invalid_argument("list: limit must be > 0");
  KeyRange r;
  if (o.start) r.lo = *o.start;
  if (o.start_after) r.lo = *o.start_after + std::string(1, '\0');
  r.hi = o.end;
  if (o.prefix) {
    r.lo = std::max(r.lo, *o.prefix);
    std::string succ = store::prefix_successor(*o.prefix);
    if (!succ.empty() && (!r.hi || succ < *r.hi)) r.hi = succ;
  }
  return r;
}

std::vector<std::string> sorted_unique(const std::vector<std::string>& keys) {
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  return sorted;
}

}  // namespace

Status TurnKv::check_key(std::string_view key) const {
  size_t max = options_.key_bytes_max;
  if (key.size() > max) {
    return Status::invalid_argument("key of " + bytes_text(key.size()) +
                                    " exceeds key_bytes_max (" + bytes_text(max) + ")");
  }
  return Status::ok();
}

Status TurnKv::check_batch(std::string_view call, size_t n, std::string_view what) const {
  size_t max = options_.kv_batch_keys_max;
  if (n > max) {
    return Status::invalid_argument(std::string(call) + " of " + std::to_string(n) + " " +
                                    std::string(what) + " exceeds kv_batch_keys_max (" +
                                    std::to_string(max) + ")");
  }
  return Status::ok();
}

Result<std::optional<std::string>> TurnKv::lookup(std::string_view key) {
  if (std::optional<Value> above = overlay_.find(key)) return std::move(*above);
  store::ObjectKeyOnStack full_key(no_, key);
  auto read = store::read_sealed(snapshot_, store::Db::kKv, full_key.view());
  if (!read.is_ok()) return read.status().with_context("object " + id_.to_hex());
  const std::optional<std::string_view>& v = *read;
  if (!v) return std::optional<std::string>{};
  return std::optional<std::string>{std::string(*v)};
}

Result<std::optional<std::string>> TurnKv::get(std::string_view key) {
  CARREL_RETURN_IF_ERROR(check_key(key));
  return lookup(key);
}

Result<Entries> TurnKv::get_many(const std::vector<std::string>& keys) {
  CARREL_RETURN_IF_ERROR(check_batch("get_many", keys.size(), "keys"));
  for (auto& k : keys) CARREL_RETURN_IF_ERROR(check_key(k));
  Entries out;
  for (auto& k : sorted_unique(keys)) {
    CARREL_ASSIGN_OR_RETURN(auto v, lookup(k));
    if (v) out.emplace_back(k, std::move(*v));
  }
  return out;
}

Status TurnKv::put(std::string_view key, std::string_view value) {
  CARREL_RETURN_IF_ERROR(check_key(key));
  size_t max = options_.value_bytes_max;
  if (value.size() > max) {
    return Status::invalid_argument("value of " + bytes_text(value.size()) +
                                    " exceeds value_bytes_max (" + bytes_text(max) + ")");
  }
  CARREL_RETURN_IF_ERROR(overlay_.charge(key.size() + value.size()));
  // Room for the checksum trailer: the turn seals the value in place (checksum.h (4)).
  overlay_.write(std::string(key), store::sealable(value));
  return Status::ok();
}

Status TurnKv::put_many(const Entries& entries) {
  CARREL_RETURN_IF_ERROR(check_batch("put_many", entries.size(), "entries"));
  // Invariant (2): check everything first.
  size_t bytes = 0;
  for (auto& [k, v] : entries) {
    CARREL_RETURN_IF_ERROR(check_key(k));
    if (v.size() > options_.value_bytes_max) {
      return Status::invalid_argument("value of key '" + k.substr(0, 64) + "' is " +
                                      bytes_text(v.size()) + ", more than value_bytes_max (" +
                                      bytes_text(options_.value_bytes_max) + ")");
    }
    bytes += k.size() + v.size();
  }
  CARREL_RETURN_IF_ERROR(overlay_.charge(bytes));
  for (auto& [k, v] : entries) overlay_.write(k, store::sealable(v));
  return Status::ok();
}

Result<bool> TurnKv::present(std::string_view key) {
  auto old = lookup(key);
  // A value that fails its checksum exists: deleting it is how it is repaired.
  if (!old.is_ok() && old.status().code() == Code::kCorruption) return true;
  if (!old.is_ok()) return old.status();
  return old->has_value();
}

Result<bool> TurnKv::del(std::string_view key) {
  CARREL_RETURN_IF_ERROR(check_key(key));
  CARREL_ASSIGN_OR_RETURN(bool existed, present(key));
  CARREL_RETURN_IF_ERROR(overlay_.charge(key.size()));
  overlay_.write(std::string(key), std::nullopt);
  return existed;
}

Result<size_t> TurnKv::del_many(const std::vector<std::string>& keys) {
  CARREL_RETURN_IF_ERROR(check_batch("del_many", keys.size(), "keys"));
  for (auto& k : keys) CARREL_RETURN_IF_ERROR(check_key(k));
  std::vector<std::string> sorted = sorted_unique(keys);
  // Invariant (2): read and charge everything first.
  size_t n = 0, bytes = 0;
  for (auto& k : sorted) {
    CARREL_ASSIGN_OR_RETURN(bool existed, present(k));
    n += existed ? 1 : 0;
    bytes += k.size();
  }
  CARREL_RETURN_IF_ERROR(overlay_.charge(bytes));
  for (auto& k : sorted) overlay_.write(k, std::nullopt);
  return n;
}

Status TurnKv::delete_all() {
  overlay_.clear();
  return Status::ok();
}

Result<Entries> TurnKv::list(const ListOptions& o) {
  CARREL_ASSIGN_OR_RETURN(KeyRange range, range_of(o));
  if (range.empty()) return Entries{};
  return merge_list(range, o);
}

Result<Entries> TurnKv::merge_list(const KeyRange& range, const ListOptions& o) {
  Entries out;
  Writes overlay;
  bool lmdb_hidden = overlay_.collect(range, &overlay);
  size_t limit = o.limit.value_or(SIZE_MAX);

  std::string full_lo = store::object_key(no_, range.lo);
  std::string full_hi = range.hi ? store::object_key(no_, *range.hi)
                                 : store::prefix_successor(store::object_prefix(no_));
  std::optional<store::Cursor> c;
  bool on = false;  // c stands on an entry
  if (!lmdb_hidden) {
    CARREL_ASSIGN_OR_RETURN(store::Cursor opened,
                            store::Cursor::open(snapshot_.get(), kv_dbi_, store::Db::kKv));
    c.emplace(std::move(opened));
    // Reverse: start at the last key below full_hi; with no upper bound (an
    // all-0xff id and no end) that is the database's last key.
    if (!o.reverse) {
      on = c->seek(full_lo);
    } else {
      on = (!full_hi.empty() && c->seek(full_hi)) ? c->prev() : c->last();
    }
  }
  auto lmdb_key = [&]() -> std::optional<std::string_view> {
    if (!on) return std::nullopt;
    std::string_view k = c->key();
    if (k < full_lo || (!full_hi.empty() && k >= full_hi)) return std::nullopt;
    return k.substr(store::kPrefixBytes);
  };
  auto advance = [&] { on = o.reverse ? c->prev() : c->next(); };
  auto emit = [&](std::string_view k, std::string_view v) { out.emplace_back(k, v); };

  auto ov = overlay.begin();
  auto rov = overlay.rbegin();
  while (out.size() < limit) {
    std::optional<std::string_view> lk = lmdb_key();
    const std::pair<const std::string, Value>* ok = nullptr;
    if (!o.reverse && ov != overlay.end()) ok = &*ov;
    if (o.reverse && rov != overlay.rend()) ok = &*rov;
    if (!lk && !ok) break;
    bool take_overlay = ok && (!lk || (o.reverse ? ok->first >= *lk : ok->first <= *lk));
    if (take_overlay) {
      if (lk && ok->first == *lk) advance();  // the overlay shadows LMDB's copy
      if (ok->second) emit(ok->first, *ok->second);
      if (o.reverse)
        ++rov;
      else
        ++ov;
    } else {
      // checksum.h (5): a value that fails its checksum ends the list.
      auto opened = store::open(store::Db::kKv, c->key(), c->value());
      if (!opened.is_ok()) return opened.status().with_context("object " + id_.to_hex());
      emit(*lk, *opened);
      advance();
    }
  }
  if (c) CARREL_RETURN_IF_ERROR(c->status());
  CARREL_DASSERT(strictly_ordered(out, o.reverse),
                 "turn_kv.h (4): a list holds each key once, in order");
  return out;
}

}  // namespace carrel::kv
