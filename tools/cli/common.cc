// What every command shares: opening the engine directory and reporting
// errors. OBJ arguments are resolved in object_name.cc.
#include <iostream>

#include "engine/loop/engine_core.h"
#include "tools/cli/cli.h"
#include "tools/cli/output.h"

namespace carrel::cli {

namespace {
bool json_errors = false;

// invariant (3) of cli.h; with --json the line is {"error":{"code":...,"message":...}}.
int report(std::string_view code, const std::string& message, int exit_code) {
  std::cout.flush();
  if (json_errors) {
    JsonWriter j;
    j.begin_object().key("error").begin_object().field("code", code);
    j.field("message", message).field("exit_code", exit_code).end_object().end_object();
    std::cerr << j.str() << '\n';
  } else {
    std::cerr << "carrel: " << message << '\n';
  }
  return exit_code;
}
}  // namespace

void set_json_errors(bool on) {
  json_errors = on;
}

int fail(const Status& status) {
  std::string m = status.message();
  if (status.code() == Code::kBusy && m.find("open for writing by process") != std::string::npos) {
    m += " (inspection commands work beside it; stop it to change data)";
  }
  return report(code_name(status.code()), m, kExitError);
}

int fail(const std::string& message) {
  return report("Error", message, kExitError);
}

int fail_usage(const std::string& message, const std::string& help) {
  report("Usage", message, kExitUsage);
  if (!json_errors && !help.empty()) std::cerr << '\n' << help;
  return kExitUsage;
}

Result<std::unique_ptr<Engine>> open_engine(const Globals& g, bool read_only) {
  Options o;
  o.dir = g.dir;
  o.create_if_missing = false;
  o.read_only = read_only;
  // One worker is plenty for one command's turns, and on a shared machine the
  // default (one per core) would spawn threads for nothing.
  o.workers = 1;
  return Engine::open(std::move(o));
}

store::Store& store_of(Engine& engine) {
  return engine.core()->store();
}

}  // namespace carrel::cli
