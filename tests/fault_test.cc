// Fault injection: failed commits (through Options::commit_hook) and a full
// LMDB map, under the ledger workload of tests/crash/ledger.h, whose checker
// proves that nothing acknowledged is lost and nothing is half-applied.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "carrel/carrel.h"
#include "tests/crash/ledger.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

// Fails commits at random (seeded) while armed: IOError or NoSpace, as a disk would.
class CommitFaults {
 public:
  explicit CommitFaults(uint64_t seed, double rate) : rng_(seed), rate_(rate) {}
  CommitHook hook() {
    return [this](const CommitInfo&) {
      if (!armed_.load()) return Status::ok();
      std::lock_guard lock(mutex_);
      std::uniform_real_distribution<double> coin(0, 1);
      if (coin(rng_) >= rate_) return Status::ok();
      ++injected_;
      return injected_ % 2 == 0 ? Status::io_error("injected: write failed")
                                : Status::no_space("injected: disk full");
    };
  }
  void arm(bool on) { armed_.store(on); }
  uint64_t injected() {
    std::lock_guard lock(mutex_);
    return injected_;
  }

 private:
  std::atomic<bool> armed_{false};
  std::mutex mutex_;
  std::mt19937_64 rng_;  // GUARDED_BY(mutex_)
  double rate_;
  uint64_t injected_ = 0;  // GUARDED_BY(mutex_)
};

struct LoadResult {
  std::vector<uint64_t> acked;  // per object: largest acknowledged k
  uint64_t ok = 0, failed = 0;
  std::vector<std::string> unexpected;  // errors that no injected fault explains
};

// `threads` clients, each owning objects i with i % threads == t, each turning
// its objects round-robin until each has `turns_ok` successful turns.
LoadResult run_load(Engine& engine, int objects, int threads, uint64_t turns_ok) {
  LoadResult result;
  result.acked.assign(static_cast<size_t>(objects), 0);
  std::mutex mutex;
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      std::vector<uint64_t> done(static_cast<size_t>(objects), 0);
      for (bool more = true; more;) {
        more = false;
        for (int i = t; i < objects; i += threads) {
          if (done[i] >= turns_ok) continue;
          more = true;
          auto r = engine.stub(ledger::object(i)).call("turn", "").get();
          std::lock_guard lock(mutex);
          if (r.is_ok()) {
            ++done[i];
            ++result.ok;
            result.acked[i] = std::max<uint64_t>(result.acked[i], std::stoull(*r));
          } else {
            ++result.failed;
            Code c = r.status().code();
            if (c != Code::kIOError && c != Code::kNoSpace && c != Code::kAborted) {
              result.unexpected.push_back(r.status().to_string());
            }
          }
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  return result;
}

TEST(CommitFaultTest, RandomCommitFailuresLoseNothingAcknowledgedAndHalfApplyNothing) {
  constexpr uint64_t kSeed = 7001;
  constexpr int kObjects = 12;
  testing::TempDir dir;
  CommitFaults faults(kSeed, 0.2);
  Options o = ledger::options(dir.path(), Durability::kNoSync);
  o.commit_hook = faults.hook();
  auto engine = Engine::open(o);
  ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
  ASSERT_TRUE(ledger::register_class(**engine, kObjects).is_ok());

  faults.arm(true);
  LoadResult load = run_load(**engine, kObjects, 4, 25);
  faults.arm(false);
  SCOPED_TRACE("seed " + std::to_string(kSeed));
  EXPECT_TRUE(load.unexpected.empty()) << load.unexpected.front();
  EXPECT_GT(faults.injected(), 0u);
  EXPECT_GT(load.failed, 0u) << "no caller saw an injected failure";
  EXPECT_EQ(load.ok, uint64_t{kObjects} * 25);
  std::printf("[ commit faults ] seed %llu: %llu commits failed on purpose, %llu calls failed\n",
              static_cast<unsigned long long>(kSeed),
              static_cast<unsigned long long>(faults.injected()),
              static_cast<unsigned long long>(load.failed));

  ledger::Totals totals;
  Status s = ledger::check(**engine, kObjects, load.acked, &totals);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  // Every successful turn is there exactly once: nothing failed was applied.
  EXPECT_EQ(totals.turns, uint64_t{kObjects} * 25);

  // The fault has cleared: every object works again, and survives a reopen.
  LoadResult after = run_load(**engine, kObjects, 2, 3);
  EXPECT_EQ(after.failed, 0u);
  ASSERT_TRUE((*engine)->close().is_ok());
  engine->reset();  // one handle per directory per process
  engine = Engine::open(ledger::options(dir.path(), Durability::kNoSync));
  ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
  ASSERT_TRUE(ledger::register_class(**engine, kObjects).is_ok());
  s = ledger::check(**engine, kObjects, after.acked, &totals);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(totals.turns, uint64_t{kObjects} * 28);
}

TEST(CommitFaultTest, FailedCommitFailsItsCallerAndOtherObjectsCarryOn) {
  testing::TempDir dir;
  std::atomic<int> fail_next{0};
  Options o = ledger::options(dir.path(), Durability::kSync);
  o.commit_hook = [&](const CommitInfo&) {
    if (fail_next.exchange(0) == 1) return Status::io_error("injected: write failed");
    return Status::ok();
  };
  auto engine = Engine::open(o);
  ASSERT_TRUE(engine.is_ok());
  ASSERT_TRUE(ledger::register_class(**engine, 2).is_ok());
  Stub a = (*engine)->stub(ledger::object(0)), b = (*engine)->stub(ledger::object(1));
  EXPECT_EQ(*a.call("turn", "").get(), "1");
  ledger::Totals totals;
  // Let turn 1's message reach object 1 first, so the fault hits a's commit.
  ASSERT_TRUE(ledger::check(**engine, 2, {1, 0}, &totals).is_ok());
  fail_next = 1;
  auto failed = a.call("turn", "").get();
  ASSERT_FALSE(failed.is_ok());
  EXPECT_EQ(failed.status().code(), Code::kIOError) << failed.status().to_string();
  EXPECT_EQ(*b.call("turn", "").get(), "1");
  // Object 0 was reset to its durable state: its next turn is 2 again, not 3.
  EXPECT_EQ(*a.call("turn", "").get(), "2");
  Status s = ledger::check(**engine, 2, {2, 1}, &totals);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(totals.turns, 3u);
}

TEST(CommitFaultTest, FullMapGivesNoSpaceAndReadsGoOn) {
  testing::TempDir dir;
  Options o;
  o.dir = dir.path();
  o.durability = Durability::kNoSync;
  o.map_bytes_max = uint64_t{2} << 20;
  const auto ref = ObjectRef::named("Big", "b");
  {
    auto engine = Engine::open(o);
    ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
    const std::string value(64 << 10, 'x');
    int stored = 0;
    Status s;
    for (int i = 0; i < 100 && s.is_ok(); ++i) {
      s = (*engine)->run(
          ref, [&](Context& ctx) { return ctx.kv().put("v" + std::to_string(i), value); });
      if (s.is_ok()) ++stored;
    }
    ASSERT_EQ(s.code(), Code::kNoSpace) << s.to_string();
    EXPECT_NE(s.message().find("map_bytes_max"), std::string::npos) << s.message();
    ASSERT_GT(stored, 0);
    // Reads keep working and see every stored value; the failed turn left nothing.
    int seen = -1;
    s = (*engine)->run(ref, [&](Context& ctx) {
      CARREL_ASSIGN_OR_RETURN(Entries all, ctx.kv().list());
      seen = static_cast<int>(all.size());
      return Status::ok();
    });
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    EXPECT_EQ(seen, stored);
    Status again = (*engine)->run(ref, [&](Context& ctx) { return ctx.kv().put("more", value); });
    EXPECT_EQ(again.code(), Code::kNoSpace);
    ASSERT_TRUE((*engine)->close().is_ok());
  }
  // A larger map lets writes go on.
  o.map_bytes_max = uint64_t{64} << 20;
  auto engine = Engine::open(o);
  ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
  Status s = (*engine)->run(ref, [&](Context& ctx) { return ctx.kv().put("more", "ok"); });
  EXPECT_TRUE(s.is_ok()) << s.to_string();
}

}  // namespace
}  // namespace carrel
