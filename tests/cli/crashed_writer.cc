// carrel-test-crashed-writer: leaves an engine directory as a crash does, for
// the CLI's recovery tests (tests/cli/cli_recover_test.sh).
//
//   carrel-test-crashed-writer DIR TURNS
//
// Opens (creating) the engine in DIR in sync mode with the redo log, runs
// TURNS turns on Crash:a (turn i puts n<i> = i; every reply means the turn is
// durable), then kills itself with SIGKILL: no close, so the redo files stay
// and, every checkpoint after the open's being held (Options::redo_fault_hook),
// the turns are in the log and not in a checkpoint. Exits 1 naming what
// failed before that.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "carrel/carrel.h"

int main(int argc, char** argv) {
  using namespace carrel;
  const int turns = argc == 3 ? std::atoi(argv[2]) : 0;
  if (argc != 3 || turns < 1 || turns > 100000) {
    std::fprintf(stderr, "usage: carrel-test-crashed-writer DIR TURNS (1..100000)\n");
    return 2;
  }
  Options o;
  o.dir = argv[1];
  o.durability = Durability::kSync;
  o.workers = 1;
  // Every checkpoint after the open's waits until the kill, so the commits
  // are only in the log whatever the machine's speed (an idle checkpoint
  // that covered the last one would leave nothing to recover).
  std::atomic<int> checkpoints{0};
  o.redo_fault_hook = [&checkpoints](RedoStep step) {
    if (step == RedoStep::kCheckpoint && checkpoints.fetch_add(1) > 0) {
      std::this_thread::sleep_for(std::chrono::seconds(300));
    }
    return Status::ok();
  };
  auto e = Engine::open(o);
  if (!e.is_ok()) {
    std::fprintf(stderr, "carrel-test-crashed-writer: %s\n", e.status().to_string().c_str());
    return 1;
  }
  const ObjectRef ref = ObjectRef::named("Crash", "a");
  for (int i = 1; i <= turns; ++i) {
    Status s = (*e)->run(ref, [i](Context& ctx) {
      return ctx.kv().put("n" + std::to_string(i), std::to_string(i));
    });
    if (!s.is_ok()) {
      std::fprintf(stderr, "carrel-test-crashed-writer: turn %d: %s\n", i, s.to_string().c_str());
      return 1;
    }
  }
  std::raise(SIGKILL);
  return 1;
}
