#include "engine/loop/turn.h"

#include <algorithm>
#include <future>

#include "engine/alarm/entry.h"
#include "engine/conn/conn_state.h"
#include "engine/history/bookmark.h"
#include "engine/loop/engine_core.h"
#include "engine/loop/page_source.h"
#include "engine/loop/reply_slot.h"
#include "engine/sql/sql_database.h"
#include "engine/store/checksum.h"
#include "engine/store/keys.h"
#include "engine/store/object_record.h"

namespace carrel::detail {
namespace {

using store::Db;

std::string size_text(size_t n) { return std::to_string(n) + " bytes"; }

// The visible key range of a list() call, as [lo, hi) on user keys; hi empty
// means unbounded.
struct KeyRange {
  std::string lo;
  std::optional<std::string> hi;
  bool empty() const { return hi && *hi <= lo; }
  bool contains(std::string_view k) const { return k >= lo && (!hi || k < *hi); }
};

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

}  // namespace

void PendingOverlay::prune(uint64_t durable_seq) {
  auto drop = [&](auto& map) {
    for (auto it = map.begin(); it != map.end();) {
      it = it->second.seq <= durable_seq ? map.erase(it) : std::next(it);
    }
  };
  drop(kv);
  drop(alarms);
  drop(pages);
  if (kv_cleared_seq != 0 && kv_cleared_seq <= durable_seq) kv_cleared_seq = 0;
  if (sql_pages && sql_pages->seq <= durable_seq) sql_pages.reset();
}

void Turn::Layer::merge_from(Layer&& top) {
  if (top.kv_cleared) {
    kv.clear();
    kv_cleared = true;
  }
  for (auto& [k, v] : top.kv) kv[k] = std::move(v);
  for (auto& [k, v] : top.alarms) alarms[k] = std::move(v);
  for (auto& [k, v] : top.dead) dead[k] = std::move(v);
  for (auto& m : top.messages) messages.push_back(std::move(m));
}

Turn::Turn(EngineCore& core, std::shared_ptr<ObjectSlot> slot, store::ReadTxn& txn,
           const Event& event)
    : core_(core),
      slot_(std::move(slot)),
      act_(slot_->act),
      txn_(txn),
      event_(event),
      object_{act_.class_name, slot_->id, act_.name},
      ctx_(this) {
  layers_.emplace_back();
}

Turn::~Turn() {
  if (act_.page_source) act_.page_source->end_turn();
}

Status Turn::check_key(std::string_view key) const {
  size_t max = core_.options().key_bytes_max;
  if (key.size() > max) {
    return Status::invalid_argument("key of " + size_text(key.size()) + " exceeds key_bytes_max (" +
                                    size_text(max) + ")");
  }
  return Status::ok();
}

Status Turn::add_dirty(size_t bytes) {
  size_t max = core_.options().turn_dirty_bytes_max;
  if (dirty_bytes_ + bytes > max) {
    return Status::invalid_argument("turn would write " + size_text(dirty_bytes_ + bytes) +
                                    ", more than turn_dirty_bytes_max (" + size_text(max) + ")");
  }
  dirty_bytes_ += bytes;
  return Status::ok();
}

Result<std::optional<std::string>> Turn::kv_lookup(std::string_view key) {
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {
    if (auto f = it->kv.find(key); f != it->kv.end()) return f->second;
    if (it->kv_cleared) return std::optional<std::string>{};
  }
  if (auto f = act_.pending.kv.find(key); f != act_.pending.kv.end()) return f->second.value;
  if (act_.pending.kv_cleared_seq != 0) return std::optional<std::string>{};
  store::ObjectKeyOnStack full_key(object_.id, key);
  CARREL_ASSIGN_OR_RETURN(auto v, store::read_sealed(txn_, Db::kKv, full_key.view()));
  if (!v) return std::optional<std::string>{};
  return std::optional<std::string>{std::string(*v)};
}

Result<bool> Turn::kv_present(std::string_view key) {
  auto old = kv_lookup(key);
  // A value that fails its checksum exists: deleting it is how it is repaired.
  if (!old.is_ok() && old.status().code() == Code::kCorruption) return true;
  if (!old.is_ok()) return old.status();
  return old->has_value();
}

Result<std::optional<std::string>> Turn::kv_get(std::string_view key) {
  CARREL_RETURN_IF_ERROR(check_key(key));
  return kv_lookup(key);
}

Result<Entries> Turn::kv_get_many(const std::vector<std::string>& keys) {
  size_t max = core_.options().kv_batch_keys_max;
  if (keys.size() > max) {
    return Status::invalid_argument("get_many of " + std::to_string(keys.size()) +
                                    " keys exceeds kv_batch_keys_max (" + std::to_string(max) + ")");
  }
  for (auto& k : keys) CARREL_RETURN_IF_ERROR(check_key(k));
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  Entries out;
  for (auto& k : sorted) {
    CARREL_ASSIGN_OR_RETURN(auto v, kv_lookup(k));
    if (v) out.emplace_back(k, std::move(*v));
  }
  return out;
}

Status Turn::kv_put(std::string_view key, std::string_view value) {
  CARREL_RETURN_IF_ERROR(check_key(key));
  size_t max = core_.options().value_bytes_max;
  if (value.size() > max) {
    return Status::invalid_argument("value of " + size_text(value.size()) +
                                    " exceeds value_bytes_max (" + size_text(max) + ")");
  }
  CARREL_RETURN_IF_ERROR(add_dirty(key.size() + value.size()));
  layers_.back().kv[std::string(key)] = std::string(value);
  return Status::ok();
}

Status Turn::kv_put_many(const Entries& entries) {
  size_t max = core_.options().kv_batch_keys_max;
  if (entries.size() > max) {
    return Status::invalid_argument("put_many of " + std::to_string(entries.size()) +
                                    " entries exceeds kv_batch_keys_max (" + std::to_string(max) +
                                    ")");
  }
  // Check everything first: a refused batch writes nothing.
  size_t bytes = 0;
  for (auto& [k, v] : entries) {
    CARREL_RETURN_IF_ERROR(check_key(k));
    if (v.size() > core_.options().value_bytes_max) {
      return Status::invalid_argument("value of key '" + k.substr(0, 64) + "' is " +
                                      size_text(v.size()) + ", more than value_bytes_max (" +
                                      size_text(core_.options().value_bytes_max) + ")");
    }
    bytes += k.size() + v.size();
  }
  CARREL_RETURN_IF_ERROR(add_dirty(bytes));
  for (auto& [k, v] : entries) layers_.back().kv[k] = v;
  return Status::ok();
}

Result<bool> Turn::kv_del(std::string_view key) {
  CARREL_RETURN_IF_ERROR(check_key(key));
  CARREL_ASSIGN_OR_RETURN(bool existed, kv_present(key));
  CARREL_RETURN_IF_ERROR(add_dirty(key.size()));
  layers_.back().kv[std::string(key)] = std::nullopt;
  return existed;
}

Result<size_t> Turn::kv_del_many(const std::vector<std::string>& keys) {
  size_t max = core_.options().kv_batch_keys_max;
  if (keys.size() > max) {
    return Status::invalid_argument("del_many of " + std::to_string(keys.size()) +
                                    " keys exceeds kv_batch_keys_max (" + std::to_string(max) + ")");
  }
  for (auto& k : keys) CARREL_RETURN_IF_ERROR(check_key(k));
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  // Read and charge everything first: a refused batch deletes nothing.
  size_t n = 0, bytes = 0;
  for (auto& k : sorted) {
    CARREL_ASSIGN_OR_RETURN(bool existed, kv_present(k));
    n += existed ? 1 : 0;
    bytes += k.size();
  }
  CARREL_RETURN_IF_ERROR(add_dirty(bytes));
  for (auto& k : sorted) layers_.back().kv[k] = std::nullopt;
  return n;
}

Status Turn::kv_delete_all() {
  Layer& top = layers_.back();
  top.kv.clear();
  top.kv_cleared = true;
  return Status::ok();
}

Result<Entries> Turn::kv_list(const ListOptions& o) {
  CARREL_ASSIGN_OR_RETURN(KeyRange range, range_of(o));
  Entries out;
  if (range.empty()) return out;
  // Overlay: pending commits, then the layers, newest last; a clear hides
  // everything below it, LMDB included.
  std::map<std::string, std::optional<std::string>, std::less<>> overlay;
  bool lmdb_hidden = act_.pending.kv_cleared_seq != 0;
  for (auto& [k, p] : act_.pending.kv)
    if (range.contains(k)) overlay[k] = p.value;
  for (auto& layer : layers_) {
    if (layer.kv_cleared) {
      overlay.clear();
      lmdb_hidden = true;
    }
    for (auto& [k, v] : layer.kv)
      if (range.contains(k)) overlay[k] = v;
  }
  size_t limit = o.limit.value_or(SIZE_MAX);

  MDB_cursor* c = nullptr;
  int rc = MDB_NOTFOUND;
  MDB_val mk, mv;
  std::string full_lo = store::object_key(object_.id, range.lo);
  std::string full_hi = range.hi ? store::object_key(object_.id, *range.hi)
                                 : store::prefix_successor(std::string(object_.id.raw()));
  if (!lmdb_hidden) {
    rc = mdb_cursor_open(txn_.get(), core_.store().dbi(Db::kKv), &c);
    if (rc != 0) return store::from_mdb(rc, "open kv cursor");
    if (!o.reverse) {
      mk = store::to_val(full_lo);
      rc = mdb_cursor_get(c, &mk, &mv, MDB_SET_RANGE);
    } else {
      // Start at the last key below full_hi; with no upper bound (an all-0xff
      // id and no end) that is the database's last key.
      rc = MDB_NOTFOUND;
      if (!full_hi.empty()) {
        mk = store::to_val(full_hi);
        rc = mdb_cursor_get(c, &mk, &mv, MDB_SET_RANGE);
      }
      rc = rc == 0 ? mdb_cursor_get(c, &mk, &mv, MDB_PREV) : mdb_cursor_get(c, &mk, &mv, MDB_LAST);
    }
  }
  auto lmdb_key = [&]() -> std::optional<std::string_view> {
    if (rc != 0) return std::nullopt;
    std::string_view k = store::from_val(mk);
    if (k < full_lo || (!full_hi.empty() && k >= full_hi)) return std::nullopt;
    return k.substr(store::kIdBytes);
  };
  auto advance = [&] { rc = mdb_cursor_get(c, &mk, &mv, o.reverse ? MDB_PREV : MDB_NEXT); };
  auto emit = [&](std::string_view k, std::string_view v) { out.emplace_back(k, v); };
  Status damaged;  // checksum.h (5): a value that fails its checksum ends the list

  auto ov = overlay.begin();
  auto rov = overlay.rbegin();
  while (out.size() < limit) {
    std::optional<std::string_view> lk = lmdb_key();
    const std::pair<const std::string, std::optional<std::string>>* ok = nullptr;
    if (!o.reverse && ov != overlay.end()) ok = &*ov;
    if (o.reverse && rov != overlay.rend()) ok = &*rov;
    if (!lk && !ok) break;
    bool take_overlay = ok && (!lk || (o.reverse ? ok->first >= *lk : ok->first <= *lk));
    if (take_overlay) {
      if (lk && ok->first == *lk) advance();  // the overlay shadows LMDB's copy
      if (ok->second) emit(ok->first, *ok->second);
      if (o.reverse) ++rov;
      else ++ov;
    } else {
      auto v = store::open(Db::kKv, store::from_val(mk), store::from_val(mv));
      if (!v.is_ok()) {
        damaged = v.status();
        break;
      }
      emit(*lk, *v);
      advance();
    }
  }
  if (c != nullptr) mdb_cursor_close(c);
  if (!damaged.is_ok()) return damaged;
  if (rc != 0 && rc != MDB_NOTFOUND) return store::from_mdb(rc, "scan kv");
  return out;
}

Result<std::optional<std::string>> Turn::alarm_lookup(std::string_view name) {
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {
    if (auto f = it->alarms.find(name); f != it->alarms.end()) return f->second;
  }
  if (auto f = act_.pending.alarms.find(name); f != act_.pending.alarms.end()) return f->second.value;
  CARREL_ASSIGN_OR_RETURN(
      auto v, store::read_sealed(txn_, Db::kAlarms, store::object_key(object_.id, name)));
  if (!v) return std::optional<std::string>{};
  return std::optional<std::string>{std::string(*v)};
}

Result<std::optional<AlarmEntry>> Turn::alarm_get(std::string_view name) {
  CARREL_ASSIGN_OR_RETURN(auto raw, alarm_lookup(name));
  if (!raw) return std::optional<AlarmEntry>{};
  CARREL_ASSIGN_OR_RETURN(AlarmEntry e, alarm::decode_entry(name, *raw));
  return std::optional<AlarmEntry>{std::move(e)};
}

Status Turn::alarm_put(const AlarmEntry& e) {
  const Options& o = core_.options();
  if (e.name.size() > o.alarm_name_bytes_max) {
    return Status::invalid_argument("alarm name of " + size_text(e.name.size()) +
                                    " exceeds alarm_name_bytes_max (" +
                                    size_text(o.alarm_name_bytes_max) + ")");
  }
  if (e.payload.size() > o.alarm_payload_bytes_max) {
    return Status::invalid_argument("alarm payload of " + size_text(e.payload.size()) +
                                    " exceeds alarm_payload_bytes_max (" +
                                    size_text(o.alarm_payload_bytes_max) + ")");
  }
  CARREL_ASSIGN_OR_RETURN(auto existing, alarm_lookup(e.name));
  if (!existing && !alarm_count_below(o.alarms_per_object_max)) {
    CARREL_ASSIGN_OR_RETURN(auto all, alarm_list());
    if (all.size() >= o.alarms_per_object_max) {
      return Status::invalid_argument("object " + object_.label() + " has " +
                                      std::to_string(all.size()) +
                                      " alarms, the alarms_per_object_max");
    }
  }
  std::string encoded = alarm::encode_entry(e);
  CARREL_RETURN_IF_ERROR(add_dirty(e.name.size() + encoded.size()));
  layers_.back().alarms[e.name] = std::move(encoded);
  return Status::ok();
}

bool Turn::alarm_count_below(size_t max) {
  // An upper bound without listing: the durable count plus every entry the
  // pending commits and this turn's layers add. Only near the limit does
  // alarm_put() count exactly.
  auto raw = txn_.get(Db::kObjects, object_.id.raw());
  if (!raw.is_ok()) return false;
  size_t bound = 0;
  if (*raw) {
    auto rec = store::ObjectRecord::decode(**raw);
    if (!rec.is_ok()) return false;
    bound = rec->alarms;
  }
  for (auto& [n, p] : act_.pending.alarms) bound += p.value ? 1 : 0;
  for (auto& layer : layers_)
    for (auto& [n, v] : layer.alarms) bound += v ? 1 : 0;
  return bound < max;
}

Result<bool> Turn::alarm_delete(std::string_view name) {
  CARREL_ASSIGN_OR_RETURN(auto existing, alarm_lookup(name));
  layers_.back().alarms[std::string(name)] = std::nullopt;
  return existing.has_value();
}

Result<std::vector<AlarmEntry>> Turn::alarm_list() {
  std::map<std::string, std::optional<std::string>, std::less<>> merged;
  std::string prefix(object_.id.raw());
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn_.get(), core_.store().dbi(Db::kAlarms), &c);
  if (rc != 0) return store::from_mdb(rc, "open alarms cursor");
  MDB_val k = store::to_val(prefix), v;
  rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  Status damaged;  // checksum.h (5)
  while (rc == 0 && store::from_val(k).substr(0, store::kIdBytes) == prefix) {
    auto entry = store::open(Db::kAlarms, store::from_val(k), store::from_val(v));
    if (!entry.is_ok()) {
      damaged = entry.status();
      break;
    }
    merged[std::string(store::from_val(k).substr(store::kIdBytes))] = std::string(*entry);
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  if (!damaged.is_ok()) return damaged;
  if (rc != 0 && rc != MDB_NOTFOUND) return store::from_mdb(rc, "scan alarms");
  for (auto& [n, p] : act_.pending.alarms) merged[n] = p.value;
  for (auto& layer : layers_)
    for (auto& [n, e] : layer.alarms) merged[n] = e;
  std::vector<AlarmEntry> out;
  for (auto& [n, e] : merged) {
    if (!e) continue;
    CARREL_ASSIGN_OR_RETURN(AlarmEntry entry, alarm::decode_entry(n, *e));
    out.push_back(std::move(entry));
  }
  return out;
}

bool Turn::alarm_touched(std::string_view name) const {
  for (auto& layer : layers_)
    if (layer.alarms.count(name)) return true;
  return false;
}

void Turn::dead_letter_put(const std::string& name, std::string encoded) {
  layers_.back().dead[name] = std::move(encoded);
}

Status Turn::bind_pages() {
  if (pages_bound_) return Status::ok();
  if (!act_.page_source) {
    act_.page_source = std::make_unique<ObjectPageSource>(
        object_.id, core_.store().sql_page_bytes(), core_.options().turn_dirty_bytes_max,
        &act_.pending);
  }
  uint32_t durable_pages = 0;
  CARREL_ASSIGN_OR_RETURN(auto raw, txn_.get(Db::kObjects, object_.id.raw()));
  if (raw) {
    CARREL_ASSIGN_OR_RETURN(auto rec, store::ObjectRecord::decode(*raw));
    durable_pages = rec.sql_pages;
  }
  act_.page_source->begin_turn(&txn_, durable_pages);
  pages_bound_ = true;
  return Status::ok();
}

Result<sql::SqlDatabase*> Turn::sql() {
  CARREL_RETURN_IF_ERROR(bind_pages());
  if (act_.sql && act_.sql->poisoned()) act_.sql.reset();
  if (!act_.sql) {
    CARREL_ASSIGN_OR_RETURN(act_.sql, sql::SqlDatabase::open(act_.page_source.get(),
                                                            sql::SqlLimits::from_options(core_.options()),
                                                            object_.label()));
  }
  if (!act_.sql->in_turn()) {
    CARREL_RETURN_IF_ERROR(act_.sql->begin_turn());
    sql_begin_depth_ = static_cast<int>(layers_.size());
  }
  return act_.sql.get();
}

Status Turn::export_pages(const std::function<Status(uint32_t count)>& on_count,
                          const std::function<Status(uint32_t, std::string_view)>& on_page) {
  if (act_.sql && act_.sql->in_turn()) {
    return Status::invalid_argument("SQL pages cannot be exported by a turn that used SQL");
  }
  CARREL_RETURN_IF_ERROR(bind_pages());
  uint32_t count = act_.page_source->page_count();
  CARREL_RETURN_IF_ERROR(on_count(count));
  std::string page;
  for (uint32_t n = 0; n < count; ++n) {
    CARREL_ASSIGN_OR_RETURN(bool found, act_.page_source->read_page(n, &page));
    if (!found) page.assign(act_.page_source->page_bytes(), '\0');  // every page is listed
    CARREL_RETURN_IF_ERROR(on_page(n, page));
  }
  return Status::ok();
}

Status Turn::import_pages(uint32_t count, const std::map<uint32_t, std::string>& pages) {
  if (act_.sql && act_.sql->in_turn()) {
    return Status::invalid_argument("SQL pages cannot be imported by a turn that used SQL");
  }
  // A connection opened on the empty file would keep trusting its cache
  // (locking_mode=EXCLUSIVE never rereads): the next turn opens a fresh one.
  act_.sql.reset();
  CARREL_RETURN_IF_ERROR(bind_pages());
  if (act_.page_source->page_count() != 0) {
    return Status::invalid_argument("object " + object_.label() + " already has " +
                                    std::to_string(act_.page_source->page_count()) +
                                    " SQL pages; pages import only into an empty database");
  }
  CARREL_RETURN_IF_ERROR(act_.page_source->truncate(count));
  for (const auto& [n, data] : pages) {
    if (n >= count) {
      return Status::invalid_argument("SQL page " + std::to_string(n) + " lies past the " +
                                      std::to_string(count) + "-page database");
    }
    CARREL_RETURN_IF_ERROR(act_.page_source->write_page(n, data));
  }
  return Status::ok();
}

Status Turn::transaction(const std::function<Status()>& fn) {
  int depth = static_cast<int>(layers_.size());
  bool savepoint = act_.sql && act_.sql->in_turn();
  if (savepoint) CARREL_RETURN_IF_ERROR(act_.sql->savepoint(depth));
  // The budget bounds what the turn holds; a dropped layer gives its bytes back.
  size_t dirty_before = dirty_bytes_;
  auto connections_before = ConnTurnState::mark(ctx_.connections());
  layers_.emplace_back();
  Status s;
  try {
    s = fn();
  } catch (const std::exception& e) {
    s = Status::aborted(std::string("transaction threw: ") + e.what());
  } catch (...) {
    s = Status::aborted("transaction threw a non-standard exception");
  }
  Layer top = std::move(layers_.back());
  layers_.pop_back();
  if (s.is_ok()) {
    layers_.back().merge_from(std::move(top));
    if (savepoint) return act_.sql->release(depth);
    return s;
  }
  dirty_bytes_ = dirty_before;
  ConnTurnState::roll_back_to(ctx_.connections(), connections_before, s);
  if (savepoint) {
    // rollback_to() also ends the savepoint (sql_database.h): no release() after it.
    Status r = act_.sql->rollback_to(depth);
    if (!r.is_ok()) return r.with_context("rolling back a failed transaction");
  } else if (act_.sql && act_.sql->in_turn() && sql_begin_depth_ > depth) {
    // The SQL transaction began inside fn: roll all of it back.
    act_.sql->rollback_turn();
    act_.page_source->discard_turn_writes();
    sql_begin_depth_ = -1;
  }
  return s;
}

Status Turn::send(const ObjectRef& target, std::string_view method, std::string_view payload) {
  if (target.class_name.empty()) return Status::invalid_argument("send: target class is empty");
  if (payload.size() > core_.options().value_bytes_max) {
    return Status::invalid_argument("send: payload of " + size_text(payload.size()) +
                                    " exceeds value_bytes_max");
  }
  CARREL_RETURN_IF_ERROR(add_dirty(payload.size() + method.size()));
  layers_.back().messages.push_back(
      OutMessage{target, std::string(method), std::string(payload), object_.label()});
  return Status::ok();
}

std::optional<std::string> Turn::sealed(Db db, std::string_view name,
                                        const std::optional<std::string>& value) const {
  if (!value) return std::nullopt;
  return store::seal(db, store::object_key(object_.id, name), *value);
}

Result<std::unique_ptr<CommitBatch>> Turn::seal() {
  if (act_.sql) {
    // Also fails when SQLite rolled the turn's SQL back by itself (a lost
    // turn): then the turn must not commit its other writes either.
    Status s = act_.sql->commit_turn();
    if (!s.is_ok()) return s;
    sql_begin_depth_ = -1;
  }
  Layer& base = layers_.front();
  bool pages = act_.page_source && act_.page_source->has_turn_writes();
  if (base.kv.empty() && !base.kv_cleared && base.alarms.empty() && base.dead.empty() &&
      base.messages.empty() && !pages && !consumed_message_) {
    return std::unique_ptr<CommitBatch>();
  }
  auto b = std::make_unique<CommitBatch>();
  b->slot = slot_;
  b->object = object_;
  b->generation = act_.generation;
  b->seq = act_.next_seq++;
  b->commit_ms = std::max(core_.clock().now_ms(), act_.last_commit_ms);
  act_.last_commit_ms = b->commit_ms;
  PendingOverlay& p = act_.pending;
  if (base.kv_cleared) {
    p.kv.clear();
    p.kv_cleared_seq = b->seq;
    b->kv_cleared = true;
  }
  // checksum.h (4): the batch carries values sealed; the overlay keeps them plain.
  for (auto& [k, v] : base.kv) {
    b->kv.emplace_back(k, sealed(Db::kKv, k, v));
    p.kv[k] = Pending<std::string>{b->seq, std::move(v)};
  }
  for (auto& [n, e] : base.alarms) {
    b->alarms.emplace_back(n, sealed(Db::kAlarms, n, e));
    p.alarms[n] = Pending<std::string>{b->seq, std::move(e)};
  }
  for (auto& [n, d] : base.dead) b->dead.emplace_back(n, sealed(Db::kDead, n, d));
  if (pages) {
    act_.page_source->take_turn_writes(b.get());
    for (auto& [n, page] : b->pages) {
      p.pages[n] = Pending<std::string>{b->seq, page};
      if (page) *page = store::seal(Db::kPages, store::page_key(object_.id, n), *page);
    }
    p.sql_pages = Pending<uint32_t>{b->seq, *b->sql_pages};
  }
  b->messages = std::move(base.messages);
  b->consumed_message = consumed_message_;
  consumed_message_.reset();
  layers_.front() = Layer{};
  dirty_bytes_ = 0;
  slot_->sealed_seq.store(b->seq, std::memory_order_release);
  return b;
}

void Turn::rollback() {
  layers_.clear();
  layers_.emplace_back();
  dirty_bytes_ = 0;
  consumed_message_.reset();
  if (act_.sql) act_.sql->rollback_turn();  // also clears a lost turn
  if (act_.page_source) act_.page_source->discard_turn_writes();
  sql_begin_depth_ = -1;
}

void Turn::release_after_durable(std::unique_ptr<CommitBatch> batch,
                                 std::vector<Completion> outputs, bool through_committer) {
  if (!batch && !through_committer &&
      slot_->sealed_seq.load(std::memory_order_acquire) ==
          slot_->durable_seq.load(std::memory_order_acquire)) {
    for (auto& out : outputs) out(Status::ok());
    return;
  }
  if (!batch) {
    // Output gate for a turn that wrote nothing but read state still in flight.
    batch = std::make_unique<CommitBatch>();
    batch->slot = slot_;
    batch->object = object_;
    batch->generation = act_.generation;
  }
  for (auto& out : outputs) batch->outputs.push_back(std::move(out));
  core_.committer().submit(std::move(batch));
}

Status Turn::wait_durable(std::unique_ptr<CommitBatch> batch) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  release_after_durable(std::move(batch), {[promise](const Status& s) { promise->set_value(s); }});
  if (future.wait_for(std::chrono::seconds(0)) == std::future_status::ready) return future.get();
  CARREL_RETURN_IF_ERROR(core_.begin_blocking());
  Status s = future.get();
  core_.end_blocking();
  return s;
}

Result<std::string> Turn::call(const ObjectRef& target, std::string_view method,
                               std::string_view payload) {
  if (target.id == object_.id ||
      std::find(event_.call_chain.begin(), event_.call_chain.end(), target.id) !=
          event_.call_chain.end()) {
    return Status::deadlock("call from " + object_.label() + " to " + target.label() +
                            " would re-enter an object already in the call chain");
  }
  if (event_.call_chain.size() + 1 >= core_.options().call_depth_max) {
    return Status::invalid_argument("call chain is deeper than call_depth_max (" +
                                    std::to_string(core_.options().call_depth_max) + ")");
  }
  if (layers_.size() > 1) {
    return Status::invalid_argument(
        "ctx.call is a commit point and cannot run inside ctx.transaction()");
  }
  // An outgoing call is an output: commit what the turn wrote so far first.
  CARREL_ASSIGN_OR_RETURN(auto batch, seal());
  CARREL_RETURN_IF_ERROR(wait_durable(std::move(batch)));

  std::vector<ObjectId> chain = event_.call_chain;
  chain.push_back(object_.id);
  ReplySlot<Result<std::string>> reply;
  CARREL_RETURN_IF_ERROR(core_.begin_blocking());
  core_.call(target, Request{std::string(method), std::string(payload)}, CallOptions{},
             std::move(chain), [&reply](Result<std::string> r) { reply.fill(std::move(r)); });
  Result<std::string> r = reply.wait();
  core_.end_blocking();
  return r;
}

Result<std::string> Turn::current_bookmark() {
  uint64_t seq = act_.next_seq - 1;
  if (seq == 0) return Status::not_found("object " + object_.label() + " has no commits yet");
  return history::Bookmark{act_.last_commit_ms, seq, object_.id}.to_string();
}

}  // namespace carrel::detail
