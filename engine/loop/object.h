// One object's place in the request loop: its mailbox and its activation.
//
// Invariants:
//  (1) Input gate: a slot is on at most one worker at a time (scheduled ==
//      true while a worker owns it or it waits in the run queue), and that
//      worker runs its events one at a time, in arrival order.
//  (2) The activation (handler, SQL connection, pending overlay) is touched
//      only by the worker that owns the slot, or by the janitor while holding
//      mutex and scheduled == false.
//  (3) sealed_seq >= durable_seq. The object has commits in flight exactly
//      when sealed_seq > durable_seq; it is evicted only when it has none (or
//      when a failed commit bumped its generation: then it resets anyway).
//  (4) A retired slot accepts no events; a new slot is made for the id.
//  (5) Inline turns (the fast path): a thread blocked in Engine::run or
//      Stub::call_blocking may itself take a slot that is idle (scheduled ==
//      false, mailbox empty), setting scheduled under mutex as post() does
//      for a worker. It then owns the slot under (1) and (2) for that one
//      event, and on leaving does exactly one of: clear scheduled (mailbox
//      still empty) or hand the slot to the run queue (events arrived
//      meanwhile). scheduled == false always implies an empty mailbox.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "carrel/context.h"
#include "carrel/handler.h"
#include "engine/base/mutex.h"
#include "engine/commit/batch.h"
#include "engine/loop/pending.h"

namespace carrel::detail {

struct ObjectSql;

enum class EventKind : uint8_t { kRequest, kRun, kAlarm, kMessage, kRestore };

struct Event {
  EventKind kind = EventKind::kRequest;
  ObjectRef object;
  Request request;                             // kRequest, kMessage
  std::function<Status(Context&)> fn;          // kRun
  std::function<void(Result<std::string>)> done;  // reply (kRequest, kRun, kRestore)
  bool allow_unconfirmed = false;
  // Accepted past mailbox_depth_max: a connection's close, which must not be
  // lost to a full mailbox (the socket is gone; state must not refer to it).
  // At most one per stored connection, so the mailbox stays bounded by
  // mailbox_depth_max + connections_per_object_max.
  bool past_depth_cap = false;
  std::vector<ObjectId> call_chain;            // objects waiting in ctx.call on this event
  std::string alarm_name;                      // kAlarm
  UnixMs alarm_due_ms = 0;                     // kAlarm: the due time the scheduler saw
  uint64_t message_no = 0;                     // kMessage
  uint64_t restore_seq = 0;                    // kRestore
  int64_t restore_time_ms = 0;                 // kRestore: the bookmark's time, checked
  // Run on the thread of the caller that waits for its reply (run_inline):
  // the turn's commits may run there too (committer.h (10)).
  bool on_caller_thread = false;
};

// KV and alarm writes of sealed commits that are not yet durable
// (docs/architecture.md sections 4 and 8: the next turn reads them here until
// they are durable). The SQL pages' counterpart lives in the page source
// (page_source.h (2)).
struct PendingOverlay {
  std::map<std::string, PendingValue, std::less<>> kv;
  uint64_t kv_cleared_seq = 0;  // a delete_all() not yet durable hides LMDB's kv
  std::map<std::string, PendingValue, std::less<>> alarms;

  // Drops what commits up to durable_seq made durable (LMDB has it now).
  void prune(uint64_t durable_seq);
  // For CARREL_DASSERT after prune (turn.h (2)): every entry is of a sealed
  // commit past durable_seq and below next_seq, and no kv entry is older
  // than a pending delete_all(), which find() relies on.
  bool holds_only_pending(uint64_t durable_seq, uint64_t next_seq) const;
};

struct Activation {
  bool loaded = false;          // next_seq and the record were read
  uint64_t generation = 0;      // the slot generation this activation belongs to
  uint64_t next_seq = 1;
  int64_t last_commit_ms = 0;   // commit times never decrease (bookmark order)
  std::string class_name;       // from the object record, or the first event
  std::string name;
  // The prefix of the object's keys (store/keys.h (2)): from the object
  // record, or given at this load when the object has none (keys.h (3)).
  store::ObjectNo number;
  std::unique_ptr<Handler> handler;
  bool started = false;         // on_start committed for this activation
  PendingOverlay pending;
  // The SQL file's length in pages after the object's last sealed commit: read
  // from the object record at load, advanced by Turn::seal, so a turn binds
  // its pages without a lookup (page_source.h (4)).
  uint32_t sql_pages = 0;
  std::unique_ptr<ObjectSql> sql;  // made by the first turn that reads SQL pages

  // Out of line, where ObjectSql is complete (page_source.cc).
  Activation();
  ~Activation();
  Activation(Activation&&) noexcept;
  Activation& operator=(Activation&&) noexcept;
};

// An object's events in arrival order (invariant (1)). Most objects are idle
// and many are touched once, so an empty mailbox holds no memory (a
// std::deque allocates a map and a node the moment it is made): the first
// event allocates, and the buffer is kept until the slot goes. Bounded by
// post(): mailbox_depth_max plus one close per stored connection.
class Mailbox {
 public:
  bool empty() const { return head_ == events_.size(); }
  size_t size() const { return events_.size() - head_; }
  void push_back(Event event) { events_.push_back(std::move(event)); }
  // REQUIRES: !empty().
  Event& front() { return events_[head_]; }
  // REQUIRES: !empty(). Amortized O(1): the taken prefix is dropped when it
  // is at least half the buffer.
  void pop_front() {
    if (++head_ == events_.size()) {
      events_.clear();
      head_ = 0;
    } else if (head_ >= kCompactMin && 2 * head_ >= events_.size()) {
      events_.erase(events_.begin(), events_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

 private:
  static constexpr size_t kCompactMin = 16;
  std::vector<Event> events_;
  size_t head_ = 0;  // events_[0, head_) were taken
};

// CommitProgress (commit/batch.h) is what the committer sees of a slot:
// generation and durable_seq.
struct ObjectSlot : CommitProgress {
  explicit ObjectSlot(const ObjectId& object_id) : id(object_id) {}
  const ObjectId id;

  Mutex mutex;
  Mailbox mailbox GUARDED_BY(mutex);
  bool scheduled GUARDED_BY(mutex) = false;
  bool retired GUARDED_BY(mutex) = false;

  std::atomic<int64_t> last_used_ms{0};

  Activation act;  // invariant (2)
};

}  // namespace carrel::detail
