// carrel-test-dead-letters: makes real dead letters for the CLI tests.
//
//   carrel-test-dead-letters DIR
//
// Opens (creating) the engine in DIR with one alarm retry, registers class
// "Flaky" whose on_alarm always fails with "flaky: failed on purpose", and
// schedules alarm "job" (payload "p") on Flaky:f, due now. Waits, at most
// kWait, until the engine has given up on it (the entry left the queue after
// the retry failed too), closes and exits 0; exits 1 naming what did not
// happen otherwise.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "carrel/carrel.h"

namespace {

using namespace carrel;

constexpr auto kWait = std::chrono::seconds(60);
constexpr int kRetries = 1;

class Flaky final : public Handler {
 public:
  Result<std::string> on_request(Context&, const Request&) override { return std::string(); }
  Status on_alarm(Context&, const AlarmInfo&) override {
    return Status::aborted("flaky: failed on purpose");
  }
};

int fail(const std::string& what) {
  std::fprintf(stderr, "carrel-test-dead-letters: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  Options o;
  o.dir = argv[1];
  o.create_if_missing = true;
  o.alarm_retries_max = kRetries;
  o.alarm_retry_initial_ms = 1;
  o.alarm_retry_jitter = 0;
  auto engine = Engine::open(o);
  if (!engine.is_ok()) return fail("open: " + engine.status().to_string());
  Status s = (*engine)->register_class("Flaky",
                                       [](const ObjectRef&) { return std::make_unique<Flaky>(); });
  if (!s.is_ok()) return fail("register: " + s.to_string());
  const ObjectRef ref = ObjectRef::named("Flaky", "f");
  s = (*engine)->run(ref,
                     [](Context& ctx) { return ctx.alarms().schedule("job", ctx.now_ms(), "p"); });
  if (!s.is_ok()) return fail("schedule: " + s.to_string());

  // Dead: every delivery failed and the entry left the queue.
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  for (;;) {
    size_t queued = 1;
    s = (*engine)->run(ref, [&](Context& ctx) -> Status {
      auto entries = ctx.alarms().list();
      if (!entries.is_ok()) return entries.status();
      queued = entries->size();
      return Status::ok();
    });
    if (!s.is_ok()) return fail("list: " + s.to_string());
    const EngineStats st = (*engine)->stats();
    if (queued == 0 && st.alarms_failed >= kRetries + 1) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return fail("the alarm was not given up within 60 s (" + std::to_string(st.alarms_failed) +
                  " failed deliveries, " + std::to_string(queued) + " entries queued)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  s = (*engine)->close();
  if (!s.is_ok()) return fail("close: " + s.to_string());
  return 0;
}
