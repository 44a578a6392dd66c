// The record codec: one bounds-checked writer and reader for every record
// carrel stores (object records, undo records, alarm entries, outbox
// messages), in the manner of LevelDB's util/coding.h.
//
// Invariants:
//  (1) Integers are fixed-width big-endian, as in keys (keys.h (1)), or
//      varints where values are mostly small (counts, seqs, lengths): LEB128,
//      seven bits a byte, low bits first, at most kVarintBytesMax bytes, the
//      last byte nonzero unless it is the only one (one encoding per value).
//      Signed varints are zigzag-mapped first (0, -1, 1, -2 ... -> 0, 1, 2, 3).
//  (2) A Reader never reads past its input. A get on short input fails, the
//      reader stays failed from then on, and nothing it returned after that
//      is meaningful; decoders turn a failed reader into Corruption naming
//      the record (Reader::corruption), never skip the record silently.
//  (3) Strings carry their length: str16 (u16, for names of at most
//      kStr16BytesMax bytes), str32 (u32, for keys and values) or vstr (a
//      varint of at most kVstrBytesMax).
//  (4) Every record starts with a version byte (Writer::version /
//      Reader::version); a reader refuses a version it does not know.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "carrel/status.h"

namespace carrel::store {

constexpr size_t kStr16BytesMax = 0xffff;
// Invariant (1): 64 bits in seven-bit groups.
constexpr size_t kVarintBytesMax = 10;
// Invariant (3): vstr lengths fit the u32 of str32.
constexpr uint64_t kVstrBytesMax = 0xffffffff;
static_assert(kVarintBytesMax * 7 >= 64 && (kVarintBytesMax - 1) * 7 < 64);

// Invariant (1): the zigzag map of signed varints, and back.
constexpr uint64_t zigzag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
constexpr int64_t unzigzag(uint64_t v) {
  return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
}
static_assert(zigzag(0) == 0 && zigzag(-1) == 1 && zigzag(1) == 2 && zigzag(INT64_MIN) == ~0ull);
static_assert(unzigzag(zigzag(INT64_MIN)) == INT64_MIN && unzigzag(zigzag(INT64_MAX)) == INT64_MAX);

// Appends to a string the caller owns.
class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}

  void version(uint8_t v) { u8(v); }
  void u8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void u16(uint16_t v) { put_be(v, 2); }
  void u32(uint32_t v) { put_be(v, 4); }
  void u64(uint64_t v) { put_be(v, 8); }
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  // Invariant (3): the caller checked s.size() <= kStr16BytesMax (names are
  // limited far below it at the API).
  void str16(std::string_view s) {
    u16(static_cast<uint16_t>(s.size()));
    out_->append(s);
  }
  void str32(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_->append(s);
  }
  // Invariant (1): 1 byte below 128, at most kVarintBytesMax.
  void varint(uint64_t v) {
    char b[kVarintBytesMax];
    size_t n = 0;
    for (; v >= 0x80; v >>= 7) b[n++] = static_cast<char>((v & 0x7f) | 0x80);
    b[n++] = static_cast<char>(v);
    out_->append(b, n);
  }
  void svarint(int64_t v) { varint(zigzag(v)); }
  // Invariant (3): the caller checked s.size() <= kVstrBytesMax.
  void vstr(std::string_view s) {
    varint(s.size());
    out_->append(s);
  }
  // Bytes of a length the reader knows (an id, the rest of the record).
  void raw(std::string_view s) { out_->append(s); }

 private:
  void put_be(uint64_t v, int bytes) {
    char b[8];
    for (int i = bytes - 1; i >= 0; --i) {
      b[i] = static_cast<char>(v & 0xff);
      v >>= 8;
    }
    out_->append(b, static_cast<size_t>(bytes));
  }
  std::string* out_;
};

// Reads from bytes that must outlive the reader and every string_view it returns.
class Reader {
 public:
  // what names the record in Corruption messages, e.g. "undo record".
  Reader(std::string_view in, const char* what) : in_(in), what_(what) {}

  // Invariant (4): false (and failed) unless the first byte is `expected`.
  bool version(uint8_t expected) {
    uint8_t v = 0;
    if (!u8(&v)) return false;
    if (v != expected) ok_ = false;
    return ok_;
  }
  bool u8(uint8_t* v) {
    uint64_t x = 0;
    bool r = get_be(1, &x);
    *v = static_cast<uint8_t>(x);
    return r;
  }
  bool u16(uint16_t* v) {
    uint64_t x = 0;
    bool r = get_be(2, &x);
    *v = static_cast<uint16_t>(x);
    return r;
  }
  bool u32(uint32_t* v) {
    uint64_t x = 0;
    bool r = get_be(4, &x);
    *v = static_cast<uint32_t>(x);
    return r;
  }
  bool u64(uint64_t* v) { return get_be(8, v); }
  bool i64(int64_t* v) {
    uint64_t x = 0;
    bool r = get_be(8, &x);
    *v = static_cast<int64_t>(x);
    return r;
  }
  // Invariant (1): fails on a varint past the input, longer than
  // kVarintBytesMax, past 64 bits, or with a needless zero last byte.
  bool varint(uint64_t* v) {
    uint64_t x = 0;
    for (size_t i = 0; ok_ && i < kVarintBytesMax; ++i) {
      if (at_ == in_.size()) break;
      auto b = static_cast<uint8_t>(in_[at_++]);
      uint64_t bits = b & 0x7f;
      if (i == kVarintBytesMax - 1 && bits > 1) break;  // past 64 bits
      x |= bits << (7 * i);
      if ((b & 0x80) == 0) {
        if (b == 0 && i > 0) break;  // overlong: one encoding per value
        *v = x;
        return true;
      }
    }
    return ok_ = false;
  }
  // A varint that must fit 32 bits (a page count, a length).
  bool varint(uint32_t* v) {
    uint64_t x = 0;
    if (!varint(&x)) return false;
    if (x > UINT32_MAX) return ok_ = false;
    *v = static_cast<uint32_t>(x);
    return true;
  }
  bool svarint(int64_t* v) {
    uint64_t x = 0;
    if (!varint(&x)) return false;
    *v = unzigzag(x);
    return true;
  }
  bool vstr(std::string_view* s) {
    uint32_t n = 0;
    return varint(&n) && raw(n, s);
  }
  bool vstr(std::string* s) { return assign(&Reader::vstr, s); }
  // Invariant (4): false (and failed) unless the first byte is between
  // oldest and newest; *v is the version read.
  bool version_in(uint8_t oldest, uint8_t newest, uint8_t* v) {
    if (!u8(v)) return false;
    if (*v < oldest || *v > newest) ok_ = false;
    return ok_;
  }
  bool str16(std::string_view* s) {
    uint16_t n = 0;
    return u16(&n) && raw(n, s);
  }
  bool str32(std::string_view* s) {
    uint32_t n = 0;
    return u32(&n) && raw(n, s);
  }
  bool str16(std::string* s) { return assign(&Reader::str16, s); }
  bool str32(std::string* s) { return assign(&Reader::str32, s); }
  bool raw(size_t n, std::string_view* s) {
    if (!ok_ || in_.size() - at_ < n) return ok_ = false;
    *s = in_.substr(at_, n);
    at_ += n;
    return true;
  }
  bool raw(size_t n, std::string* s) {
    std::string_view v;
    if (!raw(n, &v)) return false;
    s->assign(v);
    return true;
  }
  // Everything not read yet (the reader is then at its end).
  std::string_view rest() {
    std::string_view r = ok_ ? in_.substr(at_) : std::string_view{};
    at_ = in_.size();
    return r;
  }

  bool ok() const { return ok_; }
  size_t remaining() const { return ok_ ? in_.size() - at_ : 0; }
  // Whether every byte was read and every get succeeded.
  bool done() const { return ok_ && at_ == in_.size(); }

  // Invariant (2): "<what> of N bytes is malformed at byte A" plus detail.
  Status corruption(std::string_view detail = {}) const {
    std::string m = std::string(what_) + " of " + std::to_string(in_.size()) +
                    " bytes is malformed at byte " + std::to_string(at_);
    if (!detail.empty()) m.append(": ").append(detail);
    return Status::corruption(m);
  }

 private:
  bool get_be(size_t bytes, uint64_t* v) {
    if (!ok_ || in_.size() - at_ < bytes) return ok_ = false;
    uint64_t x = 0;
    for (size_t i = 0; i < bytes; ++i) x = x << 8 | static_cast<uint8_t>(in_[at_ + i]);
    at_ += bytes;
    *v = x;
    return true;
  }
  bool assign(bool (Reader::*get)(std::string_view*), std::string* s) {
    std::string_view v;
    if (!(this->*get)(&v)) return false;
    s->assign(v);
    return true;
  }

  std::string_view in_;
  const char* what_;
  size_t at_ = 0;
  bool ok_ = true;
};

}  // namespace carrel::store
