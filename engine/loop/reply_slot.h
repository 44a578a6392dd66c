// A reply waited for on the waiter's stack: what the blocking paths
// (Engine::run, Stub::call_blocking, ctx.call) use instead of a promise and
// future, whose shared state costs an allocation per call.
#pragma once

#include <optional>

#include "engine/base/check.h"
#include "engine/base/mutex.h"

namespace carrel::detail {

// Filled exactly once, from any thread. wait() returns only after fill() has
// let go of the mutex, so the waiter may destroy the slot as soon as it
// returns: fill() never touches a dead slot.
template <typename T>
class ReplySlot {
 public:
  void fill(T value) {
    MutexLock lock(mutex_);
    CARREL_ASSERT(!value_, "reply_slot.h: a reply slot is filled exactly once");
    value_.emplace(std::move(value));
    cv_.notify_one();  // under the lock: see the class comment
  }
  T wait() {
    MutexLock lock(mutex_);
    while (!value_) cv_.wait(mutex_);
    return std::move(*value_);
  }

 private:
  Mutex mutex_;
  CondVar cv_;
  std::optional<T> value_ GUARDED_BY(mutex_);
};

}  // namespace carrel::detail
