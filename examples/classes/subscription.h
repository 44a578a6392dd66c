// examples/classes/subscription.h — a per-user subscription that renews itself.
//
// subscribe stores the plan and sets the object's single alarm 30 days ahead.
// On the alarm the user is charged: a successful charge sets the alarm 30 days
// later again. A declined charge makes on_alarm fail, so the engine retries
// the alarm with exponential backoff (Options::alarm_retry_initial_ms,
// doubling); on the kDowngradeOnRetry-th retry the handler gives up and
// downgrades the user to the free plan, which succeeds and so removes the
// alarm. cancel clears the alarm: nothing fires after it.
//
// The card is simulated by the KV key "card_declined" (method set_card), so
// the example needs no payment service.
//
// Methods (payload fields are '|'-separated):
//   subscribe  user|plan -> "subscribed" or "exists" (an active subscription is kept)
//   set_card   "ok" | "declined" -> "ok"
//   cancel     -> "cancelled"
//   status     -> "status|plan|renewals|next_renewal_ms" (next_renewal_ms 0: none)
#pragma once

#include <memory>
#include <string>

#include "classes/common.h"

namespace carrel::examples {

inline constexpr char kSubscriptionClass[] = "Subscription";
inline constexpr int64_t kRenewalPeriodMs = 30 * kDayMs;
// Retry count (AlarmInfo::retry_count) at which a declined card downgrades;
// keep it below Options::alarm_retries_max so the entry never dead-letters.
inline constexpr int kDowngradeOnRetry = 3;

class Subscription final : public Handler {
 public:
  Result<std::string> on_request(Context& ctx, const Request& request) override {
    const std::string& m = request.method;
    if (m == "subscribe") {
      CARREL_ASSIGN_OR_RETURN(auto f, expect_fields(request, 2));
      CARREL_ASSIGN_OR_RETURN(auto status, kv_string(ctx, "status"));
      if (status == "active") return std::string("exists");
      CARREL_RETURN_IF_ERROR(ctx.kv().put_many(
          {{"user", f[0]}, {"plan", f[1]}, {"status", "active"}, {"renewals", "0"}}));
      CARREL_RETURN_IF_ERROR(ctx.alarms().set(ctx.now_ms() + kRenewalPeriodMs));
      return std::string("subscribed");
    }
    if (m == "set_card") {
      if (request.payload == "declined")
        CARREL_RETURN_IF_ERROR(ctx.kv().put("card_declined", "1"));
      else
        CARREL_RETURN_IF_ERROR(ctx.kv().del("card_declined").status());
      return std::string("ok");
    }
    if (m == "cancel") {
      CARREL_RETURN_IF_ERROR(ctx.kv().put("status", "cancelled"));
      CARREL_RETURN_IF_ERROR(ctx.alarms().clear());  // DO's deleteAlarm()
      return std::string("cancelled");
    }
    if (m == "status") {
      CARREL_ASSIGN_OR_RETURN(auto status, kv_string(ctx, "status", "none"));
      CARREL_ASSIGN_OR_RETURN(auto plan, kv_string(ctx, "plan", "free"));
      CARREL_ASSIGN_OR_RETURN(auto renewals, kv_string(ctx, "renewals", "0"));
      CARREL_ASSIGN_OR_RETURN(auto next, ctx.alarms().get());
      return join_fields({status, plan, renewals, std::to_string(next.value_or(0))});
    }
    return unknown_method(ctx, request);
  }

  Status on_alarm(Context& ctx, const AlarmInfo& alarm) override {
    CARREL_ASSIGN_OR_RETURN(auto declined, ctx.kv().get("card_declined"));
    if (declined) {
      if (alarm.retry_count < kDowngradeOnRetry) {
        // Failing the turn keeps the alarm and schedules a retry with backoff.
        return Status::aborted("card declined for " + ctx.object().label() + " (retry " +
                               std::to_string(alarm.retry_count) + ")");
      }
      // Returning ok removes the alarm in this same commit.
      return ctx.kv().put_many({{"status", "expired"}, {"plan", "free"}});
    }
    CARREL_ASSIGN_OR_RETURN(auto renewals, kv_string(ctx, "renewals", "0"));
    CARREL_RETURN_IF_ERROR(ctx.kv().put("renewals", std::to_string(std::stoll(renewals) + 1)));
    // Setting the alarm inside on_alarm replaces the entry being delivered.
    return ctx.alarms().set(alarm.scheduled_ms + kRenewalPeriodMs);
  }
};

inline Status register_subscription(Engine& engine) {
  return engine.register_class(kSubscriptionClass,
                               [](const ObjectRef&) { return std::make_unique<Subscription>(); });
}

}  // namespace carrel::examples
