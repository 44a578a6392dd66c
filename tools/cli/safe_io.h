// Bounded reads and atomic file writes for the CLI's own files (value files,
// scripts, imports, exports).
//
// Invariants:
//  (1) A read stops at limit + 1 bytes: input larger than its limit is an
//      error naming the limit, after reading at most limit + 1 bytes (never
//      the whole of /dev/zero).
//  (2) A read error (a directory, a closed or unreadable stdin) is an error,
//      never an empty value.
//  (3) write_file_atomically never leaves a partial target: it writes a
//      temporary file beside the target, fsyncs it, renames it over the
//      target and fsyncs the directory; on any error the temporary is removed.
#pragma once

#include <cstddef>
#include <functional>
#include <iosfwd>
#include <streambuf>
#include <string>

#include "carrel/status.h"

namespace carrel::cli {

// Reads all of `path` ("-": stdin). `what` names the input in errors
// ("value file 'v.bin'"); `limit_name` names the limit ("value_bytes_max").
Result<std::string> read_bounded(const std::string& path, size_t max_bytes,
                                 const std::string& what, const std::string& limit_name);

// Whether `path` is the directory `dir` or lies inside it, comparing both
// with symlinks and `..` resolved as far as they exist. An error resolving
// either is IOError naming it.
Result<bool> path_is_within(const std::string& path, const std::string& dir);

// Invariant (3). `write` fills the temporary file's stream.
Status write_file_atomically(const std::string& path,
                             const std::function<Status(std::ostream&)>& write);

// An input stream buffer over a file descriptor that ends the stream (EOF)
// when a line grows past max_line_bytes or a read fails; the caller asks
// which happened after the consumer saw the end (invariants (1) and (2)).
class LineCappedBuf : public std::streambuf {
 public:
  LineCappedBuf(int fd, size_t max_line_bytes) : fd_(fd), max_line_(max_line_bytes) {}
  bool line_too_long() const { return too_long_; }
  size_t line_no() const { return line_no_; }
  // Empty unless a read failed.
  const std::string& read_error() const { return error_; }

 protected:
  int_type underflow() override;

 private:
  int fd_;
  size_t max_line_;
  size_t line_bytes_ = 0, line_no_ = 1;
  bool too_long_ = false;
  std::string error_;
  char buf_[1 << 16];
};

}  // namespace carrel::cli
