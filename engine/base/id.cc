// Object ids: XXH3-128 derivation, random ids, hex printing and strict parsing.
#include "carrel/id.h"

#include <sys/random.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "carrel/context.h"

namespace carrel {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void put_u64_be(uint8_t* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

}  // namespace

std::string ObjectId::to_hex() const {
  std::string s(32, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    s[2 * i] = kHexDigits[bytes[i] >> 4];
    s[2 * i + 1] = kHexDigits[bytes[i] & 0xf];
  }
  return s;
}

Result<ObjectId> ObjectId::parse(std::string_view hex) {
  if (hex.size() != 32) {
    return Status::invalid_argument("object id '" + std::string(hex.substr(0, 64)) +
                                    "' has " + std::to_string(hex.size()) +
                                    " characters; an id is exactly 32 hex digits");
  }
  ObjectId id;
  for (size_t i = 0; i < 16; ++i) {
    int hi = hex_value(hex[2 * i]);
    int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      size_t at = hi < 0 ? 2 * i : 2 * i + 1;
      return Status::invalid_argument("object id '" + std::string(hex) +
                                      "' has a non-hex character at position " +
                                      std::to_string(at + 1));
    }
    id.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return id;
}

ObjectId ObjectId::from_raw(std::string_view raw16) {
  ObjectId id;
  std::memcpy(id.bytes.data(), raw16.data(), std::min(raw16.size(), id.bytes.size()));
  return id;
}

ObjectId id_from_name(std::string_view class_name, std::string_view name) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_128bits_reset(state);
  XXH3_128bits_update(state, class_name.data(), class_name.size());
  const char separator = '\0';
  XXH3_128bits_update(state, &separator, 1);
  XXH3_128bits_update(state, name.data(), name.size());
  XXH128_hash_t h = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  ObjectId id;
  put_u64_be(id.bytes.data(), h.high64);
  put_u64_be(id.bytes.data() + 8, h.low64);
  return id;
}

ObjectId new_unique_id(std::string_view class_name) {
  (void)class_name;
  ObjectId id;
  size_t got = 0;
  while (got < id.bytes.size()) {
    ssize_t n = getrandom(id.bytes.data() + got, id.bytes.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // The kernel's random source cannot fail after boot; a failure here is a broken invariant.
      std::abort();
    }
    got += static_cast<size_t>(n);
  }
  return id;
}

ObjectRef ObjectRef::named(std::string_view class_name, std::string_view name) {
  return {std::string(class_name), id_from_name(class_name, name), std::string(name)};
}

ObjectRef ObjectRef::of(std::string_view class_name, const ObjectId& id) {
  return {std::string(class_name), id, {}};
}

std::string ObjectRef::label() const {
  return class_name + ":" + (name.empty() ? id.to_hex() : name);
}

}  // namespace carrel
