// A reply waited for on the waiter's stack: what the blocking paths
// (Engine::run, Stub::call_blocking, ctx.call) use instead of a promise and
// future, whose shared state costs an allocation per call.
//
// Invariants:
//  (1) The slot is filled exactly once, from any thread.
//  (2) fill() touches the slot's memory last in the exchange that publishes
//      the value. What follows is a FUTEX_WAKE given the word's address: a
//      private wake uses the address as a key and never reads or writes it,
//      so the waiter may return and destroy the slot the moment it sees the
//      value. A wake that lands on whatever reuses that address later is a
//      spurious wake, which every futex wait, this one's included, takes.
//  (3) The waiter sleeps only after it marked the word kSleeping, and fill()
//      wakes only when it found that mark: a reply that arrives before the
//      waiter gives up costs no system call on either side.
//  (4) A waiter that marked the word (slept, or was about to) yields once
//      when it sees the value. Its filler is usually
//      the committer, in the middle of releasing a group; with more runnable
//      threads than cores the woken caller would otherwise preempt it there
//      and run its next turn while the serial part of the engine waits.
//      Measured without the yield (carrel-bench sql-insert nosync, 100
//      objects, 16 clients, 2 cores, alternating, 5 runs each): groups grew
//      from 3.5 to 9.4 turns and throughput fell to ~0.85x.
//
// This replaces a mutex, a condition variable and a flag the waiter spun on,
// yielding, until fill() had returned from notify_one: `perf stat` counted
// ~40 sched_yield calls a turn in carrel-micro's one-insert turn on a loaded
// 2-core machine (now ~1), and the turn's process CPU time fell from 143-218
// to 110-135 us.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <optional>

#include "engine/base/check.h"

namespace carrel::detail {

template <typename T>
class ReplySlot {
 public:
  ReplySlot() = default;
  ReplySlot(const ReplySlot&) = delete;
  ReplySlot& operator=(const ReplySlot&) = delete;

  void fill(T value) {
    // Checked before the write: a second fill must not overwrite a value the
    // waiter may be moving out.
    CARREL_ASSERT(state_.load(std::memory_order_relaxed) != kFilled,
                  "reply_slot.h (1): a reply slot is filled exactly once");
    // Only this call writes value_; the waiter reads it after the exchange
    // below, which orders the write before that read (release -> acquire).
    value_.emplace(std::move(value));
    uint32_t was = state_.exchange(kFilled, std::memory_order_acq_rel);  // invariant (2)
    CARREL_ASSERT(was != kFilled, "reply_slot.h (1): a reply slot is filled exactly once");
    if (was == kSleeping) futex(&state_, FUTEX_WAKE_PRIVATE, 1);  // invariant (3)
  }

  T wait() {
    uint32_t s = kEmpty;
    if (state_.compare_exchange_strong(s, kSleeping, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
      s = kSleeping;
    }
    // Sleeps only while the word still reads kSleeping; a wake with the word
    // unchanged (spurious, or a stale one meant for this address's last user)
    // loops back into the wait.
    const bool marked = s != kFilled;  // it went to sleep, or was about to
    while (s != kFilled) {
      futex(&state_, FUTEX_WAIT_PRIVATE, kSleeping);
      s = state_.load(std::memory_order_acquire);
    }
    if (marked) sched_yield();  // invariant (4)
    return std::move(*value_);
  }

 private:
  static constexpr uint32_t kEmpty = 0;
  static constexpr uint32_t kSleeping = 1;  // empty, and the waiter sleeps on the word
  static constexpr uint32_t kFilled = 2;
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) &&
                    std::atomic<uint32_t>::is_always_lock_free,
                "a futex word is a plain, lock-free 32-bit integer");

  // The address goes to the kernel as a key only (invariant (2)); the result
  // is ignored: EAGAIN (the word moved on) and EINTR both send the waiter
  // back to reading the word.
  static void futex(std::atomic<uint32_t>* word, int op, uint32_t val) {
    (void)syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, val, nullptr, nullptr, 0);
  }

  std::optional<T> value_;
  std::atomic<uint32_t> state_{kEmpty};
};

}  // namespace carrel::detail
