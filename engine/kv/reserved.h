// The one range of an object's KV namespace that users cannot name.
//
// Keys starting with kReservedPrefix (eight 0xff bytes, "carrel.conn", a zero
// byte) hold the object's connections (engine/conn/conn_state.h invariant
// (1)). The public facade (kv.cc) refuses them, lists around them and keeps
// them through delete_all(); the connection code reads and writes them
// through the turn's KV part (kv/turn_kv.h).
#pragma once

#include <string>
#include <string_view>

namespace carrel::detail {

inline const std::string kReservedPrefix =
    std::string(8, '\xff') + std::string("carrel.conn\0", 12);
inline bool is_reserved_key(std::string_view key) {
  return key.size() >= kReservedPrefix.size() &&
         key.compare(0, kReservedPrefix.size(), kReservedPrefix) == 0;
}

}  // namespace carrel::detail
