// Long output on a terminal goes through a pager, as git and psql do.
//
// Invariants:
//  (1) Only when stdout is a terminal, the command is a listing (pageable()),
//      --no-pager is not given and the pager is not empty or "cat"; otherwise
//      output goes straight to stdout, unbuffered by the pager.
//  (2) Output that fits the terminal's height is written directly; longer
//      output is piped to $CARREL_PAGER, else $PAGER, else "less" (with
//      LESS=FRX when LESS is unset). Quitting the pager early is not an error.
//  (3) The captured output is bounded by kPagerCaptureBytesMax: past it, the
//      pager starts and the rest streams through it.
#pragma once

#include <cstdio>
#include <memory>
#include <sstream>
#include <string>

#include "tools/cli/cli.h"

namespace carrel::cli {

constexpr size_t kPagerCaptureBytesMax = 4 << 20;

// command: the words of the selected command ("kv list", "sql", ...);
// sql_repl: the sql command is about to read a terminal (never paged).
bool pageable(const std::string& command, bool sql_repl);

class Pager {
 public:
  Pager(const Globals& g, const std::string& command, bool sql_repl);
  ~Pager();
  Pager(const Pager&) = delete;
  Pager& operator=(const Pager&) = delete;
  // Writes what was captured (directly or through the pager) and waits for
  // the pager to exit. Idempotent.
  void finish();

 private:
  class CaptureBuf;
  bool active_ = false;
  std::streambuf* saved_ = nullptr;
  std::unique_ptr<CaptureBuf> buf_;
};

}  // namespace carrel::cli
