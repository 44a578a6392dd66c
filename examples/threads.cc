// examples/threads.cc — parent and child objects: a workspace and its threads.
//
// The workspace keeps a directory of its threads in SQL; each thread is its
// own object (class Thread) holding its own messages, created and initialized
// by the workspace with ctx.call. Listing threads reads only the directory,
// so it never wakes a thread: the program counts Thread activations to show
// it. Deleting a thread removes the directory row and, in the same commit,
// sends the thread a durable "destroy" message.
//
//   threads [--check] [--dir DIR]
#include <atomic>
#include <cstdio>
#include <string>

#include "carrel/carrel.h"
#include "classes/workspace.h"

using namespace carrel;
using namespace carrel::examples;

namespace {

size_t count_lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

std::string thread_kv(Engine& engine, const std::string& thread_id, const char* key) {
  std::string out;
  Status s = engine.run(ObjectRef::named(kThreadClass, thread_id), [&](Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(out, kv_string(ctx, key, "<absent>"));
    return Status::ok();
  });
  return s.is_ok() ? out : s.to_string();
}

}  // namespace

int main(int argc, char** argv) {
  ExampleArgs args = parse_args(argc, argv, "threads [--check] [--dir DIR]");
  ScratchDir scratch;
  auto engine = open_or_exit(args.dir.empty() ? scratch.path() : args.dir);
  Checker check;
  std::atomic<uint64_t> thread_activations{0};
  check.ok(register_workspace(*engine), "register Workspace");
  check.ok(register_thread(*engine, &thread_activations), "register Thread");

  Stub acme = engine->stub(kWorkspaceClass, "acme");
  check.value(acme.call("init", "acme|user-123").get(), "init acme");

  // The workspace creates each child and keeps a reference to it.
  std::string planning =
      check.value(acme.call("create_thread", "Q4 Planning").get(), "create thread Q4 Planning");
  std::string hiring =
      check.value(acme.call("create_thread", "Hiring").get(), "create thread Hiring");
  check.expect(planning.size() == 32 && hiring.size() == 32 && planning != hiring,
               "two threads with their own ids");
  check.expect(thread_kv(*engine, planning, "workspace_id") == "acme" &&
                   thread_kv(*engine, hiring, "name") == "Hiring",
               "each thread knows its parent and its name");

  // Messages go straight to the thread; the workspace is not involved.
  Stub planning_stub = engine->stub(kThreadClass, planning);
  check.value(planning_stub.call("post", "ana|kick-off on Monday").get(), "post to Q4 Planning");
  check.value(planning_stub.call("post", "ben|agenda attached").get(), "post to Q4 Planning");
  check.value(engine->stub(kThreadClass, hiring).call("post", "cy|two offers out").get(),
              "post to Hiring");
  check.expect(count_lines(planning_stub.call("messages", "").get().value_or("")) == 2,
               "Q4 Planning holds its 2 messages");

  // Listing reads the parent's directory only: no thread wakes up.
  uint64_t before = thread_activations.load();
  std::string listed;
  for (int i = 0; i < 5; ++i) listed = check.value(acme.call("list_threads", "").get(), "list");
  check.expect(count_lines(listed) == 2 && listed.find("|Q4 Planning\n") != std::string::npos,
               "the directory lists both threads");
  check.expect(
      thread_activations.load() == before,
      "listing 5 times activated no thread (activations stay " + std::to_string(before) + ")");

  // Deleting removes the reference and tells the thread, in one commit.
  check.expect(acme.call("delete_thread", planning).get().value_or("") == "deleted",
               "delete Q4 Planning");
  listed = check.value(acme.call("list_threads", "").get(), "list");
  check.expect(count_lines(listed) == 1 && listed.find(planning) == std::string::npos,
               "the directory no longer names Q4 Planning");
  check.expect(wait_until([&] { return thread_kv(*engine, planning, "name") == "<absent>"; }),
               "the deleted thread received destroy and dropped its data");
  check.expect(planning_stub.call("messages", "").get().value_or("?").empty(),
               "its messages are gone");
  check.expect(acme.call("delete_thread", planning).get().status().code() == Code::kNotFound,
               "deleting it again is NotFound");
  check.expect(
      count_lines(engine->stub(kThreadClass, hiring).call("messages", "").get().value_or("")) == 1,
      "the other thread is untouched");
  std::printf("thread activations: %llu\n",
              static_cast<unsigned long long>(thread_activations.load()));

  check.ok(engine->close(), "close");
  int rc = check.exit_code();
  return args.check ? rc : 0;
}
