// The SQL REPL's input: line editing and history through libedit when stdin
// is a terminal, plain lines otherwise (scripts keep working as before).
//
// Invariants:
//  (1) Ctrl-C never ends the process while a LineEditor is alive: at the
//      prompt it drops the line being typed (read() returns kInterrupted);
//      while a statement runs it stops the statement (the engine polls
//      interrupt_pending() through Options::sql_interrupt) and is reported
//      after it (take_interrupt()).
//  (2) The history file keeps at most kHistoryEntriesMax statements; it is
//      read when the editor starts and written when it ends.
#pragma once

#include <signal.h>

#include <string>

namespace carrel::cli {

constexpr int kHistoryEntriesMax = 1000;

// $CARREL_HISTORY, else $HOME/.carrel_history; empty (no history file) when
// neither is set or CARREL_HISTORY is empty.
std::string history_path();

class LineEditor {
 public:
  enum class Read { kLine, kEnd, kInterrupted };

  explicit LineEditor(std::string history_file);
  ~LineEditor();
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // One line, without its newline. kEnd at end of input (Ctrl-D).
  Read read(const char* prompt, std::string* line);
  // Adds a whole statement to the history (not each line of it).
  void remember(const std::string& statement);
  // Whether Ctrl-C was pressed since the last call (invariant (1)).
  bool take_interrupt();
  // Whether Ctrl-C was pressed and not yet taken; false when no LineEditor
  // is alive. Cheap and thread-safe: Options::sql_interrupt polls it.
  static bool interrupt_pending();

 private:
  bool tty_;
  std::string history_file_;
  struct sigaction saved_int_ {};
};

}  // namespace carrel::cli
