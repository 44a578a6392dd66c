// A value written by a sealed commit that is not yet durable.
#pragma once

#include <cstdint>
#include <optional>

namespace carrel::detail {

// Tagged with its commit's seq: dropped once durable_seq reaches it.
template <typename V>
struct Pending {
  uint64_t seq;
  std::optional<V> value;  // nullopt: deleted
};

}  // namespace carrel::detail
