// Engine-wide counters, updated with relaxed atomics from any thread.
#pragma once

#include <atomic>
#include <cstdint>

#include "carrel/engine.h"

namespace carrel::detail {

struct Counters {
  std::atomic<uint64_t> turns_run{0}, turns_failed{0};
  std::atomic<uint64_t> commits{0}, commits_failed{0}, turns_committed{0}, turns_per_commit_max{0};
  std::atomic<uint64_t> fsyncs{0}, bytes_written{0};
  std::atomic<uint64_t> active_objects{0}, evictions{0}, mailbox_rejections{0};
  std::atomic<uint64_t> alarms_delivered{0}, alarms_failed{0}, messages_delivered{0};
  std::atomic<uint64_t> turns_inline{0}, commits_on_caller{0};
  std::atomic<uint64_t> dead_readers_cleared{0};

  EngineStats snapshot() const;
};

inline void bump_max(std::atomic<uint64_t>& a, uint64_t v) {
  uint64_t cur = a.load(std::memory_order_relaxed);
  while (v > cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

}  // namespace carrel::detail
