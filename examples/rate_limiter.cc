// examples/rate_limiter.cc — a per-user token bucket.
//
// Each user's RateLimiter holds a bucket of 10 tokens refilling at 5 per
// second, computed from ctx.now_ms() on each request (no timers). A
// ManualClock makes the refill exact. 50 concurrent requests for one user get
// exactly the 10 tokens there are: the object's turns never interleave.
//
//   rate_limiter [--check] [--dir DIR]
#include "classes/rate_limiter.h"

#include <cstdio>
#include <future>
#include <string>
#include <vector>

#include "carrel/carrel.h"

using namespace carrel;
using namespace carrel::examples;

int main(int argc, char** argv) {
  ExampleArgs args = parse_args(argc, argv, "rate_limiter [--check] [--dir DIR]");
  ScratchDir scratch;
  auto clock = std::make_shared<ManualClock>(kExampleEpochMs);
  auto engine = open_or_exit(args.dir.empty() ? scratch.path() : args.dir, clock);
  Checker check;
  check.ok(register_rate_limiter(*engine), "register RateLimiter");
  Stub alice = engine->stub(kRateLimiterClass, "alice");

  bool drained = true;
  for (int i = 9; i >= 0; --i) {
    drained = drained && alice.call("take", "").get().value_or("") == "ok|" + std::to_string(i);
  }
  check.expect(drained, "alice takes her 10 tokens");
  check.expect(alice.call("take", "").get().value_or("") == "limited|200",
               "the 11th is limited: retry after 200 ms");
  clock->advance_ms(200);
  check.expect(alice.call("take", "").get().value_or("") == "ok|0", "200 ms later: one token");
  clock->advance_ms(1000);
  check.expect(alice.call("peek", "").get().value_or("") == "5", "1 s later: 5 tokens");
  check.expect(alice.call("take", "6").get().value_or("") == "limited|200",
               "taking 6 of 5 is limited and takes nothing");
  clock->advance_ms(60 * 1000);
  check.expect(alice.call("peek", "").get().value_or("") == "10", "a minute later: full (10)");
  check.expect(alice.call("take", "11").get().status().code() == Code::kInvalidArgument,
               "more than the capacity is InvalidArgument");
  check.expect(engine->stub(kRateLimiterClass, "bob").call("take", "").get().value_or("") == "ok|9",
               "bob has his own bucket");

  std::vector<std::future<Result<std::string>>> burst;
  for (int i = 0; i < 50; ++i)
    burst.push_back(engine->stub(kRateLimiterClass, "carol").call("take", ""));
  int granted = 0;
  int limited = 0;
  for (auto& f : burst) {
    auto r = f.get();
    std::string v = r.value_or("error");
    granted += v.starts_with("ok|");
    limited += v.starts_with("limited|");
  }
  check.expect(granted == 10 && limited == 40, "50 concurrent takes: " + std::to_string(granted) +
                                                   " granted, " + std::to_string(limited) +
                                                   " limited (want 10 and 40)");

  check.ok(engine->close(), "close");
  int rc = check.exit_code();
  return args.check ? rc : 0;
}
