// Bounded reads and atomic writes (invariants in safe_io.h).
#include "tools/cli/safe_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "tools/cli/process_guard.h"

namespace carrel::cli {
namespace {

std::string errno_text(int e) {
  return std::strerror(e);
}

// Opens `path` for reading ("-": stdin, not closed by the caller).
Result<int> open_input(const std::string& path, const std::string& what) {
  if (path == "-") return STDIN_FILENO;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::not_found("cannot open " + what + ": " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Status::invalid_argument(what + " is a directory, not a file");
  }
  return fd;
}

}  // namespace

Result<std::string> read_bounded(const std::string& path, size_t max_bytes,
                                 const std::string& what, const std::string& limit_name) {
  CARREL_ASSIGN_OR_RETURN(int fd, open_input(path, what));
  struct Closer {
    int fd;
    ~Closer() {
      if (fd != STDIN_FILENO) ::close(fd);
    }
  } closer{fd};
  std::string out;
  char buf[1 << 16];
  for (;;) {
    if (stop_requested()) return Status::aborted("reading " + what + ": " + stop_reason());
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::io_error("cannot read " + what + ": " + errno_text(errno));
    if (n == 0) return out;
    size_t room = max_bytes + 1 - out.size();  // invariant (1): at most limit + 1 bytes
    out.append(buf, std::min(room, static_cast<size_t>(n)));
    if (out.size() > max_bytes) {
      return Status::invalid_argument(what + " is larger than the limit of " +
                                      std::to_string(max_bytes) + " bytes (" + limit_name + ")");
    }
  }
}

Status write_file_atomically(const std::string& path,
                             const std::function<Status(std::ostream&)>& write) {
  namespace fs = std::filesystem;
  std::string tmp = path + ".partial-" + std::to_string(::getpid());
  auto drop = [&](Status s) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return s;
  };
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return Status::io_error("cannot create '" + tmp + "': " + errno_text(errno));
    Status s = write(f);
    f.close();
    if (s.is_ok() && !f) s = Status::io_error("cannot write '" + tmp + "'");
    if (!s.is_ok()) return drop(s);
  }
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    Status s = Status::io_error("fsync '" + tmp + "': " + errno_text(errno));
    if (fd >= 0) ::close(fd);
    return drop(s);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return drop(Status::io_error("rename '" + tmp + "' to '" + path + "': " + errno_text(errno)));
  }
  std::string dir = fs::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || ::fsync(dfd) != 0) {
    Status s = Status::io_error("fsync directory '" + dir + "': " + errno_text(errno));
    if (dfd >= 0) ::close(dfd);
    return s;
  }
  ::close(dfd);
  return Status::ok();
}

LineCappedBuf::int_type LineCappedBuf::underflow() {
  if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
  if (too_long_ || !error_.empty()) return traits_type::eof();
  ssize_t n;
  do {
    if (stop_requested()) {
      error_ = stop_reason();
      return traits_type::eof();
    }
    n = ::read(fd_, buf_, sizeof(buf_));
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    error_ = errno_text(errno);
    return traits_type::eof();
  }
  if (n == 0) return traits_type::eof();
  // Hand out bytes up to the first line that would pass the cap.
  size_t given = 0;
  for (; given < static_cast<size_t>(n); ++given) {
    if (buf_[given] == '\n') {
      line_bytes_ = 0;
      ++line_no_;
    } else if (++line_bytes_ > max_line_) {
      too_long_ = true;
      break;
    }
  }
  if (given == 0) return traits_type::eof();
  setg(buf_, buf_, buf_ + given);
  return traits_type::to_int_type(buf_[0]);
}

Result<bool> path_is_within(const std::string& path, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path d = fs::weakly_canonical(dir, ec);
  if (ec) return Status::io_error("cannot resolve '" + dir + "': " + ec.message());
  fs::path p = fs::weakly_canonical(path, ec);
  if (ec) return Status::io_error("cannot resolve '" + path + "': " + ec.message());
  // weakly_canonical keeps a trailing separator as an empty last element.
  if (!d.empty() && d.filename().empty()) d = d.parent_path();
  auto [at_d, at_p] = std::mismatch(d.begin(), d.end(), p.begin(), p.end());
  return at_d == d.end();
}

}  // namespace carrel::cli
