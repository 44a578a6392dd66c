#include "engine/loop/turn.h"

#include <algorithm>
#include <future>

#include "engine/base/check.h"
#include "engine/base/limit_text.h"
#include "engine/history/bookmark.h"
#include "engine/loop/engine_core.h"
#include "engine/loop/page_source.h"
#include "engine/loop/reply_slot.h"
#include "engine/loop/turn_connections.h"
#include "engine/sql/sql_database.h"
#include "engine/store/checksum.h"
#include "engine/store/keys.h"

namespace carrel::detail {
namespace {

using store::Db;

}  // namespace

void PendingOverlay::prune(uint64_t durable_seq) {
  auto drop = [&](auto& map) {
    for (auto it = map.begin(); it != map.end();) {
      it = it->second.seq <= durable_seq ? map.erase(it) : std::next(it);
    }
  };
  drop(kv);
  drop(alarms);
  if (kv_cleared_seq != 0 && kv_cleared_seq <= durable_seq) kv_cleared_seq = 0;
}

bool PendingOverlay::holds_only_pending(uint64_t durable_seq, uint64_t next_seq) const {
  auto pending = [&](uint64_t seq) { return seq > durable_seq && seq < next_seq; };
  auto all_pending = [&](const auto& map, uint64_t floor) {
    return std::all_of(map.begin(), map.end(), [&](const auto& e) {
      return pending(e.second.seq) && e.second.seq >= floor;
    });
  };
  if (kv_cleared_seq != 0 && !pending(kv_cleared_seq)) return false;
  return all_pending(kv, kv_cleared_seq) && all_pending(alarms, 0);
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
      ctx_(this),
      kv_(kv_layers_, txn_, core_.store().dbi(Db::kKv), object_.id, act_.number, core_.options()),
      alarms_(alarm_layers_, txn_, core_.store().dbi(Db::kAlarms), object_, act_.number,
              core_.options()) {
  layers_.emplace_back();
}

Turn::~Turn() {
  if (act_.sql) act_.sql->pages.end_turn();
}

Status Turn::add_dirty(size_t bytes) {
  size_t max = core_.options().turn_dirty_bytes_max;
  if (dirty_bytes_ + bytes > max) {
    return Status::invalid_argument("turn would write " + bytes_text(dirty_bytes_ + bytes) +
                                    ", more than turn_dirty_bytes_max (" + bytes_text(max) + ")");
  }
  dirty_bytes_ += bytes;
  return Status::ok();
}

std::optional<kv::Value> Turn::KvLayers::find(std::string_view key) const {
  for (auto it = turn_.layers_.rbegin(); it != turn_.layers_.rend(); ++it) {
    if (auto f = it->kv.find(key); f != it->kv.end()) return f->second;
    if (it->kv_cleared) return kv::Value{};
  }
  const PendingOverlay& p = turn_.act_.pending;
  if (auto f = p.kv.find(key); f != p.kv.end()) return f->second.value();
  if (p.kv_cleared_seq != 0) return kv::Value{};
  return std::nullopt;
}

bool Turn::KvLayers::collect(const kv::KeyRange& range, kv::Writes* out) const {
  // Pending commits, then the layers, newest last; a clear hides everything
  // below it, LMDB included.
  const PendingOverlay& p = turn_.act_.pending;
  bool lmdb_hidden = p.kv_cleared_seq != 0;
  for (auto& [k, w] : p.kv)
    if (range.contains(k)) (*out)[k] = w.value();
  for (auto& layer : turn_.layers_) {
    if (layer.kv_cleared) {
      out->clear();
      lmdb_hidden = true;
    }
    for (auto& [k, v] : layer.kv)
      if (range.contains(k)) (*out)[k] = v;
  }
  return lmdb_hidden;
}

void Turn::KvLayers::write(std::string key, kv::Value value) {
  turn_.layers_.back().kv[std::move(key)] = std::move(value);
}

void Turn::KvLayers::clear() {
  Layer& top = turn_.layers_.back();
  top.kv.clear();
  top.kv_cleared = true;
}

std::optional<alarm::Encoded> Turn::AlarmLayers::find(std::string_view name) const {
  for (auto it = turn_.layers_.rbegin(); it != turn_.layers_.rend(); ++it) {
    if (auto f = it->alarms.find(name); f != it->alarms.end()) return f->second;
  }
  const PendingOverlay& p = turn_.act_.pending;
  if (auto f = p.alarms.find(name); f != p.alarms.end()) return f->second.value();
  return std::nullopt;
}

void Turn::AlarmLayers::collect(alarm::Writes* out) const {
  for (auto& [n, w] : turn_.act_.pending.alarms) (*out)[n] = w.value();
  for (auto& layer : turn_.layers_)
    for (auto& [n, e] : layer.alarms) (*out)[n] = e;
}

Result<uint32_t> Turn::AlarmLayers::record_count() {
  CARREL_ASSIGN_OR_RETURN(auto rec, turn_.core_.records().get(turn_.txn_, turn_.object_.id));
  return rec ? rec->alarms : 0;
}

size_t Turn::AlarmLayers::stored_count() const {
  size_t n = 0;
  for (auto& [name, w] : turn_.act_.pending.alarms) n += w.deleted() ? 0 : 1;
  for (auto& layer : turn_.layers_)
    for (auto& [name, e] : layer.alarms) n += e ? 1 : 0;
  return n;
}

bool Turn::AlarmLayers::written_by_turn(std::string_view name) const {
  for (auto& layer : turn_.layers_)
    if (layer.alarms.count(name)) return true;
  return false;
}

void Turn::AlarmLayers::write(std::string name, alarm::Encoded entry) {
  turn_.layers_.back().alarms[std::move(name)] = std::move(entry);
}

void Turn::AlarmLayers::write_dead(std::string name, std::string encoded) {
  turn_.layers_.back().dead[std::move(name)] = std::move(encoded);
}

Status Turn::bind_pages() {
  if (pages_bound_) return Status::ok();
  if (!act_.sql) {
    act_.sql = std::make_unique<ObjectSql>(object_.id, act_.number, core_.store().sql_page_bytes(),
                                           core_.options().turn_dirty_bytes_max);
  }
  page_source().begin_turn(&txn_, act_.sql_pages);
  pages_bound_ = true;
  return Status::ok();
}

Result<sql::SqlDatabase*> Turn::sql() {
  CARREL_RETURN_IF_ERROR(bind_pages());
  std::unique_ptr<sql::SqlDatabase>& conn = act_.sql->db;
  if (conn && conn->poisoned()) conn.reset();
  if (!conn) {
    CARREL_ASSIGN_OR_RETURN(
        conn, sql::SqlDatabase::open(&page_source(), sql::SqlLimits::from_options(core_.options()),
                                     object_.label()));
  }
  if (!conn->in_turn()) {
    CARREL_RETURN_IF_ERROR(conn->begin_turn());
    sql_begin_depth_ = static_cast<int>(layers_.size());
  }
  return conn.get();
}

Status Turn::export_pages(const std::function<Status(uint32_t count)>& on_count,
                          const std::function<Status(uint32_t, std::string_view)>& on_page) {
  if (db() && db()->in_turn()) {
    return Status::invalid_argument("SQL pages cannot be exported by a turn that used SQL");
  }
  CARREL_RETURN_IF_ERROR(bind_pages());
  uint32_t count = page_source().page_count();
  CARREL_RETURN_IF_ERROR(on_count(count));
  std::string page;
  for (uint32_t n = 0; n < count; ++n) {
    CARREL_ASSIGN_OR_RETURN(bool found, page_source().read_page(n, &page));
    if (!found) page.assign(page_source().page_bytes(), '\0');  // every page is listed
    CARREL_RETURN_IF_ERROR(on_page(n, page));
  }
  return Status::ok();
}

Status Turn::import_pages(uint32_t count, const std::map<uint32_t, std::string>& pages) {
  if (db() && db()->in_turn()) {
    return Status::invalid_argument("SQL pages cannot be imported by a turn that used SQL");
  }
  // A connection opened on the empty file would keep trusting its cache
  // (locking_mode=EXCLUSIVE never rereads): the next turn opens a fresh one.
  if (act_.sql) act_.sql->db.reset();
  CARREL_RETURN_IF_ERROR(bind_pages());
  if (page_source().page_count() != 0) {
    return Status::invalid_argument("object " + object_.label() + " already has " +
                                    std::to_string(page_source().page_count()) +
                                    " SQL pages; pages import only into an empty database");
  }
  CARREL_RETURN_IF_ERROR(page_source().truncate(count));
  for (const auto& [n, data] : pages) {
    if (n >= count) {
      return Status::invalid_argument("SQL page " + std::to_string(n) + " lies past the " +
                                      std::to_string(count) + "-page database");
    }
    CARREL_RETURN_IF_ERROR(page_source().write_page(n, data));
  }
  return Status::ok();
}

Status Turn::transaction(const std::function<Status()>& fn) {
  int depth = static_cast<int>(layers_.size());
  sql::SqlDatabase* conn = db();
  bool savepoint = conn && conn->in_turn();
  if (savepoint) CARREL_RETURN_IF_ERROR(conn->savepoint(depth));
  // The budget bounds what the turn holds; a dropped layer gives its bytes back.
  size_t dirty_before = dirty_bytes_;
  ConnectionsMark connections_before = mark_connections(ctx_.connections());
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
    if (savepoint) return conn->release(depth);
    return s;
  }
  dirty_bytes_ = dirty_before;
  roll_back_connections(ctx_.connections(), connections_before, s);
  if (savepoint) {
    // rollback_to() also ends the savepoint (sql_database.h): no release() after it.
    Status r = conn->rollback_to(depth);
    if (!r.is_ok()) return r.with_context("rolling back a failed transaction");
  } else if (db() && db()->in_turn() && sql_begin_depth_ > depth) {
    // The SQL transaction began inside fn (conn is older): roll all of it back.
    db()->rollback_turn();
    page_source().discard_turn_writes();
    sql_begin_depth_ = -1;
  }
  return s;
}

Status Turn::send(const ObjectRef& target, std::string_view method, std::string_view payload) {
  CARREL_RETURN_IF_ERROR(check_object_ref(target, "send"));
  if (payload.size() > core_.options().value_bytes_max) {
    return Status::invalid_argument("send: payload of " + bytes_text(payload.size()) +
                                    " exceeds value_bytes_max");
  }
  CARREL_RETURN_IF_ERROR(add_dirty(payload.size() + method.size()));
  layers_.back().messages.push_back(
      OutMessage{target, std::string(method), std::string(payload), object_.label()});
  return Status::ok();
}

Result<std::unique_ptr<CommitBatch>> Turn::seal() {
  if (db()) {
    // Also fails when SQLite rolled the turn's SQL back by itself (a lost
    // turn): then the turn must not commit its other writes either.
    Status s = db()->commit_turn();
    if (!s.is_ok()) return s;
    sql_begin_depth_ = -1;
  }
  Layer& base = layers_.front();
  bool has_pages = act_.sql && page_source().has_turn_writes();
  if (base.kv.empty() && !base.kv_cleared && base.alarms.empty() && base.dead.empty() &&
      base.messages.empty() && !has_pages && !consumed_message_) {
    return std::unique_ptr<CommitBatch>();
  }
  std::unique_ptr<CommitBatch> b = numbered_batch();
  PendingOverlay& p = act_.pending;
  if (base.kv_cleared) {
    p.kv.clear();
    p.kv_cleared_seq = b->seq;
    b->kv_cleared = true;
  }
  // checksum.h (4): each value is sealed once, in place, and the batch and the
  // pending overlay share the sealed bytes.
  auto seal_value = [&](Db db, std::string_view name, std::optional<std::string>& value) {
    if (!value) return store::SealedBytes();
    store::ObjectKeyOnStack key(act_.number, name);
    return store::seal_shared(db, key.view(), std::move(*value));
  };
  for (auto& [k, v] : base.kv) {
    store::SealedBytes sealed = seal_value(Db::kKv, k, v);
    p.kv[k] = PendingValue{b->seq, sealed};
    b->kv.emplace_back(k, std::move(sealed));
  }
  for (auto& [n, e] : base.alarms) {
    store::SealedBytes sealed = seal_value(Db::kAlarms, n, e);
    p.alarms[n] = PendingValue{b->seq, sealed};
    b->alarms.emplace_back(n, std::move(sealed));
  }
  for (auto& [n, d] : base.dead) b->dead.emplace_back(n, seal_value(Db::kDead, n, d));
  if (has_pages) {
    page_source().take_turn_writes(b.get());
    act_.sql_pages = *b->sql_pages;  // page_source.h (4)
  }
  b->messages = std::move(base.messages);
  b->consumed_message = consumed_message_;
  consumed_message_.reset();
  layers_.front() = Layer{};
  dirty_bytes_ = 0;
  return b;
}

std::unique_ptr<CommitBatch> Turn::output_batch() {
  auto b = std::make_unique<CommitBatch>();
  b->slot = slot_;
  b->object = object_;
  b->object_no = act_.number;
  b->generation = act_.generation;
  return b;
}

std::unique_ptr<CommitBatch> Turn::numbered_batch() {
  std::unique_ptr<CommitBatch> b = output_batch();
  b->seq = act_.next_seq++;
  b->commit_ms = std::max(core_.clock().now_ms(), act_.last_commit_ms);
  act_.last_commit_ms = b->commit_ms;
  CARREL_ASSERT(b->seq > slot_->sealed_seq.load(std::memory_order_relaxed),
                "committer.h (5): the owning worker seals an object's batches in seq order");
  slot_->sealed_seq.store(b->seq, std::memory_order_release);
  return b;
}

void Turn::rollback() {
  layers_.clear();
  layers_.emplace_back();
  dirty_bytes_ = 0;
  consumed_message_.reset();
  if (db()) db()->rollback_turn();  // also clears a lost turn
  if (act_.sql) page_source().discard_turn_writes();
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
  // Output gate for a turn that wrote nothing but read state still in flight.
  if (!batch) batch = output_batch();
  for (auto& out : outputs) batch->outputs.push_back(std::move(out));
  if (event_.on_caller_thread) {
    core_.committer().submit_or_commit_here(std::move(batch));  // committer.h (10)
  } else {
    core_.committer().submit(std::move(batch));
  }
}

Status Turn::wait_durable(std::unique_ptr<CommitBatch> batch) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  release_after_durable(std::move(batch), {[promise](const Status& s) { promise->set_value(s); }});
  if (future.wait_for(std::chrono::seconds(0)) == std::future_status::ready) return future.get();
  // The batch is in flight: wait for it whatever begin_blocking says. A Busy
  // (too many workers blocked) only means no spare worker is started for this
  // one; returning early would let the caller go on, a restore reset its
  // object, while the commit it waits for is not yet durable. The wait is one
  // commit's, which needs no worker.
  const bool counted = core_.begin_blocking().is_ok();
  Status s = future.get();
  if (counted) core_.end_blocking();
  return s;
}

Result<std::string> Turn::call(const ObjectRef& target, std::string_view method,
                               std::string_view payload) {
  // Before the commit below: a call that cannot be made commits nothing.
  CARREL_RETURN_IF_ERROR(check_object_ref(target, "call"));  // engine_core.h (4)
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
