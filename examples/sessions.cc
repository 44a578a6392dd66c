// examples/sessions.cc — a per-user session store with expiry alarms.
//
// Each session is a KV entry plus a named alarm due at its expiry. A
// ManualClock moves time: the alarm deletes an expired session, touching a
// session moves its alarm, ending one cancels it.
//
//   sessions [--check] [--dir DIR]
#include <cstdio>
#include <string>

#include "carrel/carrel.h"
#include "classes/session.h"

using namespace carrel;
using namespace carrel::examples;

namespace {

std::vector<AlarmEntry> alarms_of(Engine& engine, const std::string& user) {
  std::vector<AlarmEntry> out;
  (void)engine.run(ObjectRef::named(kSessionClass, user), [&](Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(out, ctx.alarms().list());
    return Status::ok();
  });
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  ExampleArgs args = parse_args(argc, argv, "sessions [--check] [--dir DIR]");
  ScratchDir scratch;
  auto clock = std::make_shared<ManualClock>(kExampleEpochMs);
  auto engine = open_or_exit(args.dir.empty() ? scratch.path() : args.dir, clock);
  Checker check;
  check.ok(register_sessions(*engine), "register Sessions");
  const UnixMs t0 = clock->now_ms();
  Stub alice = engine->stub(kSessionClass, "alice");
  auto count = [&] { return alice.call("count", "").get().value_or("error"); };

  check.value(alice.call("create", "tok1|60000").get(), "create tok1 for 60 s");
  check.value(alice.call("create", "tok2|120000").get(), "create tok2 for 120 s");
  check.expect(count() == "2|0", "2 live sessions");
  check.expect(alice.call("get", "tok1").get().value_or("") == std::to_string(t0 + 60000),
               "tok1 expires at t0+60s");
  check.expect(alarms_of(*engine, "alice").size() == 2, "one expiry alarm per session");

  clock->advance_ms(61000);
  check.expect(wait_until([&] { return count() == "1|1"; }), "tok1's alarm expired it");
  check.expect(alice.call("get", "tok1").get().status().code() == Code::kNotFound, "tok1 is gone");

  // Touching tok2 at t0+61s moves its expiry (and its alarm) to t0+181s.
  check.expect(alice.call("touch", "tok2|120000").get().value_or("") == std::to_string(t0 + 181000),
               "touch tok2");
  auto entries = alarms_of(*engine, "alice");
  check.expect(
      entries.size() == 1 && entries[0].name == "expire/tok2" && entries[0].due_ms == t0 + 181000,
      "tok2's alarm moved to t0+181s");
  clock->advance_ms(60000);  // t0+121s: past tok2's first expiry
  check.expect(alice.call("get", "tok2").get().is_ok(), "tok2 still valid at t0+121s");
  clock->advance_ms(61000);  // t0+182s
  check.expect(wait_until([&] { return count() == "0|2"; }), "tok2 expired at t0+181s");
  check.expect(alice.call("touch", "tok2|1000").get().status().code() == Code::kNotFound,
               "an expired session cannot be touched");

  check.value(alice.call("create", "tok3|600000").get(), "create tok3");
  check.expect(alice.call("end", "tok3").get().value_or("") == "ended", "end tok3");
  check.expect(alarms_of(*engine, "alice").empty() && count() == "0|2",
               "ending cancelled its alarm");
  check.expect(engine->stub(kSessionClass, "bob").call("get", "tok1").get().status().code() ==
                   Code::kNotFound,
               "bob does not see alice's sessions");

  check.ok(engine->close(), "close");
  int rc = check.exit_code();
  return args.check ? rc : 0;
}
