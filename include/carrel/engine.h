// carrel/engine.h — the engine: open a directory, register classes, send events.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "carrel/connections.h"
#include "carrel/context.h"
#include "carrel/handler.h"
#include "carrel/options.h"
#include "carrel/status.h"

namespace carrel {

namespace detail {
class EngineCore;
}

struct CallOptions {
  // Release the reply when the turn ends instead of when its commit is durable.
  // The reply may then describe state that a crash or commit failure loses.
  bool allow_unconfirmed = false;
};

using ReplyCallback = std::function<void(Result<std::string>)>;

struct EngineStats {
  uint64_t turns_run = 0;
  uint64_t turns_failed = 0;
  uint64_t commits = 0;           // LMDB write transactions committed
  uint64_t commits_failed = 0;
  uint64_t turns_committed = 0;   // sealed turns in those commits
  uint64_t turns_per_commit_max = 0;
  uint64_t fsyncs = 0;            // flushes of data.mdb (sync mode)
  uint64_t bytes_written = 0;     // key + value bytes put, history included
  uint64_t active_objects = 0;
  uint64_t evictions = 0;
  uint64_t mailbox_rejections = 0;
  uint64_t alarms_delivered = 0;
  uint64_t alarms_failed = 0;
  uint64_t messages_delivered = 0;
  uint64_t turns_inline = 0;  // of turns_run: run on the caller's thread (docs/loop.md)
  // Of commits: made on the thread of the caller waiting for its turn's reply
  // (nosync, when the committer was idle; docs/loop.md).
  uint64_t commits_on_caller = 0;
  // LMDB reader slots of dead processes (a killed CLI reader, say) freed, at
  // open and by the janitor's periodic check, so their pinned pages are reused.
  uint64_t dead_readers_cleared = 0;
  double turns_per_commit_mean() const {
    return commits == 0 ? 0.0 : static_cast<double>(turns_committed) / static_cast<double>(commits);
  }
};

class Engine;

// Sends events to one object. Cheap to copy; valid while its Engine lives.
class Stub {
 public:
  const ObjectRef& object() const { return object_; }
  // The reply once the turn's commit is durable (see CallOptions), or its error.
  std::future<Result<std::string>> call(std::string_view method, std::string_view payload,
                                        CallOptions options = {});
  // The same, waiting for the reply. When the object is idle (no turn running,
  // nothing queued) the turn runs on the calling thread, with the same input
  // and output gates: the fast path for callers that wait anyway.
  Result<std::string> call_blocking(std::string_view method, std::string_view payload,
                                    CallOptions options = {});
  // The same, without blocking anybody: done runs on an engine thread and must not block.
  void call_async(std::string_view method, std::string_view payload, ReplyCallback done,
                  CallOptions options = {});

 private:
  friend class Engine;
  Stub(detail::EngineCore* core, ObjectRef object) : core_(core), object_(std::move(object)) {}
  detail::EngineCore* core_;
  ObjectRef object_;
};

class Engine {
 public:
  // Opens (or with create_if_missing creates) the engine directory. Errors:
  // InvalidArgument for bad options; NotFound for a missing directory;
  // Corruption for a directory that is not a carrel engine or has another
  // format version; Busy when this process or another already has it open.
  static Result<std::unique_ptr<Engine>> open(Options options);
  // close(), then frees everything.
  ~Engine();

  // Register before sending events to the class. InvalidArgument for an empty
  // name or one registered already.
  Status register_class(std::string_view class_name, HandlerFactory factory);

  Stub stub(const ObjectRef& object);
  Stub stub(std::string_view class_name, std::string_view name) {
    return stub(ObjectRef::named(class_name, name));
  }

  // Runs fn as one turn on the object (after on_start, when the class has a
  // handler) and waits until its commit is durable. fn's error, or a throw,
  // rolls the turn back and is returned. Runs on the calling thread when the
  // object is idle, like Stub::call_blocking.
  Status run(const ObjectRef& object, const std::function<Status(Context&)>& fn);
  std::future<Status> submit(const ObjectRef& object, std::function<Status(Context&)> fn);

  // The object's latest bookmark; NotFound when it never committed. Names a
  // durable commit only: waits while the object's last commit waits for its
  // sync, and fails if that fails (Deadlock when called on the thread that
  // must make it: a call_async reply or the commit hook).
  Result<std::string> current_bookmark(const ObjectRef& object);
  // The bookmark of the last commit at or before time t; waits as current_bookmark does.
  Result<std::string> bookmark_for_time(const ObjectRef& object, UnixMs t);
  // Restores KV, SQL and alarms to the bookmark as one commit and returns the
  // bookmark that undoes the restore. The object's handler restarts (on_start).
  Result<std::string> restore(const ObjectRef& object, std::string_view bookmark);

  // Writes a consistent, compacted copy of the engine to dest_dir (created; must be empty).
  Status backup(const std::string& dest_dir);

  // Stops accepting events, finishes queued ones, waits for the committer and
  // closes LMDB. Events that could not run get Aborted. Idempotent. Returns
  // the error that stopped the engine, if one did (a broken redo log, a
  // failed sync of data.mdb: docs/reliability.md); the directory is closed
  // all the same and may be opened again.
  Status close();

  // The transport's way in for connections (carrel/connections.h).
  ConnectionHub& connections();

  EngineStats stats() const;
  const Options& options() const;

  detail::EngineCore* core() { return core_.get(); }  // internal: tools and tests

 private:
  explicit Engine(std::unique_ptr<detail::EngineCore> core);
  std::unique_ptr<detail::EngineCore> core_;
};

}  // namespace carrel
