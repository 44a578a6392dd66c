// carrel/kv.h — one object's key-value namespace, with Durable Objects' rules.
//
// A Kv is bound to exactly one object for the duration of one turn; nothing in
// it can name another object's keys. Keys and values are arbitrary bytes and
// keys compare bytewise (memcmp, shorter first on a tie). Writes become
// durable together with the rest of the turn; reads see the turn's own writes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "carrel/status.h"

namespace carrel {

namespace detail {
class Turn;
}  // namespace detail
class Context;

using Entries = std::vector<std::pair<std::string, std::string>>;

struct ListOptions {
  std::optional<std::string> start;        // first key, inclusive
  std::optional<std::string> start_after;  // first key, exclusive (not with start)
  std::optional<std::string> end;          // last key, exclusive
  std::optional<std::string> prefix;       // only keys with this prefix
  bool reverse = false;                    // largest keys first
  std::optional<size_t> limit;             // at most this many; must be > 0
};

class Kv {
 public:
  // The value, or nullopt when the key is absent. InvalidArgument for an oversized key.
  Result<std::optional<std::string>> get(std::string_view key);
  // Present keys only, sorted by key. At most Options::kv_batch_keys_max keys.
  Result<Entries> get_many(const std::vector<std::string>& keys);
  // InvalidArgument names the limit when the key or value is too large, or the
  // turn's dirty bytes would pass Options::turn_dirty_bytes_max.
  Status put(std::string_view key, std::string_view value);
  Status put_many(const Entries& entries);
  // Whether the key existed.
  Result<bool> del(std::string_view key);
  // How many of the keys existed.
  Result<size_t> del_many(const std::vector<std::string>& keys);
  // Removes every key of this object (alarms and SQL are untouched).
  Status delete_all();
  // Keys in [start, end) within prefix, in order (reverse: descending).
  // InvalidArgument for start with start_after, or limit == 0.
  Result<Entries> list(const ListOptions& options = {});

 private:
  friend class detail::Turn;
  friend class Context;
  explicit Kv(detail::Turn* turn) : turn_(turn) {}
  detail::Turn* turn_;
};

}  // namespace carrel
