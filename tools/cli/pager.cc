#include "tools/cli/pager.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

namespace carrel::cli {
namespace {

std::string pager_command() {
  for (const char* var : {"CARREL_PAGER", "PAGER"}) {
    if (const char* v = std::getenv(var); v != nullptr) return v;
  }
  return "less";
}

size_t terminal_rows() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) return ws.ws_row;
  return 24;
}

}  // namespace

// Keeps output in memory until it is known to fit the terminal; past the
// terminal's height or kPagerCaptureBytesMax it opens the pager and streams.
class Pager::CaptureBuf : public std::streambuf {
 public:
  explicit CaptureBuf(std::string command) : command_(std::move(command)) {}
  ~CaptureBuf() override { close(); }

  int_type overflow(int_type c) override {
    if (c == traits_type::eof()) return traits_type::not_eof(c);
    char ch = static_cast<char>(c);
    return xsputn(&ch, 1) == 1 ? c : traits_type::eof();
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (direct_) return write_all(std::string(s, static_cast<size_t>(n))) ? n : 0;
    if (pipe_ != nullptr) {
      std::fwrite(s, 1, static_cast<size_t>(n), pipe_);  // a closed pager is not an error (2)
      return n;
    }
    for (std::streamsize i = 0; i < n; ++i) lines_ += s[i] == '\n';
    text_.append(s, static_cast<size_t>(n));
    if (lines_ >= rows_ || text_.size() > kPagerCaptureBytesMax) start_pager();
    return n;
  }
  int sync() override {
    if (pipe_ != nullptr) std::fflush(pipe_);
    return 0;
  }
  // Writes what fits directly, or waits for the pager.
  void close() {
    if (closed_) return;
    closed_ = true;
    if (pipe_ == nullptr) {
      if (!direct_) (void)!write_all(text_);
      return;
    }
    pclose(pipe_);
    pipe_ = nullptr;
    sigaction(SIGPIPE, &saved_pipe_, nullptr);
  }

 private:
  bool write_all(const std::string& s) {
    size_t at = 0;
    while (at < s.size()) {
      ssize_t n = ::write(STDOUT_FILENO, s.data() + at, s.size() - at);
      if (n <= 0) return false;
      at += static_cast<size_t>(n);
    }
    return true;
  }
  void start_pager() {
    if (std::getenv("LESS") == nullptr) setenv("LESS", "FRX", 1);
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, &saved_pipe_);
    std::fflush(stdout);
    pipe_ = popen(command_.c_str(), "w");
    if (pipe_ == nullptr) {
      sigaction(SIGPIPE, &saved_pipe_, nullptr);
      direct_ = true;  // no pager: write directly from now on
      (void)!write_all(text_);
      text_.clear();
      return;
    }
    std::fwrite(text_.data(), 1, text_.size(), pipe_);
    text_.clear();
  }

  std::string command_;
  std::string text_;
  size_t lines_ = 0;
  size_t rows_ = terminal_rows();
  FILE* pipe_ = nullptr;
  struct sigaction saved_pipe_ {};
  bool closed_ = false;
  bool direct_ = false;
};

bool pageable(const std::string& command, bool sql_repl) {
  if (command == "sql") return !sql_repl;
  return command == "objects" || command == "show" || command == "kv list" ||
         command == "alarms list" || command == "history" || command == "stats";
}

Pager::Pager(const Globals& g, const std::string& command, bool sql_repl) {
  std::string cmd = pager_command();
  if (g.no_pager || !pageable(command, sql_repl) || isatty(STDOUT_FILENO) == 0 || cmd.empty() ||
      cmd == "cat") {
    return;  // invariant (1)
  }
  active_ = true;
  std::cout.flush();
  buf_ = std::make_unique<CaptureBuf>(cmd);
  saved_ = std::cout.rdbuf(buf_.get());
}

Pager::~Pager() {
  finish();
}

void Pager::finish() {
  if (!active_) return;
  active_ = false;
  std::cout.flush();
  std::cout.rdbuf(saved_);
  buf_->close();
}

}  // namespace carrel::cli
