// ConnectionHub: the transport's events as turns, and held frames on their way out.
#include <future>
#include <random>

#include "engine/conn/conn_state.h"
#include "engine/loop/engine_core.h"
#include "engine/loop/turn.h"
#include "engine/store/cursor.h"
#include "engine/store/keys.h"
#include "engine/store/object_record.h"

namespace carrel {

using detail::HeldFrame;
using detail::Turn;

std::shared_ptr<ConnectionTransport> ConnectionHub::Impl::current_transport() const {
  MutexLock lock(mutex);
  return transport;
}

Status ConnectionHub::Impl::hold(ConnectionId id, size_t n) {
  // Ask the transport outside our lock: it may take its own.
  auto t = current_transport();
  size_t queued = t ? t->queued_bytes(id) : 0;
  size_t max = options->connection_queued_bytes_max;
  MutexLock lock(mutex);
  size_t& held_now = held[id];
  if (held_now + queued + n > max) {
    size_t queued_now = held_now + queued;
    if (held_now == 0) held.erase(id);  // held_now dangles from here on
    sends_refused.fetch_add(1, std::memory_order_relaxed);
    return Status::busy("connection " + std::to_string(id) + " has " +
                        std::to_string(queued_now) + " bytes queued; a frame of " +
                        std::to_string(n) + " bytes would pass connection_queued_bytes_max (" +
                        std::to_string(max) + "): the peer reads too slowly");
  }
  held_now += n;
  held_bytes.fetch_add(n, std::memory_order_relaxed);
  return Status::ok();
}

void ConnectionHub::Impl::unhold(ConnectionId id, size_t n) {
  MutexLock lock(mutex);
  auto it = held.find(id);
  if (it == held.end()) return;
  it->second -= std::min(it->second, n);
  if (it->second == 0) held.erase(it);
  held_bytes.fetch_sub(n, std::memory_order_relaxed);
}

void ConnectionHub::Impl::release(std::vector<HeldFrame>& frames, const Status& commit) {
  auto t = commit.is_ok() ? current_transport() : nullptr;
  for (HeldFrame& f : frames) {
    if (f.close) {
      if (t) t->close(f.id, f.code, std::move(f.data));
      continue;
    }
    size_t n = f.data.size();
    if (t) {
      t->send(f.id, f.kind, std::move(f.data));
      frames_sent.fetch_add(1, std::memory_order_relaxed);
    } else {
      frames_dropped.fetch_add(1, std::memory_order_relaxed);
    }
    unhold(f.id, n);
  }
  frames.clear();
}

ConnectionHub::ConnectionHub(detail::EngineCore* core) : impl_(std::make_unique<Impl>()) {
  impl_->core = core;
  impl_->options = &core->options();
  std::random_device rd;
  impl_->id_high = (uint64_t{rd()} & 0xffff) << 37;
}

ConnectionHub::~ConnectionHub() = default;

void ConnectionHub::set_transport(std::shared_ptr<ConnectionTransport> transport) {
  MutexLock lock(impl_->mutex);
  impl_->transport = std::move(transport);
}

ConnectionId ConnectionHub::new_id() {
  // 16 random bits above a 37-bit counter: 53 bits in all, exact as a JS number.
  return impl_->id_high + impl_->id_counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

namespace {

// Runs fn as a turn on object; done (optional) gets the result once durable.
// past_depth_cap: the event is a close (object.h, Event::past_depth_cap).
void post_turn(detail::EngineCore& core, const ObjectRef& object,
               std::function<Status(Context&)> fn, std::function<void(Status)> done,
               bool past_depth_cap = false) {
  detail::Event ev;
  ev.kind = detail::EventKind::kRun;
  ev.object = object;
  ev.past_depth_cap = past_depth_cap;
  ev.fn = std::move(fn);
  ev.done = [done](Result<std::string> r) {
    if (done) done(r.status());
  };
  Status s = core.post(std::move(ev));
  if (!s.is_ok() && done) done(s);
}

Result<Handler*> handler_of(Context& ctx) {
  Handler* h = Turn::of(ctx).handler();
  if (h == nullptr) {
    return Status::not_found("class " + ctx.object().class_name + " is not registered");
  }
  return h;
}

}  // namespace

void ConnectionHub::connect(const ObjectRef& object, ConnectionId id, std::string payload,
                            std::function<void(Status)> done) {
  Impl* impl = impl_.get();
  post_turn(
      *impl->core, object,
      [id, payload = std::move(payload)](Context& ctx) -> Status {
        CARREL_ASSIGN_OR_RETURN(Handler * h, handler_of(ctx));
        Connections& conns = ctx.connections();
        if (conns.get(id).is_ok()) {
          return Status::invalid_argument("connection " + std::to_string(id) +
                                          " is already open on " + ctx.object().label());
        }
        detail::ConnTurnState::of(conns).connecting = id;
        CARREL_RETURN_IF_ERROR(h->on_connect(ctx, ConnectRequest{id, payload}));
        if (!detail::ConnTurnState::of(conns).accepted) {
          return Status::invalid_argument("on_connect of " + ctx.object().label() +
                                          " returned without accepting connection " +
                                          std::to_string(id));
        }
        return Status::ok();
      },
      [impl, done = std::move(done)](Status s) {
        if (s.is_ok()) impl->accepted.fetch_add(1, std::memory_order_relaxed);
        if (done) done(std::move(s));
      });
}

void ConnectionHub::message(const ObjectRef& object, ConnectionId id, FrameKind kind,
                            std::string data, std::function<void(Status)> done) {
  Status s = detail::check_frame_bytes(*impl_->options, data.size());
  if (!s.is_ok()) {
    if (done) done(std::move(s));
    return;
  }
  post_turn(
      *impl_->core, object,
      [id, kind, data = std::move(data)](Context& ctx) -> Status {
        CARREL_ASSIGN_OR_RETURN(Handler * h, handler_of(ctx));
        CARREL_RETURN_IF_ERROR(ctx.connections().get(id).status());
        return h->on_connection_message(ctx, ConnectionMessage{id, kind, data});
      },
      std::move(done));
}

void ConnectionHub::closed(const ObjectRef& object, ConnectionId id, int code, std::string reason,
                           std::function<void(Status)> done) {
  Impl* impl = impl_.get();
  post_turn(
      *impl->core, object,
      [id, code, reason = std::move(reason)](Context& ctx) -> Status {
        Connections& conns = ctx.connections();
        if (!conns.get(id).is_ok()) return Status::ok();  // closed by the object already
        // Removing the record must not depend on the handler: it runs in a
        // savepoint, and its failure rolls back only its own writes and frames.
        CARREL_RETURN_IF_ERROR(conns.close(id, kCloseNormal));
        detail::ConnTurnState::of(conns)
            .frames.pop_back();  // the peer is gone: no close frame to send
        Handler* h = Turn::of(ctx).handler();
        if (h == nullptr) return Status::ok();
        // A failed handler's frames are dropped by the savepoint's rollback
        // (ConnTurnState::roll_back_to); the record's removal stands.
        (void)ctx.transaction([&] {
          return h->on_connection_close(ctx, ConnectionClose{id, code, reason});
        });
        return Status::ok();
      },
      [impl, done = std::move(done)](Status s) {
        if (s.is_ok()) impl->closed.fetch_add(1, std::memory_order_relaxed);
        if (done) done(std::move(s));
      },
      /*past_depth_cap=*/true);
}

void ConnectionHub::error(const ObjectRef& object, ConnectionId id, std::string message,
                          std::function<void(Status)> done) {
  post_turn(
      *impl_->core, object,
      [id, message = std::move(message)](Context& ctx) -> Status {
        CARREL_ASSIGN_OR_RETURN(Handler * h, handler_of(ctx));
        if (!ctx.connections().get(id).is_ok()) return Status::ok();
        return h->on_connection_error(ctx, id, message);
      },
      std::move(done));
}

Result<size_t> ConnectionHub::reconcile() {
  detail::EngineCore& core = *impl_->core;
  CARREL_RETURN_IF_ERROR(core.check_open());
  auto transport = impl_->current_transport();
  // Every stored connection: one seek to each object's reserved range, the
  // objects taken from `objects`, which holds every object's number from its
  // creation on (records.h (5), (6)).
  std::vector<std::pair<ObjectRef, ConnectionId>> gone;
  {
    CARREL_ASSIGN_OR_RETURN(auto txn, core.store().begin_read());
    CARREL_ASSIGN_OR_RETURN(auto objects,
                            store::Cursor::open(core.store(), txn, store::Db::kObjects));
    CARREL_ASSIGN_OR_RETURN(auto c, store::Cursor::open(core.store(), txn, store::Db::kKv));
    for (bool more = objects.first(); more; more = objects.next()) {
      if (objects.key().size() != store::kIdBytes) continue;  // `carrel verify` names it
      auto stored = store::ObjectRecord::decode(objects.value());
      if (!stored.is_ok()) continue;
      const ObjectId oid = ObjectId::from_raw(objects.key());
      std::string reserved = store::object_key(stored->number, detail::kReservedPrefix);
      bool on = c.seek(reserved);
      std::optional<ObjectRef> ref;
      while (on && c.key().substr(0, reserved.size()) == reserved) {
        std::string_view key = c.key();
        if (key.size() == reserved.size() + 8) {
          if (!ref) {
            auto rec = core.records().get(txn, oid);
            if (!rec.is_ok() || !*rec) break;
            ref = ObjectRef{(*rec)->class_name, oid, (*rec)->name};
          }
          ConnectionId id = store::read_u64(key, reserved.size());
          if (!transport || !transport->holds(id)) gone.emplace_back(*ref, id);
        }
        on = c.next();
      }
      if (!c.status().is_ok()) break;
    }
    CARREL_RETURN_IF_ERROR(objects.status());
    CARREL_RETURN_IF_ERROR(c.status());
  }
  std::vector<std::future<Status>> turns;
  turns.reserve(gone.size());
  for (auto& [ref, id] : gone) {
    auto promise = std::make_shared<std::promise<Status>>();
    turns.push_back(promise->get_future());
    closed(ref, id, kCloseAbnormal, "the connection was lost when the engine restarted",
           [promise](Status s) { promise->set_value(std::move(s)); });
  }
  for (auto& f : turns) CARREL_RETURN_IF_ERROR(f.get());
  return gone.size();
}

ConnectionStats ConnectionHub::stats() const {
  ConnectionStats s;
  s.accepted = impl_->accepted.load();
  s.closed = impl_->closed.load();
  s.frames_sent = impl_->frames_sent.load();
  s.frames_dropped = impl_->frames_dropped.load();
  s.sends_refused = impl_->sends_refused.load();
  s.held_bytes = impl_->held_bytes.load();
  return s;
}

ConnectionHub& Engine::connections() {
  return core_->connection_hub();
}

}  // namespace carrel
