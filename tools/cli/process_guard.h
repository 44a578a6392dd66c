// Process-wide guards of the carrel binary (installed by main(), not by
// run_main(), so the in-process fuzzer keeps its own signal handling).
//
// Invariants:
//  (1) SIGPIPE is ignored: a closed stdout is EPIPE on write, which stops the
//      command's scans (stop_requested()) so it returns through its normal
//      path and closes the engine, releasing its LMDB reader slot.
//  (2) In a read-only command (allow_graceful_stop()), SIGINT and SIGTERM set a flag that every scan checks (ScanCursor), so
//      the command stops at the next entry and closes the engine; stdout is
//      pointed at a pipe without a reader, so a write blocked on a full pipe
//      fails instead of waiting for a reader that is gone. While a
//      backup copies, the signal also points the copy's file descriptor at a
//      pipe without a reader (dup2 is async-signal-safe), so LMDB's copy fails
//      at its next write (EPIPE) and aborts its read transaction. A second signal ends the
//      process at once, and so does the first in a writing command (its turn
//      commits whole or not at all, and the kernel drops its writer lock).
//  (3) SIGBUS or SIGSEGV at an address inside the LMDB map of the open
//      environment (a damaged data.mdb) ends the process with exit code 1 and
//      one line naming the file; any other fault keeps its default action (a
//      bug must stay visible). While the engine opens, before the map's
//      address is known (note_opening), a SIGBUS reading past the end of a
//      mapped file (BUS_ADRERR) is taken as data.mdb's. This is the last line
//      of defence: the checks of env_check.h run first.
#pragma once

#include <cstddef>
#include <string>

namespace carrel::cli {

void install_process_guards();

// True once SIGINT/SIGTERM arrived or stdout failed (EPIPE): scans stop.
bool stop_requested();
// The reason for stop_requested(), for the error line ("interrupted by SIGTERM").
std::string stop_reason();

// Invariant (3): the engine in `dir` is being opened (its map not yet known).
void note_opening(const std::string& dir);
// Invariant (3): records where the open environment in `dir` mapped data.mdb.
void note_mapping(const std::string& dir);

// Invariant (2): the command opened the engine read-only.
void allow_graceful_stop();

// Invariant (2): fd is the file a backup is being copied into; -1 when done.
void note_copy_fd(int fd);

}  // namespace carrel::cli
