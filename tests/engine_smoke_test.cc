// End-to-end checks of the engine's basic paths; deeper suites live beside it.
#include <gtest/gtest.h>

#include "carrel/carrel.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

class Counter : public Handler {
 public:
  Result<std::string> on_request(Context& ctx, const Request& req) override {
    auto v = ctx.kv().get("n");
    if (!v.is_ok()) return v.status();
    int n = v->has_value() ? std::stoi(**v) : 0;
    if (req.method == "add") ++n;
    if (req.method == "fail") return Status::invalid_argument("asked to fail");
    if (req.method == "throw") {
      (void)ctx.kv().put("n", "999");
      throw std::runtime_error("boom");
    }
    CARREL_RETURN_IF_ERROR(ctx.kv().put("n", std::to_string(n)));
    return std::to_string(n);
  }
};

TEST(EngineSmokeTest, RunKvAndReopen) {
  testing::TempDir dir;
  Options o = testing::options_in(dir);
  auto ref = ObjectRef::named("Room", "a");
  {
    auto e = testing::open_engine(o);
    ASSERT_TRUE(e);
    ASSERT_TRUE(e->run(ref, [](Context& ctx) { return ctx.kv().put("k", "v"); }).is_ok());
    EXPECT_EQ(testing::kv_read(*e, ref, "k"), "v");
  }
  auto e = testing::open_engine(o);
  ASSERT_TRUE(e);
  EXPECT_EQ(testing::kv_read(*e, ref, "k"), "v");
}

TEST(EngineSmokeTest, RequestsAndRollback) {
  testing::TempDir dir;
  auto e = testing::open_engine(testing::options_in(dir));
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->register_class("Counter", [](const ObjectRef&) {
                 return std::make_unique<Counter>();
               }).is_ok());
  Stub s = e->stub("Counter", "c1");
  EXPECT_EQ(*s.call("add", "").get(), "1");
  EXPECT_EQ(*s.call("add", "").get(), "2");
  auto f = s.call("fail", "").get();
  EXPECT_EQ(f.status().code(), Code::kInvalidArgument);
  auto t = s.call("throw", "").get();
  EXPECT_EQ(t.status().code(), Code::kAborted);
  EXPECT_NE(t.status().message().find("boom"), std::string::npos);
  EXPECT_EQ(*s.call("get", "").get(), "2");
}

TEST(EngineSmokeTest, SqlInTurn) {
  testing::TempDir dir;
  auto e = testing::open_engine(testing::options_in(dir));
  ASSERT_TRUE(e);
  auto ref = ObjectRef::named("Db", "x");
  Status s = e->run(ref, [](Context& ctx) {
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT)").status());
    for (int i = 0; i < 100; ++i) {
      CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t(b) VALUES (?)", "row" + std::to_string(i)).status());
    }
    return Status::ok();
  });
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  int64_t count = -1;
  s = e->run(ref, [&](Context& ctx) {
    auto c = ctx.sql().exec("SELECT count(*) FROM t");
    if (!c.is_ok()) return c.status();
    count = *c->one()->get_int(0);
    return Status::ok();
  });
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(count, 100);
}

}  // namespace
}  // namespace carrel

namespace carrel {
namespace {

TEST(EngineSmokeTest, SqlPagesCountAgainstTurnDirtyBytes) {
  testing::TempDir dir;
  Options o = testing::options_in(dir);
  o.turn_dirty_bytes_max = 64 << 10;
  auto e = testing::open_engine(o);
  ASSERT_TRUE(e);
  auto ref = ObjectRef::named("Db", "big");
  Status s = e->run(ref, [](Context& ctx) {
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE TABLE t(b BLOB)").status());
    return ctx.sql().exec("INSERT INTO t VALUES (zeroblob(200000))").status();
  });
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("turn_dirty_bytes_max"), std::string::npos) << s.to_string();
  // Nothing of the refused turn is left, and the object still works.
  s = e->run(ref, [](Context& ctx) {
    return ctx.sql().exec("CREATE TABLE t(b BLOB); INSERT INTO t VALUES (x'00')").status();
  });
  EXPECT_TRUE(s.is_ok()) << s.to_string();
}

TEST(EngineSmokeTest, TurnWhoseSqlWasLostDoesNotCommitItsKv) {
  testing::TempDir dir;
  Options o = testing::options_in(dir);
  o.turn_dirty_bytes_max = 64 << 10;
  auto e = testing::open_engine(o);
  ASSERT_TRUE(e);
  auto ref = ObjectRef::named("Db", "lost");
  ASSERT_TRUE(e->run(ref, [](Context& ctx) {
                 return ctx.sql().exec("CREATE TABLE t(b BLOB)").status();
               }).is_ok());
  // The handler ignores the SQL error and returns ok: the turn must still fail.
  Status s = e->run(ref, [](Context& ctx) {
    CARREL_RETURN_IF_ERROR(ctx.kv().put("k", "v"));
    (void)ctx.sql().exec("INSERT INTO t VALUES (zeroblob(200000))");
    return Status::ok();
  });
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(testing::kv_read(*e, ref, "k"), "(absent)");
}

}  // namespace
}  // namespace carrel
