// The request loop's rules (docs/architecture.md sections 2, 5 and 6; docs/loop.md),
// one test per rule, against real LMDB environments in temp dirs.
//
// Faults and timing come only through Options::commit_hook (CommitGate below
// holds or fails commits on request) and Options::clock (ManualClock). Every
// wait is bounded: a broken rule fails its test instead of hanging it.
#include <gtest/gtest.h>
#include <lmdb.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "carrel/carrel.h"
#include "engine/loop/engine_core.h"
#include "engine/store/checksum.h"
#include "engine/store/keys.h"
#include "engine/store/store.h"
#include "tests/store_probe.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

using namespace std::chrono_literals;

// Long enough for a loaded 2-core machine under ThreadSanitizer; a rule that
// holds never comes near it, a broken one fails instead of hanging.
constexpr auto kWait = 30s;
using testing::CommitGate;
using testing::open_engine;
using testing::options_in;

// For background delivery only.
using testing::eventually;

template <typename T>
bool ready(std::future<T>& f, std::chrono::milliseconds d = kWait) {
  return f.wait_for(d) == std::future_status::ready;
}

// A latch a handler waits on; the wait is bounded so that a failing test
// cannot leave a worker blocked forever.
class Latch {
 public:
  void open() {
    std::lock_guard l(m_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait() {
    std::unique_lock l(m_);
    return cv_.wait_for(l, kWait, [&] { return open_; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Releases a gate when a test leaves early, before the engine closes.
struct ReleaseOnExit {
  std::shared_ptr<CommitGate> gate;
  std::vector<Latch*> latches;
  ~ReleaseOnExit() {
    if (gate) gate->release();
    for (Latch* l : latches) l->open();
  }
};

// What tests observe of handlers: lifecycle counts and turn overlap.
struct Probe {
  std::atomic<int> constructed{0}, destroyed{0}, starts{0}, requests{0};
  std::atomic<int> inside{0};
  std::atomic<bool> overlap{false};
  std::mutex m;
  std::multiset<std::string> destroyed_names;  // GUARDED_BY(m)
};

using Script = std::function<Result<std::string>(Context&, const Request&)>;

class ScriptedHandler final : public Handler {
 public:
  ScriptedHandler(std::shared_ptr<Probe> probe, Script script, std::string name)
      : probe_(std::move(probe)), script_(std::move(script)), name_(std::move(name)) {
    probe_->constructed.fetch_add(1);
  }
  ~ScriptedHandler() override {
    probe_->destroyed.fetch_add(1);
    std::lock_guard l(probe_->m);
    probe_->destroyed_names.insert(name_);
  }
  Status on_start(Context&) override {
    probe_->starts.fetch_add(1);
    return Status::ok();
  }
  Result<std::string> on_request(Context& ctx, const Request& req) override {
    // Input gate check: another turn of this object inside at the same time?
    if (probe_->inside.fetch_add(1) != 0) probe_->overlap = true;
    struct Leave {
      Probe* p;
      ~Leave() { p->inside.fetch_sub(1); }
    } leave{probe_.get()};
    probe_->requests.fetch_add(1);
    return script_(ctx, req);
  }

 private:
  std::shared_ptr<Probe> probe_;
  Script script_;
  std::string name_;
};

Status register_scripted(Engine& e, std::string_view class_name, std::shared_ptr<Probe> probe,
                         Script script) {
  return e.register_class(class_name, [probe, script](const ObjectRef& ref) {
    return std::make_unique<ScriptedHandler>(probe, script, ref.name);
  });
}

// KV "n" as a decimal counter.
Result<int64_t> read_n(Context& ctx) {
  CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().get("n"));
  return v ? std::stoll(*v) : int64_t{0};
}

Result<std::string> add(Context& ctx, int64_t delta) {
  CARREL_ASSIGN_OR_RETURN(int64_t n, read_n(ctx));
  n += delta;
  CARREL_RETURN_IF_ERROR(ctx.kv().put("n", std::to_string(n)));
  return std::to_string(n);
}

// Class "Counter" whose "block" request sets *blocked and waits on the latch;
// every request then adds 1.
Status register_blocking_counter(Engine& e, std::shared_ptr<Probe> probe, Latch& latch,
                                 std::shared_ptr<std::atomic<bool>> blocked) {
  return register_scripted(e, "Counter", std::move(probe),
                           [&latch, blocked](Context& ctx, const Request& req) {
                             if (req.method == "block") {
                               blocked->store(true);
                               if (!latch.wait()) {
                                 return Result<std::string>(Status::aborted("latch timeout"));
                               }
                             }
                             return add(ctx, 1);
                           });
}

// The counter script: "add" (+1, or +payload), "get".
Result<std::string> counter(Context& ctx, const Request& req) {
  if (req.method == "add") return add(ctx, req.payload.empty() ? 1 : std::stoll(req.payload));
  if (req.method == "get") {
    CARREL_ASSIGN_OR_RETURN(int64_t n, read_n(ctx));
    return std::to_string(n);
  }
  return Status::invalid_argument("unknown method " + req.method);
}

// Waits for a reply; a missing one is reported as Aborted("timed out").
Result<std::string> reply_of(std::future<Result<std::string>>& f) {
  if (!ready(f)) return Status::aborted("test timed out waiting for a reply");
  return f.get();
}

std::string value_or_error(const Result<std::string>& r) {
  return r.is_ok() ? r.value() : r.status().to_string();
}

// Entries in the engine-wide outbox (messages sent but not yet processed).
size_t outbox_size(Engine& e) {
  auto txn = e.core()->store().begin_read();
  if (!txn.is_ok()) return SIZE_MAX;
  MDB_cursor* c = nullptr;
  if (mdb_cursor_open(txn->get(), e.core()->store().dbi(store::Db::kOutbox), &c) != 0) {
    return SIZE_MAX;
  }
  size_t n = 0;
  MDB_val k, v;
  for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    ++n;
  }
  mdb_cursor_close(c);
  return n;
}

// A KV value as LMDB holds it now: only durable commits are visible here.
std::optional<std::string> durable_kv(Engine& e, const ObjectRef& ref, std::string_view key) {
  auto txn = e.core()->store().begin_read();
  if (!txn.is_ok()) return std::nullopt;
  auto v = store::read_sealed(*txn, store::Db::kKv,
                              store::object_key(testing::object_no(e, ref.id), key));
  if (!v.is_ok() || !*v) return std::nullopt;
  return std::string(**v);
}

// ---------------------------------------------------------------------------
// Rule 1 (input gate): one object's turns run one at a time, in order, so a
// read-modify-write never loses an update whatever the number of callers.
TEST(LoopInputGate, SequentialPerObjectNeverLosesAnIncrement) {
  testing::TempDir dir;
  Options o = options_in(dir);
  o.workers = 4;
  o.durability = Durability::kNoSync;  // the rule is about ordering, not fsync
  auto e = open_engine(o);
  ASSERT_TRUE(e);
  auto probe = std::make_shared<Probe>();
  ASSERT_TRUE(
      register_scripted(*e, "Counter", probe,
                        [](Context& ctx, const Request& req) -> Result<std::string> {
                          if (req.method == "get") return counter(ctx, req);
                          CARREL_ASSIGN_OR_RETURN(int64_t n, read_n(ctx));
                          std::this_thread::yield();  // widen the window a lost update needs
                          CARREL_RETURN_IF_ERROR(ctx.kv().put("n", std::to_string(n + 1)));
                          return Result<std::string>(std::to_string(n + 1));
                        })
          .is_ok());
  Stub stub = e->stub("Counter", "c");
  constexpr int kThreads = 16, kCalls = 200;
  std::vector<std::vector<std::string>> replies(kThreads);
  std::vector<std::thread> callers;
  for (int t = 0; t < kThreads; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        auto f = stub.call("add", "");
        replies[t].push_back(value_or_error(reply_of(f)));
      }
    });
  }
  for (auto& t : callers) t.join();

  std::set<std::string> distinct;
  for (auto& r : replies) distinct.insert(r.begin(), r.end());
  // Every reply is a distinct count from 1 to kThreads*kCalls: none lost, none repeated.
  EXPECT_EQ(distinct.size(), size_t{kThreads * kCalls});
  EXPECT_EQ(distinct.count("1"), 1u);
  EXPECT_EQ(distinct.count(std::to_string(kThreads * kCalls)), 1u);
  auto f = stub.call("get", "");
  EXPECT_EQ(value_or_error(reply_of(f)), std::to_string(kThreads * kCalls));
  EXPECT_FALSE(probe->overlap.load()) << "two turns of one object overlapped";
  // One caller's calls are replied in the order it made them.
  for (auto& r : replies) {
    for (size_t i = 1; i < r.size(); ++i) EXPECT_LT(std::stoll(r[i - 1]), std::stoll(r[i]));
  }
}

// Rule 2: turns of different objects run in parallel on the worker pool.
TEST(LoopParallelism, TurnsOfDifferentObjectsRunConcurrently) {
  testing::TempDir dir;
  Options o = options_in(dir);
  o.workers = 4;
  auto e = open_engine(o);
  ASSERT_TRUE(e);
  auto probe = std::make_shared<Probe>();
  // A barrier of four: it only opens when four turns are inside at once.
  auto arrived = std::make_shared<std::atomic<int>>(0);
  ASSERT_TRUE(e->register_class("Meet", [arrived](const ObjectRef&) {
                 struct Meet : Handler {
                   std::shared_ptr<std::atomic<int>> arrived;
                   Result<std::string> on_request(Context& ctx, const Request&) override {
                     arrived->fetch_add(1);
                     auto deadline = std::chrono::steady_clock::now() + kWait;
                     while (arrived->load() < 4) {
                       if (std::chrono::steady_clock::now() > deadline) return std::string("alone");
                       std::this_thread::sleep_for(1ms);
                     }
                     return std::string("together");
                   }
                 };
                 auto m = std::make_unique<Meet>();
                 m->arrived = arrived;
                 return m;
               }).is_ok());
  std::vector<std::future<Result<std::string>>> fs;
  for (int i = 0; i < 4; ++i) fs.push_back(e->stub("Meet", "m" + std::to_string(i)).call("x", ""));
  for (auto& f : fs) EXPECT_EQ(value_or_error(reply_of(f)), "together");
}

// ---------------------------------------------------------------------------
// Rule 3 (atomic turns): a throw or an error return rolls back the turn's KV
// and SQL writes; the caller gets the error with the exception's message.
TEST(LoopAtomicTurns, ThrowAndErrorReturnRollBackKvAndSql) {
  testing::TempDir dir;
  auto e = open_engine(options_in(dir));
  ASSERT_TRUE(e);
  auto probe = std::make_shared<Probe>();
  ASSERT_TRUE(register_scripted(
                  *e, "Atom", probe,
                  [](Context& ctx, const Request& req) -> Result<std::string> {
                    if (req.method == "setup") {
                      CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE TABLE t(v TEXT)").status());
                      CARREL_RETURN_IF_ERROR(ctx.kv().put("k", "0"));
                      return std::string("ok");
                    }
                    if (req.method == "read") {
                      CARREL_ASSIGN_OR_RETURN(auto k, ctx.kv().get("k"));
                      CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec("SELECT count(*) FROM t"));
                      CARREL_ASSIGN_OR_RETURN(auto row, c.one());
                      CARREL_ASSIGN_OR_RETURN(int64_t rows, row.get_int(0));
                      return k.value_or("-") + "/" + std::to_string(rows);
                    }
                    CARREL_RETURN_IF_ERROR(ctx.kv().put("k", "dirty"));
                    CARREL_RETURN_IF_ERROR(
                        ctx.sql().exec("INSERT INTO t VALUES ('dirty')").status());
                    if (req.method == "throw") throw std::runtime_error("boom from the handler");
                    if (req.method == "fail")
                      return Status::invalid_argument("refused by the handler");
                    return std::string("kept");
                  })
                  .is_ok());
  Stub s = e->stub("Atom", "a");
  auto f = s.call("setup", "");
  ASSERT_EQ(value_or_error(reply_of(f)), "ok");

  f = s.call("throw", "");
  auto thrown = reply_of(f);
  EXPECT_EQ(thrown.status().code(), Code::kAborted);
  EXPECT_NE(thrown.status().message().find("boom from the handler"), std::string::npos)
      << thrown.status().to_string();
  f = s.call("read", "");
  EXPECT_EQ(value_or_error(reply_of(f)), "0/0");

  f = s.call("fail", "");
  auto failed = reply_of(f);
  EXPECT_EQ(failed.status().code(), Code::kInvalidArgument);
  EXPECT_NE(failed.status().message().find("refused by the handler"), std::string::npos);
  f = s.call("read", "");
  EXPECT_EQ(value_or_error(reply_of(f)), "0/0");

  // The same writes without a failure are kept, so the reads above can fail.
  f = s.call("keep", "");
  EXPECT_EQ(value_or_error(reply_of(f)), "kept");
  f = s.call("read", "");
  EXPECT_EQ(value_or_error(reply_of(f)), "dirty/1");
  EXPECT_EQ(e->stats().turns_failed, 2u);
}

// Rule 3: ctx.transaction() is a savepoint that rolls back alone (KV and SQL),
// whether SQL was in use before it or first used inside it; the turn goes on.
TEST(LoopAtomicTurns, FailedNestedTransactionRollsBackAlone) {
  testing::TempDir dir;
  auto e = open_engine(options_in(dir));
  ASSERT_TRUE(e);
  auto ref = ObjectRef::named("Nest", "n");
  ASSERT_TRUE(e->run(ref, [](Context& ctx) {
                 return ctx.sql().exec("CREATE TABLE t(v TEXT)").status();
               }).is_ok());

  // SQL in use before the transaction: the savepoint path.
  Status inner_throw, inner_error, inner_ok, nested_inner;
  Status s = e->run(ref, [&](Context& ctx) {
    CARREL_RETURN_IF_ERROR(ctx.kv().put("outer", "1"));
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t VALUES ('outer')").status());
    inner_throw = ctx.transaction([&]() -> Status {
      CARREL_RETURN_IF_ERROR(ctx.kv().put("thrown", "1"));
      CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t VALUES ('thrown')").status());
      throw std::runtime_error("inner boom");
    });
    inner_error = ctx.transaction([&]() -> Status {
      CARREL_RETURN_IF_ERROR(ctx.kv().put("errored", "1"));
      CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t VALUES ('errored')").status());
      return Status::not_found("inner not found");
    });
    inner_ok = ctx.transaction([&]() -> Status {
      CARREL_RETURN_IF_ERROR(ctx.kv().put("kept", "1"));
      CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t VALUES ('kept')").status());
      // Two levels: the inner one fails, the outer one keeps its own writes.
      nested_inner = ctx.transaction([&]() -> Status {
        CARREL_RETURN_IF_ERROR(ctx.kv().put("deep", "1"));
        CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t VALUES ('deep')").status());
        return Status::invalid_argument("deep failure");
      });
      return Status::ok();
    });
    return Status::ok();
  });
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(inner_throw.code(), Code::kAborted);
  EXPECT_NE(inner_throw.message().find("inner boom"), std::string::npos) << inner_throw.to_string();
  EXPECT_EQ(inner_error.code(), Code::kNotFound);
  EXPECT_TRUE(inner_ok.is_ok()) << inner_ok.to_string();
  EXPECT_EQ(nested_inner.code(), Code::kInvalidArgument);

  // SQL first used inside the failing transaction, and used again after it.
  auto ref2 = ObjectRef::named("Nest", "m");
  ASSERT_TRUE(e->run(ref2, [](Context& ctx) {
                 return ctx.sql().exec("CREATE TABLE t(v TEXT)").status();
               }).is_ok());
  Status first_use;
  s = e->run(ref2, [&](Context& ctx) {
    CARREL_RETURN_IF_ERROR(ctx.kv().put("outer", "1"));
    first_use = ctx.transaction([&]() -> Status {
      CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t VALUES ('inside')").status());
      return Status::aborted("first use fails");
    });
    return ctx.sql().exec("INSERT INTO t VALUES ('after')").status();
  });
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(first_use.code(), Code::kAborted);

  auto state = [&](const ObjectRef& r) {
    std::string out;
    Status st = e->run(r, [&](Context& ctx) {
      CARREL_ASSIGN_OR_RETURN(auto all, ctx.kv().list());
      for (auto& [k, v] : all) out += k + ",";
      CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec("SELECT v FROM t ORDER BY rowid"));
      out += "|";
      for (auto& row : c) out += *row.get_text(0) + ",";
      return Status::ok();
    });
    return st.is_ok() ? out : st.to_string();
  };
  EXPECT_EQ(state(ref), "kept,outer,|outer,kept,");
  EXPECT_EQ(state(ref2), "outer,|after,");
}

// ---------------------------------------------------------------------------
// Rule 4 (output gate): a reply is released only once its commit is durable;
// allow_unconfirmed releases it when the turn ends.
TEST(LoopOutputGate, ReplyIsNotObservedBeforeItsCommitIsDurable) {
  testing::TempDir dir;
  testing::GatedEngine gated(options_in(dir));
  ASSERT_TRUE(gated.engine);
  auto& e = gated.engine;
  CommitGate* gate = &gated.gate;
  auto probe = std::make_shared<Probe>();
  ASSERT_TRUE(register_scripted(*e, "Counter", probe, counter).is_ok());
  Stub s = e->stub("Counter", "c");
  auto ref = s.object();

  gate->hold();
  auto f = s.call("add", "");
  auto held = gate->wait_held();
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->turns, 1u);
  // The turn ran and its commit waits in the hook: the reply must wait too.
  EXPECT_EQ(f.wait_for(50ms), std::future_status::timeout);
  EXPECT_FALSE(durable_kv(*e, ref, "n").has_value());
  gate->release();
  EXPECT_EQ(value_or_error(reply_of(f)), "1");
  // The reply implies durability: LMDB has the write.
  EXPECT_EQ(durable_kv(*e, ref, "n").value_or("absent"), "1");
}

TEST(LoopOutputGate, AllowUnconfirmedRepliesBeforeTheCommit) {
  testing::TempDir dir;
  testing::GatedEngine gated(options_in(dir));
  ASSERT_TRUE(gated.engine);
  auto& e = gated.engine;
  CommitGate* gate = &gated.gate;
  auto probe = std::make_shared<Probe>();
  ASSERT_TRUE(register_scripted(*e, "Counter", probe, counter).is_ok());
  Stub s = e->stub("Counter", "c");

  gate->hold();
  CallOptions unconfirmed;
  unconfirmed.allow_unconfirmed = true;
  auto f = s.call("add", "", unconfirmed);
  EXPECT_EQ(value_or_error(reply_of(f)), "1");
  // The reply came first; its commit is still to complete (it waits in the hook).
  ASSERT_TRUE(gate->wait_held().has_value());
  EXPECT_EQ(e->stats().commits, 0u);
  EXPECT_FALSE(durable_kv(*e, s.object(), "n").has_value());
  gate->release();
  EXPECT_TRUE(eventually([&] { return e->stats().commits == 1; }));
  EXPECT_EQ(durable_kv(*e, s.object(), "n").value_or("absent"), "1");
}

// Rule 5 (pipelining): turn N+1 runs, and sees turn N's KV and SQL writes,
// while N's commit is still held; both replies wait for their own commits.
TEST(LoopPipelining, NextTurnRunsAndSeesWritesWhileCommitIsHeld) {
  testing::TempDir dir;
  testing::GatedEngine gated(options_in(dir));
  ASSERT_TRUE(gated.engine);
  auto& e = gated.engine;
  CommitGate* gate = &gated.gate;
  auto probe = std::make_shared<Probe>();
  auto seen = std::make_shared<std::vector<std::string>>();
  auto seen_mutex = std::make_shared<std::mutex>();
  ASSERT_TRUE(register_scripted(
                  *e, "Pipe", probe,
                  [=](Context& ctx, const Request&) -> Result<std::string> {
                    CARREL_RETURN_IF_ERROR(
                        ctx.sql().exec("CREATE TABLE IF NOT EXISTS t(v INTEGER)").status());
                    CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec("SELECT count(*) FROM t"));
                    CARREL_ASSIGN_OR_RETURN(int64_t rows, c.one()->get_int(0));
                    CARREL_ASSIGN_OR_RETURN(int64_t n, read_n(ctx));
                    {
                      std::lock_guard l(*seen_mutex);
                      seen->push_back(std::to_string(n) + "/" + std::to_string(rows));
                    }
                    CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t VALUES (?)", n).status());
                    CARREL_RETURN_IF_ERROR(ctx.kv().put("n", std::to_string(n + 1)));
                    return std::to_string(n + 1);
                  })
                  .is_ok());
  Stub s = e->stub("Pipe", "p");

  gate->hold();
  auto first = s.call("add", "");
  ASSERT_TRUE(gate->wait_held().has_value());
  auto second = s.call("add", "");
  ASSERT_TRUE(eventually([&] { return probe->requests.load() == 2 && probe->inside.load() == 0; }));
  {
    std::lock_guard l(*seen_mutex);
    ASSERT_EQ(seen->size(), 2u);
    EXPECT_EQ((*seen)[0], "0/0");
    EXPECT_EQ((*seen)[1], "1/1");  // turn 2 read turn 1's KV and SQL writes
  }
  EXPECT_TRUE(gate->is_held());  // ... while turn 1's commit was not durable
  EXPECT_EQ(first.wait_for(0ms), std::future_status::timeout);
  EXPECT_EQ(second.wait_for(0ms), std::future_status::timeout);
  gate->release();
  EXPECT_EQ(value_or_error(reply_of(first)), "1");
  EXPECT_EQ(value_or_error(reply_of(second)), "2");
}

// ---------------------------------------------------------------------------
// Rule 6 (commit failure): the turns in a failed commit fail with its error,
// later turns of the same objects that read their writes fail too, the
// objects reset (on_start again) to their last durable state, other objects
// carry on, and the engine recovers when the fault clears.
TEST(LoopCommitFailure, FailsExactlyTheDependentTurnsAndResetsTheObject) {
  testing::TempDir dir;
  testing::GatedEngine gated(options_in(dir));
  ASSERT_TRUE(gated.engine);
  auto& e = gated.engine;
  CommitGate* gate = &gated.gate;
  auto probe = std::make_shared<Probe>();
  ASSERT_TRUE(register_scripted(*e, "Counter", probe, counter).is_ok());
  Stub a = e->stub("Counter", "a"), b = e->stub("Counter", "b"), c = e->stub("Counter", "c");
  Stub z = e->stub("Counter", "z");
  for (Stub* st : {&a, &b, &c}) {
    auto f = st->call("add", "5");
    ASSERT_EQ(value_or_error(reply_of(f)), "5");
  }
  ASSERT_EQ(probe->starts.load(), 3);

  // Commit h1 (z) waits in the hook while a and b seal: they go in the next commit together.
  gate->hold();
  auto fz = z.call("add", "");
  auto h1 = gate->wait_held();
  ASSERT_TRUE(h1.has_value());
  auto fa = a.call("add", "");
  auto fb = b.call("add", "");
  CallOptions unconfirmed;
  unconfirmed.allow_unconfirmed = true;
  // These come back once a and b sealed (input gate) and see the new values.
  auto pa = a.call("get", "", unconfirmed);
  auto pb = b.call("get", "", unconfirmed);
  ASSERT_EQ(value_or_error(reply_of(pa)), "6");
  ASSERT_EQ(value_or_error(reply_of(pb)), "6");
  gate->pass();
  auto h2 = gate->wait_held(h1->commit_number + 1);
  ASSERT_TRUE(h2.has_value());
  ASSERT_EQ(h2->turns, 2u) << "a and b should share one commit";

  // While that commit is held: a's next turn reads a's unconfirmed write
  // (pipelining) and c writes for a later commit.
  auto fa2 = a.call("add", "");
  auto pa2 = a.call("get", "", unconfirmed);
  ASSERT_EQ(value_or_error(reply_of(pa2)), "7");
  auto fc = c.call("add", "");
  auto pc = c.call("get", "", unconfirmed);
  ASSERT_EQ(value_or_error(reply_of(pc)), "6");

  gate->pass(Status::io_error("injected disk failure"));
  auto h3 = gate->wait_held(h2->commit_number + 1);
  ASSERT_TRUE(h3.has_value());
  EXPECT_EQ(h3->turns, 1u) << "only c's turn is left to write; a's later turn is stale";
  gate->release();

  EXPECT_EQ(value_or_error(reply_of(fz)), "1");
  auto ra = reply_of(fa), rb = reply_of(fb), ra2 = reply_of(fa2), rc = reply_of(fc);
  EXPECT_EQ(ra.status().code(), Code::kIOError) << ra.status().to_string();
  EXPECT_NE(ra.status().message().find("injected disk failure"), std::string::npos);
  EXPECT_EQ(rb.status().code(), Code::kIOError) << rb.status().to_string();
  // a's later turn read the lost write: it fails too, naming the reset.
  EXPECT_FALSE(ra2.is_ok());
  EXPECT_NE(ra2.status().message().find("reset"), std::string::npos) << ra2.status().to_string();
  EXPECT_EQ(value_or_error(rc), "6");

  // a and b are back at their last durable state, with fresh handlers.
  auto ga = a.call("get", ""), gb = b.call("get", ""), gc = c.call("get", "");
  EXPECT_EQ(value_or_error(reply_of(ga)), "5");
  EXPECT_EQ(value_or_error(reply_of(gb)), "5");
  EXPECT_EQ(value_or_error(reply_of(gc)), "6");
  EXPECT_EQ(probe->starts.load(), 4 + 2);  // a, b, c, z, then a and b again
  EXPECT_EQ(probe->destroyed.load(), 2);
  EXPECT_EQ(e->stats().commits_failed, 1u);

  // A fault that lasts fails every commit; when it clears, the engine goes on.
  gate->fail_all(Status::io_error("disk gone"));
  auto f1 = a.call("add", "");
  EXPECT_EQ(reply_of(f1).status().code(), Code::kIOError);
  auto f2 = a.call("add", "");
  EXPECT_EQ(reply_of(f2).status().code(), Code::kIOError);
  gate->fail_all(Status::ok());
  auto f3 = a.call("add", "");
  EXPECT_EQ(value_or_error(reply_of(f3)), "6");
  EXPECT_EQ(durable_kv(*e, a.object(), "n").value_or("absent"), "6");
}

// ---------------------------------------------------------------------------
// Rule 7 (ctx.send): a durable one-way message, stored in the sender's
// commit, processed once by the target's on_request. A message whose handler
// fails is consumed, not retried; a send in a failed turn never leaves.

// "Sender": "send" sends payload-many "inc" messages and one "bad" to
// Receiver:<name in $target>; "send_then_fail" sends, then fails.
Script sender_script(std::string target_class) {
  return [target_class](Context& ctx, const Request& req) -> Result<std::string> {
    ObjectRef to = ObjectRef::named(target_class, "r");
    if (req.method == "send") {
      int n = std::stoi(req.payload);
      for (int i = 0; i < n; ++i) {
        CARREL_RETURN_IF_ERROR(ctx.send(to, "inc", std::to_string(i)));
      }
      return std::string("sent");
    }
    if (req.method == "send_bad") {
      CARREL_RETURN_IF_ERROR(ctx.send(to, "bad", ""));
      return std::string("sent");
    }
    if (req.method == "send_then_fail") {
      CARREL_RETURN_IF_ERROR(ctx.send(to, "inc", "lost"));
      return Status::aborted("sender changed its mind");
    }
    return Status::invalid_argument("unknown method " + req.method);
  };
}

// "Receiver": "inc" counts in n and marks its payload; "bad" writes, then fails.
Script receiver_script(std::shared_ptr<std::atomic<int>> bad_attempts) {
  return [bad_attempts](Context& ctx, const Request& req) -> Result<std::string> {
    if (req.method == "inc") {
      CARREL_ASSIGN_OR_RETURN(auto seen, ctx.kv().get("got:" + req.payload));
      if (seen) return Status::invalid_argument("message " + req.payload + " processed twice");
      CARREL_RETURN_IF_ERROR(ctx.kv().put("got:" + req.payload, "1"));
      return add(ctx, 1);
    }
    if (req.method == "bad") {
      bad_attempts->fetch_add(1);
      CARREL_RETURN_IF_ERROR(ctx.kv().put("bad-write", "1"));
      throw std::runtime_error("receiver cannot handle this");
    }
    return counter(ctx, req);
  };
}

TEST(LoopSend, MessageIsProcessedExactlyOnceAndAFailedOneIsConsumed) {
  testing::TempDir dir;
  Options o = options_in(dir);
  auto bad = std::make_shared<std::atomic<int>>(0);
  auto probe = std::make_shared<Probe>();
  {
    auto e = open_engine(o);
    ASSERT_TRUE(e);
    ASSERT_TRUE(register_scripted(*e, "Sender", probe, sender_script("Receiver")).is_ok());
    ASSERT_TRUE(register_scripted(*e, "Receiver", probe, receiver_script(bad)).is_ok());
    Stub sender = e->stub("Sender", "s"), receiver = e->stub("Receiver", "r");
    auto f = sender.call("send", "10");
    ASSERT_EQ(value_or_error(reply_of(f)), "sent");
    f = sender.call("send_then_fail", "");
    EXPECT_EQ(reply_of(f).status().code(), Code::kAborted);
    f = sender.call("send_bad", "");
    ASSERT_EQ(value_or_error(reply_of(f)), "sent");

    ASSERT_TRUE(eventually([&] {
      return e->stats().messages_delivered >= 11 && outbox_size(*e) == 0;
    })) << "delivered "
        << e->stats().messages_delivered << ", outbox " << outbox_size(*e);
    auto g = receiver.call("get", "");
    EXPECT_EQ(value_or_error(reply_of(g)), "10");
    EXPECT_EQ(bad->load(), 1);
    EXPECT_EQ(e->stats().messages_delivered, 11u);
    ASSERT_TRUE(e->run(receiver.object(), [](Context& ctx) -> Status {
                   CARREL_ASSIGN_OR_RETURN(auto w, ctx.kv().get("bad-write"));
                   CARREL_ASSIGN_OR_RETURN(auto lost, ctx.kv().get("got:lost"));
                   if (w || lost) return Status::corruption("a failed turn's writes were kept");
                   return Status::ok();
                 }).is_ok());
    ASSERT_TRUE(e->close().is_ok());
  }
  // Nothing is left to redeliver after a restart.
  auto e = open_engine(o);
  ASSERT_TRUE(e);
  EXPECT_EQ(outbox_size(*e), 0u);
  ASSERT_TRUE(register_scripted(*e, "Receiver", probe, receiver_script(bad)).is_ok());
  auto g = e->stub("Receiver", "r").call("get", "");
  EXPECT_EQ(value_or_error(reply_of(g)), "10");
  EXPECT_EQ(bad->load(), 1);
}

TEST(LoopSend, MessageCommittedDuringCloseIsDeliveredOnceAfterReopen) {
  testing::TempDir dir;
  auto gate = std::make_shared<CommitGate>();
  Options o = options_in(dir);
  o.commit_hook = gate->hook();
  auto bad = std::make_shared<std::atomic<int>>(0);
  auto first = std::make_shared<Probe>();
  {
    auto e = open_engine(o);
    ASSERT_TRUE(e);
    ReleaseOnExit guard{gate, {}};
    ASSERT_TRUE(register_scripted(*e, "Sender", first, sender_script("Receiver")).is_ok());
    ASSERT_TRUE(register_scripted(*e, "Receiver", first, receiver_script(bad)).is_ok());
    gate->hold();
    auto f = e->stub("Sender", "s").call("send", "1");
    ASSERT_TRUE(gate->wait_held().has_value());
    // close() while the sender's commit is held: by the time the message is
    // durable the engine accepts no events, so it cannot be delivered now.
    auto closed = std::async(std::launch::async, [&] { return e->close(); });
    ASSERT_TRUE(eventually([&] {
      auto r = e->submit(ObjectRef::named("Probe", "p"), [](Context&) { return Status::ok(); });
      return ready(r) && r.get().code() == Code::kAborted;
    }));
    gate->release();
    ASSERT_TRUE(ready(closed));
    EXPECT_TRUE(closed.get().is_ok());
    EXPECT_EQ(value_or_error(reply_of(f)), "sent");  // durable, so acknowledged
    EXPECT_EQ(first->requests.load(), 1) << "only the sender ran before close";
  }
  Options o2 = options_in(dir);
  auto e = open_engine(o2);
  ASSERT_TRUE(e);
  EXPECT_EQ(outbox_size(*e), 1u);
  auto second = std::make_shared<Probe>();
  // Registered after open: the message waits for the class, then goes.
  ASSERT_TRUE(register_scripted(*e, "Receiver", second, receiver_script(bad)).is_ok());
  ASSERT_TRUE(eventually([&] { return outbox_size(*e) == 0; }));
  auto g = e->stub("Receiver", "r").call("get", "");
  EXPECT_EQ(value_or_error(reply_of(g)), "1");
  EXPECT_EQ(e->stats().messages_delivered, 1u);
  EXPECT_EQ(second->requests.load(), 2);  // the message and the get
}

TEST(LoopSend, MessageToAClassRegisteredLaterIsDeliveredOnceRegistered) {
  testing::TempDir dir;
  auto e = open_engine(options_in(dir));
  ASSERT_TRUE(e);
  auto probe = std::make_shared<Probe>();
  auto late = std::make_shared<Probe>();
  auto bad = std::make_shared<std::atomic<int>>(0);
  ASSERT_TRUE(register_scripted(*e, "Sender", probe, sender_script("Late")).is_ok());
  auto f = e->stub("Sender", "s").call("send", "3");
  ASSERT_EQ(value_or_error(reply_of(f)), "sent");
  EXPECT_EQ(outbox_size(*e), 3u);  // stored, waiting for its class
  ASSERT_TRUE(register_scripted(*e, "Late", late, receiver_script(bad)).is_ok());
  ASSERT_TRUE(eventually([&] { return outbox_size(*e) == 0; }));
  auto g = e->stub("Late", "r").call("get", "");
  EXPECT_EQ(value_or_error(reply_of(g)), "3");
  EXPECT_EQ(late->requests.load(), 4);
}

// ---------------------------------------------------------------------------
// Rule 8 (ctx.call): replies in order; a commit point; Deadlock instead of a
// hang on re-entry; chains deeper than the worker pool complete.
TEST(LoopCall, RepliesComeBackInOrder) {
  testing::TempDir dir;
  auto e = open_engine(options_in(dir));
  ASSERT_TRUE(e);
  auto probe = std::make_shared<Probe>();
  ASSERT_TRUE(register_scripted(*e, "Counter", probe, counter).is_ok());
  ASSERT_TRUE(register_scripted(*e, "Front", probe,
                                [](Context& ctx, const Request&) -> Result<std::string> {
                                  std::string out;
                                  for (int i = 0; i < 3; ++i) {
                                    CARREL_ASSIGN_OR_RETURN(
                                        auto r, ctx.call(ObjectRef::named("Counter", "b"), "add",
                                                         std::to_string(i + 1)));
                                    out += (out.empty() ? "" : ",") + r;
                                  }
                                  return out;
                                })
                  .is_ok());
  auto f = e->stub("Front", "a").call("go", "");
  EXPECT_EQ(value_or_error(reply_of(f)), "1,3,6");
  f = e->stub("Counter", "b").call("get", "");
  EXPECT_EQ(value_or_error(reply_of(f)), "6");
}

TEST(LoopCall, CallIsACommitPoint) {
  testing::TempDir dir;
  auto e = open_engine(options_in(dir));
  ASSERT_TRUE(e);
  auto probe = std::make_shared<Probe>();
  Engine* engine = e.get();
  ObjectRef a = ObjectRef::named("Front", "a");
  auto seen = std::make_shared<std::string>();
  // The callee looks at LMDB itself: only durable commits are there.
  ASSERT_TRUE(
      register_scripted(*e, "Peek", probe, [=](Context&, const Request&) -> Result<std::string> {
        *seen = durable_kv(*engine, a, "before").value_or("absent");
        return *seen;
      }).is_ok());
  ASSERT_TRUE(register_scripted(*e, "Front", probe,
                                [](Context& ctx, const Request&) -> Result<std::string> {
                                  CARREL_RETURN_IF_ERROR(ctx.kv().put("before", "1"));
                                  CARREL_ASSIGN_OR_RETURN(
                                      auto r, ctx.call(ObjectRef::named("Peek", "b"), "x", ""));
                                  CARREL_RETURN_IF_ERROR(ctx.kv().put("after", "1"));
                                  throw std::runtime_error("after the call, saw " + r);
                                })
                  .is_ok());
  auto f = e->stub(a).call("go", "");
  auto r = reply_of(f);
  EXPECT_EQ(r.status().code(), Code::kAborted);
  EXPECT_NE(r.status().message().find("saw 1"), std::string::npos) << r.status().to_string();
  EXPECT_EQ(*seen, "1");  // the caller's write was durable before the callee ran
  // The throw rolled back only what the turn wrote after the call.
  EXPECT_EQ(durable_kv(*e, a, "before").value_or("absent"), "1");
  EXPECT_FALSE(durable_kv(*e, a, "after").has_value());
  std::string after = "?";
  ASSERT_TRUE(e->run(a, [&](Context& ctx) {
                 auto v = ctx.kv().get("after");
                 after = v.is_ok() && v->has_value() ? **v : "absent";
                 return Status::ok();
               }).is_ok());
  EXPECT_EQ(after, "absent");
}

TEST(LoopCall, ReentryIsDeadlockNotAHang) {
  testing::TempDir dir;
  auto e = open_engine(options_in(dir));
  ASSERT_TRUE(e);
  auto probe = std::make_shared<Probe>();
  // "self": call yourself. "ping": call the object named in the payload with
  // "pong", which calls back the caller. Each returns the code it got.
  ASSERT_TRUE(register_scripted(*e, "Loop", probe,
                                [](Context& ctx, const Request& req) -> Result<std::string> {
                                  Result<std::string> r = std::string();
                                  if (req.method == "self") r = ctx.call(ctx.object(), "self", "");
                                  if (req.method == "ping") {
                                    r = ctx.call(ObjectRef::named("Loop", req.payload), "pong",
                                                 ctx.object().name);
                                  }
                                  if (req.method == "pong") {
                                    r = ctx.call(ObjectRef::named("Loop", req.payload), "ping",
                                                 "x");
                                  }
                                  if (r.is_ok() && req.method == "ping") return r;  // B's verdict
                                  return std::string(code_name(r.status().code()));
                                })
                  .is_ok());
  auto f = e->stub("Loop", "a").call("self", "");
  EXPECT_EQ(value_or_error(reply_of(f)), "Deadlock");
  f = e->stub("Loop", "a").call("ping", "b");
  EXPECT_EQ(value_or_error(reply_of(f)), "Deadlock");  // b's call back to a
}

TEST(LoopCall, ChainDeeperThanTheWorkerPoolCompletes) {
  testing::TempDir dir;
  Options o = options_in(dir);
  o.workers = 2;
  auto e = open_engine(o);
  ASSERT_TRUE(e);
  auto probe = std::make_shared<Probe>();
  constexpr int kDepth = 8;
  ASSERT_TRUE(
      register_scripted(*e, "Chain", probe,
                        [](Context& ctx, const Request& req) -> Result<std::string> {
                          int d = std::stoi(req.payload);
                          CARREL_RETURN_IF_ERROR(ctx.kv().put("visited", "1"));
                          if (d + 1 == kDepth) return std::to_string(d);
                          std::string next = ctx.object().name.substr(0, 1) + std::to_string(d + 1);
                          CARREL_ASSIGN_OR_RETURN(auto r, ctx.call(ObjectRef::named("Chain", next),
                                                                   "go", std::to_string(d + 1)));
                          return r + "<" + std::to_string(d);
                        })
          .is_ok());
  // Two chains at once, so both workers block and extra threads must step in.
  auto fx = e->stub("Chain", "x0").call("go", "0");
  auto fy = e->stub("Chain", "y0").call("go", "0");
  EXPECT_EQ(value_or_error(reply_of(fx)), "7<6<5<4<3<2<1<0");
  EXPECT_EQ(value_or_error(reply_of(fy)), "7<6<5<4<3<2<1<0");
}

// ---------------------------------------------------------------------------
// Rule 9: a full mailbox refuses at once with Busy naming the limit; every
// event it accepted still runs.
TEST(LoopMailbox, FullMailboxIsBusyAtOnceAndDropsNothingAccepted) {
  testing::TempDir dir;
  Options o = options_in(dir);
  o.mailbox_depth_max = 4;
  o.workers = 2;
  auto e = open_engine(o);
  ASSERT_TRUE(e);
  Latch latch;
  ReleaseOnExit guard{nullptr, {&latch}};
  auto probe = std::make_shared<Probe>();
  auto blocked = std::make_shared<std::atomic<bool>>(false);
  ASSERT_TRUE(register_blocking_counter(*e, probe, latch, blocked).is_ok());
  Stub s = e->stub("Counter", "c");
  auto fblock = s.call("block", "");
  ASSERT_TRUE(eventually([&] { return blocked->load(); }));
  std::vector<std::future<Result<std::string>>> accepted;
  for (int i = 0; i < 4; ++i) accepted.push_back(s.call("add", ""));
  auto refused = s.call("add", "");
  ASSERT_EQ(refused.wait_for(0ms), std::future_status::ready) << "Busy must come at once";
  auto r = refused.get();
  EXPECT_EQ(r.status().code(), Code::kBusy);
  EXPECT_NE(r.status().message().find("mailbox_depth_max"), std::string::npos);
  EXPECT_EQ(e->stats().mailbox_rejections, 1u);
  latch.open();
  EXPECT_EQ(value_or_error(reply_of(fblock)), "1");
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(value_or_error(reply_of(accepted[i])), std::to_string(i + 2));
}

// ---------------------------------------------------------------------------
// Rule 10 (hibernation): idle objects are evicted (handler destroyed), their
// state stays on disk, and the next event reactivates them (on_start again).
TEST(LoopHibernation, IdleObjectsAreEvictedAndReactivateIntact) {
  testing::TempDir dir;
  auto clock = std::make_shared<ManualClock>(1'700'000'000'000);
  Options o = options_in(dir);
  o.clock = clock;
  o.idle_timeout_ms = 60'000;
  auto e = open_engine(o);
  ASSERT_TRUE(e);
  auto probe = std::make_shared<Probe>();
  ASSERT_TRUE(register_scripted(*e, "Counter", probe, counter).is_ok());
  for (int i = 0; i < 3; ++i) {
    auto f = e->stub("Counter", "o" + std::to_string(i)).call("add", "");
    ASSERT_EQ(value_or_error(reply_of(f)), "1");
  }
  EXPECT_EQ(e->core()->evict_idle(), 0u);  // not idle yet
  EXPECT_EQ(probe->destroyed.load(), 0);
  clock->advance_ms(60'000);
  // A worker may still be leaving the slot; the janitor may evict too.
  ASSERT_TRUE(eventually([&] {
    (void)e->core()->evict_idle();
    return e->stats().evictions == 3;
  }));
  EXPECT_EQ(probe->destroyed.load(), 3);
  EXPECT_EQ(e->stats().active_objects, 0u);
  for (int i = 0; i < 3; ++i) {
    auto f = e->stub("Counter", "o" + std::to_string(i)).call("add", "");
    EXPECT_EQ(value_or_error(reply_of(f)), "2");
  }
  EXPECT_EQ(probe->starts.load(), 6);
  EXPECT_EQ(probe->constructed.load(), 6);
}

TEST(LoopHibernation, ActiveObjectsMaxEvictsTheLeastRecentlyUsed) {
  testing::TempDir dir;
  auto clock = std::make_shared<ManualClock>(1'700'000'000'000);
  Options o = options_in(dir);
  o.clock = clock;
  o.idle_timeout_ms = int64_t{1} << 40;  // only the count limit applies
  o.active_objects_max = 2;
  auto e = open_engine(o);
  ASSERT_TRUE(e);
  auto probe = std::make_shared<Probe>();
  ASSERT_TRUE(register_scripted(*e, "Counter", probe, counter).is_ok());
  for (int i = 0; i < 5; ++i) {
    clock->advance_ms(1);  // a strict LRU order
    auto f = e->stub("Counter", "o" + std::to_string(i)).call("add", "");
    ASSERT_EQ(value_or_error(reply_of(f)), "1");
  }
  ASSERT_TRUE(eventually([&] {
    (void)e->core()->evict_idle();
    return e->stats().active_objects <= 2;
  }));
  EXPECT_EQ(e->stats().evictions, 3u);
  {
    std::lock_guard l(probe->m);
    EXPECT_EQ(probe->destroyed_names, (std::multiset<std::string>{"o0", "o1", "o2"}));
  }
  auto f = e->stub("Counter", "o0").call("get", "");
  EXPECT_EQ(value_or_error(reply_of(f)), "1");
  EXPECT_EQ(probe->starts.load(), 6);
}

// ---------------------------------------------------------------------------
// Rule 11 (close): every accepted event completes, with its reply or Aborted;
// nothing acknowledged is lost; later calls get Aborted; no hang.
TEST(LoopClose, EveryAcceptedEventCompletesAndAcknowledgedOnesSurvive) {
  testing::TempDir dir;
  Options o = options_in(dir);
  o.workers = 2;
  o.commit_hook = [](const CommitInfo&) {
    std::this_thread::sleep_for(1ms);  // keep commits in flight while close() runs
    return Status::ok();
  };
  constexpr int kObjects = 8;
  std::vector<std::future<Result<std::string>>> fs;
  std::vector<std::optional<Result<std::string>>> refused;  // results known at once
  std::vector<int> object_of;
  {
    auto e = open_engine(o);
    ASSERT_TRUE(e);
    auto probe = std::make_shared<Probe>();
    ASSERT_TRUE(register_scripted(*e, "Counter", probe, counter).is_ok());
    std::atomic<int> issued{0};
    std::thread caller([&] {
      for (int i = 0;; ++i) {
        // At most 64 in flight, so mailboxes never fill (that would be Busy).
        if (i >= 64 && fs[i - 64].valid()) fs[i - 64].wait_for(kWait);
        auto f = e->stub("Counter", "o" + std::to_string(i % kObjects)).call("add", "");
        object_of.push_back(i % kObjects);
        if (f.wait_for(0ms) == std::future_status::ready) {
          refused.emplace_back(f.get());
          fs.emplace_back();
        } else {
          refused.emplace_back();
          fs.push_back(std::move(f));
        }
        issued.store(i + 1);
        if (refused.back() && refused.back()->status().code() == Code::kAborted) return;
        if (i > 1'000'000) return;  // bounded: close() never took effect
      }
    });
    ASSERT_TRUE(eventually([&] { return issued.load() >= 300; }));
    auto closed = std::async(std::launch::async, [&] { return e->close(); });
    bool close_returned = ready(closed);
    caller.join();
    ASSERT_TRUE(close_returned) << "close() hung";
    EXPECT_TRUE(closed.get().is_ok());
    // After close: refused at once.
    auto late = e->stub("Counter", "o0").call("add", "");
    ASSERT_EQ(late.wait_for(0ms), std::future_status::ready);
    EXPECT_EQ(late.get().status().code(), Code::kAborted);
    EXPECT_EQ(
        e->run(ObjectRef::named("Counter", "o0"), [](Context&) { return Status::ok(); }).code(),
        Code::kAborted);
    EXPECT_TRUE(e->close().is_ok());  // idempotent
  }
  std::vector<std::set<int64_t>> acknowledged(kObjects);
  int aborted = 0;
  for (size_t i = 0; i < fs.size(); ++i) {
    std::optional<Result<std::string>> r = refused[i];
    if (!r) {
      ASSERT_TRUE(ready(fs[i])) << "event " << i << " never completed";
      r = fs[i].get();
    }
    if (r->is_ok()) {
      acknowledged[object_of[i]].insert(std::stoll(r->value()));
    } else {
      EXPECT_EQ(r->status().code(), Code::kAborted) << r->status().to_string();
      ++aborted;
    }
  }
  EXPECT_GE(aborted, 1);  // the caller stopped at its first refusal
  auto e = open_engine(options_in(dir));
  ASSERT_TRUE(e);
  for (int i = 0; i < kObjects; ++i) {
    std::string n = "?";
    ASSERT_TRUE(e->run(ObjectRef::named("Counter", "o" + std::to_string(i)), [&](Context& ctx) {
                   auto v = read_n(ctx);
                   n = v.is_ok() ? std::to_string(*v) : v.status().to_string();
                   return Status::ok();
                 }).is_ok());
    // Acknowledged replies are exactly 1..n: all durable, none invented.
    auto& acks = acknowledged[i];
    EXPECT_EQ(n, std::to_string(acks.size())) << "object o" << i;
    if (!acks.empty()) {
      EXPECT_EQ(*acks.begin(), 1);
      EXPECT_EQ(*acks.rbegin(), static_cast<int64_t>(acks.size()));
    }
  }
}

TEST(LoopClose, CloseWaitsForARunningHandlerThenReplies) {
  testing::TempDir dir;
  auto e = open_engine(options_in(dir));
  ASSERT_TRUE(e);
  Latch latch;
  ReleaseOnExit guard{nullptr, {&latch}};
  auto probe = std::make_shared<Probe>();
  auto blocked = std::make_shared<std::atomic<bool>>(false);
  ASSERT_TRUE(register_blocking_counter(*e, probe, latch, blocked).is_ok());
  Stub s = e->stub("Counter", "c");
  auto fblock = s.call("block", "");
  ASSERT_TRUE(eventually([&] { return blocked->load(); }));
  auto queued = s.call("add", "");
  auto closed = std::async(std::launch::async, [&] { return e->close(); });
  EXPECT_EQ(closed.wait_for(50ms), std::future_status::timeout);
  latch.open();
  ASSERT_TRUE(ready(closed)) << "close() hung";
  EXPECT_EQ(value_or_error(reply_of(fblock)), "1");
  EXPECT_EQ(value_or_error(reply_of(queued)), "2");
}

TEST(LoopClose, DestroyingTheEngineWithoutCloseFinishesItsEvents) {
  testing::TempDir dir;
  Options o = options_in(dir);
  std::vector<std::future<Result<std::string>>> fs;
  {
    auto e = open_engine(o);
    ASSERT_TRUE(e);
    auto probe = std::make_shared<Probe>();
    ASSERT_TRUE(register_scripted(*e, "Counter", probe, counter).is_ok());
    for (int i = 0; i < 20; ++i) fs.push_back(e->stub("Counter", "c").call("add", ""));
  }  // ~Engine without close()
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(ready(fs[i], 0ms)) << "reply " << i << " outlived the engine";
    EXPECT_EQ(value_or_error(fs[i].get()), std::to_string(i + 1));
  }
  auto e = open_engine(o);
  ASSERT_TRUE(e);
  std::string n;
  ASSERT_TRUE(e->run(ObjectRef::named("Counter", "c"), [&](Context& ctx) {
                 n = std::to_string(read_n(ctx).value_or(-1));
                 return Status::ok();
               }).is_ok());
  EXPECT_EQ(n, "20");
}

// ---------------------------------------------------------------------------
// Rule 12 (stats): counters add up, and group commit puts many turns in one
// LMDB commit when commits are slow and submitters many.
TEST(LoopStats, GroupCommitPutsManyTurnsInOneCommit) {
  testing::TempDir dir;
  Options o = options_in(dir);
  // Time stands still, so no object goes idle however slow the run (sanitizers):
  // active_objects below counts every object the calls woke.
  o.clock = std::make_shared<ManualClock>(1'700'000'000'000);
  o.commit_hook = [](const CommitInfo&) {
    std::this_thread::sleep_for(2ms);  // slow commits: batches build up behind them
    return Status::ok();
  };
  auto e = open_engine(o);
  ASSERT_TRUE(e);
  auto probe = std::make_shared<Probe>();
  ASSERT_TRUE(register_scripted(*e, "Counter", probe, counter).is_ok());
  constexpr int kSubmitters = 64, kCalls = 10;
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kSubmitters; ++t) {
    ts.emplace_back([&, t] {
      Stub s = e->stub("Counter", "o" + std::to_string(t % 32));
      for (int i = 0; i < kCalls; ++i) {
        auto f = s.call("add", "");
        if (reply_of(f).is_ok()) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_EQ(ok.load(), kSubmitters * kCalls);
  EngineStats st = e->stats();
  EXPECT_EQ(st.turns_run, uint64_t{kSubmitters * kCalls});
  EXPECT_EQ(st.turns_failed, 0u);
  EXPECT_EQ(st.turns_committed, uint64_t{kSubmitters * kCalls});
  EXPECT_GE(st.commits, 1u);
  EXPECT_LT(st.commits, st.turns_committed);
  EXPECT_GT(st.turns_per_commit_mean(), 1.0);
  EXPECT_GT(st.turns_per_commit_max, 1u);
  // One fdatasync per commit, plus an explicit one whenever no commit
  // followed to make the last one's meta page durable (committer.h (6)).
  EXPECT_GE(st.fsyncs, st.commits);
  EXPECT_LE(st.fsyncs, 2 * st.commits);
  EXPECT_EQ(st.commits_failed, 0u);
  EXPECT_EQ(st.active_objects, 32u);
  EXPECT_GT(st.bytes_written, 0u);
}

// ---------------------------------------------------------------------------
// Rule 13 (fast path, object.h invariant (5)): a blocking call to an idle
// object runs its turn on the caller's thread, under the same gates.

// Stub::call_blocking on a thread of its own, so that the test's wait for it
// stays bounded; *caller gets that thread's id.
std::future<Result<std::string>> call_blocking_on_thread(Stub s, std::string method,
                                                         std::string payload,
                                                         std::thread::id* caller = nullptr,
                                                         CallOptions options = {}) {
  return std::async(std::launch::async, [=]() mutable {
    if (caller) *caller = std::this_thread::get_id();
    return s.call_blocking(method, payload, options);
  });
}

// Class "Where": "add" and "get" as the counter; "block" waits on the latch
// first. Every request records the thread it ran on in *ran_on.
Status register_where(Engine& e, std::shared_ptr<Probe> probe, Latch& latch,
                      std::shared_ptr<std::atomic<bool>> blocked,
                      std::shared_ptr<std::thread::id> ran_on) {
  return register_scripted(
      e, "Where", std::move(probe),
      [&latch, blocked, ran_on](Context& ctx, const Request& req) -> Result<std::string> {
        *ran_on = std::this_thread::get_id();
        if (req.method == "block") {
          blocked->store(true);
          if (!latch.wait()) return Status::aborted("latch timeout");
          return add(ctx, 1);
        }
        return counter(ctx, req);
      });
}

TEST(LoopFastPath, BlockingCallToAnIdleObjectRunsOnTheCallersThread) {
  testing::TempDir dir;
  auto e = open_engine(options_in(dir));
  ASSERT_TRUE(e);
  Latch latch;
  auto probe = std::make_shared<Probe>();
  auto ran_on = std::make_shared<std::thread::id>();
  ASSERT_TRUE(
      register_where(*e, probe, latch, std::make_shared<std::atomic<bool>>(), ran_on).is_ok());
  std::thread::id caller;
  auto f = call_blocking_on_thread(e->stub("Where", "w"), "add", "", &caller);
  EXPECT_EQ(value_or_error(reply_of(f)), "1");
  EXPECT_EQ(*ran_on, caller);
  // Engine::run takes the same path; the reply implies durability as ever.
  std::thread::id run_on, runner;
  auto r = std::async(std::launch::async, [&] {
    runner = std::this_thread::get_id();
    return e->run(ObjectRef::named("Where", "w"), [&](Context& ctx) {
      run_on = std::this_thread::get_id();
      return add(ctx, 1).status();
    });
  });
  ASSERT_TRUE(ready(r));
  EXPECT_TRUE(r.get().is_ok());
  EXPECT_EQ(run_on, runner);
  EXPECT_EQ(durable_kv(*e, ObjectRef::named("Where", "w"), "n").value_or("absent"), "2");
  EngineStats st = e->stats();
  EXPECT_EQ(st.turns_inline, 2u);
  EXPECT_EQ(st.turns_run, 2u);
  EXPECT_EQ(st.active_objects, 1u);
}

TEST(LoopFastPath, EventFromAWorkerDuringAnInlineTurnQueuesAndRunsAfterIt) {
  testing::TempDir dir;
  Options o = options_in(dir);
  o.workers = 2;
  auto e = open_engine(o);
  ASSERT_TRUE(e);
  Latch latch;
  ReleaseOnExit guard{nullptr, {&latch}};
  auto probe = std::make_shared<Probe>();
  auto blocked = std::make_shared<std::atomic<bool>>(false);
  auto ran_on = std::make_shared<std::thread::id>();
  ASSERT_TRUE(register_where(*e, probe, latch, blocked, ran_on).is_ok());
  // "Caller" objects call Where/w from a worker's turn.
  ASSERT_TRUE(register_scripted(*e, "Caller", std::make_shared<Probe>(),
                                [](Context& ctx, const Request&) -> Result<std::string> {
                                  return ctx.call(ObjectRef::named("Where", "w"), "add", "");
                                })
                  .is_ok());
  std::thread::id caller;
  auto inline_turn = call_blocking_on_thread(e->stub("Where", "w"), "block", "", &caller);
  ASSERT_TRUE(eventually([&] { return blocked->load(); }));
  EXPECT_EQ(e->stats().turns_inline, 1u);
  // A worker's ctx.call and a plain call race the inline turn: both queue.
  auto from_worker = e->stub("Caller", "c").call("go", "");
  auto from_client = e->stub("Where", "w").call("add", "");
  EXPECT_EQ(from_client.wait_for(50ms), std::future_status::timeout);
  latch.open();
  EXPECT_EQ(value_or_error(reply_of(inline_turn)), "1");
  auto a = reply_of(from_worker), b = reply_of(from_client);
  ASSERT_TRUE(a.is_ok() && b.is_ok()) << value_or_error(a) << " " << value_or_error(b);
  std::set<std::string> replies{a.value(), b.value()};
  EXPECT_EQ(replies, (std::set<std::string>{"2", "3"}));  // after the inline turn, in turn
  EXPECT_NE(*ran_on, caller);                             // the queued events ran on a worker
  EXPECT_FALSE(probe->overlap.load());
  EXPECT_EQ(e->stats().turns_inline, 1u);
}

TEST(LoopFastPath, BlockingCallToABusyObjectIsQueuedBehindItsTurn) {
  testing::TempDir dir;
  auto e = open_engine(options_in(dir));
  ASSERT_TRUE(e);
  Latch latch;
  ReleaseOnExit guard{nullptr, {&latch}};
  auto probe = std::make_shared<Probe>();
  auto blocked = std::make_shared<std::atomic<bool>>(false);
  auto ran_on = std::make_shared<std::thread::id>();
  ASSERT_TRUE(register_where(*e, probe, latch, blocked, ran_on).is_ok());
  auto on_worker = e->stub("Where", "w").call("block", "");
  ASSERT_TRUE(eventually([&] { return blocked->load(); }));
  std::thread::id caller;
  auto waiting = call_blocking_on_thread(e->stub("Where", "w"), "add", "", &caller);
  EXPECT_EQ(waiting.wait_for(50ms), std::future_status::timeout);
  latch.open();
  EXPECT_EQ(value_or_error(reply_of(on_worker)), "1");
  EXPECT_EQ(value_or_error(reply_of(waiting)), "2");
  EXPECT_NE(*ran_on, caller);
  EXPECT_EQ(e->stats().turns_inline, 0u);
  EXPECT_FALSE(probe->overlap.load());
}

TEST(LoopFastPath, InlineTurnCallsOutWithoutStarvingThePoolAndReentryIsDeadlock) {
  testing::TempDir dir;
  Options o = options_in(dir);
  o.workers = 1;
  auto e = open_engine(o);
  ASSERT_TRUE(e);
  auto probe = std::make_shared<Probe>();
  // "chain": call the next object (payload: how many more) and wrap its reply.
  // "ping"/"pong" as in LoopCall.ReentryIsDeadlockNotAHang.
  ASSERT_TRUE(
      register_scripted(
          *e, "Loop", probe,
          [](Context& ctx, const Request& req) -> Result<std::string> {
            if (req.method == "chain") {
              int left = std::stoi(req.payload);
              CARREL_RETURN_IF_ERROR(ctx.kv().put("visited", "1"));
              if (left == 0) return std::string("end");
              auto next = ObjectRef::named("Loop", ctx.object().name + "+");
              CARREL_ASSIGN_OR_RETURN(auto r, ctx.call(next, "chain", std::to_string(left - 1)));
              return std::to_string(left) + "<" + r;
            }
            Result<std::string> r = std::string();
            if (req.method == "ping") {
              r = ctx.call(ObjectRef::named("Loop", req.payload), "pong", ctx.object().name);
              if (r.is_ok()) return r;  // b's verdict
            }
            if (req.method == "pong") {
              r = ctx.call(ObjectRef::named("Loop", req.payload), "ping", "x");
            }
            return std::string(code_name(r.status().code()));
          })
          .is_ok());
  // One worker, and every object on the chain blocks in ctx.call.
  auto chain = call_blocking_on_thread(e->stub("Loop", "a"), "chain", "3");
  EXPECT_EQ(value_or_error(reply_of(chain)), "3<2<1<end");
  auto reentry = call_blocking_on_thread(e->stub("Loop", "p"), "ping", "q");
  EXPECT_EQ(value_or_error(reply_of(reentry)), "Deadlock");  // q's call back to p
  EXPECT_EQ(e->stats().turns_inline, 2u);
}

TEST(LoopFastPath, CloseDuringAnInlineTurnWaitsForItAndRunsWhatQueued) {
  testing::TempDir dir;
  Options o = options_in(dir);
  auto e = open_engine(o);
  ASSERT_TRUE(e);
  Latch latch;
  ReleaseOnExit guard{nullptr, {&latch}};
  auto probe = std::make_shared<Probe>();
  auto blocked = std::make_shared<std::atomic<bool>>(false);
  auto ran_on = std::make_shared<std::thread::id>();
  ASSERT_TRUE(register_where(*e, probe, latch, blocked, ran_on).is_ok());
  auto inline_turn = call_blocking_on_thread(e->stub("Where", "w"), "block", "");
  ASSERT_TRUE(eventually([&] { return blocked->load(); }));
  ASSERT_EQ(e->stats().turns_inline, 1u);
  auto queued = e->stub("Where", "w").call("add", "");
  auto closed = std::async(std::launch::async, [&] { return e->close(); });
  EXPECT_EQ(closed.wait_for(50ms), std::future_status::timeout);
  latch.open();
  ASSERT_TRUE(ready(closed)) << "close() hung";
  EXPECT_TRUE(closed.get().is_ok());
  EXPECT_EQ(value_or_error(reply_of(inline_turn)), "1");
  EXPECT_EQ(value_or_error(reply_of(queued)), "2");
  e.reset();
  e = open_engine(o);
  ASSERT_TRUE(e);
  EXPECT_EQ(durable_kv(*e, ObjectRef::named("Where", "w"), "n").value_or("absent"), "2");
}

TEST(LoopFastPath, InlineReadSeesAPendingWriteAndItsReplyWaitsForThatCommit) {
  testing::TempDir dir;
  testing::GatedEngine gated(options_in(dir));
  ASSERT_TRUE(gated.engine);
  auto& e = gated.engine;
  CommitGate* gate = &gated.gate;
  auto probe = std::make_shared<Probe>();
  ASSERT_TRUE(register_scripted(*e, "Counter", probe, counter).is_ok());
  Stub s = e->stub("Counter", "c");

  gate->hold();
  CallOptions unconfirmed;
  unconfirmed.allow_unconfirmed = true;
  // Returns once the inline turn ended and the object is idle again.
  auto wrote = call_blocking_on_thread(s, "add", "", nullptr, unconfirmed);
  EXPECT_EQ(value_or_error(reply_of(wrote)), "1");
  ASSERT_TRUE(gate->wait_held().has_value());
  auto read = call_blocking_on_thread(s, "get", "");
  // The read ran (inline) and saw the pending write; its reply waits for the commit.
  EXPECT_TRUE(eventually([&] { return e->stats().turns_run == 2; }));
  EXPECT_EQ(read.wait_for(50ms), std::future_status::timeout);
  EXPECT_FALSE(durable_kv(*e, s.object(), "n").has_value());
  gate->release();
  EXPECT_EQ(value_or_error(reply_of(read)), "1");
  EXPECT_EQ(durable_kv(*e, s.object(), "n").value_or("absent"), "1");
  EXPECT_EQ(e->stats().turns_inline, 2u);
}

TEST(LoopFastPath, FailedInlineTurnRollsBack) {
  testing::TempDir dir;
  auto e = open_engine(options_in(dir));
  ASSERT_TRUE(e);
  auto probe = std::make_shared<Probe>();
  ASSERT_TRUE(register_scripted(*e, "Counter", probe, counter).is_ok());
  auto ref = ObjectRef::named("Counter", "c");
  auto failed = std::async(std::launch::async, [&] {
    return e->run(ref, [](Context& ctx) -> Status {
      CARREL_RETURN_IF_ERROR(ctx.kv().put("n", "41"));
      CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE TABLE t(x)").status());
      return Status::invalid_argument("refused");
    });
  });
  ASSERT_TRUE(ready(failed));
  EXPECT_EQ(failed.get().code(), Code::kInvalidArgument);
  auto threw = std::async(std::launch::async, [&] {
    return e->run(ref, [](Context& ctx) -> Status {
      CARREL_RETURN_IF_ERROR(ctx.kv().put("n", "42"));
      throw std::runtime_error("boom");
    });
  });
  ASSERT_TRUE(ready(threw));
  EXPECT_EQ(threw.get().code(), Code::kAborted);
  auto read = call_blocking_on_thread(e->stub("Counter", "c"), "get", "");
  EXPECT_EQ(value_or_error(reply_of(read)), "0");
  auto tables = std::async(std::launch::async, [&] {
    return e->run(ref, [](Context& ctx) -> Status {
      CARREL_ASSIGN_OR_RETURN(auto rows, ctx.sql().exec("SELECT name FROM sqlite_master"));
      return rows.rows().empty() ? Status::ok() : Status::aborted("table t survived");
    });
  });
  ASSERT_TRUE(ready(tables));
  EXPECT_TRUE(tables.get().is_ok());
  EngineStats st = e->stats();
  EXPECT_EQ(st.turns_failed, 2u);
  EXPECT_EQ(st.turns_inline, 4u);
  EXPECT_EQ(st.commits, 0u);
}

// object.h (1): a mailbox hands out events in arrival order, also across the
// compaction of its taken prefix and while it fills and drains in turns.
TEST(LoopMailbox, EventsLeaveInArrivalOrderAcrossCompaction) {
  detail::Mailbox box;
  EXPECT_TRUE(box.empty());
  int pushed = 0, popped = 0;
  auto push = [&](int n) {
    for (int i = 0; i < n; ++i) {
      detail::Event ev;
      ev.request.method = std::to_string(pushed++);
      box.push_back(std::move(ev));
    }
  };
  auto pop = [&](int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_FALSE(box.empty());
      EXPECT_EQ(box.front().request.method, std::to_string(popped++));
      box.pop_front();
    }
  };
  push(40);
  pop(25);  // past half: the taken prefix is dropped
  push(30);
  EXPECT_EQ(box.size(), 45u);
  pop(45);
  EXPECT_TRUE(box.empty());
  push(3);
  pop(3);
  EXPECT_TRUE(box.empty());
  EXPECT_EQ(popped, pushed);
}

// ---- commits made on the caller's thread (committer.h (10)) ---------------

Options nosync_in(const testing::TempDir& dir) {
  Options o = options_in(dir);
  o.durability = Durability::kNoSync;
  return o;
}

Status increment(Context& ctx) {
  CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().get("n"));
  int n = v ? std::stoi(*v) : 0;
  return ctx.kv().put("n", std::to_string(n + 1));
}

// A caller alone, nosync: its turn's commit is made on its own thread.
TEST(LoopCommitOnCaller, ALoneCallersNosyncCommitsAreMadeOnItsThread) {
  testing::TempDir dir;
  Options o = nosync_in(dir);
  auto e = open_engine(o);
  ASSERT_TRUE(e);
  auto ref = ObjectRef::named("Solo", "s");
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(e->run(ref, increment).is_ok());
  EngineStats st = e->stats();
  // A maintenance task queued at the moment of a submit sends that one commit
  // to the thread: most, not necessarily all.
  EXPECT_GE(st.commits_on_caller, 5u);
  EXPECT_LE(st.commits_on_caller, st.commits);
  EXPECT_EQ(durable_kv(*e, ref, "n").value_or("absent"), "10");
}

// Sync mode keeps every commit on the committer thread: the release waits
// for a sync that thread follows.
TEST(LoopCommitOnCaller, SyncModeNeverCommitsOnTheCaller) {
  testing::TempDir dir;
  auto e = open_engine(options_in(dir));  // sync by default
  ASSERT_TRUE(e);
  auto ref = ObjectRef::named("Solo", "s");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(e->run(ref, increment).is_ok());
  EXPECT_EQ(e->stats().commits_on_caller, 0u);
  EXPECT_EQ(durable_kv(*e, ref, "n").value_or("absent"), "3");
}

// The commit hook is documented to run on the committer's thread; with one
// set, no caller commits.
TEST(LoopCommitOnCaller, ACommitHookKeepsCommitsOnTheCommitterThread) {
  testing::TempDir dir;
  Options o = nosync_in(dir);
  auto hook_thread = std::make_shared<std::thread::id>();
  o.commit_hook = [hook_thread](const CommitInfo&) {
    *hook_thread = std::this_thread::get_id();
    return Status::ok();
  };
  auto e = open_engine(o);
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->run(ObjectRef::named("Solo", "s"), increment).is_ok());
  EXPECT_EQ(e->stats().commits_on_caller, 0u);
  EXPECT_NE(*hook_thread, std::thread::id{}) << "the hook never ran";
  EXPECT_NE(*hook_thread, std::this_thread::get_id());
}

// A caller's own commit delivers what its turn sent, from the caller's
// thread: to another object, and to the object the caller still holds.
TEST(LoopCommitOnCaller, MessagesSentByACallersCommitAreDelivered) {
  testing::TempDir dir;
  Options o = nosync_in(dir);
  auto e = open_engine(o);
  ASSERT_TRUE(e);
  auto bad = std::make_shared<std::atomic<int>>(0);
  auto probe = std::make_shared<Probe>();
  ASSERT_TRUE(register_scripted(*e, "Receiver", probe, receiver_script(bad)).is_ok());
  auto self = ObjectRef::named("Receiver", "self");
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(e->run(self, [i](Context& ctx) -> Status {
                   CARREL_RETURN_IF_ERROR(ctx.send(ObjectRef::named("Receiver", "other"), "inc",
                                                   "o" + std::to_string(i)));
                   return ctx.send(ObjectRef::named("Receiver", "self"), "inc",
                                   "s" + std::to_string(i));
                 }).is_ok());
  }
  EXPECT_GT(e->stats().commits_on_caller, 0u) << "no caller took the role";
  ASSERT_TRUE(eventually([&] { return e->stats().messages_delivered >= 10; }))
      << "delivered " << e->stats().messages_delivered;
  EXPECT_EQ(e->stats().messages_delivered, 10u);
  auto other_count = e->stub("Receiver", "other").call("get", "");
  auto self_count = e->stub("Receiver", "self").call("get", "");
  EXPECT_EQ(value_or_error(reply_of(other_count)), "5");
  EXPECT_EQ(value_or_error(reply_of(self_count)), "5");
}

// Callers that commit themselves and the committer thread taking what queued
// meanwhile hand the role back and forth; no acknowledged increment is lost
// or reordered, on a shared object and on each caller's own.
TEST(LoopCommitOnCaller, CallersAndTheCommitterThreadHandTheRoleOverLosingNothing) {
  testing::TempDir dir;
  Options o = nosync_in(dir);
  constexpr int kThreads = 4;
  constexpr int kTurns = 150;
  {
    auto e = open_engine(o);
    ASSERT_TRUE(e);
    auto shared = ObjectRef::named("Count", "shared");
    std::vector<std::future<int>> callers;
    for (int t = 0; t < kThreads; ++t) {
      callers.push_back(std::async(std::launch::async, [&e, shared, t] {
        auto own = ObjectRef::named("Count", "own" + std::to_string(t));
        int ok = 0;
        for (int i = 0; i < kTurns; ++i) {
          ok += e->run(shared, increment).is_ok();
          ok += e->run(own, increment).is_ok();
        }
        return ok;
      }));
    }
    for (auto& c : callers) {
      ASSERT_TRUE(ready(c));
      EXPECT_EQ(c.get(), 2 * kTurns);
    }
    EngineStats st = e->stats();
    EXPECT_GT(st.commits_on_caller, 0u) << "no caller took the role";
    EXPECT_GT(st.commits, st.commits_on_caller) << "the thread never took it back";
  }
  auto e = open_engine(o);  // what reached data.mdb
  ASSERT_TRUE(e);
  EXPECT_EQ(testing::kv_read(*e, ObjectRef::named("Count", "shared"), "n"),
            std::to_string(kThreads * kTurns));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(testing::kv_read(*e, ObjectRef::named("Count", "own" + std::to_string(t)), "n"),
              std::to_string(kTurns));
  }
}

}  // namespace
}  // namespace carrel
