#include "tools/cli/line_editor.h"

#include <editline/readline.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <iostream>

namespace carrel::cli {
namespace {

// Signal state: one LineEditor at a time (the REPL's). Atomic and lock-free:
// the handler sets it, and the thread running a statement polls it
// (interrupt_pending()).
std::atomic<int> interrupted{0};
static_assert(std::atomic<int>::is_always_lock_free, "set from a signal handler");
// The self-pipe: the handler writes a byte, so a Ctrl-C that lands before
// the reader blocks (between libedit's prompt and its read) still wakes it.
// A flag and EINTR alone lost that one: the read then waited for a key.
int wake_pipe[2] = {-1, -1};

void on_interrupt(int) {
  int saved = errno;
  interrupted = 1;
  char b = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_pipe[1], &b, 1);  // async-signal-safe
  errno = saved;
}

void drain_wake_pipe() {
  char buf[64];
  while (::read(wake_pipe[0], buf, sizeof buf) > 0) {
  }
}

// libedit's input: one byte of stdin, or EOF when Ctrl-C was pressed;
// readline() then returns as at end of input and read() tells the two apart
// by the flag (invariant (1)).
int read_byte(FILE*) {
  for (;;) {
    if (interrupted != 0) return EOF;
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {wake_pipe[0], POLLIN, 0}};
    int ready = ::poll(fds, 2, -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return EOF;
    if (fds[1].revents != 0) continue;  // the flag is set: the loop returns
    unsigned char c = 0;
    ssize_t n = ::read(STDIN_FILENO, &c, 1);
    if (n == 1) return c;
    if (n < 0 && errno == EINTR) continue;
    return EOF;
  }
}

}  // namespace

std::string history_path() {
  if (const char* h = std::getenv("CARREL_HISTORY"); h != nullptr) return h;
  const char* home = std::getenv("HOME");
  return home != nullptr && *home != '\0' ? std::string(home) + "/.carrel_history" : "";
}

LineEditor::LineEditor(std::string history_file)
    : tty_(isatty(STDIN_FILENO) != 0), history_file_(std::move(history_file)) {
  if (wake_pipe[0] < 0 && ::pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    wake_pipe[0] = wake_pipe[1] = -1;  // writes to -1 fail harmlessly; poll skips it
  }
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &saved_int_);
  interrupted = 0;
  if (!tty_) return;
  rl_readline_name = "carrel";
  rl_catch_signals = 0;  // ours: on_interrupt
  rl_getc_function = read_byte;
  using_history();
  stifle_history(kHistoryEntriesMax);  // invariant (2)
  if (!history_file_.empty()) read_history(history_file_.c_str());
}

LineEditor::~LineEditor() {
  if (tty_ && !history_file_.empty()) {
    write_history(history_file_.c_str());
    history_truncate_file(history_file_.c_str(), kHistoryEntriesMax);
  }
  sigaction(SIGINT, &saved_int_, nullptr);
}

LineEditor::Read LineEditor::read(const char* prompt, std::string* line) {
  if (!tty_) {
    std::cerr << prompt << std::flush;
    if (!std::getline(std::cin, *line)) return Read::kEnd;
    return take_interrupt() ? Read::kInterrupted : Read::kLine;
  }
  interrupted = 0;
  drain_wake_pipe();
  char* text = readline(prompt);
  if (text == nullptr && interrupted != 0) {
    // Ctrl-C at the prompt: the line is dropped (invariant (1)).
    interrupted = 0;
    drain_wake_pipe();
    std::cerr << "^C\n";
    return Read::kInterrupted;
  }
  if (text == nullptr) return Read::kEnd;
  line->assign(text);
  std::free(text);
  return Read::kLine;
}

void LineEditor::remember(const std::string& statement) {
  if (!tty_ || statement.empty()) return;
  std::string one = statement;
  while (!one.empty() && (one.back() == '\n' || one.back() == ' ')) one.pop_back();
  add_history(one.c_str());
}

bool LineEditor::interrupt_pending() {
  return interrupted.load(std::memory_order_relaxed) != 0;
}

bool LineEditor::take_interrupt() {
  bool was = interrupted != 0;
  interrupted = 0;
  if (was) drain_wake_pipe();
  return was;
}

}  // namespace carrel::cli
