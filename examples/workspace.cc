// examples/workspace.cc — the playbook's Workspace object behind a small front.
//
// The front plays the part of the playbook's Worker: it takes a request naming
// a workspace, finds that workspace's one object with id_from_name (through
// engine.stub(class, name)), and forwards the call. It routes by name only,
// it keeps no state, and any number of threads may run it at once.
//
//   workspace [--check] [--dir DIR]
//
// Time comes from a ManualClock, so the monthly cleanup alarm can be shown
// firing months later without waiting. --check exits non-zero when an
// expectation fails; --dir keeps the data for `carrel` to inspect.
#include "classes/workspace.h"

#include <cstdio>
#include <string>

#include "carrel/carrel.h"

using namespace carrel;
using namespace carrel::examples;

namespace {

struct Response {
  int status = 200;
  std::string body;
};

// "GET /projects?workspace=acme": the playbook's fetch() handler without HTTP.
Response front(Engine& engine, std::string_view verb, std::string_view url,
               std::string_view body = {}) {
  size_t q = url.find("?workspace=");
  if (q == std::string_view::npos) return {400, "missing ?workspace="};
  std::string_view path = url.substr(0, q);
  std::string_view workspace = url.substr(q + 11);
  // Always the same object for the same name, wherever the request came from.
  Stub stub = engine.stub(kWorkspaceClass, workspace);
  Result<std::string> reply = Status::not_found("no route");
  if (path == "/init") {
    reply = stub.call("init", std::string(workspace) + "|user-123").get();
  } else if (path == "/projects" && verb == "POST") {
    reply = stub.call("create_project", body).get();
  } else if (path == "/projects" && verb == "GET") {
    reply = stub.call("list_projects", "").get();
  } else {
    return {404, "Not found"};
  }
  if (!reply.is_ok()) {
    return {reply.status().code() == Code::kNotFound ? 404 : 500, reply.status().to_string()};
  }
  return {200, *reply};
}

size_t count_lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// The workspace's "last_cleanup" KV value (ms|rows removed), "" before any.
std::string last_cleanup(Engine& engine, const std::string& name) {
  std::string out;
  Status s = engine.run(ObjectRef::named(kWorkspaceClass, name), [&](Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(out, kv_string(ctx, "last_cleanup"));
    return Status::ok();
  });
  return s.is_ok() ? out : "error: " + s.to_string();
}

std::optional<AlarmEntry> cleanup_entry(Engine& engine, const std::string& name) {
  std::optional<AlarmEntry> found;
  (void)engine.run(ObjectRef::named(kWorkspaceClass, name), [&](Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(auto entries, ctx.alarms().list());
    for (auto& e : entries) {
      if (e.name == kCleanupAlarm) found = e;
    }
    return Status::ok();
  });
  return found;
}

}  // namespace

int main(int argc, char** argv) {
  ExampleArgs args = parse_args(argc, argv, "workspace [--check] [--dir DIR]");
  ScratchDir scratch;
  auto clock = std::make_shared<ManualClock>(kExampleEpochMs);  // 2025-01-15 12:00 UTC
  auto engine = open_or_exit(args.dir.empty() ? scratch.path() : args.dir, clock);
  Checker check;
  check.ok(register_workspace(*engine), "register Workspace");

  // Identity: init stores it in KV and is idempotent.
  Response r = front(*engine, "POST", "/init?workspace=acme");
  check.expect(r.status == 200 && r.body == "created", "init acme: " + r.body);
  r = front(*engine, "POST", "/init?workspace=acme");
  check.expect(r.status == 200 && r.body == "exists", "init acme again: " + r.body);
  check.expect(call(*engine, kWorkspaceClass, "acme", "id").value_or("") == "acme",
               "acme knows its workspace id");
  auto uninit = call(*engine, kWorkspaceClass, "globex", "id");
  check.expect(uninit.status().code() == Code::kNotFound,
               "an uninitialized workspace says so: " + uninit.status().to_string());

  // The monthly cleanup is a named cron entry, first due 2025-02-01 03:00 UTC.
  auto entry = cleanup_entry(*engine, "acme");
  check.expect(
      entry && entry->repeat == Repeat::cron_expr(kCleanupCron) && entry->due_ms == 1738378800000,
      "cleanup alarm scheduled for 2025-02-01T03:00Z with cron 0 3 1 * *");

  // Projects live in the workspace's SQL database.
  r = front(*engine, "POST", "/projects?workspace=acme", "old-roadmap");
  check.expect(r.status == 200 && r.body.size() == 32, "create project old-roadmap: " + r.body);
  std::string old_id = r.body;
  r = front(*engine, "POST", "/projects?workspace=acme", "old-roadmap");
  check.expect(r.body == old_id, "creating the same name again returns the same project");
  r = front(*engine, "POST", "/projects?workspace=initech", "tps-reports");
  check.expect(r.status == 200, "another workspace gets its own projects");
  r = front(*engine, "GET", "/projects?workspace=acme");
  check.expect(count_lines(r.body) == 1, "acme lists 1 project");
  r = front(*engine, "GET", "/nowhere?workspace=acme");
  check.expect(r.status == 404, "unknown route is 404");

  // 60 days later: the February cleanup ran once and kept the 60-day-old project.
  clock->advance_ms(60 * kDayMs);
  check.expect(wait_until([&] { return !last_cleanup(*engine, "acme").empty(); }),
               "the first monthly cleanup ran");
  check.expect(last_cleanup(*engine, "acme").ends_with("|0"), "it removed nothing");
  r = front(*engine, "POST", "/projects?workspace=acme", "launch");
  check.expect(r.status == 200, "create project launch");
  entry = cleanup_entry(*engine, "acme");
  check.expect(entry && entry->due_ms == 1743476400000, "next cleanup 2025-04-01T03:00Z");

  // 35 more days: the April cleanup removes the 95-day-old project only.
  clock->advance_ms(35 * kDayMs);
  std::string want = std::to_string(clock->now_ms()) + "|1";
  check.expect(wait_until([&] { return last_cleanup(*engine, "acme") == want; }),
               "the April cleanup removed 1 project");
  r = front(*engine, "GET", "/projects?workspace=acme");
  check.expect(count_lines(r.body) == 1 && r.body.find("|launch|") != std::string::npos &&
                   r.body.find(old_id) == std::string::npos,
               "acme keeps launch and lost old-roadmap");
  entry = cleanup_entry(*engine, "acme");
  check.expect(entry && entry->due_ms == 1746068400000, "next cleanup 2025-05-01T03:00Z");
  r = front(*engine, "GET", "/projects?workspace=initech");
  check.expect(count_lines(r.body) == 1, "initech never initialized: no cleanup, 1 project");

  check.ok(engine->close(), "close");
  int rc = check.exit_code();
  return args.check ? rc : 0;
}
