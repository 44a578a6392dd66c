// Uses only the installed public headers and library: the umbrella header,
// an engine in a temporary directory, a registered class, turns that write
// KV and SQL, and a reopen that finds them.
#include <carrel/carrel.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

namespace {

// "add" adds 1 to KV "n" and inserts a row per turn; replies "n/rows".
class Counter final : public carrel::Handler {
 public:
  carrel::Status on_start(carrel::Context& ctx) override {
    return ctx.sql().exec("CREATE TABLE IF NOT EXISTS adds(n INTEGER)").status();
  }
  carrel::Result<std::string> on_request(carrel::Context& ctx,
                                         const carrel::Request& request) override {
    if (request.method != "add") return carrel::Status::invalid_argument("unknown method");
    CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().get("n"));
    const int n = v ? std::stoi(*v) + 1 : 1;
    CARREL_RETURN_IF_ERROR(ctx.kv().put("n", std::to_string(n)));
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO adds VALUES (?)", n).status());
    CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec("SELECT count(*) FROM adds"));
    CARREL_ASSIGN_OR_RETURN(auto row, c.one());
    CARREL_ASSIGN_OR_RETURN(int64_t rows, row.get_int(0));
    return std::to_string(n) + "/" + std::to_string(rows);
  }
};

int fail(const std::string& what) {
  std::fprintf(stderr, "carrel consumer: %s\n", what.c_str());
  return 1;
}

// Opens the engine in dir, calls "add" on Counter:c once; its reply or the error.
std::string add_once(const std::string& dir) {
  carrel::Options options;
  options.dir = dir;
  auto engine = carrel::Engine::open(options);
  if (!engine.is_ok()) return "open: " + engine.status().to_string();
  auto s = (*engine)->register_class(
      "Counter", [](const carrel::ObjectRef&) { return std::make_unique<Counter>(); });
  if (!s.is_ok()) return "register_class: " + s.to_string();
  auto reply = (*engine)->stub("Counter", "c").call("add", "").get();
  s = (*engine)->close();
  if (!reply.is_ok()) return "call: " + reply.status().to_string();
  if (!s.is_ok()) return "close: " + s.to_string();
  return *reply;
}

}  // namespace

int main() {
  const std::string want = "c012dbc7a89195dce46f41d5df184c2e";
  const std::string got = carrel::id_from_name("Workspace", "acme").to_hex();
  if (got != want) return fail("id_from_name(Workspace, acme) = " + got + ", want " + want);

  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/carrel-consumer-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return fail("mkdtemp " + tmpl + " failed");
  const std::string dir = tmpl + "/engine";
  const std::string first = add_once(dir);
  const std::string second = add_once(dir);  // a reopen finds the first turn's KV and SQL
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
  if (first != "1/1") return fail("first turn replied '" + first + "', want '1/1'");
  if (second != "2/2") return fail("turn after reopen replied '" + second + "', want '2/2'");
  std::printf("carrel consumer ok: %s; turns replied %s, %s\n", got.c_str(), first.c_str(),
              second.c_str());
  return 0;
}
