// Shared test fixtures: temporary engine directories.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>

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

}  // namespace carrel::testing
