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
//  (5) Every batch the object sends to the committer is stamped by
//      output_batch()/numbered_batch(): seqs are consecutive, commit times
//      never decrease, and sealed_seq is the last seq stamped.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "carrel/context.h"
#include "carrel/handler.h"
#include "engine/alarm/turn_alarms.h"
#include "engine/commit/batch.h"
#include "engine/kv/turn_kv.h"
#include "engine/loop/object.h"
#include "engine/loop/page_source.h"
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
  // Drops the handler after a failed on_start: the next turn makes a fresh one.
  void drop_handler() { act_.handler.reset(); }

  // The turn's KV and alarm entries: the parts own their logic, over the
  // turn's layers and the pending overlay (KvLayers, AlarmLayers below).
  kv::TurnKv& kv() { return kv_; }
  alarm::TurnAlarms& alarms() { return alarms_; }

  // The object's SQL database, opened lazily, with the turn's SQL transaction begun.
  Result<sql::SqlDatabase*> sql();
  // Raw SQL pages for export/import (engine/transfer/export.cc). Both refuse a
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
  // The one place a batch is stamped (invariant (5)). An output batch is
  // addressed to the object (slot, generation) and carries no writes (seq 0);
  // a numbered batch also takes the object's next seq and a commit time never
  // below the previous one, and raises sealed_seq to its seq.
  std::unique_ptr<CommitBatch> output_batch();
  std::unique_ptr<CommitBatch> numbered_batch();
  // Drops every unsealed write, including the SQL transaction.
  void rollback();
  // Queues outputs behind everything the object sealed: submits batch when it
  // has writes, else an output-only marker when commits are in flight, else
  // runs the outputs now — unless through_committer, when an output-only marker
  // always goes to the committer, so the outputs run on its thread in commit
  // order (connection frames, conn_state.h (2)).
  void release_after_durable(std::unique_ptr<CommitBatch> batch, std::vector<Completion> outputs,
                             bool through_committer = false);
  // Waits (blocking this worker) until every commit sealed so far is durable,
  // or failed: once the batch is submitted it always waits, even when no
  // spare worker may start for the wait (workers_blocked_extra_max).
  Status wait_durable(std::unique_ptr<CommitBatch> batch);

 private:
  struct Layer {
    kv::Writes kv;
    bool kv_cleared = false;
    alarm::Writes alarms;
    std::map<std::string, std::optional<std::string>, std::less<>> dead;
    std::vector<OutMessage> messages;
    void merge_from(Layer&& top);
  };
  // The turn's layers over the pending overlay, as the KV part sees them.
  class KvLayers final : public kv::KvOverlay {
   public:
    explicit KvLayers(Turn& turn) : turn_(turn) {}
    std::optional<kv::Value> find(std::string_view key) const override;
    bool collect(const kv::KeyRange& range, kv::Writes* out) const override;
    void write(std::string key, kv::Value value) override;
    void clear() override;
    Status charge(size_t bytes) override { return turn_.add_dirty(bytes); }

   private:
    Turn& turn_;
  };
  // The turn's layers over the pending overlay, as the alarm part sees them.
  class AlarmLayers final : public alarm::AlarmOverlay {
   public:
    explicit AlarmLayers(Turn& turn) : turn_(turn) {}
    std::optional<alarm::Encoded> find(std::string_view name) const override;
    void collect(alarm::Writes* out) const override;
    size_t stored_count() const override;
    Result<uint32_t> record_count() override;
    bool written_by_turn(std::string_view name) const override;
    void write(std::string name, alarm::Encoded entry) override;
    void write_dead(std::string name, std::string encoded) override;
    Status charge(size_t bytes) override { return turn_.add_dirty(bytes); }

   private:
    Turn& turn_;
  };

  Status add_dirty(size_t bytes);
  // Makes the object's page source (once) and binds it to this turn's snapshot.
  Status bind_pages();
  // The object's SQL connection; null before its first SQL use.
  sql::SqlDatabase* db() const { return act_.sql ? act_.sql->db.get() : nullptr; }
  // The object's page source; only after bind_pages().
  ObjectPageSource& page_source() { return act_.sql->pages; }

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
  KvLayers kv_layers_{*this};
  kv::TurnKv kv_;
  AlarmLayers alarm_layers_{*this};
  alarm::TurnAlarms alarms_;
};

}  // namespace carrel::detail
