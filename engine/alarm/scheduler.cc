#include "engine/alarm/scheduler.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "engine/store/cursor.h"
#include "engine/store/keys.h"

namespace carrel::alarm {
namespace {
// Even with nothing due, look again this often: a safety net for a clock that
// jumps without telling (the system clock) and for posts that met a full mailbox.
constexpr int64_t kIdleRecheckMs = 1000;
constexpr int64_t kBusyRetryMs = 20;
}  // namespace

void Scheduler::start() { thread_ = std::thread([this] { run(); }); }

void Scheduler::stop() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::wake(UnixMs due_ms) {
  {
    MutexLock lock(mutex_);
    if (!resume_key_.empty() && static_cast<uint64_t>(due_ms) <= store::read_u64(resume_key_, 0)) {
      resume_key_.clear();  // invariant (4): an entry now lies before the resume point
    }
  }
  wake_now();
}

void Scheduler::wake_now() {
  {
    MutexLock lock(mutex_);
    poked_ = true;
  }
  cv_.notify_all();
}

void Scheduler::done(const ObjectId& id, const std::string& name, bool rescan) {
  {
    MutexLock lock(mutex_);
    in_flight_.erase({id, name});
    if (rescan) resume_key_.clear();
    poked_ = true;
  }
  cv_.notify_all();
}

size_t Scheduler::in_flight() const {
  MutexLock lock(mutex_);
  return in_flight_.size();
}

UnixMs Scheduler::pass(UnixMs now) {
  auto txn = store_.begin_read();
  if (!txn.is_ok()) return now + kIdleRecheckMs;
  std::vector<std::tuple<UnixMs, ObjectId, std::string>> due;
  UnixMs next = now + kIdleRecheckMs;
  int64_t steady_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  {
    MutexLock lock(mutex_);
    if (steady_ms - last_full_scan_ms_ >= kIdleRecheckMs) resume_key_.clear();
    if (resume_key_.empty()) last_full_scan_ms_ = steady_ms;
    auto c = store::Cursor::open(store_, *txn, store::Db::kSchedule);
    if (!c.is_ok()) return next;
    bool on = c->seek(resume_key_);  // "": from the first entry
    std::string resume;              // stays "" when the scan reaches the end
    while (on) {
      std::string_view key = c->key();
      if (key.size() < 8 + store::kIdBytes) break;
      UnixMs at = static_cast<UnixMs>(store::read_u64(key, 0));
      if (at > now) {
        next = std::min(next, at);
        resume = key;
        break;
      }
      if (in_flight_.size() + due.size() >= kInFlightMax || due.size() >= kPostsPerPass) {
        next = now;  // more is due than we take at once: come straight back
        resume = key;
        break;
      }
      ObjectId id = ObjectId::from_raw(key.substr(8, store::kIdBytes));
      std::string name(key.substr(8 + store::kIdBytes));
      if (!in_flight_.count({id, name})) due.emplace_back(at, id, std::move(name));
      on = c->next();
    }
    // Invariant (4). At the end of the timetable, resume at the end too: the
    // key 0xff.. sorts after every key, and a new entry resets it by wake().
    resume_key_ = on && !resume.empty() ? resume : std::string(8, '\xff');
    for (auto& [at, id, name] : due) in_flight_.emplace(id, name);
  }
  txn->release();
  for (auto& [at, id, name] : due) {
    Status s = post_(id, name, at);
    if (!s.is_ok()) {
      MutexLock lock(mutex_);
      in_flight_.erase({id, name});
      resume_key_.clear();
      next = std::min(next, now + kBusyRetryMs);
    }
  }
  return next;
}

void Scheduler::run() {
  int listener = clock_.add_listener([this] { wake_now(); });
  MutexLock lock(mutex_);
  while (!stopping_) {
    poked_ = false;
    lock.unlock();
    UnixMs now = clock_.now_ms();
    UnixMs next = pass(now);
    lock.lock();
    if (stopping_ || poked_) continue;
    int64_t wait_ms = std::clamp<int64_t>(next - clock_.now_ms(), 0, kIdleRecheckMs);
    if (wait_ms == 0 && next <= now) wait_ms = 1;  // in-flight entries at the front: let them finish
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (!stopping_ && !poked_) {
      if (cv_.wait_until(mutex_, deadline) == std::cv_status::timeout) break;
    }
  }
  lock.unlock();
  clock_.remove_listener(listener);
}

}  // namespace carrel::alarm
