// Signal handling of the carrel binary (invariants in process_guard.h). The
// handlers use only async-signal-safe calls: write, dup2, signal, raise, _exit.
#include "tools/cli/process_guard.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

namespace carrel::cli {
namespace {

volatile sig_atomic_t g_signal = 0;         // the first SIGINT/SIGTERM, 0 before
std::atomic<bool> g_stoppable{false};       // a read-only command: scans check the flag
std::atomic<int> g_copy_fd{-1};             // invariant (2)
int g_dead_end_fd = -1;                     // a pipe's write end whose read end is closed
std::atomic<uintptr_t> g_map_begin{0}, g_map_end{0};  // invariant (3)
std::atomic<bool> g_opening{false};                   // invariant (3): inside Engine::open
char g_fault_message[1024];
size_t g_fault_message_bytes = 0;

void on_stop_signal(int sig) {
  if (g_signal != 0 || !g_stoppable.load()) {  // a second signal, or a writing command: end now
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  g_signal = sig;
  if (g_dead_end_fd < 0) return;
  // A write blocked on a full stdout restarts (SA_RESTART) on the dead end
  // and fails, so the scan sees the stop.
  ::dup2(g_dead_end_fd, STDOUT_FILENO);
  int fd = g_copy_fd.load();
  if (fd >= 0) ::dup2(g_dead_end_fd, fd);
}

void on_fault(int sig, siginfo_t* info, void*) {
  auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  bool in_map = info->si_code > 0 && g_fault_message_bytes > 0 && addr >= g_map_begin.load() &&
                addr < g_map_end.load();
  // Before the map is known: a read past the end of a mapped file (the only
  // SIGBUS with BUS_ADRERR that an open makes) is data.mdb's.
  in_map |= sig == SIGBUS && info->si_code == BUS_ADRERR && g_opening.load() &&
            g_fault_message_bytes > 0;
  if (!in_map) {
    ::signal(sig, SIG_DFL);  // returning re-runs the access: the default action, visibly
    return;
  }
  ssize_t ignored = ::write(STDERR_FILENO, g_fault_message, g_fault_message_bytes);
  (void)ignored;
  ::_exit(1);
}

}  // namespace

void install_process_guards() {
  ::signal(SIGPIPE, SIG_IGN);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) == 0) {
    ::close(p[0]);
    g_dead_end_fd = p[1];
  }
  struct sigaction stop {};
  stop.sa_handler = on_stop_signal;
  stop.sa_flags = SA_RESTART;  // the engine's own I/O never sees EINTR
  sigemptyset(&stop.sa_mask);
  ::sigaction(SIGINT, &stop, nullptr);
  ::sigaction(SIGTERM, &stop, nullptr);
  struct sigaction fault {};
  fault.sa_sigaction = on_fault;
  fault.sa_flags = SA_SIGINFO | SA_RESETHAND;
  sigemptyset(&fault.sa_mask);
  ::sigaction(SIGBUS, &fault, nullptr);
  ::sigaction(SIGSEGV, &fault, nullptr);
}

bool stop_requested() {
  return g_signal != 0 || std::cout.bad();
}

std::string stop_reason() {
  if (g_signal == SIGINT) return "interrupted by SIGINT";
  if (g_signal == SIGTERM) return "interrupted by SIGTERM";
  return "standard output is closed (" + std::string(std::strerror(EPIPE)) + ")";
}

namespace {

void set_fault_message(const std::string& file) {
  std::string m = "carrel: '" + file +
                  "' is damaged: reading a page of it faulted (truncated or overwritten "
                  "file); nothing was changed; run `carrel verify` and restore the directory from "
                  "a backup\n";
  g_fault_message_bytes = 0;
  size_t n = std::min(m.size(), sizeof(g_fault_message) - 1);
  std::memcpy(g_fault_message, m.data(), n);
  g_fault_message_bytes = n;
}

}  // namespace

void note_opening(const std::string& dir) {
  set_fault_message(dir + "/data.mdb");
  g_opening = true;
}

void note_mapping(const std::string& dir) {
  g_opening = false;
  // LMDB does not expose where it mapped the file (mdb_env_info's address is
  // only the MDB_FIXEDMAP hint): find the mapping of data.mdb's inode.
  std::string file = dir + "/data.mdb";
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  uintptr_t begin = 0, end = 0;
  while (std::getline(maps, line)) {
    unsigned long lo = 0, hi = 0, inode = 0;
    unsigned major = 0, minor = 0;
    char perms[8] = {}, offset[32] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s %31s %x:%x %lu", &lo, &hi, perms, offset, &major,
                    &minor, &inode) != 7) {
      continue;
    }
    if (inode != st.st_ino || makedev(major, minor) != st.st_dev) continue;
    if (hi - lo > end - begin) begin = lo, end = hi;  // the map, not a smaller mapping
  }
  if (end == begin) return;
  g_fault_message_bytes = 0;
  g_map_begin = begin;
  g_map_end = end;
  set_fault_message(file);
}

void allow_graceful_stop() {
  g_stoppable = true;
}

void note_copy_fd(int fd) {
  g_copy_fd = fd;
  // A signal that came before the copy began still stops it.
  if (fd >= 0 && g_signal != 0 && g_dead_end_fd >= 0) ::dup2(g_dead_end_fd, fd);
}

}  // namespace carrel::cli
