// Stored alarm entries and dead letters (engine/alarm/entry.h).
#include <gtest/gtest.h>

#include "engine/alarm/entry.h"
#include "engine/store/keys.h"

namespace carrel {
namespace {

TEST(AlarmEntryTest, DeadLetterRoundTrips) {
  DeadLetter d{AlarmEntry{"n", 1700000000000, "payload", Repeat::every(60000), 6}, 99, "boom"};
  auto back = alarm::decode_dead("n", alarm::encode_dead(d));
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->entry, d.entry);
  EXPECT_EQ(back->failed_ms, 99);
  EXPECT_EQ(back->last_error, "boom");
}

// An error length near 2^32 must not wrap the bounds check and decode the
// entry from the wrong offset (found by fuzz/alarm_entry_fuzz.cc).
TEST(AlarmEntryTest, DeadLetterWithAnErrorLengthPastTheEndIsCorruption) {
  std::string bytes;
  store::append_u64(&bytes, uint64_t{1} << 32);  // byte 3 is 1: a valid entry version
  store::append_u32(&bytes, 0xfffffff7u);        // 12 + n wraps to 3 in 32 bits
  bytes += alarm::encode_entry(AlarmEntry{"n", 5, "p", Repeat::none(), 0});
  auto d = alarm::decode_dead("n", bytes);
  ASSERT_FALSE(d.is_ok());
  EXPECT_EQ(d.status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace carrel
