#include "tools/cli/line_editor.h"

#include <editline/readline.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>

namespace carrel::cli {
namespace {

// Signal state: one LineEditor at a time (the REPL's).
volatile sig_atomic_t interrupted = 0;
pthread_t reader_thread;  // the thread that calls read(): the REPL's

void on_interrupt(int) {
  interrupted = 1;
  // Ctrl-C may land on an engine thread; the reader must see EINTR to drop
  // its line, so pass the signal on (pthread_kill is async-signal-safe).
  if (pthread_equal(pthread_self(), reader_thread) == 0) pthread_kill(reader_thread, SIGINT);
}

// libedit's input: one byte of stdin. The SIGINT handler is installed without
// SA_RESTART, so Ctrl-C ends the read with EINTR and readline() returns as at
// end of input; read() tells the two apart by the flag (invariant (1)).
int read_byte(FILE*) {
  for (;;) {
    unsigned char c = 0;
    ssize_t n = ::read(STDIN_FILENO, &c, 1);
    if (n == 1) return c;
    if (n < 0 && errno == EINTR && interrupted == 0) continue;
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
  reader_thread = pthread_self();
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
  char* text = readline(prompt);
  if (text == nullptr && interrupted != 0) {
    // Ctrl-C at the prompt: the line is dropped (invariant (1)).
    interrupted = 0;
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

bool LineEditor::take_interrupt() {
  bool was = interrupted != 0;
  interrupted = 0;
  return was;
}

}  // namespace carrel::cli
