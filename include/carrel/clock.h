// carrel/clock.h — the engine's only source of time.
//
// Alarms, commit times, history retention and idle eviction all read the
// engine's Clock, so tests drive time with a ManualClock instead of sleeping.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace carrel {

// Milliseconds since the Unix epoch, UTC.
using UnixMs = int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual UnixMs now_ms() = 0;
  // The engine registers a listener so that a clock which jumps (ManualClock)
  // can wake the alarm scheduler. A real clock never calls it. Returns a token
  // for remove_listener.
  virtual int add_listener(std::function<void()> on_change) { (void)on_change; return 0; }
  virtual void remove_listener(int token) { (void)token; }
};

// Wall-clock time (CLOCK_REALTIME).
class SystemClock final : public Clock {
 public:
  UnixMs now_ms() override;
};

// Time that moves only when told to; thread-safe. For tests and simulations.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(UnixMs start_ms) : now_ms_(start_ms) {}
  UnixMs now_ms() override;
  void set_ms(UnixMs t);
  void advance_ms(int64_t delta);
  int add_listener(std::function<void()> on_change) override;
  void remove_listener(int token) override;

 private:
  void notify();
  std::mutex mutex_;
  UnixMs now_ms_;                                    // GUARDED_BY(mutex_)
  int next_token_ = 1;                               // GUARDED_BY(mutex_)
  std::map<int, std::function<void()>> listeners_;   // GUARDED_BY(mutex_)
};

}  // namespace carrel
