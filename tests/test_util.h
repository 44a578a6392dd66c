// Shared test fixtures: temporary engine directories, engines opened in
// them, and a gate that holds commits.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "carrel/engine.h"
#include "carrel/options.h"
#include "carrel/status.h"

namespace carrel::testing {

// A fresh directory under $TMPDIR, removed (recursively) when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // A path inside it that does not exist yet.
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Options for an engine in dir; everything else is Options' default.
Options options_in(const TempDir& dir);

// Opens an engine. A failed open is a test failure that names its status,
// and null: callers ASSERT_TRUE on the result before they use it.
std::unique_ptr<Engine> open_engine(const Options& options);

// What a turn of ref reads under key: its value, "(absent)", or the error.
std::string kv_read(Engine& engine, const ObjectRef& ref, const std::string& key);

// Runs this test binary again in a fresh process image (so the child may
// start threads under every sanitizer) with role_var=role and dir_var=dir in
// its environment: a role it plays from a static initializer, reporting one
// byte on fd kRoleReportFd ('y' for success) before it waits to be killed.
// Waits for that byte, calls while_alive (when set) with the child still
// running, then kills the child with SIGKILL. The byte, or 0 when the child
// died without one.
inline constexpr int kRoleReportFd = 3;
char play_role(const char* role_var, const char* role, const char* dir_var,
               const std::string& dir, const std::function<void()>& while_alive = {});
// play_role, and whether the child reported success ('y').
bool play_role_then_sigkill(const char* role_var, const char* role, const char* dir_var,
                            const std::string& dir);

// How long eventually() polls by default before it reports failure:
// generous, for sanitizer builds on a loaded machine.
inline constexpr auto kEventuallyWait = std::chrono::seconds(30);

// Polls pred every millisecond until it holds (true) or the deadline passes
// (false). Used to wait for the scheduler, workers and transports; never to
// wait for time to pass.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds deadline = kEventuallyWait) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// How long a CommitGate waits for a commit (or its waiter) before it gives
// up, so that a failed assertion cannot hang the engine's close().
inline constexpr auto kGateWait = std::chrono::seconds(30);

// Holds commits in the commit hook on request, and decides their verdicts.
// While holding, every commit stops in the hook; pass() lets the one held
// commit go on (with a verdict) and keeps holding the next; release() stops
// holding. The committer is one thread, so at most one commit is held.
class CommitGate {
 public:
  void hold() {
    std::lock_guard l(m_);
    holding_ = true;
  }
  // Waits until a commit numbered at least min_number is held; its CommitInfo.
  std::optional<CommitInfo> wait_held(uint64_t min_number = 0) {
    std::unique_lock l(m_);
    bool ok =
        cv_.wait_for(l, kGateWait, [&] { return held_ && held_->commit_number >= min_number; });
    if (!ok) return std::nullopt;
    return held_;
  }
  bool is_held() {
    std::lock_guard l(m_);
    return held_.has_value();
  }
  // Lets the held commit go on with this verdict; later commits are held.
  void pass(Status verdict = Status::ok()) {
    std::unique_lock l(m_);
    uint64_t number = held_ ? held_->commit_number : 0;
    pass_ = std::move(verdict);
    cv_.notify_all();
    cv_.wait_for(l, kGateWait, [&] { return !held_ || held_->commit_number != number; });
  }
  // Stops holding; the held commit (if any) goes on with this verdict.
  void release(Status verdict = Status::ok()) {
    std::lock_guard l(m_);
    holding_ = false;
    verdict_ = std::move(verdict);
    cv_.notify_all();
  }
  // Every commit fails with this status until fail_all(ok).
  void fail_all(Status s) {
    std::lock_guard l(m_);
    fail_all_ = std::move(s);
  }

  CommitHook hook() {
    return [this](const CommitInfo& info) { return on_commit(info); };
  }

 private:
  Status on_commit(const CommitInfo& info) {
    std::unique_lock l(m_);
    if (!fail_all_.is_ok()) return fail_all_;
    if (!holding_) return Status::ok();
    held_ = info;
    cv_.notify_all();
    // Bounded, so that a failed assertion cannot hang the engine's close().
    cv_.wait_for(l, kGateWait, [&] { return !holding_ || pass_.has_value(); });
    Status v;
    if (pass_) {
      v = std::move(*pass_);
      pass_.reset();
    } else {
      v = std::move(verdict_);
      verdict_ = Status::ok();
    }
    held_.reset();
    cv_.notify_all();
    return v;
  }

  std::mutex m_;
  std::condition_variable cv_;
  bool holding_ = false;            // GUARDED_BY(m_)
  std::optional<CommitInfo> held_;  // GUARDED_BY(m_)
  std::optional<Status> pass_;      // GUARDED_BY(m_)
  Status verdict_;                  // GUARDED_BY(m_)
  Status fail_all_;                 // GUARDED_BY(m_)
};

// An engine whose commits pass through a CommitGate: the setup of the tests
// that hold commits. The gate is released before the engine closes, so a
// failed assertion cannot leave close() waiting on a held commit. engine is
// null when the open failed (a test failure already).
struct GatedEngine {
  explicit GatedEngine(Options o) : options(std::move(o)) {
    options.commit_hook = gate.hook();
    engine = open_engine(options);
  }
  ~GatedEngine() { gate.release(); }
  GatedEngine(const GatedEngine&) = delete;
  GatedEngine& operator=(const GatedEngine&) = delete;

  CommitGate gate;  // outlives the engine, whose hook points at it
  Options options;
  std::unique_ptr<Engine> engine;
};

}  // namespace carrel::testing
