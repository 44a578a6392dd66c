#include "carrel/clock.h"

#include <chrono>
#include <vector>

namespace carrel {

UnixMs SystemClock::now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

UnixMs ManualClock::now_ms() {
  std::lock_guard lock(mutex_);
  return now_ms_;
}

void ManualClock::set_ms(UnixMs t) {
  {
    std::lock_guard lock(mutex_);
    now_ms_ = t;
  }
  notify();
}

void ManualClock::advance_ms(int64_t delta) {
  {
    std::lock_guard lock(mutex_);
    now_ms_ += delta;
  }
  notify();
}

int ManualClock::add_listener(std::function<void()> on_change) {
  std::lock_guard lock(mutex_);
  int token = next_token_++;
  listeners_.emplace(token, std::move(on_change));
  return token;
}

void ManualClock::remove_listener(int token) {
  std::lock_guard lock(mutex_);
  listeners_.erase(token);
}

void ManualClock::notify() {
  // Listeners must be cheap and must not call back into the clock's listener API.
  std::vector<std::function<void()>> copy;
  {
    std::lock_guard lock(mutex_);
    for (auto& [token, fn] : listeners_) copy.push_back(fn);
  }
  for (auto& fn : copy) fn();
}

}  // namespace carrel
