// Running events as turns: requests, closures, messages, alarms, restores.
#include <cmath>
#include <future>
#include <random>

#include "engine/alarm/cron.h"
#include "engine/alarm/entry.h"
#include "engine/alarm/scheduler.h"
#include "engine/history/bookmark.h"
#include "engine/history/undo.h"
#include "engine/loop/engine_core.h"
#include "engine/loop/turn.h"
#include "engine/loop/turn_connections.h"
#include "engine/store/keys.h"
#include "engine/store/object_record.h"

namespace carrel::detail {
namespace {

template <typename Fn>
Status guarded(Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Status::aborted(std::string("handler threw: ") + e.what());
  } catch (...) {
    return Status::aborted("handler threw a non-standard exception");
  }
}

// The next occurrence of a repeating entry after a successful delivery; nullopt: none.
Result<std::optional<UnixMs>> next_occurrence(const AlarmEntry& e, UnixMs now) {
  switch (e.repeat.kind) {
    case Repeat::Kind::kNone: return std::optional<UnixMs>{};
    case Repeat::Kind::kEvery: {
      UnixMs next = e.due_ms + e.repeat.every_ms;
      // Missed periods (the engine was down) are skipped, not replayed.
      if (next <= now) next += ((now - next) / e.repeat.every_ms + 1) * e.repeat.every_ms;
      return std::optional<UnixMs>{next};
    }
    case Repeat::Kind::kCron: {
      CARREL_ASSIGN_OR_RETURN(auto cron, alarm::CronExpr::parse(e.repeat.cron));
      return cron.next_after(std::max(now, e.due_ms));
    }
  }
  return std::optional<UnixMs>{};
}

// Exponential backoff with jitter for retry n (1-based).
int64_t backoff_ms(const Options& o, int retry, double jitter_draw) {
  double base = static_cast<double>(o.alarm_retry_initial_ms) * std::ldexp(1.0, retry - 1);
  return static_cast<int64_t>(base * (1.0 + jitter_draw));
}

// The entry an alarm event delivers; nullopt when it was cancelled or moved
// since it was posted.
std::optional<AlarmEntry> due_alarm(Turn& turn, const Event& ev) {
  auto e = turn.alarms().get(ev.alarm_name);
  if (!e.is_ok() || !*e || (*e)->due_ms != ev.alarm_due_ms) return std::nullopt;
  return **e;
}

// Runs the event's handler, after on_start when run_start; a request's reply
// goes to *reply.
Status run_handler(Turn& turn, Event& ev, const std::optional<AlarmEntry>& alarm, bool run_start,
                   std::string* reply) {
  Handler* handler = turn.handler();
  Context& ctx = turn.context();
  if (run_start) {
    Status s = guarded([&] { return handler->on_start(ctx); });
    if (!s.is_ok()) return s.with_context("on_start");
  }
  switch (ev.kind) {
    case EventKind::kRequest:
    case EventKind::kMessage:
      return guarded([&] {
        Result<std::string> r = handler->on_request(ctx, ev.request);
        if (!r.is_ok()) return r.status();
        *reply = std::move(r).value();
        return Status::ok();
      });
    case EventKind::kRun:
      return guarded([&] { return ev.fn(ctx); });
    case EventKind::kAlarm: {
      AlarmInfo info{alarm->name, alarm->payload, alarm->due_ms, alarm->retry_count,
                     alarm->retry_count > 0};
      return guarded([&] { return handler->on_alarm(ctx, info); });
    }
    case EventKind::kRestore:
      break;
  }
  return Status::aborted("unexpected event kind");
}

// After a delivery whose handler left the entry alone: the entry leaves the
// queue, or moves to its next occurrence, in the same commit.
Status advance_alarm(Turn& turn, const AlarmEntry& entry, UnixMs now) {
  CARREL_ASSIGN_OR_RETURN(auto next, next_occurrence(entry, now));
  if (!next) return turn.alarms().remove(entry.name).status();
  AlarmEntry moved = entry;
  moved.due_ms = *next;
  moved.retry_count = 0;
  return turn.alarms().put(moved);
}

Status seal_into(Turn& turn, std::unique_ptr<CommitBatch>* batch) {
  CARREL_ASSIGN_OR_RETURN(*batch, turn.seal());
  return Status::ok();
}

}  // namespace

void EngineCore::run_turn_event(const std::shared_ptr<ObjectSlot>& slot, Event& ev,
                                store::ReadTxn& txn) {
  Activation& act = slot->act;
  Turn turn(*this, slot, txn, ev);
  counters_.turns_run.fetch_add(1, std::memory_order_relaxed);

  std::optional<AlarmEntry> alarm;
  if (ev.kind == EventKind::kAlarm) {
    alarm = due_alarm(turn, ev);
    if (!alarm) {
      // Cancelled or moved since it was posted: its new key woke the scheduler.
      scheduler_->done(slot->id, ev.alarm_name, /*rescan=*/false);
      return;
    }
  }
  if (ev.kind == EventKind::kMessage) turn.consume_message(ev.message_no);

  bool ran_start = act.handler && !act.started;
  std::string reply;
  Status status = run_handler(turn, ev, alarm, ran_start, &reply);
  if (status.is_ok() && alarm && !turn.alarms().touched(alarm->name)) {
    status = advance_alarm(turn, *alarm, clock().now_ms());
  }
  std::unique_ptr<CommitBatch> batch;
  if (status.is_ok()) status = seal_into(turn, &batch);
  if (!status.is_ok()) {
    if (!settle_failed_turn(turn, ev, alarm, ran_start, status, &batch)) return;
  } else if (ran_start) {
    act.started = true;
  }
  if (alarm) counters_.alarms_delivered.fetch_add(1, std::memory_order_relaxed);
  std::vector<Completion> outputs = event_outputs(slot->id, ev, std::move(reply));
  // Connections: the turn's frames leave after its commit (conn_state.h (2)).
  bool frames = status.is_ok() && hold_frames_until_durable(turn.context(), outputs);
  turn.release_after_durable(std::move(batch), std::move(outputs), /*through_committer=*/frames);
}

bool EngineCore::settle_failed_turn(Turn& turn, Event& ev, const std::optional<AlarmEntry>& alarm,
                                    bool ran_start, const Status& status,
                                    std::unique_ptr<CommitBatch>* batch) {
  turn.rollback();
  counters_.turns_failed.fetch_add(1, std::memory_order_relaxed);
  if (ran_start) turn.drop_handler();  // a fresh handler runs on_start again
  if (alarm) {
    finish_alarm(turn, ev, *alarm, status);
    return false;
  }
  if (ev.kind != EventKind::kMessage) {
    if (ev.done) ev.done(status);
    return false;
  }
  // A message whose handler fails is consumed (not retried): see docs/loop.md.
  turn.consume_message(ev.message_no);
  auto sealed = turn.seal();
  if (sealed.is_ok()) *batch = std::move(sealed).value();
  return true;
}

std::vector<Completion> EngineCore::event_outputs(const ObjectId& id, Event& ev,
                                                  std::string reply) {
  std::vector<Completion> outputs;
  if (ev.kind == EventKind::kAlarm) {
    outputs.push_back([this, id, name = ev.alarm_name](const Status& s) {
      scheduler_->done(id, name, /*rescan=*/!s.is_ok());
    });
  } else if (ev.kind == EventKind::kMessage) {
    outputs.push_back([this, no = ev.message_no, m = OutMessage{ev.object, ev.request.method,
                                                                ev.request.payload, ""}](
                          const Status& s) mutable {
      if (s.is_ok()) {
        counters_.messages_delivered.fetch_add(1, std::memory_order_relaxed);
      } else {
        MutexLock lock(janitor_mutex_);
        parked_messages_.emplace_back(no, std::move(m));
      }
    });
  } else if (ev.done) {
    if (ev.allow_unconfirmed) {
      ev.done(std::move(reply));
    } else {
      outputs.push_back([done = std::move(ev.done), reply = std::move(reply)](const Status& s) {
        if (s.is_ok()) done(reply);
        else done(s);
      });
    }
  }
  return outputs;
}

double EngineCore::draw_jitter() {
  std::uniform_real_distribution<double> jitter(-options_.alarm_retry_jitter,
                                                options_.alarm_retry_jitter);
  MutexLock lock(jitter_mutex_);
  return jitter(jitter_rng_);
}

void EngineCore::finish_alarm(Turn& turn, const Event& ev, const AlarmEntry& entry,
                              const Status& result) {
  counters_.alarms_failed.fetch_add(1, std::memory_order_relaxed);
  UnixMs now = clock().now_ms();
  Status s;
  if (entry.retry_count >= options_.alarm_retries_max) {
    DeadLetter dead{entry, now, result.to_string()};
    s = turn.alarms().remove(entry.name).status();
    turn.alarms().put_dead_letter(entry.name, alarm::encode_dead(dead));
  } else {
    AlarmEntry retry = entry;
    retry.retry_count += 1;
    retry.due_ms = now + backoff_ms(options_, retry.retry_count, draw_jitter());
    s = turn.alarms().put(retry);
  }
  std::unique_ptr<CommitBatch> batch;
  if (s.is_ok()) {
    auto sealed = turn.seal();
    if (sealed.is_ok()) batch = std::move(sealed).value();
  }
  // Without a bookkeeping commit the entry stays where it is: look again.
  bool rescan_anyway = batch == nullptr;
  ObjectId id = turn.object().id;
  turn.release_after_durable(
      std::move(batch), {[this, id, name = ev.alarm_name, rescan_anyway](const Status& st) {
        scheduler_->done(id, name, /*rescan=*/rescan_anyway || !st.is_ok());
      }});
}

namespace {

// What history still holds of a bookmark's commit: the log headers of the
// commit itself and of the one after it, when their records are there.
struct BookmarkWitness {
  std::optional<history::LogHeader> at_target, after_target;
};

// The bookmark names a commit the object has, and one the per-object cap
// (history_commits_max) still reaches.
Status check_bookmark_seq(const ObjectRef& object, uint64_t target, uint64_t last,
                          uint64_t commits_max) {
  if (target > last) {
    return Status::invalid_argument("bookmark names commit " + std::to_string(target) +
                                    " but object " + object.label() + " has only " +
                                    std::to_string(last) + " commits");
  }
  if (commits_max != 0 && target < history::cap_floor(last, commits_max)) {
    return Status::not_found(
        "bookmark names commit " + std::to_string(target) + " of " + object.label() +
        ", but history_commits_max is " + std::to_string(commits_max) + " and its last commit is " +
        std::to_string(last) + ", so history does not reach back past commit " +
        std::to_string(last - commits_max) + "; see `carrel history` for the oldest bookmark");
  }
  return Status::ok();
}

// Walks the object's chain from the newest record down to target
// (history/undo.h (3)), keeping the headers of target and target + 1.
Result<BookmarkWitness> walk_to_bookmark(store::Store& store, const store::ReadTxn& txn,
                                         const ObjectId& id, const store::ObjectRecord& rec,
                                         uint64_t target, uint64_t last, uint64_t commits_max) {
  history::ChainWalk walk(txn.get(), store.dbi(store::Db::kHistory), id, rec,
                          history::cap_floor(rec.last_seq, commits_max));
  BookmarkWitness w;
  for (uint64_t seq = last; seq >= target && seq > 0; --seq) {
    CARREL_ASSIGN_OR_RETURN(auto step, walk.next());
    if (!step) break;
    if (seq == target) w.at_target = step->header;
    if (seq == target + 1) w.after_target = step->header;
  }
  return w;
}

// Every record from the last commit down to target + 1 must be there, and a
// bookmark names a real commit: its time is that commit's time. When the
// commit's own record is gone, the time is the last commit's (target ==
// last) or at most the next commit's.
Status check_bookmark_history(const BookmarkWitness& w, const ObjectRef& object, const Event& ev,
                              uint64_t last, int64_t last_commit_ms, int64_t retention_ms) {
  const uint64_t target = ev.restore_seq;
  if (target < last && !w.after_target) {
    return Status::not_found("history of " + object.label() + " does not reach back to commit " +
                             std::to_string(target) + " (retention " +
                             std::to_string(retention_ms) +
                             " ms); see `carrel history` for the oldest bookmark");
  }
  if (target == 0) return Status::ok();
  bool time_ok = w.at_target      ? w.at_target->time_ms == ev.restore_time_ms
                 : target == last ? last_commit_ms == ev.restore_time_ms
                 : w.after_target ? ev.restore_time_ms <= w.after_target->time_ms
                                  : true;
  if (!time_ok) {
    return Status::invalid_argument("bookmark's time does not match commit " +
                                    std::to_string(target) + " of " + object.label());
  }
  return Status::ok();
}

// Checks a restore's bookmark against the object's history. Every earlier
// commit is made durable first, so LMDB holds the whole history to check.
Status check_bookmark(Turn& turn, const Activation& act, const Event& ev) {
  EngineCore& core = turn.core();
  const Options& o = core.options();
  const uint64_t last = act.next_seq - 1;
  CARREL_RETURN_IF_ERROR(
      check_bookmark_seq(turn.object(), ev.restore_seq, last, o.history_commits_max));
  CARREL_RETURN_IF_ERROR(turn.wait_durable(nullptr));
  // The newest record (commit/records.h) and a snapshot that holds its chain.
  CARREL_ASSIGN_OR_RETURN(auto found, core.record_and_snapshot(turn.object().id));
  const store::ObjectRecord rec = found.first.value_or(store::ObjectRecord{});
  CARREL_ASSIGN_OR_RETURN(BookmarkWitness w,
                          walk_to_bookmark(core.store(), found.second, turn.object().id, rec,
                                           ev.restore_seq, last, o.history_commits_max));
  return check_bookmark_history(w, turn.object(), ev, last, act.last_commit_ms,
                                o.history_retention_ms);
}

}  // namespace

void EngineCore::run_restore(const std::shared_ptr<ObjectSlot>& slot, Event& ev,
                             store::ReadTxn& txn) {
  Activation& act = slot->act;
  Turn turn(*this, slot, txn, ev);
  auto reply = [&](Result<std::string> r) {
    if (ev.done) ev.done(std::move(r));
  };
  Status s = check_bookmark(turn, act, ev);
  if (!s.is_ok()) return reply(s);
  const uint64_t last = act.next_seq - 1;
  // The bookmark of the state before the restore, which undoes it.
  std::string undo = history::Bookmark{act.last_commit_ms, last, slot->id}.to_string();
  if (ev.restore_seq == last) return reply(undo);
  std::unique_ptr<CommitBatch> batch = turn.numbered_batch();
  batch->restore_to_seq = ev.restore_seq;
  s = turn.wait_durable(std::move(batch));
  // Drop the handler, SQL connection and overlays; the next event reloads.
  act = Activation{};
  if (s.is_ok()) return reply(undo);
  reply(s);
}

}  // namespace carrel::detail
