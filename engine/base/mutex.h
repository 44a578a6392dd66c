// The engine's lock, its scoped holder and its condition variable: std::mutex
// and std::condition_variable underneath, with the annotations of
// engine/base/thread_annotations.h, so clang's -Wthread-safety checks every
// GUARDED_BY member (CI builds with it: scripts/test's fuzz stage).
//
// Waits take the held Mutex and loop on their condition in the caller, e.g.
//     MutexLock lock(mutex_);
//     while (queue_.empty() && !stopping_) cv_.wait(mutex_);
// because a predicate lambda is a function of its own to the analysis, which
// then cannot see the lock held inside it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "engine/base/thread_annotations.h"

namespace carrel {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds the mutex from construction to destruction (std::lock_guard), or
// lets go early and takes it again (unlock / lock).
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  // Takes over a mutex the caller holds (after a successful try_lock).
  MutexLock(Mutex& mu, std::adopt_lock_t) REQUIRES(mu) : mu_(mu) {}
  ~MutexLock() RELEASE() {
    if (held_) mu_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void unlock() RELEASE() {
    held_ = false;
    mu_.unlock();
  }
  void lock() ACQUIRE() {
    mu_.lock();
    held_ = true;
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

class CondVar {
 public:
  // Lets go of mu while waiting; holds it again on return (spurious wakeups
  // included: callers loop on their condition).
  void wait(Mutex& mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  std::cv_status wait_for(Mutex& mu, std::chrono::milliseconds timeout) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    std::cv_status s = cv_.wait_for(lock, timeout);
    lock.release();
    return s;
  }
  template <typename Clock, typename Duration>
  std::cv_status wait_until(Mutex& mu, const std::chrono::time_point<Clock, Duration>& deadline)
      REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    std::cv_status s = cv_.wait_until(lock, deadline);
    lock.release();
    return s;
  }
  void notify_one() { cv_.notify_one(); }
  void notify_all() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace carrel
