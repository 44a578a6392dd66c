// carrel-serve: an HTTP/1.1 + WebSocket front door for an engine directory.
//
//   carrel-serve --dir DIR [--listen 127.0.0.1:8080] [--nosync] [--workers N]
//                [--max-connections N] [--ws-idle-seconds S] [--http-idle-seconds S]
//
//   POST /objects/CLASS/NAME/METHOD   body = payload -> 200 + reply (after the commit is durable)
//   GET  /objects/CLASS/NAME/ws       WebSocket connected to the object
//   GET  /  or /chat                  the chat page (Chat rooms over that socket)
//
// Serves the example classes (examples/classes/) and Obj, the object of the
// workerd comparison (bench/http/): put, get, sql as in its worker.js.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "carrel/carrel.h"
#include "classes/chat.h"
#include "classes/rate_limiter.h"
#include "classes/session.h"
#include "classes/subscription.h"
#include "classes/workspace.h"
#include "tools/serve/server.h"

namespace carrel::serve {
namespace {

// The Durable Object of ../peer-workerd/worker.js: put writes one of 50 keys,
// get reads one, sql inserts a row; 100-byte values.
class BenchObject final : public Handler {
 public:
  Status on_start(Context& ctx) override {
    return ctx.sql()
        .exec(
            "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, content TEXT, ts "
            "INTEGER)")
        .status();
  }
  Result<std::string> on_request(Context& ctx, const Request& r) override {
    static const std::string value(100, 'x');
    if (r.method == "put") {
      CARREL_RETURN_IF_ERROR(ctx.kv().put("k" + std::to_string(rng_() % 50), value));
      return std::string("ok");
    }
    if (r.method == "get") {
      CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().get("k1"));
      return std::string(v ? "hit" : "miss");
    }
    if (r.method == "sql") {
      CARREL_RETURN_IF_ERROR(
          ctx.sql()
              .exec("INSERT INTO messages(content, ts) VALUES (?, ?)", value, ctx.now_ms())
              .status());
      return std::string("ok");
    }
    return Status::invalid_argument("Obj has no method '" + r.method + "' (put, get, sql)");
  }

 private:
  std::minstd_rand rng_{std::random_device{}()};
};

}  // namespace
}  // namespace carrel::serve

int main(int argc, char** argv) {
  using namespace carrel;
  CLI::App app{"carrel-serve: HTTP/1.1 and WebSocket front door for a carrel engine"};
  std::string dir, listen = "127.0.0.1:8080";
  bool nosync = false;
  int workers = 0;
  int64_t idle_timeout_ms = Options{}.idle_timeout_ms;
  serve::ServeOptions so;
  int ws_idle_s = so.ws_idle_ms / 1000, http_idle_s = so.http_idle_ms / 1000;
  app.add_option("--dir", dir, "engine directory (created if missing)")->required();
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0: any free port)");
  app.add_flag("--nosync", nosync, "Durability::kNoSync (no fsync before replies)");
  app.add_option("--workers", workers, "engine worker threads (0: one per core)");
  app.add_option("--idle-timeout-ms", idle_timeout_ms,
                 "evict (hibernate) an object idle this long; its sockets stay open");
  app.add_option("--max-connections", so.connections_max, "open sockets at most");
  app.add_option("--ws-idle-seconds", ws_idle_s, "close a silent WebSocket after this long");
  app.add_option("--http-idle-seconds", http_idle_s, "close an idle keep-alive socket");
  CLI11_PARSE(app, argc, argv);
  so.ws_idle_ms = ws_idle_s * 1000;
  so.http_idle_ms = http_idle_s * 1000;
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "carrel-serve: --listen takes HOST:PORT, got '%s'\n", listen.c_str());
    return 2;
  }
  so.host = listen.substr(0, colon);
  int port = std::atoi(listen.c_str() + colon + 1);
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "carrel-serve: port %d is outside 0..65535\n", port);
    return 2;
  }
  so.port = static_cast<uint16_t>(port);

  Options o;
  o.dir = dir;
  o.durability = nosync ? Durability::kNoSync : Durability::kSync;
  o.workers = workers;
  o.idle_timeout_ms = idle_timeout_ms;
  o.connection_frame_bytes_max = 64 * 1024;
  auto opened = Engine::open(o);
  if (!opened.is_ok()) {
    std::fprintf(stderr, "carrel-serve: %s\n", opened.status().to_string().c_str());
    return 1;
  }
  std::unique_ptr<Engine> engine = std::move(opened).value();
  for (Status s : {examples::register_chat(*engine), examples::register_rate_limiter(*engine),
                   examples::register_sessions(*engine), examples::register_subscription(*engine),
                   examples::register_workspace(*engine), examples::register_thread(*engine),
                   engine->register_class("Obj", [](const ObjectRef&) {
                     return std::make_unique<serve::BenchObject>();
                   })}) {
    if (!s.is_ok()) {
      std::fprintf(stderr, "carrel-serve: %s\n", s.to_string().c_str());
      return 1;
    }
  }
  return serve::serve(*engine, so, [&](uint16_t bound) {
    std::printf("carrel-serve: listening on http://%s:%u/\n", so.host.c_str(), bound);
    std::fflush(stdout);
  });
}
