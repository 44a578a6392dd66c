// A value written by a sealed commit that is not yet durable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/store/checksum.h"

namespace carrel::detail {

// Tagged with its commit's seq: dropped once durable_seq reaches it. Holds the
// very bytes the commit batch carries, sealed (store/checksum.h (4)): the
// value is their prefix, so readers take it without the trailer.
struct PendingValue {
  uint64_t seq = 0;
  store::SealedBytes stored;  // null: deleted

  bool deleted() const { return stored == nullptr; }
  // REQUIRES: !deleted().
  std::string_view view() const { return store::sealed_value(*stored); }
  // A copy of the value; nullopt when deleted.
  std::optional<std::string> value() const {
    if (deleted()) return std::nullopt;
    return std::string(view());
  }
};

}  // namespace carrel::detail
