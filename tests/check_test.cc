// engine/base/check.h: a broken invariant stops the process with a message
// that names it; CARREL_DASSERT runs in debug and sanitizer builds (no
// NDEBUG: the ASan stage of scripts/test) and is compiled out of release ones.
#include "engine/base/check.h"

#include <gtest/gtest.h>

namespace carrel {
namespace {

TEST(CheckDeathTest, ABrokenInvariantStopsTheProcessNamingIt) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(CARREL_ASSERT(1 + 1 == 3, "check_test (1): sums hold"),
               "carrel: invariant broken at .*check_test.cc:[0-9]+: check_test \\(1\\): sums hold");
}

TEST(CheckDeathTest, DAssertIsEvaluatedExactlyWhenNDebugIsOff) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  int evaluated = 0;
  auto holds = [&] {
    ++evaluated;
    return true;
  };
  CARREL_DASSERT(holds(), "check_test (2): counted");
#ifdef NDEBUG
  EXPECT_EQ(evaluated, 0);  // compiled out: the condition is not even evaluated
#else
  EXPECT_EQ(evaluated, 1);
  EXPECT_DEATH(CARREL_DASSERT(evaluated == 2, "check_test (2): counted"),
               "invariant broken at .*check_test \\(2\\): counted");
#endif
}

}  // namespace
}  // namespace carrel
