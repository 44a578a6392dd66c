// Fuzzes the storage key encoding (engine/store/keys.h): integers round-trip,
// and byte order of every key kind equals the logical order of its parts
// (invariants (1) and (2) of keys.h), as LMDB's default memcmp order sees it.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>

#include "engine/store/keys.h"
#include "fuzz/fuzz_input.h"

namespace {

using namespace carrel;
using carrel::fuzz::Input;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "keys: %s\n", what);
  std::abort();
}

template <typename T>
int sign(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}
int sign_bytes(const std::string& a, const std::string& b) {
  int c = a.compare(b);  // char_traits<char>: unsigned bytewise, shorter first on a tie
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

ObjectId read_id(Input& in) {
  ObjectId id;
  // Few distinct ids, so equal ids (and equal prefixes) happen often.
  uint8_t shape = in.byte();
  for (auto& b : id.bytes) b = (shape & 1) ? in.byte() : static_cast<uint8_t>(shape >> 1);
  return id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  const uint64_t a = in.u64(), b = in.u64();
  const uint32_t p = in.u32(), q = in.u32();
  const ObjectId ia = read_id(in), ib = read_id(in);
  const std::string na = in.bytes(40), nb = in.bytes(40);

  std::string ea, eb;
  store::append_u64(&ea, a);
  store::append_u64(&eb, b);
  if (ea.size() != 8 || store::read_u64(ea, 0) != a) fail("u64 round trip");
  if (sign_bytes(ea, eb) != sign(a, b)) fail("u64 order");
  std::string pa, pb;
  store::append_u32(&pa, p);
  store::append_u32(&pb, q);
  if (pa.size() != 4 || store::read_u32(pa, 0) != p) fail("u32 round trip");
  if (sign_bytes(pa, pb) != sign(p, q)) fail("u32 order");

  auto ids = sign(ia.bytes, ib.bytes);
  // keys.h (1), (2): per-object keys sort by (number, suffix), and start with the number.
  const store::ObjectNo oa{a}, ob{b};
  const int nos = sign(a, b);
  if (sign_bytes(store::object_key(oa, na), store::object_key(ob, nb)) !=
      (nos != 0 ? nos : sign_bytes(na, nb))) {
    fail("object_key order is not (number, suffix) order");
  }
  if (store::object_key(oa, na).substr(0, store::kPrefixBytes) != store::object_prefix(oa) ||
      store::prefix_of(store::object_key(oa, na)) != oa) {
    fail("object_key prefix");
  }
  if (na.size() <= store::kLmdbKeyBytesMax - store::kPrefixBytes &&
      store::ObjectKeyOnStack(oa, na).view() != store::object_key(oa, na)) {
    fail("ObjectKeyOnStack differs from object_key");
  }
  if (sign_bytes(store::page_key(oa, p), store::page_key(ob, q)) != (nos != 0 ? nos : sign(p, q))) {
    fail("page_key order is not (number, page) order");
  }
  // A key from disk of any length: its number when 8 bytes, Corruption otherwise.
  auto decoded = store::decode_u64_key(na, "history");
  if (decoded.is_ok() != (na.size() == 8) || (decoded.is_ok() && store::log_key(*decoded) != na)) {
    fail("decode_u64_key accepts exactly the 8-byte keys");
  }
  if (sign_bytes(store::log_key(a), store::log_key(b)) != sign(a, b) ||
      store::log_key(a).size() != store::kLogKeyBytes) {
    fail("log_key order is not log number order");
  }
  const int logical = sign(a, b) != 0 ? sign(a, b) : (ids != 0 ? ids : sign_bytes(na, nb));
  if (sign_bytes(store::schedule_key(a, ia, na), store::schedule_key(b, ib, nb)) != logical) {
    fail("schedule_key order is not (due, id, name) order");
  }

  // prefix_successor: x has the prefix exactly when prefix <= x < successor.
  const std::string prefix = na;
  const std::string succ = store::prefix_successor(prefix);
  const std::string x = nb;
  const bool has_prefix = x.compare(0, prefix.size(), prefix) == 0 && x.size() >= prefix.size();
  const bool in_range = x >= prefix && (succ.empty() || x < succ);
  if (has_prefix != in_range) fail("prefix_successor bounds the wrong range");
  if (!succ.empty() && !(succ > prefix)) fail("prefix_successor is not above the prefix");
  return 0;
}
