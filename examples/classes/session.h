// examples/classes/session.h — a per-user session store with expiry alarms.
//
// One object per user. Each session is a KV entry "session/<token>" holding
// its expiry time, and a named alarm "expire/<token>" due at that time. When
// the alarm fires the session is deleted; touching a session moves both. The
// KV entry and its alarm always change in the same turn, so they cannot
// disagree after a crash. `get` also checks the expiry itself, because alarm
// delivery is at least once and may come late.
//
// Methods (payload fields are '|'-separated):
//   create  token|ttl_ms -> "created" (an existing token is renewed)
//   get     token -> expiry time in ms; NotFound when absent or expired
//   touch   token|ttl_ms -> new expiry; NotFound when absent or expired
//   end     token -> "ended"; NotFound when absent
//   count   -> live sessions and how many expired by alarm: "live|expired"
#pragma once

#include <memory>
#include <string>

#include "classes/common.h"

namespace carrel::examples {

inline constexpr char kSessionClass[] = "Sessions";

class SessionStore final : public Handler {
 public:
  Result<std::string> on_request(Context& ctx, const Request& request) override {
    const std::string& m = request.method;
    if (m == "create" || m == "touch") {
      CARREL_ASSIGN_OR_RETURN(auto f, expect_fields(request, 2));
      if (m == "touch") CARREL_RETURN_IF_ERROR(live_expiry(ctx, f[0]).status());
      int64_t ttl_ms = std::stoll(f[1]);
      if (ttl_ms <= 0) return Status::invalid_argument(m + ": ttl_ms must be > 0");
      UnixMs expires = ctx.now_ms() + ttl_ms;
      CARREL_RETURN_IF_ERROR(ctx.kv().put("session/" + f[0], std::to_string(expires)));
      // Scheduling an existing name replaces it: the old expiry is forgotten.
      CARREL_RETURN_IF_ERROR(ctx.alarms().schedule("expire/" + f[0], expires, f[0]));
      return m == "create" ? std::string("created") : std::to_string(expires);
    }
    if (m == "get") {
      CARREL_ASSIGN_OR_RETURN(UnixMs expires, live_expiry(ctx, request.payload));
      return std::to_string(expires);
    }
    if (m == "end") {
      CARREL_ASSIGN_OR_RETURN(bool existed, ctx.kv().del("session/" + request.payload));
      if (!existed) return missing(ctx, request.payload);
      CARREL_RETURN_IF_ERROR(ctx.alarms().cancel("expire/" + request.payload).status());
      return std::string("ended");
    }
    if (m == "count") {
      ListOptions sessions;
      sessions.prefix = "session/";
      CARREL_ASSIGN_OR_RETURN(auto live, ctx.kv().list(sessions));
      CARREL_ASSIGN_OR_RETURN(auto expired, kv_string(ctx, "expired", "0"));
      return std::to_string(live.size()) + "|" + expired;
    }
    return unknown_method(ctx, request);
  }

  Status on_alarm(Context& ctx, const AlarmInfo& alarm) override {
    // The payload is the token; a late or repeated delivery finds nothing to do.
    CARREL_ASSIGN_OR_RETURN(bool existed, ctx.kv().del("session/" + alarm.payload));
    if (!existed) return Status::ok();
    CARREL_ASSIGN_OR_RETURN(auto expired, kv_string(ctx, "expired", "0"));
    return ctx.kv().put("expired", std::to_string(std::stoll(expired) + 1));
  }

 private:
  static Status missing(Context& ctx, const std::string& token) {
    return Status::not_found("user " + ctx.object().label() + " has no session " + token);
  }

  static Result<UnixMs> live_expiry(Context& ctx, const std::string& token) {
    CARREL_ASSIGN_OR_RETURN(auto stored, ctx.kv().get("session/" + token));
    if (!stored) return missing(ctx, token);
    UnixMs expires = std::stoll(*stored);
    if (expires <= ctx.now_ms()) return missing(ctx, token);
    return expires;
  }
};

inline Status register_sessions(Engine& engine) {
  return engine.register_class(kSessionClass,
                               [](const ObjectRef&) { return std::make_unique<SessionStore>(); });
}

}  // namespace carrel::examples
