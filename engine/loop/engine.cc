// The public Engine, Stub and Context, over EngineCore and Turn.
#include "carrel/engine.h"

#include <future>

#include "engine/loop/engine_core.h"
#include "engine/loop/turn.h"
#include "engine/sql/turn_sql.h"

namespace carrel {

Result<std::unique_ptr<Engine>> Engine::open(Options options) {
  CARREL_ASSIGN_OR_RETURN(auto core, detail::EngineCore::open(std::move(options)));
  return std::unique_ptr<Engine>(new Engine(std::move(core)));
}

Engine::Engine(std::unique_ptr<detail::EngineCore> core) : core_(std::move(core)) {}
Engine::~Engine() = default;

Status Engine::register_class(std::string_view class_name, HandlerFactory factory) {
  return core_->register_class(class_name, std::move(factory));
}

Stub Engine::stub(const ObjectRef& object) { return Stub(core_.get(), object); }

std::future<Status> Engine::submit(const ObjectRef& object, std::function<Status(Context&)> fn) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  detail::Event ev;
  ev.kind = detail::EventKind::kRun;
  ev.object = object;
  ev.fn = std::move(fn);
  ev.done = [promise](Result<std::string> r) { promise->set_value(r.status()); };
  Status s = core_->post(std::move(ev));
  if (!s.is_ok()) promise->set_value(s);
  return future;
}

Status Engine::run(const ObjectRef& object, const std::function<Status(Context&)>& fn) {
  return core_->run_blocking(object, fn);
}

Result<std::string> Engine::current_bookmark(const ObjectRef& object) {
  return core_->current_bookmark(object);
}
Result<std::string> Engine::bookmark_for_time(const ObjectRef& object, UnixMs t) {
  return core_->bookmark_for_time(object, t);
}
Result<std::string> Engine::restore(const ObjectRef& object, std::string_view bookmark) {
  return core_->restore(object, bookmark);
}
Status Engine::backup(const std::string& dest_dir) {
  CARREL_RETURN_IF_ERROR(core_->check_open());
  return core_->store().copy_compact(dest_dir);
}
Status Engine::close() { return core_->close(); }
EngineStats Engine::stats() const { return core_->counters().snapshot(); }
const Options& Engine::options() const { return core_->options(); }

std::future<Result<std::string>> Stub::call(std::string_view method, std::string_view payload,
                                            CallOptions options) {
  auto promise = std::make_shared<std::promise<Result<std::string>>>();
  auto future = promise->get_future();
  call_async(
      method, payload, [promise](Result<std::string> r) { promise->set_value(std::move(r)); },
      options);
  return future;
}

Result<std::string> Stub::call_blocking(std::string_view method, std::string_view payload,
                                        CallOptions options) {
  return core_->call_blocking(object_, Request{std::string(method), std::string(payload)}, options);
}

void Stub::call_async(std::string_view method, std::string_view payload, ReplyCallback done,
                      CallOptions options) {
  Status checked = detail::check_object_ref(object_, "call");  // engine_core.h (4)
  if (!checked.is_ok()) {
    done(checked);
    return;
  }
  core_->call(object_, Request{std::string(method), std::string(payload)}, options, {},
              std::move(done));
}

// Context: forwards to the turn.
const ObjectRef& Context::object() const { return turn_->object(); }
Status Context::transaction(const std::function<Status()>& fn) { return turn_->transaction(fn); }
Status Context::send(const ObjectRef& target, std::string_view method, std::string_view payload) {
  return turn_->send(target, method, payload);
}
Result<std::string> Context::call(const ObjectRef& target, std::string_view method,
                                  std::string_view payload) {
  return turn_->call(target, method, payload);
}
UnixMs Context::now_ms() const { return turn_->core().clock().now_ms(); }
Result<std::string> Context::current_bookmark() { return turn_->current_bookmark(); }

namespace detail {
Result<sql::SqlDatabase*> turn_sql(Turn* turn) { return turn->sql(); }
kv::TurnKv& turn_kv(Turn* turn) {
  return turn->kv();
}
alarm::TurnAlarms& turn_alarms(Turn* turn) {
  return turn->alarms();
}
}  // namespace detail

}  // namespace carrel
