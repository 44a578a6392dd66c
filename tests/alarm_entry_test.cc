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

// The stored form is fixed (old databases hold it): version 1, due, kind,
// every, retries, cron with a u32 length, then the payload; all big-endian.
TEST(AlarmEntryTest, EntryBytesAreTheStoredFormat) {
  AlarmEntry e{"n", 0x0102030405060708, "pl", Repeat::cron_expr("* *"), 3};
  const std::string expected(
      "\x01"                              // version
      "\x01\x02\x03\x04\x05\x06\x07\x08"  // due_ms
      "\x02"                              // kind: cron
      "\x00\x00\x00\x00\x00\x00\x00\x00"  // every_ms
      "\x00\x00\x00\x03"                  // retry_count
      "\x00\x00\x00\x03* *"               // cron
      "pl",                               // payload
      1 + 8 + 1 + 8 + 4 + 4 + 3 + 2);
  EXPECT_EQ(alarm::encode_entry(e), expected);
  auto back = alarm::decode_entry("n", expected);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, e);
  auto due = alarm::decode_due(expected);
  ASSERT_TRUE(due.is_ok());
  EXPECT_EQ(*due, e.due_ms);
}

// Every way an entry can be cut or bent is Corruption that names the entry.
TEST(AlarmEntryTest, MalformedEntriesAreCorruptionNamingTheEntry) {
  const std::string good = alarm::encode_entry(AlarmEntry{"n", 5, "p", Repeat::cron_expr("*"), 0});
  struct Case {
    const char* what;
    std::string bytes;
  };
  std::string bad_version = good, bad_kind = good, long_cron = good;
  bad_version[0] = 2;
  bad_kind[9] = 3;
  long_cron[25] = 9;  // the cron length's low byte: 9 bytes, 2 remain
  const Case cases[] = {
      {"empty", ""},
      {"version only", good.substr(0, 1)},
      {"cut in the fixed part", good.substr(0, 25)},
      {"unknown version", bad_version},
      {"unknown repeat kind", bad_kind},
      {"cron past the end", long_cron},
  };
  // A dead letter's failed_ms and last error ("e"), before its entry.
  std::string dead_head = alarm::encode_dead(DeadLetter{{}, 1, "e"});
  dead_head.resize(8 + 4 + 1);
  for (const Case& c : cases) {
    auto e = alarm::decode_entry("alarm-x", c.bytes);
    ASSERT_FALSE(e.is_ok()) << c.what;
    EXPECT_EQ(e.status().code(), Code::kCorruption) << c.what;
    EXPECT_NE(e.status().message().find("alarm entry 'alarm-x'"), std::string::npos)
        << c.what << ": " << e.status().message();
    auto dead = alarm::decode_dead("alarm-x", dead_head + c.bytes);
    ASSERT_FALSE(dead.is_ok()) << c.what;
    EXPECT_EQ(dead.status().code(), Code::kCorruption) << c.what;
  }
}

}  // namespace
}  // namespace carrel
