// examples/subscriptions.cc — per-user subscriptions that renew through alarms.
//
// Each user's Subscription object sets its single alarm 30 days ahead. The
// program drives a ManualClock through months of renewals in milliseconds:
// alice renews twice, then her card is declined; the alarm fails, the engine
// retries it with backoff, and on the third retry the handler downgrades her
// to the free plan. bob cancels, which clears his alarm.
//
//   subscriptions [--check] [--dir DIR]
#include <cstdio>
#include <string>

#include "carrel/carrel.h"
#include "classes/subscription.h"

using namespace carrel;
using namespace carrel::examples;

namespace {

// "status|plan|renewals|next_renewal_ms"
std::vector<std::string> status_of(Engine& engine, const std::string& user) {
  auto r = call(engine, kSubscriptionClass, user, "status");
  return r.is_ok() ? split_fields(*r)
                   : std::vector<std::string>{r.status().to_string(), "", "", ""};
}

// Failed deliveries of the user's pending renewal; -1 when there is none.
int renewal_retries(Engine& engine, const std::string& user) {
  int retries = -1;
  (void)engine.run(ObjectRef::named(kSubscriptionClass, user), [&](Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(auto entries, ctx.alarms().list());
    for (const AlarmEntry& e : entries) {
      if (e.name.empty()) retries = e.retry_count;
    }
    return Status::ok();
  });
  return retries;
}

}  // namespace

int main(int argc, char** argv) {
  ExampleArgs args = parse_args(argc, argv, "subscriptions [--check] [--dir DIR]");
  ScratchDir scratch;
  auto clock = std::make_shared<ManualClock>(kExampleEpochMs);
  auto engine = open_or_exit(args.dir.empty() ? scratch.path() : args.dir, clock);
  Checker check;
  check.ok(register_subscription(*engine), "register Subscription");
  const UnixMs t0 = clock->now_ms();

  check.expect(call(*engine, kSubscriptionClass, "alice", "subscribe", "alice|pro").value_or("") ==
                   "subscribed",
               "alice subscribes to pro");
  check.expect(
      call(*engine, kSubscriptionClass, "alice", "subscribe", "alice|pro").value_or("") == "exists",
      "subscribing again keeps the active subscription");
  auto s = status_of(*engine, "alice");
  check.expect(s[0] == "active" && s[3] == std::to_string(t0 + kRenewalPeriodMs),
               "renewal due in 30 days");

  // Two months pass: two renewals, each setting the next alarm.
  for (int month = 1; month <= 2; ++month) {
    clock->advance_ms(kRenewalPeriodMs);
    check.expect(
        wait_until([&] { return status_of(*engine, "alice")[2] == std::to_string(month); }),
        "renewal " + std::to_string(month) + " charged");
  }
  s = status_of(*engine, "alice");
  check.expect(
      s[0] == "active" && s[1] == "pro" && s[3] == std::to_string(t0 + 3 * kRenewalPeriodMs),
      "still pro, next renewal at day 90");

  // The card is declined: the alarm fails and is retried with backoff.
  check.value(call(*engine, kSubscriptionClass, "alice", "set_card", "declined"), "decline card");
  uint64_t failed_before = engine->stats().alarms_failed;
  clock->advance_ms(kRenewalPeriodMs);
  for (int retry = 1; retry <= kDowngradeOnRetry; ++retry) {
    check.expect(wait_until([&] { return renewal_retries(*engine, "alice") == retry; }),
                 "failed charge " + std::to_string(retry) + " left the alarm for retry " +
                     std::to_string(retry));
    check.expect(status_of(*engine, "alice")[1] == "pro", "still pro while retrying");
    // Backoff is 2 s, doubling, +-25%: a minute covers every retry here.
    clock->advance_ms(60 * 1000);
  }
  check.expect(wait_until([&] { return status_of(*engine, "alice")[0] == "expired"; }),
               "retry 3 downgraded alice");
  s = status_of(*engine, "alice");
  check.expect(s[1] == "free" && s[2] == "2" && s[3] == "0",
               "free plan, 2 renewals, no alarm left");
  check.expect(engine->stats().alarms_failed - failed_before == kDowngradeOnRetry,
               "exactly 3 failed deliveries");

  // bob cancels: clearing the alarm means nothing fires.
  check.value(call(*engine, kSubscriptionClass, "bob", "subscribe", "bob|team"), "bob subscribes");
  check.expect(call(*engine, kSubscriptionClass, "bob", "cancel").value_or("") == "cancelled",
               "bob cancels");
  s = status_of(*engine, "bob");
  check.expect(s[0] == "cancelled" && s[3] == "0", "bob has no pending renewal");
  clock->advance_ms(2 * kRenewalPeriodMs);
  check.expect(renewal_retries(*engine, "bob") == -1 && status_of(*engine, "bob")[2] == "0",
               "two months later bob was never charged");

  check.ok(engine->close(), "close");
  int rc = check.exit_code();
  return args.check ? rc : 0;
}
