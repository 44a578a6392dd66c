#include "tests/test_util.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace carrel::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/carrel-test-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Options options_in(const TempDir& dir) {
  Options o;
  o.dir = dir.path();
  return o;
}

std::unique_ptr<Engine> open_engine(const Options& options) {
  auto e = Engine::open(options);
  if (!e.is_ok()) {
    ADD_FAILURE() << "Engine::open(" << options.dir << "): " << e.status().to_string();
    return nullptr;
  }
  return std::move(e).value();
}

std::string kv_read(Engine& engine, const ObjectRef& ref, const std::string& key) {
  std::string got;
  Status s = engine.run(ref, [&](Context& ctx) -> Status {
    CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().get(key));
    got = v ? *v : "(absent)";
    return Status::ok();
  });
  return s.is_ok() ? got : s.to_string();
}

char play_role(const char* role_var, const char* role, const char* dir_var,
               const std::string& dir, const std::function<void()>& while_alive) {
  int fds[2];
  if (::pipe(fds) != 0) return 0;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (fds[1] != kRoleReportFd) ::dup2(fds[1], kRoleReportFd);
    ::setenv(role_var, role, 1);
    ::setenv(dir_var, dir.c_str(), 1);
    ::execl("/proc/self/exe", "carrel_tests", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  char c = 0;
  if (pid > 0 && ::read(fds[0], &c, 1) != 1) c = 0;  // EOF if the child dies
  ::close(fds[0]);
  if (pid > 0) {
    if (c != 0 && while_alive) while_alive();
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  return c;
}

bool play_role_then_sigkill(const char* role_var, const char* role, const char* dir_var,
                            const std::string& dir) {
  return play_role(role_var, role, dir_var, dir) == 'y';
}

}  // namespace carrel::testing
