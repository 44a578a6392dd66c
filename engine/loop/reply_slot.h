// A reply waited for on the waiter's stack: what the blocking paths
// (Engine::run, Stub::call_blocking, ctx.call) use instead of a promise and
// future, whose shared state costs an allocation per call.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>

#include "engine/base/check.h"
#include "engine/base/mutex.h"

namespace carrel::detail {

// Filled exactly once, from any thread. fill() notifies after it let go of
// the mutex, so the woken waiter never blocks on a mutex the filler still
// holds (a second futex wake per reply, on the committer's thread); wait()
// then returns only after fill() said it touches the slot no more
// (released_), so the waiter may destroy the slot as soon as it returns.
template <typename T>
class ReplySlot {
 public:
  void fill(T value) {
    {
      MutexLock lock(mutex_);
      CARREL_ASSERT(!value_, "reply_slot.h: a reply slot is filled exactly once");
      value_.emplace(std::move(value));
    }
    cv_.notify_one();
    released_.store(true, std::memory_order_release);  // from here on fill() touches nothing
  }
  T wait() {
    std::optional<T> out;
    {
      MutexLock lock(mutex_);
      while (!value_) cv_.wait(mutex_);
      out.emplace(std::move(*value_));
    }
    // fill() is between its unlock and its last store: at most a notify away.
    for (uint32_t spins = 0; !released_.load(std::memory_order_acquire); ++spins) {
      if (spins >= kSpinsBeforeYield) std::this_thread::yield();
    }
    return std::move(*out);
  }

 private:
  static constexpr uint32_t kSpinsBeforeYield = 64;
  Mutex mutex_;
  CondVar cv_;
  std::optional<T> value_ GUARDED_BY(mutex_);
  std::atomic<bool> released_{false};
};

}  // namespace carrel::detail
