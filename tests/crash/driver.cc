// carrel-crash-test: kills carrel-crash-worker with SIGKILL at seeded random
// moments and checks the engine directory after every kill.
//
//   carrel-crash-test --seed S --kills N --dir D [--objects 8] [--nosync]
//                     [--delay-ms-min 20] [--delay-ms-max 300] [--worker PATH] [--keep]
//
// D is emptied first; the engine lives in D/engine, the worker's
// acknowledgements in D/acks. After each kill the directory is reopened in
// this process and tests/crash/ledger.h's invariants are checked: every
// acknowledged turn is there, none is partly there, messages were delivered
// exactly once, records and the timetable match the data, SQLite's
// integrity_check is ok. Then one more turn per object must succeed (its ack
// is recorded too). On failure it prints the seed and the iteration, and
// exits 1; D is kept for inspection.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/crash/ledger.h"

extern char** environ;

namespace {

struct Args {
  uint64_t seed = 1;
  int kills = 50;
  std::string dir;
  int objects = 8;
  bool nosync = false;
  int delay_ms_min = 20;
  int delay_ms_max = 300;
  std::string worker;
  bool keep = false;
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --seed S --kills N --dir D [--objects 8] [--nosync]\n"
               "          [--delay-ms-min 20] [--delay-ms-max 300] [--worker PATH] [--keep]\n",
               argv0);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0]);
      return argv[++i];
    };
    if (f == "--seed")
      a.seed = std::stoull(next());
    else if (f == "--kills")
      a.kills = std::stoi(next());
    else if (f == "--dir")
      a.dir = next();
    else if (f == "--objects")
      a.objects = std::stoi(next());
    else if (f == "--nosync")
      a.nosync = true;
    else if (f == "--delay-ms-min")
      a.delay_ms_min = std::stoi(next());
    else if (f == "--delay-ms-max")
      a.delay_ms_max = std::stoi(next());
    else if (f == "--worker")
      a.worker = next();
    else if (f == "--keep")
      a.keep = true;
    else
      usage(argv[0]);
  }
  if (a.dir.empty() || a.kills < 1 || a.objects < 2 || a.delay_ms_min < 0 ||
      a.delay_ms_max < a.delay_ms_min) {
    usage(argv[0]);
  }
  if (a.worker.empty()) {
    a.worker =
        (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "carrel-crash-worker")
            .string();
  }
  return a;
}

struct Run {
  const Args& args;
  std::string engine_dir, ack_path;
  int iteration = 0;
  uint64_t kills_mid_run = 0;  // the worker was still running when killed
  uint64_t turns = 0, messages = 0;

  [[noreturn]] void fail(const std::string& what) const {
    std::fprintf(stderr, "carrel-crash-test: FAIL seed %llu iteration %d of %d: %s\n",
                 static_cast<unsigned long long>(args.seed), iteration, args.kills, what.c_str());
    std::fprintf(stderr,
                 "  directory kept: %s\n  reproduce: carrel-crash-test --seed %llu --kills %d"
                 " --dir %s%s\n",
                 args.dir.c_str(), static_cast<unsigned long long>(args.seed), iteration,
                 args.dir.c_str(), args.nosync ? " --nosync" : "");
    std::exit(1);
  }

  pid_t spawn_worker() const {
    std::vector<std::string> argv_s = {args.worker, engine_dir, ack_path,
                                       std::to_string(args.objects),
                                       args.nosync ? "nosync" : "sync"};
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, args.worker.c_str(), nullptr, nullptr, argv.data(), environ);
    if (rc != 0) fail("cannot start " + args.worker + ": " + std::strerror(rc));
    return pid;
  }

  // Reopens the directory, checks it, runs one more turn per object, closes.
  void verify() {
    auto engine = carrel::Engine::open(carrel::ledger::options(
        engine_dir, args.nosync ? carrel::Durability::kNoSync : carrel::Durability::kSync));
    if (!engine.is_ok()) fail("reopen: " + engine.status().to_string());
    if (auto s = carrel::ledger::register_class(**engine, args.objects); !s.is_ok()) {
      fail(s.to_string());
    }
    auto acked = carrel::ledger::read_acks(ack_path, args.objects);
    if (!acked.is_ok()) fail(acked.status().to_string());
    carrel::ledger::Totals totals;
    if (auto s = carrel::ledger::check(**engine, args.objects, *acked, &totals); !s.is_ok()) {
      fail(s.to_string());
    }
    turns = totals.turns;
    messages = totals.messages;
    // The engine keeps working: one more turn per object, acknowledged like the worker's.
    std::ofstream acks(ack_path, std::ios::app | std::ios::binary);
    for (int i = 0; i < args.objects; ++i) {
      auto r = (*engine)->stub(carrel::ledger::object(i)).call("turn", "").get();
      if (!r.is_ok())
        fail("turn after reopen on o" + std::to_string(i) + ": " + r.status().to_string());
      acks << i << ' ' << *r << '\n';
    }
    acks.close();
    if (!acks) fail("cannot append to " + ack_path);
    if (auto s = (*engine)->close(); !s.is_ok()) fail("close: " + s.to_string());
  }

  void kill_once(std::mt19937_64& rng) {
    std::uniform_int_distribution<int> delay(args.delay_ms_min, args.delay_ms_max);
    const int delay_ms = delay(rng);
    pid_t pid = spawn_worker();
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      fail("the worker exited on its own (status " + std::to_string(status) + ") before the kill");
    }
    ::kill(pid, SIGKILL);
    if (waitpid(pid, &status, 0) != pid) fail("waitpid failed");
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      ++kills_mid_run;
    else
      fail("the worker ended with status " + std::to_string(status) + " instead of SIGKILL");
    verify();
  }
};

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  std::error_code ec;
  std::filesystem::remove_all(args.dir, ec);
  std::filesystem::create_directories(args.dir, ec);
  if (ec) {
    std::fprintf(stderr, "carrel-crash-test: cannot create %s: %s\n", args.dir.c_str(),
                 ec.message().c_str());
    return 2;
  }
  Run run{args, args.dir + "/engine", args.dir + "/acks"};
  std::printf("carrel-crash-test: seed %llu, %d kills, %d objects, %s, delays %d-%d ms\n",
              static_cast<unsigned long long>(args.seed), args.kills, args.objects,
              args.nosync ? "nosync" : "sync", args.delay_ms_min, args.delay_ms_max);
  std::fflush(stdout);
  std::mt19937_64 rng(args.seed);
  const auto start = std::chrono::steady_clock::now();
  for (run.iteration = 1; run.iteration <= args.kills; ++run.iteration) {
    run.kill_once(rng);
    if (run.iteration % 100 == 0 && run.iteration < args.kills) {  // progress of a soak
      std::printf("carrel-crash-test: %d kills survived, %llu turns committed\n", run.iteration,
                  static_cast<unsigned long long>(run.turns));
      std::fflush(stdout);
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "carrel-crash-test: ok: %llu kills survived, %llu turns committed, %llu messages "
      "delivered exactly once, %.1f s\n",
      static_cast<unsigned long long>(run.kills_mid_run),
      static_cast<unsigned long long>(run.turns), static_cast<unsigned long long>(run.messages),
      seconds);
  if (!args.keep) std::filesystem::remove_all(args.dir, ec);
  return 0;
}
