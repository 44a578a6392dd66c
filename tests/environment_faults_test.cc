// What the engine does about its surroundings: readers of other processes
// that die holding a snapshot, a file system that fills up, and a writer lock
// file that an operator deletes. Every other process here is real (fork), and
// the full disk is a real, small tmpfs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <lmdb.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include "carrel/carrel.h"
#include "engine/loop/engine_core.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

using testing::TempDir;

Result<std::unique_ptr<Engine>> open_at(const std::string& dir) {
  Options o;
  o.dir = dir;
  o.workers = 1;
  return Engine::open(std::move(o));
}

// Roles this test binary plays in a child it execs: a fresh process image,
// so the child may start threads under every sanitizer (TSan refuses new
// threads after a fork of a multi-threaded process). Static initialisation
// runs the role named by $CARREL_TEST_ROLE, which reports on fd 3 and never
// returns to gtest.
constexpr int kReportFd = 3;

bool exec_role(const char* role, const std::string& dir) {
  ::setenv("CARREL_TEST_ROLE", role, 1);
  ::setenv("CARREL_TEST_DIR", dir.c_str(), 1);
  ::execl("/proc/self/exe", "carrel_tests", static_cast<char*>(nullptr));
  return false;
}

// A child process that runs `setup`, reports whether it succeeded on a pipe
// (fd 3 in the child), and then waits to be killed (holding what setup took).
class Child {
 public:
  explicit Child(const std::function<bool()>& setup) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(fds[0]);
      if (fds[1] != kReportFd) ::dup2(fds[1], kReportFd);
      char ok = setup() ? 'y' : 'n';
      (void)!::write(kReportFd, &ok, 1);
      for (;;) ::pause();
    }
    ::close(fds[1]);
    char c = 0;
    started_ = pid_ > 0 && ::read(fds[0], &c, 1) == 1 && c == 'y';
    ::close(fds[0]);
  }
  ~Child() { kill(); }
  bool started() const { return started_; }
  pid_t pid() const { return pid_; }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  bool started_ = false;
};

// A reader that opens `dir` with plain LMDB, read-only, and begins a read
// transaction: killed, it dies holding its slot, like `carrel kv list |
// head -1` did.
class ChildReader : public Child {
 public:
  explicit ChildReader(const std::string& dir)
      : Child([&dir] {
          MDB_env* env = nullptr;
          MDB_txn* txn = nullptr;
          return mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 16) == 0 &&
                 mdb_env_open(env, dir.c_str(), MDB_RDONLY | MDB_NOTLS, 0644) == 0 &&
                 mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == 0;
        }) {}
};

// Engine A: holds the directory open for writing until killed (role "writer").
class ChildWriter : public Child {
 public:
  explicit ChildWriter(const std::string& dir)
      : Child([&dir] { return exec_role("writer", dir); }) {}
};

TEST(DeadReaders, JanitorPassFreesTheSlotOfAKilledReaderAndCountsIt) {
  TempDir dir;
  {
    auto e = open_at(dir.path());
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  }
  ChildReader child(dir.path());
  ASSERT_TRUE(child.started());
  auto e = open_at(dir.path());
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  // A live reader is never cleared.
  auto live = (*e)->core()->clear_dead_readers_now();
  ASSERT_TRUE(live.is_ok()) << live.status().to_string();
  EXPECT_EQ(*live, 0);
  EXPECT_EQ((*e)->stats().dead_readers_cleared, 0u);

  child.kill();
  auto cleared = (*e)->core()->clear_dead_readers_now();
  ASSERT_TRUE(cleared.is_ok()) << cleared.status().to_string();
  EXPECT_EQ(*cleared, 1);
  EXPECT_EQ((*e)->stats().dead_readers_cleared, 1u);
  // The slot is gone: a second pass finds nothing.
  EXPECT_EQ(*(*e)->core()->clear_dead_readers_now(), 0);
}

TEST(DeadReaders, TheJanitorFreesTheSlotWithoutBeingAsked) {
  TempDir dir;
  {
    auto e = open_at(dir.path());
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  }
  ChildReader child(dir.path());
  ASSERT_TRUE(child.started());
  auto e = open_at(dir.path());
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  child.kill();
  // The janitor checks once a second; allow many passes on a loaded machine.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((*e)->stats().dead_readers_cleared == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ((*e)->stats().dead_readers_cleared, 1u);
}

// With no other process in the environment, LMDB resets the whole reader
// table at open; with one still reading, open frees only the dead slot.
TEST(DeadReaders, OpenFreesTheSlotOfAReaderThatDiedBeforeItAndCountsIt) {
  TempDir dir;
  {
    auto e = open_at(dir.path());
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  }
  ChildReader survivor(dir.path());
  ChildReader victim(dir.path());
  ASSERT_TRUE(survivor.started());
  ASSERT_TRUE(victim.started());
  victim.kill();
  auto e = open_at(dir.path());
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  EXPECT_EQ((*e)->stats().dead_readers_cleared, 1u);
}

TEST(WriterLock, DeletingWriterLockDoesNotLetASecondWriterIn) {
  TempDir dir;
  ChildWriter a(dir.path());
  ASSERT_TRUE(a.started());
  ASSERT_TRUE(std::filesystem::remove(dir.sub("writer.lock")));
  auto b = open_at(dir.path());
  ASSERT_EQ(b.status().code(), Code::kBusy) << b.status().to_string();
  EXPECT_NE(b.status().message().find("open for writing by process " + std::to_string(a.pid())),
            std::string::npos)
      << b.status().message();
  a.kill();
  auto c = open_at(dir.path());
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
}

TEST(WriterLock, BusyNamesTheRunningHolderNotTheDeadPidInTheLockFile) {
  TempDir dir;
  ChildWriter a(dir.path());
  ASSERT_TRUE(a.started());
  pid_t dead = 0;
  {
    pid_t p = ::fork();  // a pid that certainly is not running any more
    if (p == 0) ::_exit(0);
    ::waitpid(p, nullptr, 0);
    dead = p;
  }
  {
    std::FILE* f = std::fopen(dir.sub("writer.lock").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fprintf(f, "%d\n", static_cast<int>(dead));
    std::fclose(f);
  }
  auto b = open_at(dir.path());
  ASSERT_EQ(b.status().code(), Code::kBusy) << b.status().to_string();
  std::string m = b.status().message();  // status() returns a copy
  EXPECT_NE(m.find("by process " + std::to_string(a.pid())), std::string::npos) << m;
  EXPECT_EQ(m.find(std::to_string(dead)), std::string::npos) << m;
}

// Runs `role` in a child process with a private mount namespace in which
// `dir` is a tmpfs of `size` (as root; otherwise in a user namespace).
// Returns its report ("" for success), or why the file system could not be had.
std::string on_small_tmpfs(const std::string& dir, const std::string& size, const char* role) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::alarm(120);  // never outlive a stuck test
    std::string report;
    bool ns = ::unshare(CLONE_NEWNS) == 0;
    if (!ns && ::unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0) {
      uid_t uid = ::geteuid();
      std::string map = "0 " + std::to_string(uid) + " 1";
      std::FILE* f = std::fopen("/proc/self/setgroups", "w");
      if (f != nullptr) std::fputs("deny", f), std::fclose(f);
      f = std::fopen("/proc/self/uid_map", "w");
      ns = f != nullptr && std::fputs(map.c_str(), f) >= 0 && std::fclose(f) == 0;
    }
    if (!ns) {
      report = std::string("cannot make a mount namespace (needs root or user namespaces): ") +
               std::strerror(errno);
    } else if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
               ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) != 0) {
      report = std::string("cannot mount a tmpfs: ") + std::strerror(errno);
    } else {
      if (fds[1] != kReportFd) ::dup2(fds[1], kReportFd);
      exec_role(role, dir);
      report = std::string("cannot exec this test binary: ") + std::strerror(errno);
    }
    (void)!::write(fds[1], report.data(), report.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string report;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) report.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return "the child died of signal " + std::to_string(WTERMSIG(status));
  return report;
}

// Fills a 2 MiB file system with 64 KiB values one turn at a time, then frees
// the ballast file and writes again. Returns "" or what went wrong.
std::string fill_then_free(const std::string& mount) {
  std::string dir = mount + "/engine";
  std::string ballast = mount + "/ballast";
  {
    std::FILE* f = std::fopen(ballast.c_str(), "w");
    std::string mib(size_t{1} << 19, 'b');
    if (f == nullptr || std::fwrite(mib.data(), 1, mib.size(), f) != mib.size()) {
      return "cannot write the ballast file";
    }
    std::fclose(f);
  }
  auto e = open_at(dir);
  if (!e.is_ok()) return "open: " + e.status().to_string();
  ObjectRef obj = ObjectRef::named("C", "full");
  std::string value(size_t{64} << 10, 'v');
  int acknowledged = 0;
  Status failed;
  for (int i = 0; i < 200 && failed.is_ok(); ++i) {
    failed =
        (*e)->run(obj, [&](Context& ctx) { return ctx.kv().put("k" + std::to_string(i), value); });
    if (failed.is_ok()) ++acknowledged;
  }
  if (failed.is_ok()) return "200 values of 64 KiB fit in 2 MiB";
  if (failed.code() != Code::kNoSpace) return "the full disk gave " + failed.to_string();
  std::fprintf(stderr, "after %d values: %s\n", acknowledged, failed.to_string().c_str());
  for (std::string part :
       {"no space left on device", dir.c_str(), "nothing acknowledged is lost"}) {
    if (failed.message().find(part) == std::string::npos) {
      return "the NoSpace message lacks \"" + part + "\": " + failed.message();
    }
  }
  std::filesystem::remove(ballast);
  Status again =
      (*e)->run(obj, [&](Context& ctx) { return ctx.kv().put("after", "space returned"); });
  if (!again.is_ok()) return "writes did not resume when space returned: " + again.to_string();
  if (!(*e)->close().is_ok()) return "close failed";
  e->reset();
  auto reopened = open_at(dir);
  if (!reopened.is_ok()) return "reopen: " + reopened.status().to_string();
  std::string lost;
  Status check = (*reopened)->run(obj, [&](Context& ctx) -> Status {
    for (int i = 0; i < acknowledged; ++i) {
      CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().get("k" + std::to_string(i)));
      if (!v || *v != value) lost += " k" + std::to_string(i);
    }
    CARREL_ASSIGN_OR_RETURN(auto after, ctx.kv().get("after"));
    if (!after) lost += " after";
    return Status::ok();
  });
  if (!check.is_ok()) return "reading back: " + check.to_string();
  if (!lost.empty()) return "acknowledged writes lost:" + lost;
  if (acknowledged == 0) return "not one value fit before the disk was full";
  return "";
}

[[noreturn]] void play_role(std::string_view role, const std::string& dir) {
  if (role == "writer") {
    auto e = open_at(dir);
    char ok = e.is_ok() ? 'y' : 'n';
    (void)!::write(kReportFd, &ok, 1);
    for (;;) ::pause();
  }
  std::string report = role == "full_disk" ? fill_then_free(dir) : "unknown role";
  (void)!::write(kReportFd, report.data(), report.size());
  ::_exit(0);
}

const bool kPlaysRole = [] {
  const char* role = std::getenv("CARREL_TEST_ROLE");
  const char* dir = std::getenv("CARREL_TEST_DIR");
  if (role != nullptr && dir != nullptr) play_role(role, dir);
  return false;
}();

TEST(FullDisk, IsNoSpaceNamingTheDirectoryAndWritesResumeWhenSpaceReturns) {
  TempDir dir;
  EXPECT_EQ(on_small_tmpfs(dir.path(), "2m", "full_disk"), "");
}

}  // namespace
}  // namespace carrel
