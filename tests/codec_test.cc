// engine/store/codec.h: the bounds-checked record codec.
#include "engine/store/codec.h"

#include <gtest/gtest.h>

#include "engine/history/undo.h"
#include "engine/store/keys.h"
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

std::string varint_bytes(uint64_t v) {
  std::string b;
  Writer(&b).varint(v);
  return b;
}

// Invariant (1): a varint round-trips at every width, in the fewest bytes.
TEST(CodecTest, VarintRoundTripsInTheFewestBytes) {
  const std::pair<uint64_t, size_t> cases[] = {{0, 1},
                                               {127, 1},
                                               {128, 2},
                                               {16383, 2},
                                               {16384, 3},
                                               {UINT32_MAX, 5},
                                               {uint64_t{1} << 63, 10},
                                               {UINT64_MAX, 10}};
  for (auto [v, bytes] : cases) {
    std::string b = varint_bytes(v);
    EXPECT_EQ(b.size(), bytes) << v;
    Reader r(b, "varint");
    uint64_t back = 0;
    EXPECT_TRUE(r.varint(&back) && r.done()) << v;
    EXPECT_EQ(back, v);
  }
  for (int64_t v :
       {int64_t{0}, int64_t{-1}, int64_t{1}, int64_t{-64}, int64_t{63}, INT64_MIN, INT64_MAX}) {
    std::string b;
    Writer(&b).svarint(v);
    EXPECT_EQ(b.size(), v >= -64 && v <= 63 ? 1u : 10u) << v;
    Reader r(b, "svarint");
    int64_t back = 0;
    EXPECT_TRUE(r.svarint(&back) && r.done()) << v;
    EXPECT_EQ(back, v);
  }
}

// Invariant (1): one encoding per value; longer, wider or cut varints fail.
TEST(CodecTest, OverlongWideOrCutVarintFails) {
  const std::string bad[] = {
      std::string("\x80\x00", 2),        // overlong zero
      std::string("\xff\x80\x00", 3),    // overlong 127
      std::string(9, '\xff') + "\x02",   // past 64 bits
      std::string(10, '\xff') + "\x01",  // past 10 bytes
      std::string("\x80", 1),            // cut
      std::string(),                     // empty
  };
  for (const std::string& b : bad) {
    Reader r(b, "varint");
    uint64_t v = 0;
    EXPECT_FALSE(r.varint(&v)) << key_hex(b);
    EXPECT_FALSE(r.ok());
  }
  // A 32-bit field refuses a wider value.
  std::string wide = varint_bytes(uint64_t{UINT32_MAX} + 1);
  Reader r(wide, "count");
  uint32_t n = 0;
  EXPECT_FALSE(r.varint(&n));
}

// Invariant (3): a vstr's length may not pass the input.
TEST(CodecTest, VstrRoundTripsAndRefusesALengthPastTheInput) {
  std::string b;
  Writer(&b).vstr(std::string(200, 'x'));
  EXPECT_EQ(b.size(), 202u);
  std::string_view v;
  Reader ok(b, "name");
  EXPECT_TRUE(ok.vstr(&v) && ok.done());
  EXPECT_EQ(v, std::string(200, 'x'));
  std::string cut = b.substr(0, 201);
  Reader r(cut, "name");
  EXPECT_FALSE(r.vstr(&v));
}

ObjectRecord full_record() {
  ObjectRecord o;
  o.number = ObjectNo{UINT64_MAX};
  o.class_name = "Room";
  o.name = "lobby";
  o.created_ms = 1700000000000;
  o.last_seq = 42;
  o.last_commit_ms = 1700000000000 - 5;  // a commit time may lie before creation
  o.kv_keys = 3;
  o.kv_bytes = UINT64_MAX;
  o.sql_pages = UINT32_MAX;
  o.alarms = 2;
  o.dead_letters = 1;
  o.log_no = 99;
  return o;
}

// object_record.h: version 3 keeps every field, extremes included.
TEST(CodecTest, ObjectRecordKeepsEveryField) {
  ObjectRecord bare;
  bare.number = ObjectNo{1};
  for (const ObjectRecord& o : {full_record(), bare}) {
    auto back = ObjectRecord::decode(o.encode());
    ASSERT_TRUE(back.is_ok()) << back.status().message();
    EXPECT_EQ(*back, o);
  }
  ObjectRecord far = full_record();
  far.created_ms = INT64_MIN;
  far.last_commit_ms = INT64_MAX;  // the distance wraps, and back
  auto back = ObjectRecord::decode(far.encode());
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(*back, far);
}

// object_record.h: a new KV-only object's record is its names and a few bytes.
TEST(CodecTest, NewObjectRecordIsAboutItsNames) {
  ObjectRecord o;
  o.number = ObjectNo{1000000};
  o.class_name = "Bench";
  o.name = "o0000001";
  o.created_ms = 1764556800000;
  o.last_seq = 1;
  o.last_commit_ms = o.created_ms + 3;
  o.kv_keys = 1;
  o.kv_bytes = 101;
  o.log_no = 1000000;
  EXPECT_LE(o.encode().size(), 21 + o.class_name.size() + o.name.size());
}

// object_record.h: a record without a number is not a record this build wrote.
TEST(CodecTest, ObjectRecordWithNumberZeroIsCorruption) {
  std::string b = full_record().encode();
  // version, mask, then the number: UINT64_MAX's varint is 10 bytes; write 0 in 1.
  b.replace(2, store::kVarintBytesMax, std::string(1, '\0'));
  EXPECT_EQ(ObjectRecord::decode(b).status().code(), Code::kCorruption);
}

// Invariant (2): every truncation and any trailing byte is Corruption.
TEST(CodecTest, ObjectRecordRoundTripsAndRefusesDamage) {
  ObjectRecord o = full_record();
  for (const std::string& b : {o.encode()}) {
    auto back = ObjectRecord::decode(b);
    ASSERT_TRUE(back.is_ok()) << back.status().message();
    EXPECT_EQ(*back, o);
    EXPECT_EQ(ObjectRecord::decode(b + "x").status().code(), Code::kCorruption);
    for (size_t n = 0; n < b.size(); ++n) {
      EXPECT_EQ(ObjectRecord::decode(b.substr(0, n)).status().code(), Code::kCorruption) << n;
    }
  }
  std::string b = o.encode();
  b[0] = 2;  // carrel-6's version: its keys held the id, not the number
  EXPECT_EQ(ObjectRecord::decode(b).status().code(), Code::kCorruption);
}

history::LogRecord sample_log_record() {
  history::LogRecord rec;
  ObjectId id = id_from_name("Room", "lobby");
  const ObjectNo no{77};
  rec.header = {id, no, 7, 1700000000000, 3};
  rec.sql_pages_before = 2;
  rec.sql_pages_after = 5;
  rec.deltas = {1, 40, -1, 0};
  rec.undo.push_back({Db::kKv, object_key(no, "k"), std::nullopt});
  rec.undo.push_back({Db::kKv, object_key(no, "v"), std::string("old")});
  rec.undo.push_back({Db::kKv, object_key(ObjectNo{78}, "k"), std::nullopt});  // another's
  rec.undo.push_back({Db::kSchedule, schedule_key(5, id, "a"), std::string()});
  rec.undo.push_back({Db::kOutbox, log_key(9), std::nullopt});
  return rec;
}

// undo.h (9): own keys lose their number prefix on disk, not in the record.
TEST(CodecTest, LogRecordDecodesToTheSameRecord) {
  history::LogRecord rec = sample_log_record();
  for (const std::string& b : {rec.encode()}) {
    auto back = history::LogRecord::decode(b);
    ASSERT_TRUE(back.is_ok()) << back.status().message();
    EXPECT_EQ(*back, rec);
    auto header = history::LogRecord::decode_header(b);
    ASSERT_TRUE(header.is_ok());
    EXPECT_EQ(*header, rec.header);
    for (size_t n = 0; n < b.size(); ++n) {
      EXPECT_EQ(history::LogRecord::decode(b.substr(0, n)).status().code(), Code::kCorruption) << n;
    }
    EXPECT_EQ(history::LogRecord::decode(b + "x").status().code(), Code::kCorruption);
  }
}

// undo.h (9): a first KV write's record is about 43 bytes.
TEST(CodecTest, FirstWriteLogRecordIsSmall) {
  history::LogRecord rec;
  ObjectId id = id_from_name("Bench", "o0000001");
  const ObjectNo no{1000000};
  rec.header = {id, no, 1, 1764556800000, 0};
  rec.deltas = {1, 101, 0, 0};
  rec.undo.push_back({Db::kKv, object_key(no, "k"), std::nullopt});
  EXPECT_LE(rec.encode().size(), 43u);
}

// undo.h (9): an entry tag with unknown bits is Corruption, not a guess.
TEST(CodecTest, LogRecordEntryTagWithUnknownBitsIsCorruption) {
  history::LogRecord rec;
  rec.header = {id_from_name("Room", "x"), ObjectNo{1}, 1, 1, 0};
  rec.undo.push_back({Db::kKv, "zz", std::nullopt});  // not an own key: stored whole
  std::string b = rec.encode();
  // The tag is the byte before the key's length and its 2 bytes, less the redo count.
  size_t tag_at = b.size() - 1 - 2 - 1 - 1;
  ASSERT_EQ(static_cast<uint8_t>(b[tag_at]), static_cast<uint8_t>(Db::kKv));
  b[tag_at] = static_cast<char>(b[tag_at] | 0x80);
  auto back = history::LogRecord::decode(b);
  EXPECT_EQ(back.status().code(), Code::kCorruption);
  EXPECT_NE(back.status().message().find("undo entries of seq 1, entry 0"), std::string::npos)
      << back.status().message();
}

}  // namespace
}  // namespace carrel::store