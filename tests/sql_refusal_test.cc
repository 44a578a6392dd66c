// Refusals of user SQL reach the caller as the authorizer's clear reason.
#include <gtest/gtest.h>

#include "carrel/carrel.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

// SQLite reports a denied function as SQLITE_ERROR, not SQLITE_AUTH (found by
// fuzz/sql_diff_fuzz.cc): the error must still be the refusal.
TEST(TurnSqlRefusalTest, DeniedFunctionIsRefusedWithItsReason) {
  testing::TempDir dir;
  Options o;
  o.dir = dir.path();
  auto e = Engine::open(o);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  Status s = (*e)->run(ObjectRef::named("Db", "x"), [](Context& ctx) {
    return ctx.sql().exec("SELECT load_extension('x')").status();
  });
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("SQL refused: load_extension() is not allowed"), std::string::npos)
      << s.message();
}

}  // namespace
}  // namespace carrel
