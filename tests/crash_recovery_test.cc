// Opening directories that a crash left behind.
#include <gtest/gtest.h>
#include <lmdb.h>

#include "carrel/carrel.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

// A process killed while creating an engine directory, after LMDB created
// data.mdb but before carrel's first transaction committed, leaves an
// environment with an empty main database. Opening it completes the creation
// (store.cc: the databases and the format are written in one transaction).
TEST(EngineCrashRecoveryTest, CreationKilledBeforeItsFirstCommitIsCompletedOnOpen) {
  testing::TempDir dir;
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_open(env, dir.path().c_str(), MDB_NOTLS, 0644), 0);
  mdb_env_close(env);

  Options o;
  o.dir = dir.path();
  {
    auto e = Engine::open(o);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    ASSERT_TRUE((*e)->run(ObjectRef::named("Room", "a"),
                          [](Context& ctx) { return ctx.kv().put("k", "v"); })
                    .is_ok());
  }
  auto e = Engine::open(o);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  std::string got;
  ASSERT_TRUE((*e)->run(ObjectRef::named("Room", "a"),
                        [&](Context& ctx) {
                          auto v = ctx.kv().get("k");
                          got = v.is_ok() && v->has_value() ? **v : "?";
                          return Status::ok();
                        })
                  .is_ok());
  EXPECT_EQ(got, "v");
}

// Without create_if_missing such a directory is not silently initialized.
TEST(EngineCrashRecoveryTest, EmptyEnvironmentWithoutCreateIfMissingIsRefused) {
  testing::TempDir dir;
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_open(env, dir.path().c_str(), MDB_NOTLS, 0644), 0);
  mdb_env_close(env);
  Options o;
  o.dir = dir.path();
  o.create_if_missing = false;
  auto e = Engine::open(o);
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().code(), Code::kCorruption) << e.status().to_string();
}

}  // namespace
}  // namespace carrel
