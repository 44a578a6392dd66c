// The carrel CLI on arbitrary argument vectors, against a prepared engine
// directory. Checks: no crash, no hang, that the directory still verifies
// afterwards, and what docs/cli.md's exit codes promise for each outcome:
//   0  success: nothing on stderr (no error passed off as a success);
//   1  an error: a message on stderr, "carrel: <what is at fault>" (with --json
//      a {"error":{...}} object);
//   2  a usage error: nothing on stdout, a message on stderr as for 1;
//   anything else is a failure.
// By argument class: no command at all, or a first word that names no command,
// is a usage error (2); so is an option the CLI does not know (--x when the
// command has no such option) — the CLI must not run a command with it.
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
  std::ostringstream out, err;
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
    std::cout.rdbuf(out.rdbuf());
    std::cerr.rdbuf(err.rdbuf());
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

// The commands of docs/cli.md (`kv` and `alarms` take a second word).
bool is_command(const std::string& word) {
  for (const char* c : {"init", "objects", "show", "kv", "sql", "alarms", "history", "bookmark",
                        "restore", "backup", "verify", "stats", "export", "import"}) {
    if (word == c) return true;
  }
  return false;
}

// Whether stderr starts with an error message: "carrel: <text>", or with --json
// {"error":{"code":...,"message":"<text>",...,"exit_code":rc}}.
bool has_message(const std::string& err, int rc) {
  if (err.rfind("carrel: ", 0) == 0) return err.size() > 9 && err[8] != '\n';
  return err.rfind("{\"error\":{\"code\":\"", 0) == 0 &&
         err.find("\"message\":\"") != std::string::npos &&
         err.find("\"message\":\"\"") == std::string::npos &&
         err.find("\"exit_code\":" + std::to_string(rc) + "}}") != std::string::npos;
}

// Whether the outcome is what the exit code table allows for these arguments; the reason if not.
std::string outcome_error(const std::vector<std::string>& args, int rc, const std::string& out,
                          const std::string& err) {
  if (rc != 0 && rc != 1 && rc != 2) return "exit code " + std::to_string(rc);
  if (rc == 0 && !err.empty()) return "exit 0 with stderr: " + err.substr(0, 200);
  // (Not yet checked: that the message is one line. An SQL error quoting a token that ends a
  // line of the query, e.g. `sql OBJ "SELECT * FROM[t"`, prints the line break inside it.)
  if (rc == 1) {
    if (!has_message(err, rc) || err.back() != '\n') {
      return "exit 1 without a 'carrel: <what is at fault>' message on stderr: " +
             err.substr(0, 200);
    }
  }
  if (rc == 2) {
    if (!out.empty()) return "exit 2 with stdout: " + out.substr(0, 200);
    if (!has_message(err, rc)) {
      return "exit 2 without a 'carrel: ...' message: " + err.substr(0, 200);
    }
  }
  // The first word that is not the --json flag decides the class (args[0..2]: carrel --dir D).
  size_t first = 3;
  while (first < args.size() && args[first] == "--json") ++first;
  bool help = false;
  for (size_t i = 3; i < args.size(); ++i) {  // --help, or -h alone or in a cluster (-hv)
    const std::string& a = args[i];
    help = help || a.rfind("--help", 0) == 0 ||
           (a.size() > 1 && a[0] == '-' && a[1] != '-' && a.find('h') != std::string::npos);
  }
  if (!help && rc != 2) {
    if (first == args.size()) return "no command, exit " + std::to_string(rc) + " instead of 2";
    if (args[first][0] != '-' && !is_command(args[first])) {
      return "'" + args[first] + "' names no command, exit " + std::to_string(rc) + " instead of 2";
    }
    for (size_t i = 3; i < args.size(); ++i) {
      if (args[i] == "--") break;  // what follows is an argument, not an option
      if (args[i].rfind("--zz", 0) == 0) {
        return "unknown option " + args[i] + ", exit " + std::to_string(rc) + " instead of 2";
      }
    }
  }
  return "";
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
    arg = arg.substr(0, arg.find('\0'));  // what a real argv can carry
    if (!allowed(arg)) continue;
    args.push_back(arg);
  }
  const int rc = run_cli(args);
  std::string args_text;
  for (auto& a : args) args_text += "[" + a + "] ";
  const std::string bad = outcome_error(args, rc, f.out.str(), f.err.str());
  if (!bad.empty()) fuzz::fail("cli", bad + " for " + args_text);
  f.out.str("");
  f.err.str("");
  if (run_cli({"carrel", "--dir", f.dir, "verify"}) != 0) {
    fuzz::fail("cli", "verify failed after: " + args_text);
  }
  f.out.str("");
  f.err.str("");
  return 0;
}
