// carrel/handler.h — object classes.
//
// An embedder registers a class name with a factory. The engine creates one
// handler per active object (one instance per id), calls on_start before any
// event of an activation, then one hook per event, one at a time. Hooks may
// return an error or throw: either way the turn rolls back and the caller gets
// the error. Handlers are destroyed on eviction (hibernation) and on reset.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "carrel/alarms.h"
#include "carrel/context.h"
#include "carrel/status.h"

namespace carrel {

struct Request {
  std::string method;
  std::string payload;
};

class Handler {
 public:
  virtual ~Handler() = default;
  // Once per activation, before any event: migrations go here. Its writes
  // commit with the first event's turn.
  virtual Status on_start(Context& ctx) {
    (void)ctx;
    return Status::ok();
  }
  virtual Result<std::string> on_request(Context& ctx, const Request& request) = 0;
  virtual Status on_alarm(Context& ctx, const AlarmInfo& alarm) {
    (void)ctx;
    (void)alarm;
    return Status::ok();
  }
  // Connections (carrel/connections.h). on_connect accepts with
  // ctx.connections().accept(); returning ok without accepting, or an error,
  // refuses the connection. The others default to doing nothing; a closed
  // connection is already removed from ctx.connections() when
  // on_connection_close runs.
  virtual Status on_connect(Context& ctx, const ConnectRequest& request) {
    (void)request;
    return Status::not_found("object " + ctx.object().label() + " does not accept connections");
  }
  virtual Status on_connection_message(Context& ctx, const ConnectionMessage& message) {
    (void)ctx;
    (void)message;
    return Status::ok();
  }
  virtual Status on_connection_close(Context& ctx, const ConnectionClose& close) {
    (void)ctx;
    (void)close;
    return Status::ok();
  }
  virtual Status on_connection_error(Context& ctx, ConnectionId id, const std::string& message) {
    (void)ctx;
    (void)id;
    (void)message;
    return Status::ok();
  }
};

using HandlerFactory = std::function<std::unique_ptr<Handler>(const ObjectRef& object)>;

}  // namespace carrel
