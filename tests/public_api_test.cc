// Public behaviour no other suite pins down: Context::current_bookmark() while
// the commit it names is still in flight, Stub::call_async used directly,
// bookmark order when the clock steps back, and the name length limits.
//
// Commit timing comes only through Options::commit_hook (HeldCommits below);
// time only through a ManualClock. Every wait is bounded.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "carrel/carrel.h"
#include "tests/store_probe.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

using namespace std::chrono_literals;

constexpr UnixMs kT0 = 1'700'000'000'000;
constexpr auto kWait = 30s;  // generous: sanitizer builds on a loaded machine

// Holds every commit in the hook while holding; counts the commits held.
class HeldCommits {
 public:
  CommitHook hook() {
    return [this](const CommitInfo&) {
      std::unique_lock l(m_);
      if (!holding_) return Status::ok();
      ++held_;
      cv_.notify_all();
      // Bounded, so a failed assertion cannot hang the engine's close().
      cv_.wait_for(l, kWait, [&] { return !holding_; });
      return Status::ok();
    };
  }
  void hold() {
    std::lock_guard l(m_);
    holding_ = true;
  }
  void release() {
    std::lock_guard l(m_);
    holding_ = false;
    cv_.notify_all();
  }
  // Waits until a commit is held in the hook.
  bool wait_held() {
    std::unique_lock l(m_);
    return cv_.wait_for(l, kWait, [&] { return held_ > 0; });
  }
  bool holding() {
    std::lock_guard l(m_);
    return holding_;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool holding_ = false;  // GUARDED_BY(m_)
  int held_ = 0;          // GUARDED_BY(m_)
};

// Class "Note": "put" writes payload under "k" and replies it, "fail" fails.
class Note final : public Handler {
 public:
  Result<std::string> on_request(Context& ctx, const Request& req) override {
    if (req.method == "fail") return Status::invalid_argument("asked to fail");
    CARREL_RETURN_IF_ERROR(ctx.kv().put("k", req.payload));
    return req.payload;
  }
};

struct Fixture {
  testing::TempDir dir;
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(kT0);
  HeldCommits commits;
  std::unique_ptr<Engine> engine;

  Options options() {
    Options o;
    o.dir = dir.path();
    o.clock = clock;
    o.commit_hook = commits.hook();
    return o;
  }
  bool open() {
    auto e = Engine::open(options());
    EXPECT_TRUE(e.is_ok()) << e.status().to_string();
    if (!e.is_ok()) return false;
    engine = std::move(e).value();
    auto s =
        engine->register_class("Note", [](const ObjectRef&) { return std::make_unique<Note>(); });
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    return s.is_ok();
  }
  ~Fixture() {
    commits.release();
    if (engine) (void)engine->close();
  }
};

std::string reply_or_error(std::future<Result<std::string>>& f) {
  if (f.wait_for(kWait) != std::future_status::ready) return "error: no reply";
  auto r = f.get();
  return r.is_ok() ? *r : "error: " + r.status().to_string();
}

// Context::current_bookmark() names the object's last commit even while that
// commit is not durable yet, and it is the bookmark the engine reports once
// the commit lands.
TEST(ContextCurrentBookmark, NamesTheCommitStillInFlight) {
  Fixture f;
  ASSERT_TRUE(f.open());
  const ObjectRef ref = ObjectRef::named("Note", "a");
  Status none = f.engine->run(ref, [](Context& ctx) -> Status {
    auto b = ctx.current_bookmark();
    if (b.is_ok()) return Status::aborted("a bookmark before any commit: " + *b);
    return b.status().code() == Code::kNotFound ? Status::ok() : b.status();
  });
  ASSERT_TRUE(none.is_ok()) << none.to_string();

  f.commits.hold();
  auto put = f.engine->stub(ref).call("put", "v1");
  ASSERT_TRUE(f.commits.wait_held());
  std::promise<Result<std::string>> seen;
  auto peek = f.engine->submit(ref, [&](Context& ctx) -> Status {
    seen.set_value(ctx.current_bookmark());
    return Status::ok();
  });
  auto seen_future = seen.get_future();
  ASSERT_EQ(seen_future.wait_for(kWait), std::future_status::ready);
  EXPECT_TRUE(f.commits.holding());  // the turn ran while "put" was not durable
  EXPECT_EQ(put.wait_for(0ms), std::future_status::timeout);
  Result<std::string> in_flight = seen_future.get();
  ASSERT_TRUE(in_flight.is_ok()) << in_flight.status().to_string();

  f.commits.release();
  EXPECT_EQ(reply_or_error(put), "v1");
  ASSERT_EQ(peek.wait_for(kWait), std::future_status::ready);
  EXPECT_TRUE(peek.get().is_ok());
  auto durable = f.engine->current_bookmark(ref);
  ASSERT_TRUE(durable.is_ok()) << durable.status().to_string();
  EXPECT_EQ(*in_flight, *durable);
}

// call_async replies exactly once, on an engine thread, only after the turn's
// commit is durable; a handler's error arrives through the same callback.
TEST(StubCallAsync, RepliesOnceAfterTheCommitIsDurable) {
  Fixture f;
  ASSERT_TRUE(f.open());
  Stub stub = f.engine->stub("Note", "b");
  std::mutex m;
  std::condition_variable cv;
  int calls = 0;                              // GUARDED_BY(m)
  Result<std::string> reply = std::string{};  // GUARDED_BY(m)
  std::thread::id thread;                     // GUARDED_BY(m)
  auto done = [&](Result<std::string> r) {
    std::lock_guard l(m);
    ++calls;
    reply = std::move(r);
    thread = std::this_thread::get_id();
    cv.notify_all();
  };
  auto wait_calls = [&](int n) {
    std::unique_lock l(m);
    return cv.wait_for(l, kWait, [&] { return calls >= n; });
  };

  f.commits.hold();
  stub.call_async("put", "hello", done);
  ASSERT_TRUE(f.commits.wait_held());
  {
    std::lock_guard l(m);
    EXPECT_EQ(calls, 0) << "replied before the commit was durable";
  }
  f.commits.release();
  ASSERT_TRUE(wait_calls(1));
  {
    std::lock_guard l(m);
    ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
    EXPECT_EQ(*reply, "hello");
    EXPECT_NE(thread, std::this_thread::get_id());
  }

  stub.call_async("fail", "", done);
  ASSERT_TRUE(wait_calls(2));
  std::this_thread::sleep_for(50ms);  // a second reply to one call would land here
  std::lock_guard l(m);
  EXPECT_EQ(calls, 2);
  ASSERT_FALSE(reply.is_ok());
  EXPECT_EQ(reply.status().code(), Code::kInvalidArgument) << reply.status().to_string();
  EXPECT_NE(reply.status().message().find("asked to fail"), std::string::npos);
}

// Commit times never decrease: after the clock steps back an hour, a later
// commit's bookmark still sorts after the earlier one's (also across a
// reopen), and each bookmark still restores its own state.
TEST(BookmarkOrder, LaterCommitsSortLaterWhenTheClockStepsBack) {
  Fixture f;
  ASSERT_TRUE(f.open());
  const ObjectRef ref = ObjectRef::named("Note", "c");
  auto put = [&](const std::string& v) -> std::string {
    auto call = f.engine->stub(ref).call("put", v);
    EXPECT_EQ(reply_or_error(call), v);
    auto b = f.engine->current_bookmark(ref);
    EXPECT_TRUE(b.is_ok()) << b.status().to_string();
    return b.value_or("");
  };
  const std::string b1 = put("one");
  f.clock->set_ms(kT0 - 3'600'000);
  const std::string b2 = put("two");
  EXPECT_LT(b1, b2);
  ASSERT_TRUE(f.engine->close().is_ok());
  f.engine.reset();
  f.clock->set_ms(kT0 - 7'200'000);
  ASSERT_TRUE(f.open());
  const std::string b3 = put("three");
  EXPECT_LT(b2, b3);

  ASSERT_TRUE(f.engine->restore(ref, b1).is_ok());
  auto call = f.engine->stub(ref).call("put", "four");
  EXPECT_EQ(reply_or_error(call), "four");
  auto b5 = f.engine->current_bookmark(ref);
  ASSERT_TRUE(b5.is_ok());
  EXPECT_LT(b3, *b5);
  ASSERT_TRUE(f.engine->restore(ref, b2).is_ok());
  Status s = f.engine->run(ref, [](Context& ctx) -> Status {
    auto v = ctx.kv().get("k");
    if (!v.is_ok()) return v.status();
    if (*v != std::optional<std::string>("two")) return Status::aborted("k is not 'two'");
    return Status::ok();
  });
  EXPECT_TRUE(s.is_ok()) << s.to_string();
}

// An object name of exactly kObjectNameBytesMax bytes is stored whole: its
// record names it after the engine closed.
TEST(ObjectNames, ANameAtTheLimitIsStoredWhole) {
  Fixture f;
  ASSERT_TRUE(f.open());
  const std::string name(kObjectNameBytesMax, 'n');
  const ObjectRef ref = ObjectRef::named("Note", name);
  auto put = f.engine->stub(ref).call("put", "v");
  EXPECT_EQ(reply_or_error(put), "v");
  ASSERT_TRUE(f.engine->close().is_ok());
  auto rec = testing::object_record(*f.engine, ref.id);
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->class_name, "Note");
  EXPECT_EQ(rec->name, name);
}

// One byte more is InvalidArgument naming the limit, on every way in, and the
// object is never created.
TEST(ObjectNames, ALongerNameIsInvalidArgumentAndCreatesNothing) {
  Fixture f;
  ASSERT_TRUE(f.open());
  const ObjectRef ref = ObjectRef::named("Note", std::string(kObjectNameBytesMax + 1, 'n'));
  auto queued = f.engine->stub(ref).call("put", "v");
  ASSERT_EQ(queued.wait_for(kWait), std::future_status::ready);
  Result<std::string> r = queued.get();
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("kObjectNameBytesMax"), std::string::npos)
      << r.status().to_string();
  Result<std::string> blocking = f.engine->stub(ref).call_blocking("put", "v");
  EXPECT_EQ(blocking.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(f.engine->run(ref, [](Context&) { return Status::ok(); }).code(),
            Code::kInvalidArgument);
  ASSERT_TRUE(f.engine->close().is_ok());
  EXPECT_FALSE(testing::object_record(*f.engine, ref.id).has_value());
}

// A send to an object whose name is too long fails in the sending turn, which
// can handle it, instead of leaving a message nobody can deliver.
TEST(ObjectNames, ASendToALongerNameFailsTheSend) {
  Fixture f;
  ASSERT_TRUE(f.open());
  const ObjectRef target = ObjectRef::named("Note", std::string(kObjectNameBytesMax + 1, 'n'));
  Status sent = Status::ok();
  Status turn = f.engine->run(ObjectRef::named("Note", "sender"), [&](Context& ctx) {
    sent = ctx.send(target, "put", "v");
    return Status::ok();
  });
  ASSERT_TRUE(turn.is_ok()) << turn.to_string();
  EXPECT_EQ(sent.code(), Code::kInvalidArgument) << sent.to_string();
}

// A call to an object whose name is too long fails before ctx.call's commit
// point: the turn's earlier writes are not committed by a call never made.
TEST(ObjectNames, ACallToALongerNameFailsBeforeTheTurnCommits) {
  Fixture f;
  ASSERT_TRUE(f.open());
  const ObjectRef caller = ObjectRef::named("Note", "caller");
  const ObjectRef target = ObjectRef::named("Note", std::string(kObjectNameBytesMax + 1, 'n'));
  Status called = Status::ok();
  Status turn = f.engine->run(caller, [&](Context& ctx) -> Status {
    CARREL_RETURN_IF_ERROR(ctx.kv().put("written", "before the call"));
    called = ctx.call(target, "put", "v").status();
    return called;
  });
  EXPECT_EQ(called.code(), Code::kInvalidArgument) << called.to_string();
  EXPECT_NE(called.message().find("kObjectNameBytesMax"), std::string::npos) << called.to_string();
  EXPECT_EQ(turn.code(), Code::kInvalidArgument) << turn.to_string();
  std::optional<std::string> written = std::string("unread");
  Status read = f.engine->run(caller, [&](Context& ctx) -> Status {
    CARREL_ASSIGN_OR_RETURN(written, ctx.kv().get("written"));
    return Status::ok();
  });
  ASSERT_TRUE(read.is_ok()) << read.to_string();
  EXPECT_EQ(written, std::nullopt);
}

// A class name longer than kClassNameBytesMax is refused when registered.
TEST(ObjectNames, ALongerClassNameIsRefusedAtRegistration) {
  Fixture f;
  ASSERT_TRUE(f.open());
  Status s = f.engine->register_class(std::string(kClassNameBytesMax + 1, 'C'),
                                      [](const ObjectRef&) { return std::make_unique<Note>(); });
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("kClassNameBytesMax"), std::string::npos) << s.to_string();
  EXPECT_TRUE(f.engine
                  ->register_class(std::string(kClassNameBytesMax, 'C'),
                                   [](const ObjectRef&) { return std::make_unique<Note>(); })
                  .is_ok());
}

}  // namespace
}  // namespace carrel
