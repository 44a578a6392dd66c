// engine/store/codec.h: the bounds-checked record codec.
#include "engine/store/codec.h"

#include <gtest/gtest.h>

#include "engine/store/object_record.h"

namespace carrel::store {
namespace {

std::string sample() {
  std::string out;
  Writer w(&out);
  w.version(3);
  w.u16(0xBEEF);
  w.u32(0xDEADBEEF);
  w.i64(-5);
  w.str16("name");
  w.str32("value");
  return out;
}

// Invariant (1): big-endian, fixed width, round trip.
TEST(CodecTest, WrittenFieldsReadBackInOrder) {
  std::string b = sample();
  Reader r(b, "sample");
  uint16_t a = 0;
  uint32_t c = 0;
  int64_t d = 0;
  std::string_view n, v;
  ASSERT_TRUE(r.version(3) && r.u16(&a) && r.u32(&c) && r.i64(&d) && r.str16(&n) && r.str32(&v));
  EXPECT_EQ(a, 0xBEEF);
  EXPECT_EQ(c, 0xDEADBEEFu);
  EXPECT_EQ(d, -5);
  EXPECT_EQ(n, "name");
  EXPECT_EQ(v, "value");
  EXPECT_TRUE(r.done());
  EXPECT_EQ(static_cast<uint8_t>(b[1]), 0xBE);  // the high byte first
}

// Invariant (2): every truncation of a record fails, and stays failed.
TEST(CodecTest, EveryTruncationFailsWithoutReadingPastTheEnd) {
  std::string b = sample();
  for (size_t n = 0; n < b.size(); ++n) {
    std::string cut = b.substr(0, n);  // its own buffer: ASan sees a read past it
    Reader r(cut, "sample");
    uint16_t a = 0;
    uint32_t c = 0;
    int64_t d = 0;
    std::string_view s, v;
    bool ok = r.version(3) && r.u16(&a) && r.u32(&c) && r.i64(&d) && r.str16(&s) && r.str32(&v);
    EXPECT_FALSE(ok) << "prefix of " << n << " bytes";
    EXPECT_FALSE(r.ok());
    EXPECT_FALSE(r.done());
    EXPECT_EQ(r.remaining(), 0u);
  }
}

// Invariant (2): a length prefix larger than the input fails, however large.
TEST(CodecTest, LengthPrefixBeyondTheInputFails) {
  std::string b;
  Writer(&b).u32(0xFFFFFFFF);
  b += "abc";
  Reader r(b, "value");
  std::string_view v;
  EXPECT_FALSE(r.str32(&v));
  Status s = r.corruption("value length");
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("value of 7 bytes is malformed"), std::string::npos) << s.message();
}

// Invariant (4): a version the reader does not know is refused.
TEST(CodecTest, UnknownVersionIsRefused) {
  std::string b = sample();
  Reader r(b, "sample");
  EXPECT_FALSE(r.version(4));
  EXPECT_FALSE(r.ok());
}

// The object record refuses trailing bytes and every truncation.
TEST(CodecTest, ObjectRecordRoundTripsAndRefusesDamage) {
  ObjectRecord o;
  o.class_name = "Room";
  o.name = "lobby";
  o.created_ms = 1700000000000;
  o.last_seq = 42;
  o.kv_keys = 3;
  o.sql_pages = 7;
  std::string b = o.encode();
  auto back = ObjectRecord::decode(b);
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(*back, o);
  EXPECT_FALSE(ObjectRecord::decode(b + "x").is_ok());
  for (size_t n = 0; n < b.size(); ++n) {
    EXPECT_FALSE(ObjectRecord::decode(b.substr(0, n)).is_ok()) << n;
  }
}

}  // namespace
}  // namespace carrel::store
