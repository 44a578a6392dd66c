// The alarm scheduler: posts due alarms from the engine-wide timetable.
//
// Invariants:
//  (1) Due entries are posted in timetable order (due time, then object id,
//      then name), so delivery across objects follows due time.
//  (2) An entry is in flight from its post until its turn's commit (success,
//      retry bookkeeping or dead letter) is durable, or fails; it is never
//      posted twice while in flight. Everything else reads the durable
//      timetable, so a crash loses no alarm: at open, every entry is due again.
//  (3) The thread sleeps until the earliest entry not in flight is due, or
//      until wake() (a commit wrote an earlier one), done(), or a clock jump.
//  (4) A pass resumes at resume_key_: every timetable key before it was due
//      and is in flight (or was posted and done with its entry moved or
//      removed). Anything that can put a due entry before it — a commit
//      writing an earlier entry, an alarm turn that failed to commit, a post
//      refused by a full mailbox — resets it, and a full scan runs at least
//      every kIdleRecheckMs anyway. So a pass costs O(newly due), not
//      O(in flight).
#pragma once

#include <functional>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "carrel/clock.h"
#include "carrel/id.h"
#include "carrel/status.h"
#include "engine/base/mutex.h"
#include "engine/store/store.h"

namespace carrel::alarm {

// Posts one alarm event; Busy (full mailbox) or a missing class leaves the
// entry for a later pass.
using PostAlarm = std::function<Status(const ObjectId& id, const std::string& name, UnixMs due_ms)>;

class Scheduler {
 public:
  static constexpr size_t kInFlightMax = 20000;
  static constexpr size_t kPostsPerPass = 2048;

  Scheduler(store::Store& store, Clock& clock, PostAlarm post)
      : store_(store), clock_(clock), post_(std::move(post)) {}
  ~Scheduler() { stop(); }

  void start();
  void stop();
  // A commit wrote an entry due at due_ms.
  void wake(UnixMs due_ms);
  void wake_now();
  // The alarm's turn finished: it may be posted again. rescan: its commit
  // failed, so its entry is still where it was (invariant (4)).
  void done(const ObjectId& id, const std::string& name, bool rescan);
  size_t in_flight() const;

 private:
  void run();
  // One scan: posts what is due; returns when to look again.
  UnixMs pass(UnixMs now);

  store::Store& store_;
  Clock& clock_;
  PostAlarm post_;
  mutable Mutex mutex_;
  CondVar cv_;
  std::set<std::pair<ObjectId, std::string>> in_flight_ GUARDED_BY(mutex_);
  bool poked_ GUARDED_BY(mutex_) = false;
  std::string resume_key_ GUARDED_BY(mutex_);  // "": from the start
  int64_t last_full_scan_ms_ = 0;              // steady clock; scheduler thread only
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace carrel::alarm
