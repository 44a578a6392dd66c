// The public Kv facade: each call goes to the current turn.
//
// Keys starting with kReservedPrefix hold the object's connections
// (kv/reserved.h): the facade refuses them, lists around them and keeps them
// through delete_all().
#include "carrel/kv.h"

#include <algorithm>

#include "engine/kv/reserved.h"
#include "engine/kv/turn_kv.h"
#include "engine/store/keys.h"

namespace carrel {
namespace {

using detail::is_reserved_key;
using detail::kReservedPrefix;

Status refuse_reserved(std::string_view key) {
  return Status::invalid_argument(
      "key '" + std::string(key.substr(0, 16)) +
      "...' starts with eight 0xff bytes, which carrel reserves for connection records");
}

template <typename Keys>
Status check_unreserved(const Keys& keys) {
  for (const auto& k : keys) {
    if constexpr (std::is_same_v<std::decay_t<decltype(k)>, std::string>) {
      if (is_reserved_key(k)) return refuse_reserved(k);
    } else {
      if (is_reserved_key(k.first)) return refuse_reserved(k.first);
    }
  }
  return Status::ok();
}

}  // namespace

Result<std::optional<std::string>> Kv::get(std::string_view key) {
  if (is_reserved_key(key)) return refuse_reserved(key);
  return detail::turn_kv(turn_).get(key);
}
Result<Entries> Kv::get_many(const std::vector<std::string>& keys) {
  CARREL_RETURN_IF_ERROR(check_unreserved(keys));
  return detail::turn_kv(turn_).get_many(keys);
}
Status Kv::put(std::string_view key, std::string_view value) {
  if (is_reserved_key(key)) return refuse_reserved(key);
  return detail::turn_kv(turn_).put(key, value);
}
Status Kv::put_many(const Entries& entries) {
  CARREL_RETURN_IF_ERROR(check_unreserved(entries));
  return detail::turn_kv(turn_).put_many(entries);
}
Result<bool> Kv::del(std::string_view key) {
  if (is_reserved_key(key)) return refuse_reserved(key);
  return detail::turn_kv(turn_).del(key);
}
Result<size_t> Kv::del_many(const std::vector<std::string>& keys) {
  CARREL_RETURN_IF_ERROR(check_unreserved(keys));
  return detail::turn_kv(turn_).del_many(keys);
}
Status Kv::delete_all() {
  ListOptions reserved;
  reserved.prefix = kReservedPrefix;
  CARREL_ASSIGN_OR_RETURN(Entries keep, detail::turn_kv(turn_).list(reserved));
  CARREL_RETURN_IF_ERROR(detail::turn_kv(turn_).delete_all());
  for (auto& [k, v] : keep) CARREL_RETURN_IF_ERROR(detail::turn_kv(turn_).put(k, v));
  return Status::ok();
}
Result<Entries> Kv::list(const ListOptions& options) {
  // The reserved keys are one contiguous range [kReservedPrefix, after): list
  // the part of the request below it, then the part above it.
  static const std::string after = store::prefix_successor(kReservedPrefix);
  if ((options.limit && *options.limit == 0) || (options.start && options.start_after)) {
    return detail::turn_kv(turn_).list(options);  // the turn's refusal, naming the bad option
  }
  ListOptions below = options;
  if (!below.end || *below.end > kReservedPrefix) below.end = kReservedPrefix;
  ListOptions above = options;
  std::string lower = options.start         ? *options.start
                      : options.start_after ? *options.start_after + std::string(1, '\0')
                                            : std::string();
  if (lower < after) {
    above.start = after;
    above.start_after.reset();
  }
  bool below_empty = below.end && *below.end <= lower;
  bool above_empty = options.end && *options.end <= std::max(lower, after);
  ListOptions& first = options.reverse ? above : below;
  ListOptions& second = options.reverse ? below : above;
  bool first_empty = options.reverse ? above_empty : below_empty;
  bool second_empty = options.reverse ? below_empty : above_empty;
  Entries out;
  if (!first_empty) {
    CARREL_ASSIGN_OR_RETURN(out, detail::turn_kv(turn_).list(first));
  }
  size_t limit = options.limit.value_or(SIZE_MAX);
  if (second_empty || out.size() >= limit) return out;
  if (options.limit) second.limit = limit - out.size();
  CARREL_ASSIGN_OR_RETURN(Entries rest, detail::turn_kv(turn_).list(second));
  for (auto& e : rest) out.push_back(std::move(e));
  return out;
}

}  // namespace carrel
