// The committer's delayed release (engine/commit/committer.h (6)): in sync
// mode a commit's outputs wait until a later fdatasync made its meta page
// durable. Driven on a real LMDB store in a temp directory; timing and faults
// come only through Options::commit_hook (tests/test_util.h CommitGate).
#include "engine/commit/committer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/store/keys.h"
#include "tests/test_util.h"

namespace carrel::detail {
namespace {

using testing::CommitGate;
using testing::TempDir;

constexpr auto kWait = std::chrono::seconds(30);

// Records the order in which outputs ran, and their statuses.
class Outputs {
 public:
  Completion track(const std::string& name) {
    return [this, name](const Status& s) {
      std::lock_guard l(m_);
      order_.push_back(name);
      statuses_.push_back(s);
      cv_.notify_all();
    };
  }
  bool wait_count(size_t n) {
    std::unique_lock l(m_);
    return cv_.wait_for(l, kWait, [&] { return order_.size() >= n; });
  }
  std::vector<std::string> order() {
    std::lock_guard l(m_);
    return order_;
  }
  Status status_of(const std::string& name) {
    std::lock_guard l(m_);
    for (size_t i = 0; i < order_.size(); ++i) {
      if (order_[i] == name) return statuses_[i];
    }
    return Status::not_found("output " + name + " did not run");
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<std::string> order_;  // GUARDED_BY(m_)
  std::vector<Status> statuses_;    // GUARDED_BY(m_)
};

const ObjectRef kA = ObjectRef::named("Counter", "a");
const ObjectRef kB = ObjectRef::named("Counter", "b");

// A committer on a real store, in sync or nosync mode, with a CommitGate.
struct Fixture {
  explicit Fixture(Durability durability) {
    store::StoreOptions so;
    so.dir = dir.path();
    so.sync = durability == Durability::kSync;
    so.data_sync_fault_hook = [this] {
      return fail_data_sync.load() ? Status::io_error("injected: fdatasync failed") : Status::ok();
    };
    auto s = store::Store::open(so);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    if (s.is_ok()) store = std::move(*s);
    options.dir = dir.path();
    options.durability = durability;
    options.defer_meta_sync = true;  // the rules of committer.h (6) under test
    options.commit_hook = gate.hook();
  }
  ~Fixture() {
    gate.release();
    if (committer) committer->stop();
  }
  bool start() {
    if (!store) return false;
    records = std::make_unique<Records>(*store, /*follow_log=*/false);
    if (!records->recover().is_ok()) return false;
    committer =
        std::make_unique<Committer>(*store, *records, clock, options, CommitterHooks{}, counters);
    committer->start();
    return true;
  }
  // The next turn of `object` writing kv "k" = value; its output is tracked.
  void submit_write(const ObjectRef& object, std::shared_ptr<CommitProgress> slot,
                    const std::string& value, const std::string& name) {
    auto b = std::make_unique<CommitBatch>();
    b->slot = std::move(slot);
    b->object = object;
    b->object_no = number_of(object);
    b->generation = b->slot->generation.load();
    b->seq = b->slot->sealed_seq.load() + 1;
    b->slot->sealed_seq.store(b->seq);
    b->commit_ms = clock.now_ms();
    b->kv.push_back({"k", std::make_shared<const std::string>(value)});
    b->outputs.push_back(outputs.track(name));
    committer->submit(std::move(b));
  }
  // A turn of `object` that wrote nothing: only its output goes through.
  void submit_output(const ObjectRef& object, std::shared_ptr<CommitProgress> slot,
                     const std::string& name) {
    auto b = std::make_unique<CommitBatch>();
    b->slot = std::move(slot);
    b->object = object;
    b->generation = b->slot->generation.load();
    b->outputs.push_back(outputs.track(name));
    committer->submit(std::move(b));
  }
  // Commit 1 (a's turn "a1") is held in the commit hook.
  bool hold_commit_1() {
    gate.hold();
    submit_write(kA, a, "1", "a1");
    return gate.wait_held(1).has_value();
  }
  // Commit 1 went through; commit 2 (b's turn "b1", queued during commit 1
  // after what `queue_first` queues) is held in the commit hook.
  bool hold_commit_2(const std::function<void()>& queue_first = nullptr) {
    if (!hold_commit_1()) return false;
    if (queue_first) queue_first();
    submit_write(kB, b, "1", "b1");
    gate.pass();
    return gate.wait_held(2).has_value();
  }
  // The object's number (store/keys.h (2)), given here as the engine gives
  // it: the next one, the first time the object is met.
  store::ObjectNo number_of(const ObjectRef& object) {
    auto [it, fresh] = numbers.try_emplace(object.id, numbers.size() + 1);
    return store::ObjectNo{it->second};
  }
  // The committed value of kv "k" of `object`, or "" when absent.
  std::string stored(const ObjectRef& object) {
    auto txn = store->begin_read();
    if (!txn.is_ok()) return "<" + txn.status().to_string() + ">";
    auto v = txn->get(store::Db::kKv, store::object_key(number_of(object), "k"));
    if (!v.is_ok()) return "<" + v.status().to_string() + ">";
    return *v ? std::string(**v) : std::string();
  }
  EngineStats stats() const { return counters.snapshot(); }

  std::map<ObjectId, uint64_t> numbers;
  std::atomic<bool> fail_data_sync{false};  // store.h (5): the next explicit syncs fail
  TempDir dir;
  SystemClock clock;
  Options options;
  CommitGate gate;
  Counters counters;
  Outputs outputs;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<Records> records;  // outlives the committer
  std::unique_ptr<Committer> committer;
  std::shared_ptr<CommitProgress> a = std::make_shared<CommitProgress>();
  std::shared_ptr<CommitProgress> b = std::make_shared<CommitProgress>();
};

// Invariant (6): commit 1's outputs wait for commit 2's sync, which makes
// commit 1's meta page durable; one sync per commit while groups follow.
TEST(CommitterTest, ReplyIsNotReleasedBeforeTheFollowingCommitsSync) {
  Fixture f(Durability::kSync);
  ASSERT_TRUE(f.start());
  ASSERT_TRUE(f.hold_commit_2());
  // Commit 1 returned from mdb_txn_commit, and LMDB has it...
  EXPECT_EQ(f.stored(kA), "1");
  // ...but its meta page is not durable until commit 2's sync: nothing released.
  EXPECT_TRUE(f.outputs.order().empty());
  EXPECT_EQ(f.a->durable_seq.load(), 0u);
  f.gate.release();
  ASSERT_TRUE(f.outputs.wait_count(2));
  EXPECT_EQ(f.outputs.order(), (std::vector<std::string>{"a1", "b1"}));
  EXPECT_TRUE(f.outputs.status_of("a1").is_ok());
  EXPECT_TRUE(f.outputs.status_of("b1").is_ok());
  EXPECT_EQ(f.a->durable_seq.load(), 1u);
  EXPECT_EQ(f.b->durable_seq.load(), 1u);
  // Two commits: one fdatasync each, and one explicit sync for the last.
  EXPECT_EQ(f.stats().commits, 2u);
  EXPECT_EQ(f.stats().fsyncs, 3u);
}

// Invariant (6): with nothing queued behind it, a commit is synced explicitly
// and released at once (two syncs, as LMDB without MDB_NOMETASYNC pays).
TEST(CommitterTest, IdleCommitterReleasesAfterAnExplicitSync) {
  Fixture f(Durability::kSync);
  ASSERT_TRUE(f.start());
  f.submit_write(kA, f.a, "1", "a1");
  ASSERT_TRUE(f.outputs.wait_count(1));
  EXPECT_TRUE(f.outputs.status_of("a1").is_ok());
  EXPECT_EQ(f.a->durable_seq.load(), 1u);
  EXPECT_EQ(f.stats().commits, 1u);
  EXPECT_EQ(f.stats().fsyncs, 2u);
}

// Invariants (4), (6): when commit 2 fails on a full disk, commit 1 is synced
// explicitly and released ok; commit 2's turn fails and its object is reset.
TEST(CommitterTest, FailedNextCommitStillReleasesTheEarlierDurableOne) {
  Fixture f(Durability::kSync);
  ASSERT_TRUE(f.start());
  ASSERT_TRUE(f.hold_commit_2());
  f.gate.release(Status::no_space("injected: disk full"));
  ASSERT_TRUE(f.outputs.wait_count(2));
  EXPECT_EQ(f.outputs.order(), (std::vector<std::string>{"a1", "b1"}));
  EXPECT_TRUE(f.outputs.status_of("a1").is_ok());
  EXPECT_EQ(f.outputs.status_of("b1").code(), Code::kNoSpace);
  EXPECT_EQ(f.a->durable_seq.load(), 1u);
  EXPECT_EQ(f.b->durable_seq.load(), 0u);
  EXPECT_EQ(f.b->generation.load(), 1u);
  EXPECT_EQ(f.a->generation.load(), 0u);
  EXPECT_EQ(f.stored(kA), "1");
  EXPECT_EQ(f.stored(kB), "");
  EXPECT_EQ(f.stats().commits_failed, 1u);
  EXPECT_EQ(f.stats().fsyncs, 2u);  // commit 1's, and the explicit one
}

// Invariant (6), store.h (5): when commit 2 fails with an I/O error (which may
// have been its data sync, the one that was to cover commit 1), commit 1 is
// not synced and released over it: its turn fails and the store stops.
TEST(CommitterTest, IoErrorOfTheNextCommitFailsTheHeldOneAndStopsTheStore) {
  Fixture f(Durability::kSync);
  ASSERT_TRUE(f.start());
  ASSERT_TRUE(f.hold_commit_2());
  f.gate.release(Status::io_error("injected: write failed"));
  ASSERT_TRUE(f.outputs.wait_count(2));
  EXPECT_EQ(f.outputs.status_of("a1").code(), Code::kIOError);
  EXPECT_EQ(f.outputs.status_of("b1").code(), Code::kIOError);
  EXPECT_EQ(f.a->durable_seq.load(), 0u);
  EXPECT_EQ(f.a->generation.load(), 1u);
  EXPECT_EQ(f.stats().fsyncs, 1u);  // commit 1's data sync only: no sync after the error
  EXPECT_NE(f.stored(kA).find("waited for its sync"), std::string::npos) << f.stored(kA);
}

// Invariant (6), store.h (5): a failed explicit sync of the held commit fails
// its turns (and the outputs that waited with it), and the store takes no
// read and no commit after it.
TEST(CommitterTest, FailedSyncOfTheHeldCommitStopsTheStore) {
  Fixture f(Durability::kSync);
  ASSERT_TRUE(f.start());
  ASSERT_TRUE(f.hold_commit_1());
  // Queued during commit 1, so commit 1 defers its meta sync; it writes
  // nothing, so no commit follows to cover commit 1: the explicit sync must.
  f.submit_output(kA, f.a, "a-read");
  f.fail_data_sync = true;
  f.gate.release();
  ASSERT_TRUE(f.outputs.wait_count(2));
  EXPECT_EQ(f.outputs.status_of("a1").code(), Code::kIOError);
  EXPECT_EQ(f.outputs.status_of("a-read").code(), Code::kIOError);
  EXPECT_EQ(f.a->durable_seq.load(), 0u);
  // Commit 1 is in data.mdb, maybe not on the disk: nothing reads it...
  const std::string read = f.stored(kA);
  EXPECT_NE(read.find("data.mdb' (fdatasync) after commit 1"), std::string::npos) << read;
  EXPECT_NE(read.find("reopen the directory"), std::string::npos) << read;
  // ...and nothing commits after it, not even with the disk healthy again,
  // nor is any output released, even of an object commit 1 did not touch.
  f.fail_data_sync = false;
  f.submit_write(kB, f.b, "1", "b1");
  f.submit_output(kB, f.b, "b-read");
  ASSERT_TRUE(f.outputs.wait_count(4));
  EXPECT_EQ(f.outputs.status_of("b1").code(), Code::kIOError);
  EXPECT_EQ(f.outputs.status_of("b-read").code(), Code::kIOError);
  EXPECT_EQ(f.stats().commits, 1u);
}

// Invariant (6), store.h (5): a maintenance task queued behind commit 1 makes
// commit 1 defer its meta sync; when the task fails with an I/O error, commit
// 1 fails without the explicit sync and the store stops, as after a failed
// commit.
TEST(CommitterTest, TaskFailingWhileACommitIsHeldStopsTheStore) {
  Fixture f(Durability::kSync);
  ASSERT_TRUE(f.start());
  ASSERT_TRUE(f.hold_commit_1());
  std::promise<Status> done;
  f.committer->submit_task(
      [](store::Store&, MDB_txn*) { return Status::io_error("injected: task write failed"); },
      [&](const Status& s) { done.set_value(s); });
  f.gate.release();
  auto result = done.get_future();
  ASSERT_EQ(result.wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(result.get().code(), Code::kIOError);
  ASSERT_TRUE(f.outputs.wait_count(1));
  EXPECT_EQ(f.outputs.status_of("a1").code(), Code::kIOError);
  EXPECT_EQ(f.a->durable_seq.load(), 0u);
  EXPECT_EQ(f.stats().fsyncs, 1u);  // commit 1's data sync only
  const std::string read = f.stored(kA);
  EXPECT_NE(read.find("a maintenance task failed"), std::string::npos) << read;
}

// Invariants (3), (6): a turn that wrote nothing but read the held commit's
// state waits with it, and is released after it.
TEST(CommitterTest, OutputsOnlyTurnWaitsForTheHeldCommit) {
  Fixture f(Durability::kSync);
  ASSERT_TRUE(f.start());
  ASSERT_TRUE(f.hold_commit_1());
  // Queued while commit 1 runs, alone in the next group: it joins the held commit 1.
  f.submit_output(kA, f.a, "a-read");
  f.gate.release();
  ASSERT_TRUE(f.outputs.wait_count(2));
  EXPECT_EQ(f.outputs.order(), (std::vector<std::string>{"a1", "a-read"}));
  EXPECT_TRUE(f.outputs.status_of("a-read").is_ok());
}

// Invariants (3), (6): outputs-only and writing turns in one group are
// released together once that group's commit is durable.
TEST(CommitterTest, MixedGroupIsReleasedWhenItsCommitIsDurable) {
  Fixture f(Durability::kSync);
  ASSERT_TRUE(f.start());
  ASSERT_TRUE(f.hold_commit_2([&] { f.submit_output(kA, f.a, "a-read"); }));
  EXPECT_TRUE(f.outputs.order().empty());
  f.gate.release();
  ASSERT_TRUE(f.outputs.wait_count(3));
  EXPECT_EQ(f.outputs.order(), (std::vector<std::string>{"a1", "a-read", "b1"}));
}

// Invariant (6): a maintenance task ends with everything synced and released.
TEST(CommitterTest, MaintenanceTaskEndsWithTheHeldCommitReleased) {
  Fixture f(Durability::kSync);
  ASSERT_TRUE(f.start());
  ASSERT_TRUE(f.hold_commit_1());
  std::promise<Status> done;
  bool a_released_first = false;
  f.committer->submit_task([](store::Store&, MDB_txn*) { return Status::ok(); },
                           [&](const Status& s) {
                             a_released_first = f.outputs.order().size() == 1;
                             done.set_value(s);
                           });
  f.gate.release();
  auto result = done.get_future();
  ASSERT_EQ(result.wait_for(kWait), std::future_status::ready);
  EXPECT_TRUE(result.get().is_ok());
  EXPECT_TRUE(a_released_first);
  EXPECT_TRUE(f.outputs.status_of("a1").is_ok());
}

// Invariant (6): stop() returns with the last commit synced and released.
TEST(CommitterTest, StopSyncsAndReleasesTheLastCommit) {
  Fixture f(Durability::kSync);
  ASSERT_TRUE(f.start());
  for (int i = 1; i <= 3; ++i) f.submit_write(kA, f.a, std::to_string(i), "a" + std::to_string(i));
  f.committer->stop();
  EXPECT_EQ(f.outputs.order(), (std::vector<std::string>{"a1", "a2", "a3"}));
  EXPECT_EQ(f.a->durable_seq.load(), 3u);
  EXPECT_EQ(f.stored(kA), "3");
}

// Nosync mode is unchanged: outputs are released when mdb_txn_commit returns.
TEST(CommitterTest, NoSyncReleasesWhenTheCommitReturns) {
  Fixture f(Durability::kNoSync);
  ASSERT_TRUE(f.start());
  ASSERT_TRUE(f.hold_commit_2());
  EXPECT_TRUE(f.outputs.wait_count(1));
  EXPECT_EQ(f.outputs.order(), (std::vector<std::string>{"a1"}));
  f.gate.release();
  ASSERT_TRUE(f.outputs.wait_count(2));
  EXPECT_EQ(f.stats().fsyncs, 0u);
}

// The power-cut test's switch really breaks invariant (6): with it, commit 1
// is released before commit 2's sync (crash_powercut_detects_early_release).
TEST(CommitterTest, ReleaseBeforeSyncSwitchReleasesAtCommit) {
  Committer::release_before_sync_for_tests(true);
  Fixture f(Durability::kSync);
  const bool started = f.start();
  Committer::release_before_sync_for_tests(false);
  ASSERT_TRUE(started);
  ASSERT_TRUE(f.hold_commit_2());
  EXPECT_TRUE(f.outputs.wait_count(1));
  EXPECT_EQ(f.outputs.order(), (std::vector<std::string>{"a1"}));
  f.gate.release();
  ASSERT_TRUE(f.outputs.wait_count(2));
}

// Invariant (8): after a commit of three batches that took long (held in the
// hook), a lone batch waits at most kLingerMaxUs for two more that never
// come, then commits on its own.
TEST(CommitterTest, LingerForALargerGroupEndsAtItsBound) {
  Fixture f(Durability::kSync);
  f.options.defer_meta_sync = false;  // LMDB's own sync commit, the default
  ASSERT_TRUE(f.start());
  const ObjectRef c = ObjectRef::named("Counter", "c");
  auto cs = std::make_shared<CommitProgress>();
  ASSERT_TRUE(f.hold_commit_1());
  f.submit_write(kB, f.b, "1", "b1");
  f.submit_write(c, cs, "1", "c1");
  f.submit_output(kA, f.a, "a-read");
  f.gate.pass();                  // commit 2 takes b1, c1 and a-read...
  ASSERT_TRUE(f.gate.wait_held(2).has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // ...and takes 20 ms
  f.gate.release();
  ASSERT_TRUE(f.outputs.wait_count(4));
  f.submit_write(kA, f.a, "2", "a2");
  ASSERT_TRUE(f.outputs.wait_count(5)) << "the linger did not end";
  EXPECT_TRUE(f.outputs.status_of("a2").is_ok());
  EXPECT_EQ(f.stored(kA), "2");
  EXPECT_EQ(f.stats().commits, 3u);
}

}  // namespace
}  // namespace carrel::detail
