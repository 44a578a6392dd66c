// The carrel CLI on arbitrary argument vectors, against a prepared engine
// directory. Checks: no crash, no hang, an exit code of 0, 1 or 2, and that
// the directory still verifies afterwards.
//
// Inputs are split at '\n' into at most 12 arguments. So that no input can
// write outside the prepared directory, arguments naming other paths are
// dropped: anything holding '/' or "..", the commands that write files or
// directories (init, backup, export, import) and the options that name files
// or another directory (-o, -i, --output, --input, --value-file, --dir).
// tests/cli/cli_test.sh covers those.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz/fuzz_engine.h"

namespace carrel::cli {
int run_main(int argc, char** argv);
}

namespace {

using namespace carrel;

struct CliFixture {
  std::string dir;  // the prepared engine directory
  std::ostringstream sink;
  CliFixture() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/carrel-cli-fuzz-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) fuzz::fail("cli", "mkdtemp");
    dir = tmpl + "/engine";
    if (std::freopen("/dev/null", "r", stdin) == nullptr) fuzz::fail("cli", "stdin");
    Options o;
    o.dir = dir;
    auto e = Engine::open(o);
    if (!e.is_ok()) fuzz::fail("cli", e.status().to_string());
    auto ref = ObjectRef::named("Room", "lobby");
    Status s = (*e)->run(ref, [](Context& ctx) -> Status {
      CARREL_RETURN_IF_ERROR(ctx.kv().put("greeting", "hello"));
      CARREL_RETURN_IF_ERROR(ctx.kv().put(std::string("\xff\x00k", 3), std::string("\x01\x02", 2)));
      CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE TABLE t(a INTEGER PRIMARY KEY, b)").status());
      CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t(b) VALUES ('x'), (x'00ff')").status());
      return ctx.alarms().schedule("tick", 4102444800000, "p", Repeat::every(60000));
    });
    if (!s.is_ok()) fuzz::fail("cli", s.to_string());
    (void)(*e)->close();
    // The CLI's output is not what is checked: keep it off the fuzzer's terminal.
    std::cout.rdbuf(sink.rdbuf());
    std::cerr.rdbuf(sink.rdbuf());
  }
};

CliFixture& fixture() {
  static CliFixture f;
  return f;
}

bool allowed(const std::string& arg) {
  if (arg.find('/') != std::string::npos || arg.find("..") != std::string::npos) return false;
  for (const char* word : {"init", "backup", "export", "import"}) {
    if (arg == word) return false;
  }
  for (const char* prefix : {"-o", "-i", "--o", "--i", "--v", "--d"}) {
    if (arg.rfind(prefix, 0) == 0) return false;
  }
  return true;
}

int run_cli(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return carrel::cli::run_main(static_cast<int>(args.size()), argv.data());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CliFixture& f = fixture();
  std::vector<std::string> args = {"carrel", "--dir", f.dir};
  std::string input(reinterpret_cast<const char*>(data), size);
  std::istringstream lines(input);
  for (std::string arg; std::getline(lines, arg) && args.size() < 15;) {
    if (!allowed(arg)) continue;
    args.push_back(arg);
  }
  int rc = run_cli(args);
  if (rc != 0 && rc != 1 && rc != 2) fuzz::fail("cli", "exit code " + std::to_string(rc));
  f.sink.str("");
  if (run_cli({"carrel", "--dir", f.dir, "verify"}) != 0) {
    std::string args_text;
    for (auto& a : args) args_text += "[" + a + "] ";
    fuzz::fail("cli", "verify failed after: " + args_text);
  }
  f.sink.str("");
  return 0;
}
