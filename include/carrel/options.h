// carrel/options.h — engine options, their defaults and their limits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "carrel/clock.h"
#include "carrel/status.h"

namespace carrel {

enum class Durability {
  // Default. A commit is fsynced before any output that depends on it is
  // released: an acknowledged turn survives a process crash and a power loss.
  kSync,
  // Commits are written (to the OS page cache) but not fsynced before outputs
  // are released. An acknowledged turn survives a crash of the process. A power
  // loss or kernel crash may lose the most recent commits, and because LMDB
  // then does not order its data and meta page writes (MDB_NOSYNC), a file
  // system that reorders writes may leave the environment damaged: use kSync
  // wherever power loss matters. See docs/reliability.md.
  kNoSync,
};

// What the committer is about to commit; passed to Options::commit_hook.
struct CommitInfo {
  uint64_t commit_number = 0;  // 1 for the first commit since open
  size_t turns = 0;            // sealed turns in this write transaction
  size_t bytes = 0;            // key + value bytes written
};

// Called by the committer thread after a group's writes and before the LMDB
// commit (with a hook set, every commit is made on that thread). A non-ok Status aborts the write transaction and fails every turn in
// it, exactly as a real I/O error would. May block (to delay commits in tests).
using CommitHook = std::function<Status(const CommitInfo&)>;

// A file operation of the redo log (Options::redo_log), passed to
// Options::redo_fault_hook.
enum class RedoStep {
  kReserve,     // allocating a segment's space for a commit's record, before the commit
  kWrite,       // writing the commit's record, after the commit
  kSync,        // an fdatasync of a segment (the syncer's, or before a segment switch)
  kCheckpoint,  // a checkpoint's sync of data.mdb and write of its slot
};

// Called before each redo log step, on whichever engine thread takes it (the
// committer, the syncer or the checkpointer). A non-ok Status is taken as
// that step's failure, exactly as a real I/O error would be: a failed
// reserve fails the commit and the next one tries again; any other failure
// breaks the log (engine/store/redo.h (7)). Must not block for long.
using RedoFaultHook = std::function<Status(RedoStep)>;

// Called before each fdatasync of data.mdb that the committer asks for itself,
// outside LMDB's own commit: sync mode without Options::redo_log, where a
// commit held by defer_meta_sync, a maintenance task or stop() is made durable
// that way (engine/commit/committer.h (6)). A non-ok Status is taken as that
// sync's failure, exactly as a real I/O error would be: the engine stops
// (engine/store/store.h (5)). Must not block for long.
using DataSyncFaultHook = std::function<Status()>;

struct Options {
  // The engine directory. Holds data.mdb, lock.mdb and writer.lock.
  std::string dir;
  bool create_if_missing = true;
  // Open for reading only (the CLI's inspection commands). No events run.
  bool read_only = false;
  Durability durability = Durability::kSync;
  // Sync mode: when a group commit is already queued behind a commit, skip
  // that commit's meta page sync and release its replies after the next
  // commit's data sync covered it (engine/commit/committer.h (6)): one
  // fdatasync per group instead of two. Off by default: with clients that
  // each wait for their reply (every carrel-bench workload), the held
  // replies halve the turns per commit and throughput fell (kv-write sync
  // 0.82x, hot-object sync 0.67x, median of 3 in one binary; see
  // docs/design-notes.md). For many independent writers that do not wait.
  bool defer_meta_sync = false;
  // Sync mode: before a commit, while fewer turns are queued than the last
  // commit held, wait for more: at most a quarter of the last commit's
  // duration, never more than 2 ms (engine/commit/committer.h (8)). Clients
  // that wait for their replies otherwise split into two cohorts that commit
  // in turn, each commit holding half of them. No wait with one client or in
  // nosync mode. Measured (docs/design-notes.md): sql-insert 1.10x, kv-write
  // 1.04x, hot-object 1.01x, chat 0.92x turns/s on a quiet machine.
  bool group_commit_linger = true;
  // Sync mode: make each commit durable with one sequential fdatasync of a
  // redo log (DIR/redo.0, redo.1, redo.ckpt) instead of LMDB's two flushes of
  // data.mdb; a background checkpoint syncs data.mdb (engine/store/redo.h).
  // A directory the log left after a crash is recovered at the next
  // writable open; a clean close leaves data.mdb alone. defer_meta_sync has
  // no effect with it.
  bool redo_log = true;
  // A directory whose redo files were removed or damaged while the log was in
  // use (engine/store/redo.h (9)) is refused, Corruption naming what is
  // missing. Set, a writable open takes data.mdb as it was last written
  // instead: the commits only the log held are lost. For operators (`carrel
  // recover --discard-lost-redo`), never for a normal open.
  bool discard_lost_redo_log = false;

  // Address space reserved for the LMDB map (not disk). Hitting it is NoSpace.
  uint64_t map_bytes_max = uint64_t{64} << 30;

  // KV limits. LMDB keys are at most 511 bytes and carrel prefixes each with
  // the object's 8-byte number, so key_bytes_max may not exceed 503.
  size_t key_bytes_max = 495;
  size_t value_bytes_max = size_t{2} << 20;
  // Keys in one get_many / put_many / del_many call (Durable Objects: 128).
  size_t kv_batch_keys_max = 128;
  // Key + value bytes one turn may write before its writes fail InvalidArgument.
  size_t turn_dirty_bytes_max = size_t{64} << 20;

  // Request loop.
  int workers = 0;                       // 0: one per hardware thread
  int workers_blocked_extra_max = 256;   // extra threads while workers block in ctx.call
  size_t mailbox_depth_max = 4096;       // events queued per object; beyond: Busy
  size_t active_objects_max = 10000;     // live handlers; LRU idle ones are evicted past it
  int64_t idle_timeout_ms = 10000;       // an idle object is evicted after this
  size_t call_depth_max = 64;            // nested ctx.call chain length

  // History (point-in-time recovery). 0 turns history off.
  int64_t history_retention_ms = int64_t{30} * 24 * 3600 * 1000;
  // Per-object cap on retained history, in commits (0: no cap). Each commit
  // drops the undo record that falls out of the window, so an object keeps at
  // most this many (plus any left from before the cap was lowered, which
  // retention by time removes).
  uint64_t history_commits_max = 0;

  // Alarms.
  int64_t alarm_retry_initial_ms = 2000;  // first backoff; doubles per retry
  double alarm_retry_jitter = 0.25;       // +-25% of each backoff
  int alarm_retries_max = 6;              // counted retries before the dead-letter list
  size_t alarms_per_object_max = 1000;
  size_t alarm_payload_bytes_max = size_t{64} << 10;
  size_t alarm_name_bytes_max = 256;

  // SQL. The page size is fixed when the directory is created (stored in meta).
  uint32_t sql_page_bytes = 1024;
  int sql_cache_pages = 256;               // per-object SQLite page cache
  size_t sql_statement_bytes_max = 100000;
  int sql_params_max = 999;
  size_t sql_value_bytes_max = size_t{2} << 20;
  // The SQL budget of one turn (handlers, the CLI's sql command, imports):
  // its statements together may run at most sql_turn_steps_max SQLite
  // virtual-machine steps (checked every 1000 steps) and spend at most
  // sql_turn_ms_max milliseconds of wall time inside SQLite (read on the
  // coarse monotonic clock: right to a few ms). Past either the
  // running statement is interrupted and the turn fails Aborted naming the
  // option: its SQL is rolled back and nothing of it commits. 0: no limit.
  uint64_t sql_turn_steps_max = 0;
  int64_t sql_turn_ms_max = 30000;
  // Memory one object's SQL connection may hold in temporary files (sorts,
  // materialised subqueries and CTEs, temp tables, statement journals), all
  // kept in memory. Past it the statement fails and so does the turn
  // (Aborted, naming the option). 0: no limit. A per-connection bound on the
  // rest of SQLite's heap: the page cache (sql_cache_pages) and the turn's
  // changed pages (turn_dirty_bytes_max); sqlite3_hard_heap_limit64 is
  // process-wide, so carrel does not set it.
  size_t sql_temp_bytes_max = size_t{256} << 20;
  // Polled while SQL runs (every 1000 SQLite steps, on the thread running the
  // statement): when it returns true the running statement stops and the
  // turn fails Aborted ("interrupted"), its SQL rolled back, as for the
  // budgets above. Must be cheap and thread-safe; e.g. the CLI's REPL stops a
  // statement on Ctrl-C with it. Empty: never.
  std::function<bool()> sql_interrupt;

  // Connections (carrel/connections.h); Durable Objects' limits where it has them.
  size_t connections_per_object_max = 32768;
  size_t connection_attachment_bytes_max = 2048;
  size_t connection_tags_max = 10;
  size_t connection_tag_bytes_max = 256;
  size_t connection_frame_bytes_max = size_t{1} << 20;
  // Per connection: frames held for their commit plus what the transport has
  // not written yet. Beyond it sends are refused (Busy) or skipped (broadcast).
  size_t connection_queued_bytes_max = size_t{4} << 20;

  // Time. Null: SystemClock.
  std::shared_ptr<Clock> clock;
  // Fault injection; see CommitHook, RedoFaultHook and DataSyncFaultHook.
  CommitHook commit_hook;
  RedoFaultHook redo_fault_hook;
  DataSyncFaultHook data_sync_fault_hook;
  // Seed for alarm jitter; 0 draws one from the OS.
  uint64_t random_seed = 0;
};

}  // namespace carrel
