// carrel-crash-test: kills carrel-crash-worker with SIGKILL at seeded random
// moments and checks the engine directory after every kill.
//
//   carrel-crash-test --seed S --kills N --dir D [--objects 8] [--nosync]
//                     [--delay-ms-min 20] [--delay-ms-max 300] [--worker PATH] [--keep]
//                     [--powercut LIBPATH]
//
// D is emptied first; the engine lives in D/engine, the worker's
// acknowledgements in D/acks. Each kill must prove something, so it comes
// only after the worker acknowledged a new turn: after the random delay the
// driver waits (at most kAckWait) for the ack file to grow, and fails if it
// never does. After each kill the directory is reopened in
// this process and tests/crash/ledger.h's invariants are checked: every
// acknowledged turn is there, none is partly there, messages were delivered
// exactly once, records and the timetable match the data, SQLite's
// integrity_check is ok. Then one more turn per object must succeed (its ack
// is recorded too). On failure it prints the seed and the iteration, and
// exits 1; D is kept for inspection.
//
// --powercut LIBPATH simulates a power loss at each kill: the worker runs with
// LIBPATH (carrel-powercut, tests/crash/powercut.c) preloaded, which keeps
// D/shadow.mdb holding only the writes to data.mdb that were fdatasynced or
// written with O_DSYNC (and a shadow of each redo log file, holding its
// fdatasynced writes); after the kill the shadows replace the files (and
// lock.mdb is removed) before the check; a kill after which there is no
// shadow fails (the worker acknowledged turns, so it had opened data.mdb). In
// sync mode the check is the same.
// With --nosync the loss is the documented weakness of MDB_NOSYNC, so it is
// reported, not failed: how many acknowledged turns were lost, whether the
// environment opened and whether what it holds is consistent. The check runs
// in a child process there (a torn file may crash LMDB), and the directory
// starts over when it did not open or was inconsistent.
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/crash/ledger.h"

extern char** environ;

namespace {

// How long a worker may take to acknowledge its first turn (opening and
// recovering the directory included; sanitizer builds are slow).
constexpr auto kAckWait = std::chrono::seconds(60);
constexpr auto kAckPoll = std::chrono::milliseconds(5);

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
  std::string powercut;  // the preload library; empty: plain SIGKILL
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --seed S --kills N --dir D [--objects 8] [--nosync]\n"
               "          [--delay-ms-min 20] [--delay-ms-max 300] [--worker PATH] [--keep]\n"
               "          [--powercut LIBPATH]\n",
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
    else if (f == "--powercut")
      a.powercut = next();
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
  if (!a.powercut.empty()) {
    a.powercut = std::filesystem::absolute(a.powercut).string();
    if (!std::filesystem::exists(a.powercut)) {
      std::fprintf(stderr, "carrel-crash-test: no such library: %s\n", a.powercut.c_str());
      std::exit(2);
    }
  }
  return a;
}

// What the nosync power-loss checks saw; shared with the child that checks.
struct PowercutReport {
  uint64_t checks = 0, opened = 0, consistent = 0, shadows = 0;
  uint64_t acked = 0, lost = 0;  // turns acknowledged by the killed workers, lost ones
  uint64_t iterations_losing = 0;
};

struct Run {
  const Args& args;
  std::string engine_dir, ack_path;
  int iteration = 0;
  uint64_t kills_mid_run = 0;               // the worker was still running when killed
  uint64_t acked_at_kill_min = UINT64_MAX;  // the fewest turns a killed worker had acknowledged
  uint64_t acked_at_kill_sum = 0;           // turns the killed workers acknowledged
  uint64_t turns = 0, messages = 0;
  uint64_t shadows = 0;                // --powercut: kills after which a shadow replaced data.mdb
  PowercutReport* report = nullptr;    // --powercut --nosync: in shared memory
  bool in_report_child = false;        // failures are reported, not fatal
  std::vector<uint64_t> acked_before;  // --powercut --nosync: acks before this worker ran

  [[noreturn]] void fail(const std::string& what) const {
    if (in_report_child) {
      std::printf("carrel-crash-test: nosync power loss, iteration %d: inconsistent: %s\n",
                  iteration, what.c_str());
      std::fflush(stdout);
      _exit(1);
    }
    std::fprintf(stderr, "carrel-crash-test: FAIL seed %llu iteration %d of %d: %s\n",
                 static_cast<unsigned long long>(args.seed), iteration, args.kills, what.c_str());
    std::fprintf(stderr,
                 "  directory kept: %s\n  reproduce: carrel-crash-test --seed %llu --kills %d"
                 " --dir %s%s\n",
                 args.dir.c_str(), static_cast<unsigned long long>(args.seed), iteration,
                 args.dir.c_str(), args.nosync ? " --nosync" : "");
    if (!args.powercut.empty())
      std::fprintf(stderr, "  with --powercut %s\n", args.powercut.c_str());
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
    std::vector<std::string> env_s;
    for (char** e = environ; *e; ++e) env_s.emplace_back(*e);
    if (!args.powercut.empty()) {
      env_s.push_back("LD_PRELOAD=" + args.powercut);
      env_s.push_back("CARREL_POWERCUT_SHADOW=" + shadow_path());
    }
    std::vector<char*> env;
    for (auto& s : env_s) env.push_back(s.data());
    env.push_back(nullptr);
    int rc = posix_spawn(&pid, args.worker.c_str(), nullptr, nullptr, argv.data(), env.data());
    if (rc != 0) fail("cannot start " + args.worker + ": " + std::strerror(rc));
    return pid;
  }

  std::string shadow_path() const { return args.dir + "/shadow.mdb"; }

  // The power loss: data.mdb becomes what the simulated disk kept.
  void cut_power() {
    namespace fs = std::filesystem;
    std::error_code ec;
    // The worker acknowledged turns, so it opened data.mdb and the shim started a shadow.
    if (!fs::exists(shadow_path())) {
      fail("no shadow file after the kill: the preloaded library " + args.powercut +
           " kept no copy of data.mdb (was it loaded?)");
    }
    fs::rename(shadow_path(), engine_dir + "/data.mdb", ec);
    if (ec) fail("cannot replace data.mdb by the shadow: " + ec.message());
    // The redo log's files (engine/store/redo.h): each shadow the shim kept
    // (a file the worker opened and did not remove) replaces its file.
    for (const char* name : {"redo.0", "redo.1", "redo.ckpt"}) {
      const std::string shadow = shadow_path() + "." + name;
      if (!fs::exists(shadow)) continue;
      fs::rename(shadow, engine_dir + "/" + name, ec);
      if (ec) fail("cannot replace " + std::string(name) + " by its shadow: " + ec.message());
    }
    fs::remove(engine_dir + "/lock.mdb", ec);
    ++shadows;
  }

  // Reads each object's last turn (nosync power loss only: to count losses).
  std::vector<uint64_t> read_lasts(carrel::Engine& engine) {
    std::vector<uint64_t> lasts;
    for (int i = 0; i < args.objects; ++i) {
      uint64_t last = 0;
      auto s = engine.run(carrel::ledger::object(i), [&](carrel::Context& ctx) -> carrel::Status {
        auto v = ctx.kv().get("last");
        if (!v.is_ok()) return v.status();
        if (*v) last = std::stoull(**v);
        return carrel::Status::ok();
      });
      if (!s.is_ok()) fail("read last of o" + std::to_string(i) + ": " + s.to_string());
      lasts.push_back(last);
    }
    return lasts;
  }

  // --powercut --nosync: in a child, open and count the acknowledged turns
  // lost, make the surviving turns the new baseline of the ack file, then run
  // the usual check. Starts the directory over when that did not succeed.
  void verify_nosync_powercut() {
    ++report->checks;
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) fail("fork failed");
    if (pid == 0) {
      in_report_child = true;
      {
        auto engine =
            carrel::Engine::open(carrel::ledger::options(engine_dir, carrel::Durability::kNoSync));
        if (!engine.is_ok()) {
          std::printf("carrel-crash-test: nosync power loss, iteration %d: no open: %s\n",
                      iteration, engine.status().to_string().c_str());
          std::fflush(stdout);
          _exit(2);
        }
        ++report->opened;
        if (auto s = carrel::ledger::register_class(**engine, args.objects); !s.is_ok()) {
          fail(s.to_string());
        }
        auto acked = carrel::ledger::read_acks(ack_path, args.objects);
        if (!acked.is_ok()) fail(acked.status().to_string());
        const std::vector<uint64_t> lasts = read_lasts(**engine);
        uint64_t acked_sum = 0, lost = 0;
        std::ofstream baseline(ack_path, std::ios::trunc | std::ios::binary);
        for (int i = 0; i < args.objects; ++i) {
          acked_sum += (*acked)[i] - acked_before[i];
          if ((*acked)[i] > lasts[i]) lost += (*acked)[i] - lasts[i];
          baseline << i << ' ' << lasts[i] << '\n';
        }
        baseline.close();
        report->acked += acked_sum;
        report->lost += lost;
        if (lost > 0) ++report->iterations_losing;
        if (auto s = (*engine)->close(); !s.is_ok()) fail("close: " + s.to_string());
      }
      verify();
      ++report->consistent;
      std::fflush(stdout);
      _exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) fail("waitpid failed");
    if (WIFSIGNALED(status)) {
      std::printf(
          "carrel-crash-test: nosync power loss, iteration %d: the check died of signal %d\n",
          iteration, WTERMSIG(status));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::error_code ec;
      std::filesystem::remove_all(engine_dir, ec);
      std::filesystem::remove(ack_path, ec);
    }
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

  // The acknowledged turns in the ack file, summed over the objects.
  uint64_t acked_total() const {
    auto acked = carrel::ledger::read_acks(ack_path, args.objects);
    if (!acked.is_ok()) fail(acked.status().to_string());
    uint64_t sum = 0;
    for (uint64_t k : *acked) sum += k;
    return sum;
  }

  // Waits (at most kAckWait) until the worker `pid` has acknowledged a turn
  // beyond `before`; returns how many it has acknowledged.
  uint64_t wait_for_new_acks(pid_t pid, uint64_t before) const {
    const auto deadline = std::chrono::steady_clock::now() + kAckWait;
    for (;;) {
      const uint64_t now_acked = acked_total();
      if (now_acked > before) return now_acked - before;
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        fail("the worker exited on its own (status " + std::to_string(status) +
             ") before acknowledging a turn");
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        (void)waitpid(pid, &status, 0);
        fail("the worker acknowledged no turn within " +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kAckWait).count()) +
             " s, so a kill would prove nothing (is the engine stuck opening " + engine_dir + "?)");
      }
      std::this_thread::sleep_for(kAckPoll);
    }
  }

  void kill_once(std::mt19937_64& rng) {
    std::uniform_int_distribution<int> delay(args.delay_ms_min, args.delay_ms_max);
    const int delay_ms = delay(rng);
    if (report) {
      auto before = carrel::ledger::read_acks(ack_path, args.objects);
      acked_before = before.is_ok() ? *before : std::vector<uint64_t>(args.objects, 0);
    }
    const uint64_t acked_before_spawn = acked_total();
    pid_t pid = spawn_worker();
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    // The kill must come after at least one acknowledged turn of this worker.
    const uint64_t acked_new = wait_for_new_acks(pid, acked_before_spawn);
    acked_at_kill_min = std::min(acked_at_kill_min, acked_new);
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      fail("the worker exited on its own (status " + std::to_string(status) + ") before the kill");
    }
    ::kill(pid, SIGKILL);
    if (waitpid(pid, &status, 0) != pid) fail("waitpid failed");
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
      ++kills_mid_run;
      acked_at_kill_sum += acked_total() - acked_before_spawn;
    } else
      fail("the worker ended with status " + std::to_string(status) + " instead of SIGKILL");
    if (!args.powercut.empty()) cut_power();
    if (!args.powercut.empty() && args.nosync)
      verify_nosync_powercut();
    else
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
  if (!args.powercut.empty() && args.nosync) {
    void* shared = mmap(nullptr, sizeof(PowercutReport), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
      std::fprintf(stderr, "carrel-crash-test: mmap failed\n");
      return 2;
    }
    run.report = new (shared) PowercutReport();
  }
  std::printf("carrel-crash-test: seed %llu, %d kills, %d objects, %s%s, delays %d-%d ms\n",
              static_cast<unsigned long long>(args.seed), args.kills, args.objects,
              args.nosync ? "nosync" : "sync", args.powercut.empty() ? "" : ", power loss",
              args.delay_ms_min, args.delay_ms_max);
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
  std::printf(
      "carrel-crash-test: every kill came after acknowledged turns of its worker: at least %llu, "
      "%llu in all\n",
      static_cast<unsigned long long>(run.acked_at_kill_min),
      static_cast<unsigned long long>(run.acked_at_kill_sum));
  if (!args.powercut.empty()) {
    std::printf("carrel-crash-test: power loss: the shadow replaced data.mdb after %llu kills\n",
                static_cast<unsigned long long>(run.shadows));
    // The shim must have seen data.mdb, or nothing was simulated.
    if (run.shadows == 0) {
      std::fprintf(stderr, "carrel-crash-test: FAIL: the preloaded library kept no shadow\n");
      return 1;
    }
  }
  if (run.report) {
    const PowercutReport& r = *run.report;
    std::printf(
        "carrel-crash-test: nosync power loss (reported, not failed): %llu checks, %llu opened, "
        "%llu consistent; %llu of %llu acknowledged turns lost, in %llu iterations\n",
        static_cast<unsigned long long>(r.checks), static_cast<unsigned long long>(r.opened),
        static_cast<unsigned long long>(r.consistent), static_cast<unsigned long long>(r.lost),
        static_cast<unsigned long long>(r.acked),
        static_cast<unsigned long long>(r.iterations_losing));
  }
  if (!args.keep) std::filesystem::remove_all(args.dir, ec);
  return 0;
}
