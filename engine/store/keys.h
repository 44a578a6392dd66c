// Storage key encoding.
//
// Invariants:
//  (1) Integers in keys are fixed-width big-endian, so byte order is numeric order.
//  (2) Every per-object key (kv, pages, alarms, dead) starts with the
//      object's number (ObjectNo, 8 bytes), so one object's keys are one
//      contiguous range and no key of another object shares its prefix
//      (numbers are fixed width and never given twice).
//  (3) Numbers are given in creation order (the engine's next number when an
//      object is first loaded, engine/commit/records.h (6)), so the keys of objects made
//      one after another land at the right edge of each tree and fill its
//      leaves, where 16 random id bytes scattered them over half-full ones
//      (docs/design-notes.md, "The creation-ordered layout"). Number 0 is
//      never given: no key starts with it.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "carrel/id.h"
#include "carrel/status.h"
#include "engine/base/check.h"

namespace carrel::store {

constexpr size_t kIdBytes = 16;

// An object's number: the prefix of its per-object keys (invariants (2), (3)).
// A type of its own, so no id can be passed where a key wants the number.
struct ObjectNo {
  uint64_t value = 0;
  bool operator==(const ObjectNo&) const = default;
  auto operator<=>(const ObjectNo&) const = default;
};
constexpr size_t kPrefixBytes = 8;
// The meta key holding one past the highest number a stored object holds
// (u64 BE; engine/commit/records.h (6)).
inline constexpr std::string_view kNextObjectNoKey = "next_object_no";
// LMDB's compile-time key limit (mdb_env_get_maxkeysize with default build).
constexpr size_t kLmdbKeyBytesMax = 511;

// v as 8 big-endian bytes at out[0..8).
inline void write_u64(char* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

inline void append_u64(std::string* out, uint64_t v) {
  char b[8];
  write_u64(b, v);
  out->append(b, 8);
}

inline void append_u32(std::string* out, uint32_t v) {
  char b[4];
  for (int i = 3; i >= 0; --i) {
    b[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out->append(b, 4);
}

// Reads of a key whose length the caller checked; records use codec.h's Reader.
inline uint64_t read_u64(std::string_view s, size_t at) {
  CARREL_ASSERT(at <= s.size() && s.size() - at >= 8, "keys.h: read_u64 within the key");
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = v << 8 | static_cast<uint8_t>(s[at + i]);
  return v;
}

// Keys shown in Corruption messages are cut to this many bytes (then "...").
constexpr size_t kKeyHexBytesMax = 32;

// The key as lowercase hex digits, at most kKeyHexBytesMax bytes of it.
inline std::string key_hex(std::string_view key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < key.size() && i < kKeyHexBytesMax; ++i) {
    auto c = static_cast<unsigned char>(key[i]);
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  if (key.size() > kKeyHexBytesMax) out.append("...");
  return out;
}

// The number a key of exactly 8 bytes holds (a log or message number), for
// keys read from disk, which may be damaged: Corruption naming the database,
// the key in hex and its length otherwise, never an abort.
inline Result<uint64_t> decode_u64_key(std::string_view key, std::string_view db_name) {
  if (key.size() != 8) {
    return Status::corruption(std::string(db_name) + ": key " + key_hex(key) + " is " +
                              std::to_string(key.size()) +
                              " bytes, not the 8 of a number; run `carrel verify`");
  }
  return read_u64(key, 0);
}

inline uint32_t read_u32(std::string_view s, size_t at) {
  CARREL_ASSERT(at <= s.size() && s.size() - at >= 4, "keys.h: read_u32 within the key");
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<uint8_t>(s[at + i]);
  return v;
}

// The number (u64 BE): the first bytes of every key of the object (invariant (2)).
inline std::string object_prefix(ObjectNo no) {
  std::string k;
  append_u64(&k, no.value);
  return k;
}

// The number a per-object key starts with; REQUIRES: the key holds one.
inline ObjectNo prefix_of(std::string_view key) {
  return ObjectNo{read_u64(key, 0)};
}

// number ‖ suffix: keys of kv, alarms, dead letters.
inline std::string object_key(ObjectNo no, std::string_view suffix) {
  std::string k;
  k.reserve(kPrefixBytes + suffix.size());
  append_u64(&k, no.value);
  k.append(suffix);
  return k;
}

// number ‖ suffix built on the stack, for reads on hot paths (a KV get), where
// object_key()'s allocation would cost more than the lookup's checksum.
class ObjectKeyOnStack {
 public:
  // REQUIRES: suffix fits LMDB's key limit (the caller checked the key's size).
  ObjectKeyOnStack(ObjectNo no, std::string_view suffix) : size_(kPrefixBytes + suffix.size()) {
    CARREL_ASSERT(suffix.size() <= kLmdbKeyBytesMax - kPrefixBytes,
                  "keys.h: key within LMDB's limit");
    write_u64(bytes_, no.value);
    if (!suffix.empty()) std::memcpy(bytes_ + kPrefixBytes, suffix.data(), suffix.size());
  }
  std::string_view view() const { return {bytes_, size_}; }

 private:
  char bytes_[kLmdbKeyBytesMax];
  size_t size_;
};

// number ‖ page number (u32 BE)
inline std::string page_key(ObjectNo no, uint32_t page_no) {
  std::string k = object_prefix(no);
  append_u32(&k, page_no);
  return k;
}

// log number (u64 BE): the history log, in commit order.
inline std::string log_key(uint64_t log_no) {
  std::string k;
  append_u64(&k, log_no);
  return k;
}
constexpr size_t kLogKeyBytes = 8;

// due (u64 BE ms) ‖ id ‖ alarm name: the engine-wide timetable.
inline std::string schedule_key(uint64_t due_ms, const ObjectId& id, std::string_view name) {
  std::string k;
  k.reserve(8 + kIdBytes + name.size());
  append_u64(&k, due_ms);
  k.append(id.raw());
  k.append(name);
  return k;
}

// The smallest key greater than every key starting with prefix, or empty when
// there is none (prefix is all 0xff).
inline std::string prefix_successor(std::string prefix) {
  while (!prefix.empty()) {
    auto& c = prefix.back();
    if (static_cast<uint8_t>(c) != 0xff) {
      c = static_cast<char>(static_cast<uint8_t>(c) + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

}  // namespace carrel::store
