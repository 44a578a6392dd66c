// carrel/id.h — object identifiers.
//
// An object is named by its class and a 16-byte id. id_from_name() derives the
// id deterministically (XXH3-128 over class, a 0x00 separator and name), so the
// same class and name give the same id in every process and every release.
// new_unique_id() draws 16 random bytes. Ids print as 32 lowercase hex digits.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "carrel/status.h"

namespace carrel {

struct ObjectId {
  std::array<uint8_t, 16> bytes{};

  // 32 lowercase hex digits.
  std::string to_hex() const;
  // Exactly 32 hex digits (either case); anything else is InvalidArgument naming the input.
  static Result<ObjectId> parse(std::string_view hex);
  // The 16 raw bytes as a string_view (used in storage keys).
  std::string_view raw() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  static ObjectId from_raw(std::string_view raw16);

  auto operator<=>(const ObjectId&) const = default;
};

// Deterministic: XXH3-128(class_name ‖ 0x00 ‖ name), stored big-endian (high 64 bits first).
ObjectId id_from_name(std::string_view class_name, std::string_view name);

// 16 bytes from the operating system's random source. The class is recorded
// by the engine when the object first commits; it does not enter the id.
ObjectId new_unique_id(std::string_view class_name);

}  // namespace carrel

template <>
struct std::hash<carrel::ObjectId> {
  size_t operator()(const carrel::ObjectId& id) const noexcept {
    uint64_t h;
    static_assert(sizeof(h) <= sizeof(id.bytes));
    __builtin_memcpy(&h, id.bytes.data(), sizeof(h));
    return static_cast<size_t>(h);
  }
};
