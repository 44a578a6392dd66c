#include "engine/alarm/scheduler.h"

#include <algorithm>
#include <chrono>
#include <vector>

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
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::wake(UnixMs due_ms) {
  (void)due_ms;  // any new entry may be the earliest; a pass is cheap
  wake_now();
}

void Scheduler::wake_now() {
  {
    std::lock_guard lock(mutex_);
    poked_ = true;
  }
  cv_.notify_all();
}

void Scheduler::done(const ObjectId& id, const std::string& name) {
  {
    std::lock_guard lock(mutex_);
    in_flight_.erase({id, name});
    poked_ = true;
  }
  cv_.notify_all();
}

size_t Scheduler::in_flight() const {
  std::lock_guard lock(mutex_);
  return in_flight_.size();
}

UnixMs Scheduler::pass(UnixMs now) {
  auto txn = store_.begin_read();
  if (!txn.is_ok()) return now + kIdleRecheckMs;
  std::vector<std::tuple<UnixMs, ObjectId, std::string>> due;
  UnixMs next = now + kIdleRecheckMs;
  {
    std::lock_guard lock(mutex_);
    MDB_cursor* c = nullptr;
    if (mdb_cursor_open(txn->get(), store_.dbi(store::Db::kSchedule), &c) != 0) return next;
    MDB_val k, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (rc == 0) {
      std::string_view key = store::from_val(k);
      if (key.size() < 8 + store::kIdBytes) break;
      UnixMs at = static_cast<UnixMs>(store::read_u64(key, 0));
      if (at > now) {
        next = std::min(next, at);
        break;
      }
      ObjectId id = ObjectId::from_raw(key.substr(8, store::kIdBytes));
      std::string name(key.substr(8 + store::kIdBytes));
      if (in_flight_.size() + due.size() >= kInFlightMax || due.size() >= kPostsPerPass) {
        next = now;  // more is due than we take at once: come straight back
        break;
      }
      if (!in_flight_.count({id, name})) due.emplace_back(at, id, std::move(name));
      rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    for (auto& [at, id, name] : due) in_flight_.emplace(id, name);
  }
  txn->release();
  for (auto& [at, id, name] : due) {
    Status s = post_(id, name, at);
    if (!s.is_ok()) {
      std::lock_guard lock(mutex_);
      in_flight_.erase({id, name});
      next = std::min(next, now + kBusyRetryMs);
    }
  }
  return next;
}

void Scheduler::run() {
  int listener = clock_.add_listener([this] { wake_now(); });
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    poked_ = false;
    lock.unlock();
    UnixMs now = clock_.now_ms();
    UnixMs next = pass(now);
    lock.lock();
    if (stopping_ || poked_) continue;
    int64_t wait_ms = std::clamp<int64_t>(next - clock_.now_ms(), 0, kIdleRecheckMs);
    if (wait_ms == 0 && next <= now) wait_ms = 1;  // in-flight entries at the front: let them finish
    cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] { return stopping_ || poked_; });
  }
  lock.unlock();
  clock_.remove_listener(listener);
}

}  // namespace carrel::alarm
