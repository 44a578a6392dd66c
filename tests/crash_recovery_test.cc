// Opening directories that a crash left behind.
#include <gtest/gtest.h>
#include <lmdb.h>

#include "carrel/carrel.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

// What a process killed while creating an engine directory leaves when LMDB
// had created data.mdb but carrel's first transaction had not committed: an
// environment with an empty main database.
void leave_empty_environment(const testing::TempDir& dir) {
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_open(env, dir.path().c_str(), MDB_NOTLS, 0644), 0);
  mdb_env_close(env);
}

// Opening such an environment completes the creation (store.cc: the
// databases and the format are written in one transaction).
TEST(EngineCrashRecoveryTest, CreationKilledBeforeItsFirstCommitIsCompletedOnOpen) {
  testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(leave_empty_environment(dir));
  Options o = testing::options_in(dir);
  auto ref = ObjectRef::named("Room", "a");
  {
    auto e = testing::open_engine(o);
    ASSERT_TRUE(e);
    ASSERT_TRUE(e->run(ref, [](Context& ctx) { return ctx.kv().put("k", "v"); }).is_ok());
  }
  auto e = testing::open_engine(o);
  ASSERT_TRUE(e);
  EXPECT_EQ(testing::kv_read(*e, ref, "k"), "v");
}

// Without create_if_missing such a directory is not silently initialized.
TEST(EngineCrashRecoveryTest, EmptyEnvironmentWithoutCreateIfMissingIsRefused) {
  testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(leave_empty_environment(dir));
  Options o = testing::options_in(dir);
  o.create_if_missing = false;
  auto e = Engine::open(o);
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().code(), Code::kCorruption) << e.status().to_string();
}

}  // namespace
}  // namespace carrel
