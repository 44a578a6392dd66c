// The durable alarm queue: the single alarm, named schedules, repeats,
// retries with backoff, dead letters, restarts and exactly-once effects.
//
// Time is a ManualClock; tests advance it and wait (bounded polling) for the
// scheduler to deliver. After every test the timetable (`schedule`) must match
// the entries (`alarms`): GroupWriter invariant (1).
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "carrel/carrel.h"
#include "engine/alarm/cron.h"
#include "tests/store_probe.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

using testing::eventually;

// 2023-11-14T22:13:00Z: minute-aligned, so cron arithmetic is easy to read.
constexpr UnixMs kT0 = 1700000000000 - 1700000000000 % 60000;

struct Delivery {
  ObjectId id;
  AlarmInfo info;
  UnixMs now_ms;
};

// What every handler of the test class shares with the test body.
struct Deliveries {
  std::mutex mutex;
  std::vector<Delivery> all;  // GUARDED_BY(mutex)
  // Decides each delivery's outcome; null: succeed. Runs inside on_alarm.
  std::function<Status(Context&, const AlarmInfo&)> behaviour;  // set before alarms fire

  size_t size() {
    std::lock_guard lock(mutex);
    return all.size();
  }
  std::vector<Delivery> snapshot() {
    std::lock_guard lock(mutex);
    return all;
  }
  size_t count(const ObjectId& id, const std::string& name) {
    std::lock_guard lock(mutex);
    size_t n = 0;
    for (auto& d : all) n += d.id == id && d.info.name == name;
    return n;
  }
};

// Counts each delivery in KV ("n:<name>") in the alarm's own turn, so the
// counter shows how many deliveries committed.
class Alarmed : public Handler {
 public:
  explicit Alarmed(std::shared_ptr<Deliveries> d) : d_(std::move(d)) {}
  Result<std::string> on_request(Context&, const Request&) override { return std::string(); }
  Status on_alarm(Context& ctx, const AlarmInfo& alarm) override {
    {
      std::lock_guard lock(d_->mutex);
      d_->all.push_back({ctx.id(), alarm, ctx.now_ms()});
    }
    std::string key = "n:" + alarm.name;
    auto v = ctx.kv().get(key);
    if (!v.is_ok()) return v.status();
    int n = v->has_value() ? std::stoi(**v) : 0;
    CARREL_RETURN_IF_ERROR(ctx.kv().put(key, std::to_string(n + 1)));
    return d_->behaviour ? d_->behaviour(ctx, alarm) : Status::ok();
  }

 private:
  std::shared_ptr<Deliveries> d_;
};

class AlarmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clock_ = std::make_shared<ManualClock>(kT0);
    options_.dir = dir_.path();
    options_.clock = clock_;
    options_.workers = 2;
    options_.random_seed = 42;
  }
  void TearDown() override { close(); }

  // Closes the engine and checks the timetable. Tests whose hooks capture
  // locals call it before they return.
  void close() {
    if (!engine_) return;
    ASSERT_TRUE(engine_->close().is_ok());
    testing::expect_timetable_matches(*engine_);
    engine_.reset();
  }

  void open() {
    auto e = Engine::open(options_);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    engine_ = std::move(e).value();
    ASSERT_TRUE(engine_
                    ->register_class("Alarmed",
                                     [d = deliveries_](const ObjectRef&) {
                                       return std::make_unique<Alarmed>(d);
                                     })
                    .is_ok());
  }
  void reopen() {
    close();
    open();
  }

  static ObjectRef obj(const std::string& name) { return ObjectRef::named("Alarmed", name); }

  Status run(const ObjectRef& ref, const std::function<Status(Context&)>& fn) {
    return engine_->run(ref, fn);
  }
  // Waits until every commit the object sealed so far is durable: a turn that
  // writes nothing still holds its reply behind them (output gate).
  void barrier(const ObjectRef& ref) {
    ASSERT_TRUE(run(ref, [](Context&) { return Status::ok(); }).is_ok());
  }
  std::vector<AlarmEntry> list(const ObjectRef& ref) {
    std::vector<AlarmEntry> out;
    Status s = run(ref, [&](Context& ctx) {
      CARREL_ASSIGN_OR_RETURN(out, ctx.alarms().list());
      return Status::ok();
    });
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    return out;
  }
  std::optional<AlarmEntry> entry(const ObjectRef& ref, const std::string& name) {
    for (auto& e : list(ref))
      if (e.name == name) return e;
    return std::nullopt;
  }
  int counter(const ObjectRef& ref, const std::string& name) {
    int n = -1;
    Status s = run(ref, [&](Context& ctx) {
      CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().get("n:" + name));
      n = v ? std::stoi(*v) : 0;
      return Status::ok();
    });
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    return n;
  }
  bool wait_deliveries(size_t n) {
    return eventually([&] { return deliveries_->size() >= n; });
  }
  testing::TempDir dir_;
  std::shared_ptr<ManualClock> clock_;
  Options options_;
  std::shared_ptr<Deliveries> deliveries_ = std::make_shared<Deliveries>();
  std::unique_ptr<Engine> engine_;
};

TEST_F(AlarmTest, SetGetClear) {
  open();
  auto ref = obj("a");
  ASSERT_TRUE(run(ref, [](Context& ctx) { return ctx.alarms().set(kT0 + 5000); }).is_ok());
  std::optional<UnixMs> got;
  ASSERT_TRUE(run(ref, [&](Context& ctx) {
                CARREL_ASSIGN_OR_RETURN(got, ctx.alarms().get());
                return Status::ok();
              }).is_ok());
  EXPECT_EQ(got, kT0 + 5000);
  ASSERT_TRUE(run(ref, [](Context& ctx) { return ctx.alarms().clear(); }).is_ok());
  ASSERT_TRUE(run(ref, [&](Context& ctx) {
                CARREL_ASSIGN_OR_RETURN(got, ctx.alarms().get());
                return Status::ok();
              }).is_ok());
  EXPECT_EQ(got, std::nullopt);
  EXPECT_TRUE(list(ref).empty());
  // Clearing nothing is fine.
  EXPECT_TRUE(run(ref, [](Context& ctx) { return ctx.alarms().clear(); }).is_ok());
}

TEST_F(AlarmTest, SetReplacesTheSingleAlarm) {
  open();
  auto ref = obj("a");
  ASSERT_TRUE(run(ref, [](Context& ctx) { return ctx.alarms().set(kT0 + 1000); }).is_ok());
  ASSERT_TRUE(run(ref, [](Context& ctx) { return ctx.alarms().set(kT0 + 3000); }).is_ok());
  auto all = list(ref);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].due_ms, kT0 + 3000);
  EXPECT_EQ(testing::scan_db(*engine_, store::Db::kSchedule).size(), 1u);  // old slot gone
  clock_->set_ms(kT0 + 3000);
  ASSERT_TRUE(wait_deliveries(1));
  barrier(ref);
  auto d = deliveries_->snapshot();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].info.scheduled_ms, kT0 + 3000);
  EXPECT_EQ(d[0].info.name, "");
  EXPECT_EQ(counter(ref, ""), 1);
  EXPECT_TRUE(list(ref).empty());  // a one-shot alarm leaves the queue when delivered
}

TEST_F(AlarmTest, TimeInThePastFiresAsSoonAsPossible) {
  open();
  auto ref = obj("past");
  ASSERT_TRUE(run(ref, [](Context& ctx) { return ctx.alarms().set(kT0 - 60000); }).is_ok());
  // The clock does not move.
  ASSERT_TRUE(wait_deliveries(1));
  barrier(ref);
  EXPECT_EQ(deliveries_->snapshot()[0].info.scheduled_ms, kT0 - 60000);
  EXPECT_EQ(counter(ref, ""), 1);
}

TEST_F(AlarmTest, OutOfRangeTimesAreInvalidArgument) {
  open();
  auto ref = obj("a");
  for (UnixMs bad : {UnixMs{0}, UnixMs{-1}, UnixMs{253402300800000}, INT64_MAX}) {
    Status s = run(ref, [&](Context& ctx) { return ctx.alarms().set(bad); });
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad << ": " << s.to_string();
    s = run(ref, [&](Context& ctx) { return ctx.alarms().schedule("x", bad); });
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
  }
  Status s = run(
      ref, [](Context& ctx) { return ctx.alarms().schedule("x", kT0 + 1, "", Repeat::every(0)); });
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  s = run(ref,
          [](Context& ctx) { return ctx.alarms().schedule("x", kT0 + 1, "", Repeat::every(-5)); });
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  s = run(ref, [](Context& ctx) {
    return ctx.alarms().schedule("x", kT0 + 1, "", Repeat::cron_expr("61 * * * *"));
  });
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("minute"), std::string::npos) << s.message();
  // The largest accepted time is the last millisecond of year 9999.
  EXPECT_TRUE(run(ref, [](Context& ctx) { return ctx.alarms().set(253402300799999); }).is_ok());
  EXPECT_TRUE(list(ref).size() == 1);
}

TEST_F(AlarmTest, RolledBackTurnLeavesNoAlarm) {
  open();
  auto ref = obj("a");
  Status s = run(ref, [](Context& ctx) {
    CARREL_RETURN_IF_ERROR(ctx.alarms().set(kT0 + 1000));
    CARREL_RETURN_IF_ERROR(ctx.alarms().schedule("n", kT0 + 1000, "p"));
    return Status::aborted("changed my mind");
  });
  EXPECT_EQ(s.code(), Code::kAborted);
  s = run(ref, [](Context& ctx) -> Status {
    CARREL_RETURN_IF_ERROR(ctx.alarms().schedule("kept", kT0 + 2000));
    Status inner = ctx.transaction([&] {
      CARREL_RETURN_IF_ERROR(ctx.alarms().schedule("dropped", kT0 + 1000));
      return Status::invalid_argument("inner fails");
    });
    if (inner.code() != Code::kInvalidArgument) return Status::aborted("inner did not fail");
    return Status::ok();
  });
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  auto all = list(ref);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "kept");
  EXPECT_EQ(testing::scan_db(*engine_, store::Db::kSchedule).size(), 1u);
}

TEST_F(AlarmTest, NamedSchedulesCancelListAndPayload) {
  open();
  auto ref = obj("a");
  ASSERT_TRUE(run(ref, [](Context& ctx) {
                CARREL_RETURN_IF_ERROR(ctx.alarms().schedule("b", kT0 + 2000, "pb"));
                CARREL_RETURN_IF_ERROR(ctx.alarms().schedule(
                    "a", kT0 + 3000, std::string("p\0a", 3), Repeat::every(500)));
                CARREL_RETURN_IF_ERROR(
                    ctx.alarms().schedule("c", kT0 + 1000, "pc", Repeat::cron_expr("0 * * * *")));
                return ctx.alarms().set(kT0 + 4000);
              }).is_ok());
  auto all = list(ref);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0], (AlarmEntry{"", kT0 + 4000, "", Repeat::none(), 0}));
  EXPECT_EQ(all[1], (AlarmEntry{"a", kT0 + 3000, std::string("p\0a", 3), Repeat::every(500), 0}));
  EXPECT_EQ(all[2], (AlarmEntry{"b", kT0 + 2000, "pb", Repeat::none(), 0}));
  EXPECT_EQ(all[3], (AlarmEntry{"c", kT0 + 1000, "pc", Repeat::cron_expr("0 * * * *"), 0}));

  bool removed = false;
  ASSERT_TRUE(run(ref, [&](Context& ctx) {
                CARREL_ASSIGN_OR_RETURN(removed, ctx.alarms().cancel("b"));
                return Status::ok();
              }).is_ok());
  EXPECT_TRUE(removed);
  ASSERT_TRUE(run(ref, [&](Context& ctx) {
                CARREL_ASSIGN_OR_RETURN(removed, ctx.alarms().cancel("b"));
                return Status::ok();
              }).is_ok());
  EXPECT_FALSE(removed);
  // Within one turn, list() sees the turn's own changes.
  std::vector<AlarmEntry> inside;
  ASSERT_TRUE(run(ref, [&](Context& ctx) {
                CARREL_RETURN_IF_ERROR(ctx.alarms().schedule("d", kT0 + 10, "pd"));
                CARREL_RETURN_IF_ERROR(ctx.alarms().cancel("a").status());
                CARREL_ASSIGN_OR_RETURN(inside, ctx.alarms().list());
                return Status::ok();
              }).is_ok());
  std::vector<std::string> names;
  for (auto& e : inside) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"", "c", "d"}));

  // The payload reaches on_alarm.
  clock_->set_ms(kT0 + 10);
  ASSERT_TRUE(wait_deliveries(1));
  barrier(ref);
  auto d = deliveries_->snapshot();
  EXPECT_EQ(d[0].info.name, "d");
  EXPECT_EQ(d[0].info.payload, "pd");
}

TEST_F(AlarmTest, LimitsNameTheLimit) {
  options_.alarms_per_object_max = 3;
  options_.alarm_payload_bytes_max = 10;
  options_.alarm_name_bytes_max = 8;
  open();
  auto ref = obj("a");
  ASSERT_TRUE(run(ref, [](Context& ctx) {
                for (std::string n : {"x", "y", "z"})
                  CARREL_RETURN_IF_ERROR(ctx.alarms().schedule(n, kT0 + 1000));
                return Status::ok();
              }).is_ok());
  Status s = run(ref, [](Context& ctx) { return ctx.alarms().schedule("w", kT0 + 1000); });
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("alarms_per_object_max"), std::string::npos) << s.message();
  // Replacing an entry at the limit is not a new entry.
  EXPECT_TRUE(
      run(ref, [](Context& ctx) { return ctx.alarms().schedule("x", kT0 + 2000); }).is_ok());
  // After a cancel in the same turn there is room again.
  EXPECT_TRUE(run(ref, [](Context& ctx) {
                CARREL_RETURN_IF_ERROR(ctx.alarms().cancel("y").status());
                return ctx.alarms().schedule("w", kT0 + 1000);
              }).is_ok());

  s = run(obj("b"), [](Context& ctx) {
    return ctx.alarms().schedule("p", kT0 + 1000, std::string(11, 'x'));
  });
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("alarm_payload_bytes_max"), std::string::npos) << s.message();
  EXPECT_TRUE(run(obj("b"), [](Context& ctx) {
                return ctx.alarms().schedule("p", kT0 + 1000, std::string(10, 'x'));
              }).is_ok());
  s = run(obj("b"), [](Context& ctx) { return ctx.alarms().schedule("123456789", kT0 + 1000); });
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("alarm_name_bytes_max"), std::string::npos) << s.message();
  EXPECT_EQ(list(ref).size(), 3u);
  EXPECT_EQ(list(obj("b")).size(), 1u);
}

TEST_F(AlarmTest, EveryRepeatsAndSkipsMissedPeriods) {
  open();
  auto ref = obj("tick");
  ASSERT_TRUE(run(ref, [](Context& ctx) {
                return ctx.alarms().schedule("t", kT0 + 1000, "tp", Repeat::every(1000));
              }).is_ok());
  for (int i = 1; i <= 3; ++i) {
    clock_->set_ms(kT0 + 1000 * i);
    ASSERT_TRUE(wait_deliveries(i));
    barrier(ref);
    auto e = entry(ref, "t");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->due_ms, kT0 + 1000 * (i + 1));
    EXPECT_EQ(e->payload, "tp");
    EXPECT_EQ(deliveries_->snapshot().back().info.scheduled_ms, kT0 + 1000 * i);
  }
  // Down for 3.5 periods: one delivery, then the next period after now.
  clock_->set_ms(kT0 + 7500);
  ASSERT_TRUE(wait_deliveries(4));
  barrier(ref);
  EXPECT_EQ(entry(ref, "t")->due_ms, kT0 + 8000);
  EXPECT_EQ(counter(ref, "t"), 4);
  EXPECT_EQ(deliveries_->size(), 4u);
}

TEST_F(AlarmTest, CronRepeatsAtTheNextOccurrence) {
  open();
  auto ref = obj("cron");
  auto cron = alarm::CronExpr::parse("*/5 * * * *");
  ASSERT_TRUE(cron.is_ok());
  UnixMs first = *cron->next_after(kT0);
  ASSERT_TRUE(run(ref, [&](Context& ctx) {
                return ctx.alarms().schedule("c", first, "", Repeat::cron_expr("*/5 * * * *"));
              }).is_ok());
  UnixMs due = first;
  for (int i = 1; i <= 3; ++i) {
    clock_->set_ms(due);
    ASSERT_TRUE(wait_deliveries(i));
    barrier(ref);
    UnixMs next = *cron->next_after(due);
    EXPECT_EQ(next - due, 5 * 60000);
    auto e = entry(ref, "c");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->due_ms, next);
    due = next;
  }
  // A late delivery moves to the first occurrence after now, not after the due time.
  clock_->set_ms(due + 12 * 60000 + 1);
  ASSERT_TRUE(wait_deliveries(4));
  barrier(ref);
  EXPECT_EQ(entry(ref, "c")->due_ms, *cron->next_after(due + 12 * 60000 + 1));
  EXPECT_EQ(counter(ref, "c"), 4);
}

TEST_F(AlarmTest, DeliveriesFollowDueTimeAcrossObjects) {
  options_.workers = 1;  // one worker runs posts in the order the scheduler made them
  open();
  constexpr int kObjects = 24;
  std::vector<std::pair<UnixMs, std::string>> expected;
  for (int i = 0; i < kObjects; ++i) {
    // Due times interleave across objects: object i gets slot (i * 7) % kObjects.
    UnixMs due = kT0 + 1000 + 10 * ((i * 7) % kObjects);
    std::string name = "o" + std::to_string(i);
    ASSERT_TRUE(run(obj(name), [&](Context& ctx) {
                  return ctx.alarms().schedule("x", due, name);
                }).is_ok());
    expected.emplace_back(due, name);
  }
  std::sort(expected.begin(), expected.end());
  clock_->set_ms(kT0 + 100000);  // everything is due at once
  ASSERT_TRUE(wait_deliveries(kObjects));
  auto d = deliveries_->snapshot();
  ASSERT_EQ(d.size(), static_cast<size_t>(kObjects));
  for (int i = 0; i < kObjects; ++i) {
    EXPECT_EQ(d[i].info.payload, expected[i].second) << "delivery " << i;
    EXPECT_EQ(d[i].info.scheduled_ms, expected[i].first);
  }
  for (auto& [due, name] : expected) barrier(obj(name));
}

TEST_F(AlarmTest, FailuresRetryWithBackoffThenDeadLetter) {
  options_.alarm_retry_initial_ms = 1000;
  options_.alarm_retry_jitter = 0.25;
  options_.alarm_retries_max = 3;
  deliveries_->behaviour = [](Context&, const AlarmInfo& a) {
    return Status::invalid_argument("failure " + std::to_string(a.retry_count));
  };
  open();
  auto ref = obj("flaky");
  ASSERT_TRUE(run(ref, [](Context& ctx) {
                return ctx.alarms().schedule("job", kT0 + 100, "payload");
              }).is_ok());
  clock_->set_ms(kT0 + 100);
  UnixMs scheduled = kT0 + 100;
  for (int attempt = 0; attempt <= 3; ++attempt) {
    ASSERT_TRUE(wait_deliveries(attempt + 1)) << "attempt " << attempt;
    barrier(ref);
    Delivery d = deliveries_->snapshot().back();
    EXPECT_EQ(d.info.name, "job");
    EXPECT_EQ(d.info.payload, "payload");
    EXPECT_EQ(d.info.retry_count, attempt);
    EXPECT_EQ(d.info.is_retry, attempt > 0);
    EXPECT_EQ(d.info.scheduled_ms, scheduled);
    // A failed turn rolls back: the delivery's counter write never commits.
    EXPECT_EQ(counter(ref, "job"), 0);
    if (attempt == 3) break;
    auto e = entry(ref, "job");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->retry_count, attempt + 1);
    int64_t backoff = 1000 << attempt;  // 1 s, 2 s, 4 s
    UnixMs now = clock_->now_ms();
    EXPECT_GE(e->due_ms, now + backoff * 3 / 4) << "retry " << attempt + 1;
    EXPECT_LE(e->due_ms, now + backoff * 5 / 4) << "retry " << attempt + 1;
    EXPECT_EQ(deliveries_->size(), static_cast<size_t>(attempt + 1)) << "retried early";
    scheduled = e->due_ms;
    clock_->set_ms(e->due_ms);
  }
  // The 4th failure (3 counted retries) moves the entry to the dead letters.
  EXPECT_TRUE(list(ref).empty());
  auto dead = testing::dead_letter(*engine_, ref.id, "job");
  ASSERT_TRUE(dead.has_value());
  EXPECT_EQ(dead->entry.payload, "payload");
  EXPECT_EQ(dead->entry.retry_count, 3);
  EXPECT_EQ(dead->failed_ms, clock_->now_ms());
  EXPECT_NE(dead->last_error.find("failure 3"), std::string::npos) << dead->last_error;
  auto rec = testing::object_record(*engine_, ref.id);
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->dead_letters, 1u);
  EXPECT_EQ(rec->alarms, 0u);
  EXPECT_EQ(engine_->stats().alarms_failed, 4u);
  // Nothing more is due, however far time moves.
  clock_->advance_ms(int64_t{24} * 3600 * 1000);
  barrier(ref);
  EXPECT_EQ(deliveries_->size(), 4u);
}

// Options::random_seed makes the jitter reproducible per engine: two engines
// opened with one seed in one process draw the same backoffs.
TEST_F(AlarmTest, RetryJitterFollowsTheEnginesSeed) {
  options_.alarm_retry_initial_ms = 100000;
  options_.alarm_retry_jitter = 0.5;
  options_.random_seed = 1234;
  deliveries_->behaviour = [](Context&, const AlarmInfo&) { return Status::aborted("fail"); };
  auto backoffs = [&] {
    std::vector<int64_t> out;
    auto ref = obj("seeded");
    size_t before = deliveries_->size();
    EXPECT_TRUE(run(ref, [](Context& ctx) { return ctx.alarms().set(kT0); }).is_ok());
    for (size_t n = 1; n <= 3; ++n) {
      EXPECT_TRUE(wait_deliveries(before + n));
      barrier(ref);
      auto e = entry(ref, "");
      if (!e) break;
      out.push_back(e->due_ms - clock_->now_ms());
      clock_->set_ms(e->due_ms);
    }
    EXPECT_TRUE(run(ref, [](Context& ctx) { return ctx.alarms().clear(); }).is_ok());
    return out;
  };
  open();
  std::vector<int64_t> first = backoffs();
  close();
  testing::TempDir other;
  options_.dir = other.path();
  clock_->set_ms(kT0);
  open();
  std::vector<int64_t> second = backoffs();
  close();
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first, second);
}

TEST_F(AlarmTest, RetryThatSucceedsRemovesTheEntry) {
  options_.alarm_retry_initial_ms = 1000;
  deliveries_->behaviour = [](Context&, const AlarmInfo& a) {
    return a.retry_count < 2 ? Status::aborted("not yet") : Status::ok();
  };
  open();
  auto ref = obj("eventually");
  ASSERT_TRUE(run(ref, [](Context& ctx) { return ctx.alarms().set(kT0 + 1); }).is_ok());
  clock_->set_ms(kT0 + 1);
  for (size_t n = 1; n <= 3; ++n) {
    ASSERT_TRUE(wait_deliveries(n));
    barrier(ref);
    auto e = entry(ref, "");
    if (n == 3) {
      EXPECT_FALSE(e.has_value());
      break;
    }
    ASSERT_TRUE(e.has_value());
    clock_->set_ms(e->due_ms);
  }
  EXPECT_EQ(counter(ref, ""), 1);  // only the successful delivery committed
  EXPECT_FALSE(testing::dead_letter(*engine_, ref.id, "").has_value());
}

// Blocks a handler until the test (or its end) opens it.
struct Gate {
  std::mutex mutex;
  std::condition_variable cv;
  bool open = false;  // GUARDED_BY(mutex)
  void wait() {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return open; });
  }
  void release() {
    {
      std::lock_guard lock(mutex);
      open = true;
    }
    cv.notify_all();
  }
};

TEST_F(AlarmTest, OneObjectsFailingAlarmNeverDelaysAnother) {
  options_.alarm_retry_initial_ms = 1000;
  options_.alarm_retries_max = 100;
  auto gate = std::make_shared<Gate>();
  struct OpenAtExit {
    std::shared_ptr<Gate> g;
    ~OpenAtExit() { g->release(); }
  } open_at_exit{gate};
  ObjectId failing_id = obj("failing").id, stuck_id = obj("stuck").id;
  deliveries_->behaviour = [=](Context& ctx, const AlarmInfo& a) -> Status {
    if (ctx.id() == failing_id) return Status::aborted("always fails");
    if (ctx.id() == stuck_id && a.name == "hang") gate->wait();
    return Status::ok();
  };
  open();
  auto failing = obj("failing"), healthy = obj("healthy"), stuck = obj("stuck");
  ASSERT_TRUE(run(failing, [](Context& ctx) { return ctx.alarms().set(kT0 + 1000); }).is_ok());
  ASSERT_TRUE(
      run(stuck, [](Context& ctx) { return ctx.alarms().schedule("hang", kT0 + 1000); }).is_ok());
  ASSERT_TRUE(run(healthy, [](Context& ctx) {
                return ctx.alarms().schedule("tick", kT0 + 1000, "", Repeat::every(1000));
              }).is_ok());
  for (int i = 1; i <= 4; ++i) {
    clock_->set_ms(kT0 + 1000 * i);
    ASSERT_TRUE(eventually([&] { return deliveries_->count(healthy.id, "tick") >= size_t(i); }))
        << "healthy delivery " << i << " waited behind another object";
    // The tick's turn moves its entry to the first period after the clock it
    // reads: let it finish before the clock moves on, or that period is skipped.
    barrier(healthy);
  }
  // It kept retrying meanwhile.
  EXPECT_TRUE(eventually([&] { return deliveries_->count(failing.id, "") >= 2; }));
  EXPECT_EQ(deliveries_->count(stuck.id, "hang"), 1u);
  gate->release();
  barrier(stuck);
  barrier(healthy);
  EXPECT_EQ(counter(healthy, "tick"), 4);
  EXPECT_EQ(counter(stuck, "hang"), 1);
  // Stop the failing alarm so close() does not race its retries.
  ASSERT_TRUE(run(failing, [](Context& ctx) { return ctx.alarms().clear(); }).is_ok());
  close();
}

TEST_F(AlarmTest, AlarmsSurviveCloseAndFireOnceAfterReopen) {
  open();
  auto a = obj("a"), b = obj("b");
  ASSERT_TRUE(run(a, [](Context& ctx) {
                CARREL_RETURN_IF_ERROR(ctx.alarms().set(kT0 + 1000));
                return ctx.alarms().schedule("every", kT0 + 1000, "e", Repeat::every(1000));
              }).is_ok());
  ASSERT_TRUE(
      run(b, [](Context& ctx) { return ctx.alarms().schedule("later", kT0 + 60000); }).is_ok());
  close();
  // Time passes while nothing runs: both of a's entries fall due, five periods over.
  clock_->set_ms(kT0 + 5500);
  open();
  ASSERT_TRUE(wait_deliveries(2));
  barrier(a);
  EXPECT_EQ(counter(a, ""), 1);
  EXPECT_EQ(counter(a, "every"), 1);  // missed periods are not replayed
  auto e = entry(a, "every");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->due_ms, kT0 + 6000);
  EXPECT_FALSE(entry(a, "").has_value());
  EXPECT_EQ(entry(b, "later")->due_ms, kT0 + 60000);
  // Another restart delivers nothing twice.
  reopen();
  clock_->set_ms(kT0 + 6000);
  ASSERT_TRUE(wait_deliveries(3));
  barrier(a);
  EXPECT_EQ(counter(a, ""), 1);
  EXPECT_EQ(counter(a, "every"), 2);
  EXPECT_EQ(deliveries_->count(b.id, "later"), 0u);
}

TEST_F(AlarmTest, CommitFailureRedeliversWithExactlyOnceEffect) {
  // The alarm turn's commit fails twice per occurrence; the alarm is delivered
  // again each time, and the KV counter it bumps ends at one per occurrence.
  struct Faults {
    std::atomic<int> fail_next{0};
    std::atomic<int> failed{0};
    std::map<UnixMs, int> tries;  // per occurrence; touched only by the object's turns
  };
  auto faults = std::make_shared<Faults>();
  options_.commit_hook = [faults](const CommitInfo&) -> Status {
    if (faults->fail_next.load() > 0) {
      faults->fail_next.fetch_sub(1);
      faults->failed.fetch_add(1);
      return Status::io_error("injected commit failure");
    }
    return Status::ok();
  };
  deliveries_->behaviour = [faults](Context&, const AlarmInfo& a) {
    // Fail this turn's commit: nothing else commits while the alarm runs.
    if (++faults->tries[a.scheduled_ms] <= 2) faults->fail_next.store(1);
    return Status::ok();
  };
  open();
  auto ref = obj("once");
  ASSERT_TRUE(run(ref, [](Context& ctx) {
                return ctx.alarms().schedule("e", kT0 + 1000, "", Repeat::every(1000));
              }).is_ok());
  for (int i = 1; i <= 3; ++i) {
    clock_->set_ms(kT0 + 1000 * i);
    ASSERT_TRUE(wait_deliveries(3 * i)) << "occurrence " << i;
    barrier(ref);
    EXPECT_EQ(counter(ref, "e"), i);
    auto e = entry(ref, "e");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->due_ms, kT0 + 1000 * (i + 1));
    EXPECT_EQ(e->retry_count, 0);  // a failed commit is not a failed delivery
  }
  EXPECT_EQ(faults->failed.load(), 6);
  for (auto& d : deliveries_->snapshot()) {
    EXPECT_EQ(d.info.retry_count, 0);
    EXPECT_FALSE(d.info.is_retry);
  }
  EXPECT_EQ(deliveries_->size(), 9u);
  close();
}

TEST_F(AlarmTest, HandlerMayRearmItsOwnAlarm) {
  deliveries_->behaviour = [](Context& ctx, const AlarmInfo& a) -> Status {
    if (a.scheduled_ms < kT0 + 3000) return ctx.alarms().set(a.scheduled_ms + 1000);
    return Status::ok();
  };
  open();
  auto ref = obj("rearm");
  ASSERT_TRUE(run(ref, [](Context& ctx) { return ctx.alarms().set(kT0 + 1000); }).is_ok());
  for (int i = 1; i <= 3; ++i) {
    clock_->set_ms(kT0 + 1000 * i);
    ASSERT_TRUE(wait_deliveries(i));
    barrier(ref);
  }
  EXPECT_FALSE(entry(ref, "").has_value());
  EXPECT_EQ(counter(ref, ""), 3);
}

}  // namespace
}  // namespace carrel
