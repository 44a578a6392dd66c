// A turn: one event's run on one object, and everything it writes.
//
// Invariants:
//  (1) A turn's writes live in its layers until seal(); layers_[0] is the
//      turn, each ctx.transaction() pushes one more and pops it on the way out
//      (merged into the one below on success, dropped on failure).
//  (2) Reads see, newest first: the layers, the activation's pending overlay
//      (sealed, not yet durable commits), then the LMDB snapshot taken at turn
//      start, which holds every commit up to the durable_seq read before it.
//  (3) seal() runs SQLite's COMMIT first; only when it returned OK do the SQL
//      pages join the batch. After seal() the turn's writes are in the pending
//      overlay, so the object's next turn reads them (pipelining).
//  (4) Nothing in a Turn is shared with another thread; it runs on the worker
//      that owns its object.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "carrel/context.h"
#include "carrel/handler.h"
#include "engine/commit/batch.h"
#include "engine/loop/object.h"
#include "engine/store/store.h"

namespace carrel::sql {
class SqlDatabase;
}

namespace carrel::detail {

class EngineCore;

class Turn {
 public:
  Turn(EngineCore& core, std::shared_ptr<ObjectSlot> slot, store::ReadTxn& txn, const Event& event);
  ~Turn();

  // The turn behind a handler's Context (engine-internal callers only).
  static Turn& of(Context& ctx) { return *ctx.turn_; }

  Context& context() { return ctx_; }
  const ObjectRef& object() const { return object_; }
  EngineCore& core() { return core_; }
  // The object's handler (null for a class without one): connection events call it.
  Handler* handler() const { return act_.handler.get(); }

  // KV (see carrel/kv.h for the contracts).
  Result<std::optional<std::string>> kv_get(std::string_view key);
  Result<Entries> kv_get_many(const std::vector<std::string>& keys);
  Status kv_put(std::string_view key, std::string_view value);
  Status kv_put_many(const Entries& entries);
  Result<bool> kv_del(std::string_view key);
  Result<size_t> kv_del_many(const std::vector<std::string>& keys);
  Status kv_delete_all();
  Result<Entries> kv_list(const ListOptions& options);

  // Alarm entries, by name.
  Result<std::optional<AlarmEntry>> alarm_get(std::string_view name);
  Status alarm_put(const AlarmEntry& entry);
  Result<bool> alarm_delete(std::string_view name);
  Result<std::vector<AlarmEntry>> alarm_list();
  // Whether this turn wrote the entry (on_alarm re-armed or cancelled it itself).
  bool alarm_touched(std::string_view name) const;
  // Moves an alarm to the dead-letter list in this turn.
  void dead_letter_put(const std::string& name, std::string encoded);

  // The object's SQL database, opened lazily, with the turn's SQL transaction begun.
  Result<sql::SqlDatabase*> sql();
  // Raw SQL pages for export/import (engine/history/export.h). Both refuse a
  // turn that already used SQL: its transaction may hold unwritten pages.
  // export_pages calls on_count with the file's length in pages, then on_page
  // for every present page in page order.
  Status export_pages(const std::function<Status(uint32_t count)>& on_count,
                      const std::function<Status(uint32_t, std::string_view)>& on_page);
  // Writes a whole database file (count pages; absent ones read as zeros) into
  // an object that has no SQL pages. The object's SQL connection is closed so
  // the next turn opens the imported file.
  Status import_pages(uint32_t count, const std::map<uint32_t, std::string>& pages);

  Status transaction(const std::function<Status()>& fn);
  Status send(const ObjectRef& target, std::string_view method, std::string_view payload);
  Result<std::string> call(const ObjectRef& target, std::string_view method,
                           std::string_view payload);
  Result<std::string> current_bookmark();

  // Marks an outbox message as processed by this turn.
  void consume_message(uint64_t message_no) { consumed_message_ = message_no; }

  // Ends the turn's writing: commits its SQL transaction and returns the batch
  // (nullptr when the turn wrote nothing), already merged into the pending
  // overlay and numbered. On error the caller must rollback().
  Result<std::unique_ptr<CommitBatch>> seal();
  // Drops every unsealed write, including the SQL transaction.
  void rollback();
  // Queues outputs behind everything the object sealed: submits batch when it
  // has writes, else an output-only marker when commits are in flight, else
  // runs the outputs now — unless through_committer, when an output-only marker
  // always goes to the committer, so the outputs run on its thread in commit
  // order (connection frames, conn_state.h (2)).
  void release_after_durable(std::unique_ptr<CommitBatch> batch, std::vector<Completion> outputs,
                             bool through_committer = false);
  // Waits (blocking this worker) until every commit sealed so far is durable.
  Status wait_durable(std::unique_ptr<CommitBatch> batch);

 private:
  struct Layer {
    std::map<std::string, std::optional<std::string>, std::less<>> kv;
    bool kv_cleared = false;
    std::map<std::string, std::optional<std::string>, std::less<>> alarms;
    std::map<std::string, std::optional<std::string>, std::less<>> dead;
    std::vector<OutMessage> messages;
    void merge_from(Layer&& top);
  };
  Status check_key(std::string_view key) const;
  Status add_dirty(size_t bytes);
  Result<std::optional<std::string>> kv_lookup(std::string_view key);
  // Whether key holds a value, damaged or not (for deletes).
  Result<bool> kv_present(std::string_view key);
  Result<std::optional<std::string>> alarm_lookup(std::string_view name);
  bool alarm_count_below(size_t max);
  Status bind_pages();
  // The stored form of this object's value under name in db (checksum.h (4)).
  std::optional<std::string> sealed(store::Db db, std::string_view name,
                                    const std::optional<std::string>& value) const;

  EngineCore& core_;
  std::shared_ptr<ObjectSlot> slot_;
  Activation& act_;
  store::ReadTxn& txn_;
  const Event& event_;
  ObjectRef object_;
  Context ctx_;
  std::vector<Layer> layers_;
  size_t dirty_bytes_ = 0;
  int sql_begin_depth_ = -1;  // layers_.size() when the SQL transaction began
  bool pages_bound_ = false;
  std::optional<uint64_t> consumed_message_;
};

}  // namespace carrel::detail
