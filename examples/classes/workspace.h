// examples/classes/workspace.h — the Workspace object of the Durable Objects
// playbook, and its child Thread objects.
//
// A Workspace keeps its projects and a directory of its threads in its own SQL
// database, its identity in KV, and a named monthly cleanup alarm (cron
// "0 3 1 * *", 03:00 UTC on the 1st). Each thread is an object of its own
// (class Thread) holding its own messages, so listing threads reads only the
// workspace's directory and never wakes a thread.
//
// Workspace methods (payload fields are '|'-separated):
//   init            workspace_id|owner_id -> "created" or "exists" (idempotent)
//   id              -> workspace_id; NotFound before init
//   create_project  name -> project id (an existing name returns its id)
//   list_projects   -> "id|name|created" lines, newest first
//   create_thread   name -> thread id (the Thread object is initialized first)
//   list_threads    -> "id|name" lines, oldest first
//   delete_thread   thread_id -> "deleted"; NotFound for an unknown thread
// Thread methods:
//   init            thread_id|workspace_id|name -> "ok"
//   post            user|content -> message number
//   messages        -> "user|content" lines, oldest first
//   destroy         -> "destroyed" (sent by the workspace; drops all its data)
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "classes/common.h"

namespace carrel::examples {

inline constexpr char kWorkspaceClass[] = "Workspace";
inline constexpr char kThreadClass[] = "Thread";
inline constexpr char kCleanupAlarm[] = "monthly-cleanup";
inline constexpr char kCleanupCron[] = "0 3 1 * *";
// Projects older than this are removed by the monthly cleanup.
inline constexpr int64_t kProjectMaxAgeMs = 90 * kDayMs;

// The first time "0 3 1 * *" fires after now_ms: 03:00 UTC on the 1st of this
// month if still ahead, else of the next month. The engine computes later
// occurrences itself from the cron rule.
inline UnixMs next_monthly_cleanup_ms(UnixMs now_ms) {
  using namespace std::chrono;
  sys_days today = floor<days>(sys_time<milliseconds>(milliseconds(now_ms)));
  year_month_day ymd(today);
  auto at = [](year_month ym) {
    sys_days first = ym / day(1);
    return duration_cast<milliseconds>((first + hours(3)).time_since_epoch()).count();
  };
  year_month this_month = ymd.year() / ymd.month();
  UnixMs candidate = at(this_month);
  return candidate > now_ms ? candidate : at(this_month + months(1));
}

class Workspace final : public Handler {
 public:
  // Like a constructor under blockConcurrencyWhile: runs before any event of
  // this activation, and commits with the first event's turn.
  Status on_start(Context& ctx) override {
    return ctx.sql()
        .exec(
            "CREATE TABLE IF NOT EXISTS projects ("
            "  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS threads ("
            "  id TEXT PRIMARY KEY, name TEXT NOT NULL, created INTEGER NOT NULL)")
        .status();
  }

  Result<std::string> on_request(Context& ctx, const Request& request) override {
    const std::string& m = request.method;
    if (m == "init") return init(ctx, request);
    if (m == "id") return workspace_id(ctx);
    if (m == "create_project") return create_project(ctx, request.payload);
    if (m == "list_projects") return list_projects(ctx);
    if (m == "create_thread") return create_thread(ctx, request.payload);
    if (m == "list_threads") return list_threads(ctx);
    if (m == "delete_thread") return delete_thread(ctx, request.payload);
    return unknown_method(ctx, request);
  }

  Status on_alarm(Context& ctx, const AlarmInfo& alarm) override {
    if (alarm.name != kCleanupAlarm) return Status::ok();
    // The cron rule moves the entry to next month in this same commit.
    CARREL_ASSIGN_OR_RETURN(auto removed, ctx.sql().exec("DELETE FROM projects WHERE created < ?",
                                                         ctx.now_ms() - kProjectMaxAgeMs));
    return ctx.kv().put("last_cleanup", std::to_string(ctx.now_ms()) + "|" +
                                            std::to_string(removed.rows_written()));
  }

 private:
  // Storage starts empty, so identity is stored explicitly (the playbook's
  // init()). carrel does know the object's name (ctx.object().name), but the
  // owner is not in the name, and init() keeps the pattern portable.
  Result<std::string> init(Context& ctx, const Request& request) {
    CARREL_ASSIGN_OR_RETURN(auto f, expect_fields(request, 2));
    CARREL_ASSIGN_OR_RETURN(auto existing, ctx.kv().get("workspace_id"));
    if (existing) {
      if (*existing != f[0]) {
        return Status::invalid_argument("workspace " + ctx.object().label() +
                                        " is already initialized as " + *existing);
      }
      return std::string("exists");
    }
    CARREL_RETURN_IF_ERROR(ctx.kv().put_many({{"workspace_id", f[0]}, {"owner_id", f[1]}}));
    CARREL_RETURN_IF_ERROR(ctx.alarms().schedule(
        kCleanupAlarm, next_monthly_cleanup_ms(ctx.now_ms()), {}, Repeat::cron_expr(kCleanupCron)));
    return std::string("created");
  }

  Result<std::string> workspace_id(Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(auto id, ctx.kv().get("workspace_id"));
    if (!id) {
      return Status::not_found("workspace " + ctx.object().label() +
                               " is not initialized: call init first");
    }
    return *id;
  }

  Result<std::string> create_project(Context& ctx, const std::string& name) {
    if (name.empty()) return Status::invalid_argument("create_project: empty project name");
    CARREL_ASSIGN_OR_RETURN(auto found,
                            ctx.sql().exec("SELECT id FROM projects WHERE name = ?", name));
    if (found.size() == 1) return found.rows()[0].get_text(0);
    std::string id = new_unique_id("Project").to_hex();
    CARREL_RETURN_IF_ERROR(ctx.sql()
                               .exec("INSERT INTO projects (id, name, created) VALUES (?, ?, ?)",
                                     id, name, ctx.now_ms())
                               .status());
    return id;
  }

  Result<std::string> list_projects(Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(
        auto rows, ctx.sql().exec("SELECT id, name, created FROM projects ORDER BY created DESC"));
    std::string out;
    for (const SqlRow& row : rows) {
      CARREL_ASSIGN_OR_RETURN(auto id, row.get_text(0));
      CARREL_ASSIGN_OR_RETURN(auto name, row.get_text(1));
      CARREL_ASSIGN_OR_RETURN(auto created, row.get_int(2));
      out += id + "|" + name + "|" + std::to_string(created) + "\n";
    }
    return out;
  }

  Result<std::string> create_thread(Context& ctx, const std::string& name) {
    CARREL_ASSIGN_OR_RETURN(auto workspace, workspace_id(ctx));
    std::string thread_id = new_unique_id(kThreadClass).to_hex();
    // The child is initialized before the directory row is written: ctx.call
    // commits this turn's earlier writes, so calling first means a failed init
    // leaves no row pointing at a thread that does not exist.
    CARREL_RETURN_IF_ERROR(ctx.call(ObjectRef::named(kThreadClass, thread_id), "init",
                                    join_fields({thread_id, workspace, name}))
                               .status());
    CARREL_RETURN_IF_ERROR(ctx.sql()
                               .exec("INSERT INTO threads (id, name, created) VALUES (?, ?, ?)",
                                     thread_id, name, ctx.now_ms())
                               .status());
    return thread_id;
  }

  Result<std::string> list_threads(Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(auto rows,
                            ctx.sql().exec("SELECT id, name FROM threads ORDER BY created, id"));
    std::string out;
    for (const SqlRow& row : rows) {
      CARREL_ASSIGN_OR_RETURN(auto id, row.get_text(0));
      CARREL_ASSIGN_OR_RETURN(auto name, row.get_text(1));
      out += id + "|" + name + "\n";
    }
    return out;
  }

  Result<std::string> delete_thread(Context& ctx, const std::string& thread_id) {
    CARREL_ASSIGN_OR_RETURN(auto gone,
                            ctx.sql().exec("DELETE FROM threads WHERE id = ?", thread_id));
    if (gone.rows_written() == 0) {
      return Status::not_found("workspace " + ctx.object().label() + " has no thread " + thread_id);
    }
    // The directory row and the destroy message commit together: the thread
    // is told exactly once, and only if the reference is really gone.
    CARREL_RETURN_IF_ERROR(ctx.send(ObjectRef::named(kThreadClass, thread_id), "destroy", {}));
    return std::string("deleted");
  }
};

class Thread final : public Handler {
 public:
  Status on_start(Context& ctx) override {
    return ctx.sql()
        .exec(
            "CREATE TABLE IF NOT EXISTS messages ("
            "  n INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, content TEXT NOT NULL,"
            "  created INTEGER NOT NULL)")
        .status();
  }

  Result<std::string> on_request(Context& ctx, const Request& request) override {
    const std::string& m = request.method;
    if (m == "init") {
      CARREL_ASSIGN_OR_RETURN(auto f, expect_fields(request, 3));
      CARREL_RETURN_IF_ERROR(
          ctx.kv().put_many({{"thread_id", f[0]}, {"workspace_id", f[1]}, {"name", f[2]}}));
      return std::string("ok");
    }
    if (m == "post") {
      CARREL_ASSIGN_OR_RETURN(auto f, expect_fields(request, 2));
      CARREL_ASSIGN_OR_RETURN(auto rows,
                              ctx.sql().exec("INSERT INTO messages (user, content, created) "
                                             "VALUES (?, ?, ?) RETURNING n",
                                             f[0], f[1], ctx.now_ms()));
      CARREL_ASSIGN_OR_RETURN(auto row, rows.one());
      CARREL_ASSIGN_OR_RETURN(auto n, row.get_int(0));
      return std::to_string(n);
    }
    if (m == "messages") {
      CARREL_ASSIGN_OR_RETURN(auto rows,
                              ctx.sql().exec("SELECT user, content FROM messages ORDER BY n"));
      std::string out;
      for (const SqlRow& row : rows) {
        CARREL_ASSIGN_OR_RETURN(auto user, row.get_text(0));
        CARREL_ASSIGN_OR_RETURN(auto content, row.get_text(1));
        out += user + "|" + content + "\n";
      }
      return out;
    }
    if (m == "destroy") {
      CARREL_RETURN_IF_ERROR(ctx.sql().exec("DELETE FROM messages").status());
      CARREL_RETURN_IF_ERROR(ctx.kv().delete_all());
      return std::string("destroyed");
    }
    return unknown_method(ctx, request);
  }
};

inline Status register_workspace(Engine& engine) {
  return engine.register_class(kWorkspaceClass,
                               [](const ObjectRef&) { return std::make_unique<Workspace>(); });
}

// `activations`, when given, counts how many times a Thread handler was
// created (one per activation): the threads example uses it to show that
// listing threads never wakes a thread object.
inline Status register_thread(Engine& engine, std::atomic<uint64_t>* activations = nullptr) {
  return engine.register_class(kThreadClass, [activations](const ObjectRef&) {
    if (activations != nullptr) activations->fetch_add(1, std::memory_order_relaxed);
    return std::make_unique<Thread>();
  });
}

}  // namespace carrel::examples
