// carrel-crash-worker: runs ledger turns (tests/crash/ledger.h) until killed.
//
//   carrel-crash-worker ENGINE_DIR ACK_FILE OBJECTS sync|nosync [TURNS_MAX]
//
// Keeps kInFlight turns in flight per object (so turns pipeline and group
// commits span objects). When a reply arrives, which the output gate releases
// only once the turn's commit is durable, it appends "<object> <k>\n" to
// ACK_FILE with one write(2): the line reaches the kernel before the process
// can be killed, so the ack file never claims more than the engine promised.
// Exits 0 after TURNS_MAX replies per object (default: never), 3 on any error.
//
// CARREL_CRASH_RELEASE_BEFORE_SYNC=1 (the power-cut test's checks of the
// checker) makes the committer release replies before their commit is
// durable: before the sync that covers its meta page (engine/commit/
// committer.h (6)), or, with the redo log, with its record appended unsynced.
#include <fcntl.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "engine/commit/committer.h"
#include "tests/crash/ledger.h"

namespace {

constexpr int kInFlight = 3;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "carrel-crash-worker: %s\n", what.c_str());
  std::fflush(stderr);
  _exit(3);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || argc > 6) {
    std::fprintf(stderr, "usage: %s ENGINE_DIR ACK_FILE OBJECTS sync|nosync [TURNS_MAX]\n",
                 argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const int objects = std::atoi(argv[3]);
  const std::string mode = argv[4];
  const long turns_max = argc == 6 ? std::atol(argv[5]) : -1;
  if (objects < 1 || (mode != "sync" && mode != "nosync")) die("bad arguments");

  if (const char* e = std::getenv("CARREL_CRASH_RELEASE_BEFORE_SYNC");
      e && std::strcmp(e, "1") == 0)
    carrel::detail::Committer::release_before_sync_for_tests(true);

  const int ack_fd = ::open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (ack_fd < 0) die(std::string("open ack file: ") + std::strerror(errno));

  carrel::Options options = carrel::ledger::options(
      dir, mode == "sync" ? carrel::Durability::kSync : carrel::Durability::kNoSync);
  // CARREL_CRASH_REDO=0 runs without the redo log (engine/store/redo.h),
  // on the path with more to prove there: deferred meta syncs (committer.h
  // (6)); that path's default is LMDB's own synced commit.
  if (const char* e = std::getenv("CARREL_CRASH_REDO"); e && std::strcmp(e, "0") == 0) {
    options.redo_log = false;
    options.defer_meta_sync = true;
  }
  auto engine = carrel::Engine::open(std::move(options));
  if (!engine.is_ok()) die("open: " + engine.status().to_string());
  if (auto s = carrel::ledger::register_class(**engine, objects); !s.is_ok()) die(s.to_string());

  std::mutex mutex;
  std::condition_variable cv;
  std::vector<int> in_flight(static_cast<size_t>(objects), 0);  // GUARDED_BY(mutex)
  std::vector<long> replies(static_cast<size_t>(objects), 0);   // GUARDED_BY(mutex)
  std::vector<carrel::Stub> stubs;
  for (int i = 0; i < objects; ++i) stubs.push_back((*engine)->stub(carrel::ledger::object(i)));

  std::unique_lock lock(mutex);
  for (;;) {
    bool done = turns_max >= 0;
    for (int i = 0; i < objects; ++i) {
      if (turns_max >= 0 && replies[i] < turns_max) done = false;
      while (in_flight[i] < kInFlight && (turns_max < 0 || replies[i] + in_flight[i] < turns_max)) {
        ++in_flight[i];
        lock.unlock();
        stubs[i].call_async("turn", "", [&, i](carrel::Result<std::string> r) {
          if (!r.is_ok()) die("object " + std::to_string(i) + ": " + r.status().to_string());
          const std::string line = std::to_string(i) + " " + *r + "\n";
          if (::write(ack_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
            die(std::string("write ack: ") + std::strerror(errno));
          }
          std::lock_guard guard(mutex);
          --in_flight[i];
          ++replies[i];
          cv.notify_one();
        });
        lock.lock();
      }
    }
    if (done) break;
    cv.wait(lock);
  }
  lock.unlock();
  if (auto s = (*engine)->close(); !s.is_ok()) die("close: " + s.to_string());
  return 0;
}
