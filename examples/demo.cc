// examples/demo.cc — carrel-demo: the examples' classes together, at scale.
//
// Runs a workload over a few thousand objects on one engine directory:
// workspaces with projects and threads, chat rooms, rate limiters, session
// stores with expiry alarms and subscriptions, with hundreds of calls in
// flight at once. It prints what the engine did (turns, group commits) and
// the commands to look at the result. Running it again on the same directory
// works: every init is idempotent, and new messages, tokens and sessions
// simply add to what is there.
//
//   carrel-demo [--dir DIR] [--check] [--small]
//
// --check exits non-zero when the data is not what the workload implies;
// --small runs a twentieth of the workload (the CTest check).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "carrel/carrel.h"
#include "classes/chat.h"
#include "classes/rate_limiter.h"
#include "classes/session.h"
#include "classes/subscription.h"
#include "classes/workspace.h"

using namespace carrel;
using namespace carrel::examples;

namespace {

// Keeps at most `in_flight_max` calls outstanding. Replies arrive on engine
// threads; the callback only counts and notifies, as call_async requires.
class CallPipeline {
 public:
  explicit CallPipeline(size_t in_flight_max) : in_flight_max_(in_flight_max) {}

  void submit(Stub stub, std::string method, std::string payload) {
    {
      std::unique_lock lock(mutex_);
      room_.wait(lock, [&] { return in_flight_ < in_flight_max_; });
      ++in_flight_;
    }
    stub.call_async(method, payload,
                    [this, label = stub.object().label(), method](Result<std::string> reply) {
                      std::lock_guard lock(mutex_);
                      --in_flight_;
                      ++done_;
                      if (!reply.is_ok()) {
                        ++failed_;
                        if (first_error_.empty()) {
                          first_error_ = label + " " + method + ": " + reply.status().to_string();
                        }
                      }
                      room_.notify_all();
                    });
  }

  void wait_all() {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return in_flight_ == 0; });
  }

  uint64_t done() {
    std::lock_guard lock(mutex_);
    return done_;
  }
  uint64_t failed() {
    std::lock_guard lock(mutex_);
    return failed_;
  }
  std::string first_error() {
    std::lock_guard lock(mutex_);
    return first_error_;
  }

 private:
  const size_t in_flight_max_;
  std::mutex mutex_;
  std::condition_variable room_;
  size_t in_flight_ = 0;     // GUARDED_BY(mutex_)
  uint64_t done_ = 0;        // GUARDED_BY(mutex_)
  uint64_t failed_ = 0;      // GUARDED_BY(mutex_)
  std::string first_error_;  // GUARDED_BY(mutex_)
};

struct Scale {
  int workspaces = 2000;
  int projects_per_workspace = 3;
  int workspaces_with_threads = 200;
  int threads_per_workspace = 2;
  int messages_per_thread = 3;
  int chat_rooms = 500;
  int messages_per_room = 20;
  int lobby_messages = 400;
  int rate_limited_users = 1000;
  int takes_per_user = 5;
  int session_users = 500;
  int subscribers = 300;
};

Scale small_scale() {
  Scale s;
  s.workspaces = 100;
  s.workspaces_with_threads = 10;
  s.chat_rooms = 25;
  s.lobby_messages = 250;
  s.rate_limited_users = 50;
  s.session_users = 25;
  s.subscribers = 15;
  return s;
}

std::string numbered(const char* prefix, int i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%04d", prefix, i);
  return buf;
}

// Workspace i's name; the first one is "acme", the name the next steps use.
std::string workspace_name(int i) {
  return i == 0 ? "acme" : numbered("ws", i);
}
std::string room_name(int i) {
  return i == 0 ? "lobby" : numbered("room", i);
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1) {
    out.push_back(s.substr(start, nl - start));
  }
  return out;
}

size_t count_lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Workspaces: init (idempotent), projects by name (idempotent), and for the
// first few, child threads with messages (only when the workspace has none
// yet, so a second run does not add threads).
void run_workspaces(Engine& engine, CallPipeline& calls, const Scale& scale) {
  for (int i = 0; i < scale.workspaces; ++i) {
    Stub ws = engine.stub(kWorkspaceClass, workspace_name(i));
    calls.submit(ws, "init", workspace_name(i) + "|owner-" + std::to_string(i % 97));
    for (int p = 0; p < scale.projects_per_workspace; ++p) {
      calls.submit(ws, "create_project", numbered("project", p));
    }
  }
  calls.wait_all();
  CallPipeline threads(64);  // each create_thread holds a worker in ctx.call
  for (int i = 0; i < scale.workspaces_with_threads; ++i) {
    Stub ws = engine.stub(kWorkspaceClass, workspace_name(i));
    auto listed = ws.call("list_threads", "").get();
    if (!listed.is_ok() || !listed->empty()) continue;
    for (int t = 0; t < scale.threads_per_workspace; ++t) {
      threads.submit(ws, "create_thread", t == 0 ? "general" : numbered("topic", t));
    }
  }
  threads.wait_all();
  for (int i = 0; i < scale.workspaces_with_threads; ++i) {
    auto listed = engine.stub(kWorkspaceClass, workspace_name(i)).call("list_threads", "").get();
    if (!listed.is_ok()) continue;
    for (const std::string& line : split_lines(*listed)) {
      Stub thread = engine.stub(kThreadClass, split_fields(line)[0]);
      for (int m = 0; m < scale.messages_per_thread; ++m) {
        calls.submit(thread, "post", "user-" + std::to_string(m) + "|note " + std::to_string(m));
      }
    }
  }
  calls.wait_all();
  if (threads.failed() > 0) {
    std::fprintf(stderr, "create_thread failures: %llu, first: %s\n",
                 static_cast<unsigned long long>(threads.failed()), threads.first_error().c_str());
  }
}

void run_chats(Engine& engine, CallPipeline& calls, const Scale& scale) {
  for (int i = 0; i < scale.chat_rooms; ++i) {
    Stub room = engine.stub(kChatClass, room_name(i));
    calls.submit(room, "init", room_name(i));
    int messages = i == 0 ? scale.lobby_messages : scale.messages_per_room;
    for (int m = 0; m < messages; ++m) {
      calls.submit(room, "post",
                   "user-" + std::to_string(m % 13) + "|message " + std::to_string(m));
    }
  }
}

void run_rate_limiters(Engine& engine, CallPipeline& calls, const Scale& scale) {
  for (int t = 0; t < scale.takes_per_user; ++t) {
    for (int i = 0; i < scale.rate_limited_users; ++i) {
      calls.submit(engine.stub(kRateLimiterClass, numbered("user", i)), "take", "1");
    }
  }
}

// Each user gets a 30-minute session and a 1-second one whose expiry alarm
// fires while the demo runs.
void run_sessions(Engine& engine, CallPipeline& calls, const Scale& scale, const std::string& run) {
  for (int i = 0; i < scale.session_users; ++i) {
    Stub user = engine.stub(kSessionClass, numbered("user", i));
    calls.submit(user, "create", "web-" + run + "|1800000");
    calls.submit(user, "create", "quick-" + run + "|1000");
  }
}

void run_subscriptions(Engine& engine, CallPipeline& calls, const Scale& scale) {
  for (int i = 0; i < scale.subscribers; ++i) {
    std::string user = numbered("user", i);
    calls.submit(engine.stub(kSubscriptionClass, user), "subscribe",
                 user + "|" + (i % 3 == 0 ? "team" : "pro"));
  }
}

// The sum over session stores of "expired" (by alarm).
uint64_t sessions_expired(Engine& engine, const Scale& scale) {
  uint64_t total = 0;
  for (int i = 0; i < scale.session_users; ++i) {
    auto r = engine.stub(kSessionClass, numbered("user", i)).call("count", "").get();
    if (r.is_ok()) total += std::stoull(split_fields(*r)[1]);
  }
  return total;
}

// Waits until the session stores count `want` expiries. The wait is bounded by
// progress rather than by a fixed time: it goes on while expiries keep arriving
// and gives up after kStallMs without a new one, so a slow (sanitized) build
// that delivers the 1-second alarms late but steadily passes, and a lost alarm
// still fails.
bool wait_for_expiries(Engine& engine, const Scale& scale, uint64_t want) {
  constexpr auto kStall = std::chrono::milliseconds(15000);
  constexpr auto kPoll = std::chrono::milliseconds(50);
  uint64_t seen = sessions_expired(engine, scale);
  auto last_progress = std::chrono::steady_clock::now();
  while (seen < want) {
    if (std::chrono::steady_clock::now() - last_progress > kStall) return false;
    std::this_thread::sleep_for(kPoll);
    const uint64_t now_seen = sessions_expired(engine, scale);
    if (now_seen > seen) {
      seen = now_seen;
      last_progress = std::chrono::steady_clock::now();
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "carrel-data";
  bool check_mode = false;
  bool small = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--check") {
      check_mode = true;
    } else if (a == "--small") {
      small = true;
    } else {
      std::fprintf(stderr, "usage: carrel-demo [--dir DIR] [--check] [--small]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  const Scale scale = small ? small_scale() : Scale{};

  auto engine = open_or_exit(dir, std::make_shared<SystemClock>());
  Checker check(/*print_passes=*/check_mode);
  check.ok(register_workspace(*engine), "register Workspace");
  check.ok(register_thread(*engine), "register Thread");
  check.ok(register_chat(*engine), "register Chat");
  check.ok(register_rate_limiter(*engine), "register RateLimiter");
  check.ok(register_sessions(*engine), "register Sessions");
  check.ok(register_subscription(*engine), "register Subscription");

  // Sessions made by this run have their own tokens, so reruns add to them.
  std::string run = std::to_string(SystemClock().now_ms());
  uint64_t expired_before = sessions_expired(*engine, scale);
  EngineStats before = engine->stats();
  auto start = std::chrono::steady_clock::now();
  std::printf("carrel-demo: running on %s ...\n", dir.c_str());
  std::fflush(stdout);

  CallPipeline calls(512);
  run_sessions(*engine, calls, scale, run);  // first, so their 1 s alarms fire during the run
  run_workspaces(*engine, calls, scale);
  run_chats(*engine, calls, scale);
  run_rate_limiters(*engine, calls, scale);
  run_subscriptions(*engine, calls, scale);
  calls.wait_all();

  // Every 1-second session expires by its alarm; wait (bounded) for them.
  uint64_t want_expired = expired_before + static_cast<uint64_t>(scale.session_users);
  bool all_expired = wait_for_expiries(*engine, scale, want_expired);
  double elapsed = seconds_since(start);
  EngineStats after = engine->stats();

  uint64_t objects =
      static_cast<uint64_t>(scale.workspaces) +
      static_cast<uint64_t>(scale.workspaces_with_threads) *
          static_cast<uint64_t>(scale.threads_per_workspace) +
      static_cast<uint64_t>(scale.chat_rooms) + static_cast<uint64_t>(scale.rate_limited_users) +
      static_cast<uint64_t>(scale.session_users) + static_cast<uint64_t>(scale.subscribers);
  uint64_t turns = after.turns_run - before.turns_run;
  uint64_t commits = after.commits - before.commits;
  uint64_t committed = after.turns_committed - before.turns_committed;
  std::printf("\n");
  std::printf(
      "  objects          %llu (workspaces %d, threads %d, chat rooms %d, rate limiters %d,"
      " session stores %d, subscriptions %d)\n",
      static_cast<unsigned long long>(objects), scale.workspaces,
      scale.workspaces_with_threads * scale.threads_per_workspace, scale.chat_rooms,
      scale.rate_limited_users, scale.session_users, scale.subscribers);
  std::printf("  calls            %llu (%llu failed)\n",
              static_cast<unsigned long long>(calls.done()),
              static_cast<unsigned long long>(calls.failed()));
  std::printf("  turns            %llu\n", static_cast<unsigned long long>(turns));
  std::printf("  commits          %llu (fsynced group commits)\n",
              static_cast<unsigned long long>(commits));
  std::printf("  turns per commit %.1f mean, %llu max\n",
              commits == 0 ? 0.0 : static_cast<double>(committed) / static_cast<double>(commits),
              static_cast<unsigned long long>(after.turns_per_commit_max));
  std::printf("  alarms delivered %llu (session expiries)\n",
              static_cast<unsigned long long>(after.alarms_delivered - before.alarms_delivered));
  std::printf("  elapsed          %.2f s (%.0f turns/s)\n", elapsed,
              elapsed > 0 ? static_cast<double>(turns) / elapsed : 0.0);
  if (calls.failed() > 0) std::printf("  first error      %s\n", calls.first_error().c_str());

  if (check_mode) {
    check.expect(calls.failed() == 0, "no call failed");
    check.expect(all_expired, "every 1-second session expired by its alarm");
    auto projects = call(*engine, kWorkspaceClass, "acme", "list_projects");
    check.expect(
        count_lines(projects.value_or("")) == static_cast<size_t>(scale.projects_per_workspace),
        "acme has its projects, once each");
    auto threads = call(*engine, kWorkspaceClass, "acme", "list_threads");
    check.expect(
        count_lines(threads.value_or("")) == static_cast<size_t>(scale.threads_per_workspace),
        "acme has its threads, once each");
    auto lobby = split_fields(call(*engine, kChatClass, "lobby", "stats").value_or("0|0|0"));
    check.expect(std::stoi(lobby[0]) <= kChatLiveMax && std::stoi(lobby[1]) >= 1,
                 "the lobby archived its oldest messages");
    auto recent = call(*engine, kChatClass, "lobby", "recent");
    check.expect(count_lines(recent.value_or("")) == static_cast<size_t>(kChatRecent),
                 "the lobby returns its latest 50 messages");
    auto sub = split_fields(call(*engine, kSubscriptionClass, "user-0000", "status").value_or(""));
    check.expect(sub.size() == 4 && sub[0] == "active" && sub[3] != "0",
                 "subscriptions are active with a renewal alarm");
  }
  check.ok(engine->close(), "close");

  std::printf("\nLook at what it wrote:\n");
  std::printf("  build/tools/carrel --dir %s objects --limit 10\n", dir.c_str());
  std::printf("  build/tools/carrel --dir %s sql Workspace:acme \"SELECT * FROM projects\"\n",
              dir.c_str());
  std::printf("  build/tools/carrel --dir %s history Chat:lobby --limit 5\n", dir.c_str());
  std::printf("and measure a workload of your own:\n");
  std::printf("  build/bench/carrel-bench kv-write --seconds 5\n");
  if (check_mode) return check.exit_code();
  return calls.failed() == 0 ? 0 : 1;
}
