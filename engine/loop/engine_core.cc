#include "engine/loop/engine_core.h"

#include <algorithm>
#include <future>

#include "engine/alarm/scheduler.h"
#include "engine/base/check.h"
#include "engine/base/limit_text.h"
#include "engine/commit/group_writer.h"
#include "engine/history/bookmark.h"
#include "engine/history/undo.h"
#include "engine/loop/page_source.h"
#include "engine/loop/reply_slot.h"
#include "engine/sql/sql_database.h"
#include "engine/store/codec.h"
#include "engine/store/cursor.h"
#include "engine/store/keys.h"
#include "engine/store/object_record.h"

namespace carrel::detail {
namespace {

// The engine whose worker pool this thread belongs to; nullptr on every other
// thread (callers running inline turns among them). Invariant (2) of engine_core.h.
thread_local const EngineCore* tl_worker_of = nullptr;

// Connection limits: tag counts and lengths fit the connection record's
// 16-bit fields, and one frame fits the per-connection queue, or no frame
// could ever be sent. (A record larger than value_bytes_max is refused when
// the connection is accepted, by the KV write's own limit.)
Status validate_connections(const Options& o) {
  auto bad = [](const char* option, size_t v, const std::string& rule) {
    return Status::invalid_argument(std::string(option) + " is " + std::to_string(v) +
                                    "; it must be " + rule);
  };
  constexpr size_t kConnectionsMax = size_t{1} << 20;
  constexpr size_t kTagsMax = 1024;
  constexpr size_t kQueuedBytesMax = size_t{1} << 30;
  static_assert(kTagsMax <= store::kStr16BytesMax);
  if (o.connections_per_object_max == 0 || o.connections_per_object_max > kConnectionsMax) {
    return bad("connections_per_object_max", o.connections_per_object_max,
               "1.." + std::to_string(kConnectionsMax));
  }
  if (o.connection_tags_max > kTagsMax) {
    return bad("connection_tags_max", o.connection_tags_max, "0.." + std::to_string(kTagsMax));
  }
  if (o.connection_tag_bytes_max == 0 || o.connection_tag_bytes_max > store::kStr16BytesMax) {
    return bad("connection_tag_bytes_max", o.connection_tag_bytes_max,
               "1.." + std::to_string(store::kStr16BytesMax));
  }
  if (o.connection_queued_bytes_max == 0 || o.connection_queued_bytes_max > kQueuedBytesMax) {
    return bad("connection_queued_bytes_max", o.connection_queued_bytes_max,
               "1.." + std::to_string(kQueuedBytesMax));
  }
  if (o.connection_frame_bytes_max == 0 ||
      o.connection_frame_bytes_max > o.connection_queued_bytes_max) {
    return bad("connection_frame_bytes_max", o.connection_frame_bytes_max,
               "1..connection_queued_bytes_max (" + std::to_string(o.connection_queued_bytes_max) +
                   "), or no frame could be queued");
  }
  return Status::ok();
}

Status validate(const Options& o) {
  auto bad = [](std::string m) { return Status::invalid_argument(std::move(m)); };
  if (o.key_bytes_max == 0 || o.key_bytes_max > store::kLmdbKeyBytesMax - store::kPrefixBytes) {
    return bad("key_bytes_max is " + std::to_string(o.key_bytes_max) + "; it must be 1.." +
               std::to_string(store::kLmdbKeyBytesMax - store::kPrefixBytes) +
               " (LMDB's 511-byte key limit less the 8-byte object number)");
  }
  // The timetable's key holds the due time and the 16-byte id before the name.
  if (o.alarm_name_bytes_max > store::kLmdbKeyBytesMax - store::kIdBytes - 8) {
    return bad("alarm_name_bytes_max may not exceed " +
               std::to_string(store::kLmdbKeyBytesMax - store::kIdBytes - 8));
  }
  if (o.value_bytes_max == 0 || o.value_bytes_max > (size_t{1} << 30)) {
    return bad("value_bytes_max must be 1 byte .. 1 GiB");
  }
  if (o.workers < 0 || o.workers > 1024) return bad("workers must be 0..1024");
  if (o.mailbox_depth_max == 0) return bad("mailbox_depth_max must be > 0");
  if (o.active_objects_max == 0) return bad("active_objects_max must be > 0");
  if (o.kv_batch_keys_max == 0) return bad("kv_batch_keys_max must be > 0");
  uint32_t p = o.sql_page_bytes;
  if (p < 512 || p > 65536 || (p & (p - 1)) != 0) {
    return bad("sql_page_bytes is " + std::to_string(p) + "; it must be a power of two, 512..65536");
  }
  if (o.alarm_retries_max < 0 || o.alarm_retry_initial_ms <= 0 || o.alarm_retry_jitter < 0 ||
      o.alarm_retry_jitter >= 1) {
    return bad("alarm retry options out of range (retries >= 0, initial > 0, 0 <= jitter < 1)");
  }
  if (o.history_retention_ms < 0) return bad("history_retention_ms must be >= 0");
  // One year bounds the budget and keeps its nanoseconds within int64_t.
  constexpr int64_t kSqlTurnMsMax = int64_t{365} * 24 * 3600 * 1000;
  if (o.sql_turn_ms_max < 0 || o.sql_turn_ms_max > kSqlTurnMsMax) {
    return bad("sql_turn_ms_max is " + std::to_string(o.sql_turn_ms_max) + "; it must be 0..." +
               std::to_string(kSqlTurnMsMax) + " (0: no limit; the largest is one year)");
  }
  return validate_connections(o);
}

}  // namespace

EngineCore::EngineCore(Options options)
    : options_(std::move(options)),
      jitter_rng_(options_.random_seed != 0 ? options_.random_seed : std::random_device{}()) {
  connection_hub_ = std::make_unique<ConnectionHub>(this);
}

Result<std::unique_ptr<EngineCore>> EngineCore::open(Options options) {
  CARREL_RETURN_IF_ERROR(validate(options));
  if (!options.clock) options.clock = std::make_shared<SystemClock>();
  std::unique_ptr<EngineCore> core(new EngineCore(std::move(options)));
  store::StoreOptions so;
  so.dir = core->options_.dir;
  so.create_if_missing = core->options_.create_if_missing;
  so.read_only = core->options_.read_only;
  so.sync = core->options_.durability == Durability::kSync;
  so.map_bytes_max = core->options_.map_bytes_max;
  so.sql_page_bytes = core->options_.sql_page_bytes;
  so.redo_log = core->options_.redo_log;
  so.redo_fault_hook = core->options_.redo_fault_hook;
  so.data_sync_fault_hook = core->options_.data_sync_fault_hook;
  so.discard_lost_redo_log = core->options_.discard_lost_redo_log;
  CARREL_ASSIGN_OR_RETURN(core->store_, store::Store::open(so));
  core->records_ = std::make_unique<Records>(*core->store_, core->options_.read_only);
  CARREL_RETURN_IF_ERROR(core->records_->recover());
  core->counters_.dead_readers_cleared.fetch_add(
      static_cast<uint64_t>(core->store_->dead_readers_at_open()), std::memory_order_relaxed);
  if (!core->options_.read_only) CARREL_RETURN_IF_ERROR(core->start());
  return core;
}

// The label of the sender rides in outbox messages beside both names (codec.h (3)).
static_assert(kClassNameBytesMax + 1 + kObjectNameBytesMax <= store::kStr16BytesMax);

Status check_object_ref(const ObjectRef& ref, std::string_view use) {
  constexpr size_t kQuoteBytes = 40;
  // Appended, not "\"" + std::string(...): GCC 12's -O2 takes that form for an
  // overlapping copy (a false -Wrestrict, GCC bug 105329).
  auto quoted = [](std::string_view s) {
    std::string q(1, '"');
    q.append(s.substr(0, kQuoteBytes)).append(s.size() > kQuoteBytes ? "...\"" : "\"");
    return q;
  };
  if (ref.class_name.empty()) {
    return Status::invalid_argument(std::string(use) + ": class name is empty");
  }
  if (ref.class_name.size() > kClassNameBytesMax) {
    return Status::invalid_argument(std::string(use) + ": class name " + quoted(ref.class_name) +
                                    " of " + bytes_text(ref.class_name.size()) +
                                    " exceeds kClassNameBytesMax (" +
                                    bytes_text(kClassNameBytesMax) + "); use a shorter class name");
  }
  if (ref.name.size() > kObjectNameBytesMax) {
    return Status::invalid_argument(
        std::string(use) + ": object name " + quoted(ref.name) + " of class " + ref.class_name +
        " is " + bytes_text(ref.name.size()) + ", over kObjectNameBytesMax (" +
        bytes_text(kObjectNameBytesMax) +
        "); name the object by something shorter, such as a hash of it");
  }
  return Status::ok();
}

Status EngineCore::start() {
  CommitterHooks hooks;
  hooks.on_sent = [this](std::vector<std::pair<uint64_t, OutMessage>>&& m) { deliver(std::move(m)); };
  hooks.on_alarm_written = [this](int64_t due) { scheduler_->wake(due); };
  committer_ = std::make_unique<Committer>(*store_, *records_, clock(), options_, std::move(hooks),
                                           counters_);
  scheduler_ = std::make_unique<alarm::Scheduler>(
      *store_, clock(), [this](const ObjectId& id, const std::string& name, UnixMs due) {
        auto txn = store_->begin_read();
        if (!txn.is_ok()) return txn.status();
        CARREL_ASSIGN_OR_RETURN(auto found, records_->get(*txn, id));
        if (!found) return Status::not_found("alarm of an unknown object");
        const store::ObjectRecord& rec = *found;
        txn->release();
        if (!has_class(rec.class_name)) {
          return Status::not_found("class " + rec.class_name + " is not registered");
        }
        Event ev;
        ev.kind = EventKind::kAlarm;
        ev.object = ObjectRef{rec.class_name, id, rec.name};
        ev.alarm_name = name;
        ev.alarm_due_ms = due;
        return post(std::move(ev));
      });
  workers_ = options_.workers > 0 ? options_.workers
                                  : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  committer_->start();
  {
    MutexLock lock(run_mutex_);
    for (int i = 0; i < workers_; ++i) spawn_worker_locked();
  }
  scheduler_->start();
  janitor_ = std::thread([this] { janitor_main(); });
  return deliver_outbox_at_open();
}

Status EngineCore::deliver_outbox_at_open() {
  CARREL_ASSIGN_OR_RETURN(auto txn, store_->begin_read());
  CARREL_ASSIGN_OR_RETURN(auto c, store::Cursor::open(*store_, txn, store::Db::kOutbox));
  std::vector<std::pair<uint64_t, OutMessage>> pending;
  for (bool on = c.first(); on; on = c.next()) {
    CARREL_ASSIGN_OR_RETURN(uint64_t no, store::decode_u64_key(c.key(), "outbox"));
    // A malformed message is never skipped: its send was acknowledged.
    auto m = decode_message(c.value());
    if (!m.is_ok()) {
      return m.status().with_context("outbox message " + std::to_string(no) +
                                     " (run `carrel verify`)");
    }
    pending.emplace_back(no, std::move(*m));
  }
  CARREL_RETURN_IF_ERROR(c.status());
  deliver(std::move(pending));
  return Status::ok();
}

Status EngineCore::register_class(std::string_view class_name, HandlerFactory factory) {
  CARREL_RETURN_IF_ERROR(check_object_ref(ObjectRef::of(class_name, ObjectId()), "register_class"));
  if (!factory) return Status::invalid_argument("class " + std::string(class_name) + ": no factory");
  {
    MutexLock lock(classes_mutex_);
    if (!classes_.emplace(std::string(class_name), std::move(factory)).second) {
      return Status::invalid_argument("class " + std::string(class_name) + " is registered already");
    }
  }
  // Messages and alarms waiting for this class can go now.
  janitor_cv_.notify_all();
  if (scheduler_) scheduler_->wake_now();
  return Status::ok();
}

bool EngineCore::has_class(std::string_view class_name) {
  MutexLock lock(classes_mutex_);
  return classes_.find(class_name) != classes_.end();
}

std::shared_ptr<ObjectSlot> EngineCore::slot_for(Shard& shard, const ObjectId& id, bool* created) {
  auto& slot = shard.slots[id];
  *created = !slot;
  if (!slot) {
    slot = std::make_shared<ObjectSlot>(id);
    uint64_t n = counters_.active_objects.fetch_add(1, std::memory_order_relaxed) + 1;
    if (n > options_.active_objects_max) janitor_cv_.notify_all();
  }
  return slot;
}

Status EngineCore::post(Event event) {
  CARREL_RETURN_IF_ERROR(check_object_ref(event.object, "event"));
  return post_checked(std::move(event));
}

Status EngineCore::post_checked(Event event) {
  CARREL_DASSERT(check_object_ref(event.object, "event").is_ok(),
                 "engine_core.h (4): the entry that took the event checked its object");
  // close() waits for posts in progress before it stops the workers, so an
  // event accepted here always finds a worker (seq_cst pairs with close()).
  InProgress in_progress(posts_in_progress_, closing_);
  if (!in_progress.open()) {
    return Status::aborted("engine is closing; event for " + event.object.label() + " not accepted");
  }
  if (options_.read_only) return Status::aborted("engine is open read-only");
  Shard& shard = shards_[std::hash<ObjectId>()(event.object.id) % kShards];
  bool created = false;
  bool schedule = false;
  std::shared_ptr<ObjectSlot> slot;
  {
    MutexLock lock(shard.mutex);
    slot = slot_for(shard, event.object.id, &created);
    MutexLock slot_lock(slot->mutex);
    if (slot->mailbox.size() >= options_.mailbox_depth_max && !event.past_depth_cap) {
      counters_.mailbox_rejections.fetch_add(1, std::memory_order_relaxed);
      return Status::busy("mailbox of " + event.object.label() + " is full (mailbox_depth_max " +
                          std::to_string(options_.mailbox_depth_max) + ")");
    }
    slot->mailbox.push_back(std::move(event));
    slot->last_used_ms.store(clock().now_ms(), std::memory_order_relaxed);
    if (!slot->scheduled) slot->scheduled = schedule = true;
  }
  if (schedule) enqueue_ready(std::move(slot));
  return Status::ok();
}

void EngineCore::enqueue_ready(std::shared_ptr<ObjectSlot> slot) {
  MutexLock lock(run_mutex_);
  ready_.push_back(std::move(slot));
  if (idle_threads_ == 0 && live_threads_ - blocked_threads_ < workers_) spawn_worker_locked();
  run_cv_.notify_one();
}

std::shared_ptr<ObjectSlot> EngineCore::claim_idle(const ObjectId& id) {
  Shard& shard = shards_[std::hash<ObjectId>()(id) % kShards];
  bool created = false;
  MutexLock lock(shard.mutex);
  std::shared_ptr<ObjectSlot> slot = slot_for(shard, id, &created);
  MutexLock slot_lock(slot->mutex);
  CARREL_ASSERT(slot->scheduled || slot->mailbox.empty(),
                "object.h (5): a slot that is not scheduled has an empty mailbox");
  if (slot->scheduled) return nullptr;
  // This thread owns the slot now (object.h invariant (1)); a scheduled slot
  // is never evicted, and run_event stamps last_used_ms when the turn ends.
  slot->scheduled = true;
  return slot;
}

void EngineCore::release_inline(std::shared_ptr<ObjectSlot> slot) {
  {
    MutexLock lock(slot->mutex);
    CARREL_ASSERT(slot->scheduled, "object.h (5): the inline turn owns the slot it releases");
    if (slot->mailbox.empty()) {
      slot->scheduled = false;
      return;
    }
  }
  enqueue_ready(std::move(slot));  // events arrived during the turn: a worker takes them
}

bool EngineCore::run_inline(Event& event) {
  InProgress in_progress(posts_in_progress_, closing_);  // invariant (1)
  if (!in_progress.open() || options_.read_only) return false;
  std::shared_ptr<ObjectSlot> slot = claim_idle(event.object.id);
  if (!slot) return false;
  counters_.turns_inline.fetch_add(1, std::memory_order_relaxed);
  // An unconfirmed caller has its reply before the commit (turn_events.cc):
  // it does not wait for it, so it does not make it either.
  event.on_caller_thread = !event.allow_unconfirmed;
  run_event(slot, event);  // invariant (3)
  release_inline(std::move(slot));
  return true;
}

Result<std::string> EngineCore::run_or_post_and_wait(Event& event, std::string_view use) {
  ReplySlot<Result<std::string>> reply;
  CARREL_RETURN_IF_ERROR(check_object_ref(event.object, use));  // invariant (4)
  event.done = [&reply](Result<std::string> r) { reply.fill(std::move(r)); };
  if (!run_inline(event)) CARREL_RETURN_IF_ERROR(post_checked(std::move(event)));
  return reply.wait();
}

Result<std::string> EngineCore::call_blocking(const ObjectRef& object, Request request,
                                              CallOptions options) {
  Event ev;
  ev.kind = EventKind::kRequest;
  ev.object = object;
  ev.request = std::move(request);
  ev.allow_unconfirmed = options.allow_unconfirmed;
  return run_or_post_and_wait(ev, "call");
}

Status EngineCore::run_blocking(const ObjectRef& object,
                                const std::function<Status(Context&)>& fn) {
  Event ev;
  ev.kind = EventKind::kRun;
  ev.object = object;
  ev.fn = fn;
  return run_or_post_and_wait(ev, "run").status();
}

void EngineCore::call(const ObjectRef& object, Request request, CallOptions options,
                      std::vector<ObjectId> chain, std::function<void(Result<std::string>)> done) {
  Event ev;
  ev.kind = EventKind::kRequest;
  ev.object = object;
  ev.request = std::move(request);
  ev.allow_unconfirmed = options.allow_unconfirmed;
  ev.call_chain = std::move(chain);
  ev.done = done;
  Status s = post_checked(std::move(ev));  // invariant (4)
  if (!s.is_ok()) done(s);
}

void EngineCore::spawn_worker_locked() {
  ++live_threads_;
  threads_.emplace_back([this] { worker_main(); });
}

bool EngineCore::on_worker_thread() const {
  return tl_worker_of == this;
}

Status EngineCore::begin_blocking() {
  if (!on_worker_thread()) return Status::ok();  // invariant (2)
  MutexLock lock(run_mutex_);
  if (blocked_threads_ >= options_.workers_blocked_extra_max) {
    return Status::busy("too many workers are blocked in calls (workers_blocked_extra_max " +
                        std::to_string(options_.workers_blocked_extra_max) + ")");
  }
  ++blocked_threads_;
  if (idle_threads_ == 0 && live_threads_ - blocked_threads_ < workers_ && !stopping_workers_) {
    spawn_worker_locked();
  }
  return Status::ok();
}

void EngineCore::end_blocking() {
  if (!on_worker_thread()) return;  // invariant (2)
  MutexLock lock(run_mutex_);
  --blocked_threads_;
}

void EngineCore::worker_main() {
  tl_worker_of = this;
  MutexLock lock(run_mutex_);
  for (;;) {
    while (ready_.empty() && !stopping_workers_) {
      if (live_threads_ - blocked_threads_ > workers_) {  // an extra thread no longer needed
        --live_threads_;
        return;
      }
      ++idle_threads_;
      run_cv_.wait(run_mutex_);
      --idle_threads_;
    }
    if (ready_.empty()) {  // stopping, and nothing is left to run
      --live_threads_;
      return;
    }
    std::shared_ptr<ObjectSlot> slot = std::move(ready_.front());
    ready_.pop_front();
    lock.unlock();
    run_slot(slot);
    lock.lock();
  }
}

void EngineCore::run_slot(const std::shared_ptr<ObjectSlot>& slot) {
  // Fairness: after this many events the slot goes to the back of the queue.
  constexpr int kEventsPerRun = 64;
  for (int n = 0;; ++n) {
    Event ev;
    {
      MutexLock lock(slot->mutex);
      if (slot->mailbox.empty()) {
        slot->scheduled = false;
        return;
      }
      if (n == kEventsPerRun) break;
      ev = std::move(slot->mailbox.front());
      slot->mailbox.pop_front();
    }
    run_event(slot, ev);
  }
  MutexLock lock(run_mutex_);
  ready_.push_back(slot);
  run_cv_.notify_one();
}

Result<std::pair<std::optional<store::ObjectRecord>, store::ReadTxn>>
EngineCore::record_and_snapshot(const ObjectId& id) {
  CARREL_ASSIGN_OR_RETURN(auto txn, store_->begin_read());
  CARREL_ASSIGN_OR_RETURN(auto rec, records_->get(txn, id));
  // The record may be newer than txn; a snapshot taken after the lookup holds
  // every log record it names (records.h (2)).
  txn.release();
  CARREL_ASSIGN_OR_RETURN(txn, store_->begin_read());
  return std::make_pair(std::move(rec), std::move(txn));
}

Status EngineCore::prepare(ObjectSlot& slot, const Event& event, store::ReadTxn& txn) {
  Activation& act = slot.act;
  uint64_t generation = slot.generation.load(std::memory_order_acquire);
  if (act.loaded && act.generation != generation) {
    act = Activation{};  // reset after a failed commit: back to the durable state
  }
  // Invariant (2) of turn.h: read durable_seq, then take the snapshot.
  uint64_t durable = slot.durable_seq.load(std::memory_order_acquire);
  CARREL_ASSIGN_OR_RETURN(txn, store_->begin_read());
  if (!act.loaded) {
    CARREL_ASSIGN_OR_RETURN(auto found, records_->get(txn, slot.id));
    const bool raw = found.has_value();
    store::ObjectRecord rec = raw ? std::move(*found) : store::ObjectRecord{};
    // records.h (2): the record is at least as new as the durable_seq read
    // before it; with nothing of the object in flight at activation, newest
    // and durable are one.
    CARREL_ASSERT(rec.last_seq >= durable, "records.h (2): a record is never behind durable_seq");
    act.generation = generation;
    act.next_seq = rec.last_seq + 1;
    act.last_commit_ms = rec.last_commit_ms;
    act.sql_pages = rec.sql_pages;
    act.class_name = raw ? rec.class_name : event.object.class_name;
    act.name = rec.name;
    // records.h (6): before this activation seals anything under its keys.
    act.number = raw ? rec.number : records_->give_number();
    slot.sealed_seq.store(rec.last_seq, std::memory_order_release);
    slot.durable_seq.store(rec.last_seq, std::memory_order_release);
    durable = rec.last_seq;
    act.loaded = true;
  }
  if (act.name.empty()) act.name = event.object.name;
  if (event.object.class_name != act.class_name && event.kind != EventKind::kRestore) {
    return Status::invalid_argument("object " + slot.id.to_hex() + " belongs to class " +
                                    act.class_name + ", not " + event.object.class_name);
  }
  act.pending.prune(durable);
  CARREL_DASSERT(act.pending.holds_only_pending(durable, act.next_seq),
                 "turn.h (2): the pending overlay holds sealed commits not yet durable");
  if (act.sql) act.sql->pages.prune(durable);
  if (!act.handler && event.kind != EventKind::kRestore) {
    // A registered factory is never removed or replaced, and a std::map node
    // never moves: the factory is called through a pointer, outside the lock,
    // without a copy of it per activation.
    const HandlerFactory* factory = nullptr;
    {
      MutexLock lock(classes_mutex_);
      auto it = classes_.find(act.class_name);
      if (it != classes_.end()) factory = &it->second;
    }
    if (factory) {
      ObjectRef ref{act.class_name, slot.id, act.name};
      try {
        act.handler = (*factory)(ref);
      } catch (...) {
        return Status::aborted("handler factory of class " + act.class_name + " threw");
      }
    } else if (event.kind != EventKind::kRun) {
      return Status::not_found("class " + act.class_name + " is not registered");
    }
  }
  return Status::ok();
}

void EngineCore::run_event(const std::shared_ptr<ObjectSlot>& slot, Event& event) {
  store::ReadTxn txn;
  Status s = prepare(*slot, event, txn);
  if (!s.is_ok()) {
    counters_.turns_failed.fetch_add(1, std::memory_order_relaxed);
    if (event.kind == EventKind::kAlarm) {
      scheduler_->done(slot->id, event.alarm_name, /*rescan=*/true);
    } else if (event.kind == EventKind::kMessage && s.code() != Code::kInvalidArgument) {
      // Transient (reset, busy): retry. A message for an object of another
      // class stays in the outbox, offered again only at the next open.
      MutexLock lock(janitor_mutex_);
      parked_messages_.emplace_back(event.message_no,
                                    OutMessage{event.object, event.request.method,
                                               event.request.payload, ""});
    }
    if (event.done) event.done(s);
    return;
  }
  if (event.kind == EventKind::kRestore) {
    run_restore(slot, event, txn);
  } else {
    run_turn_event(slot, event, txn);
  }
  slot->last_used_ms.store(clock().now_ms(), std::memory_order_relaxed);
}

}  // namespace carrel::detail
