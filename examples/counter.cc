// counter: the program of docs/getting-started.md, which README.md quotes
// (the docs_snippets test checks both against this file).
#include <carrel/carrel.h>

#include <cstdio>
#include <memory>
#include <string>

// One Counter object per name; each keeps its count in its own KV namespace.
class Counter final : public carrel::Handler {
 public:
  carrel::Result<std::string> on_request(carrel::Context& ctx,
                                         const carrel::Request& request) override {
    CARREL_ASSIGN_OR_RETURN(auto stored, ctx.kv().get("count"));  // sees this turn's writes
    long count = stored ? std::stol(*stored) : 0;
    if (request.method == "add") {
      // Commits with the turn, or not at all.
      CARREL_RETURN_IF_ERROR(ctx.kv().put("count", std::to_string(++count)));
    } else if (request.method != "get") {
      return carrel::Status::invalid_argument("unknown method " + request.method);
    }
    return std::to_string(count);  // the reply is released once the turn is durable
  }
};

int main(int argc, char** argv) {
  carrel::Options options;
  options.dir = argc > 1 ? argv[1] : "counter-data";
  auto engine = carrel::Engine::open(options);
  if (!engine.is_ok()) {
    std::fprintf(stderr, "%s\n", engine.status().to_string().c_str());
    return 1;
  }
  carrel::Status registered = (*engine)->register_class(
      "Counter", [](const carrel::ObjectRef&) { return std::make_unique<Counter>(); });
  if (!registered.is_ok()) {
    std::fprintf(stderr, "%s\n", registered.to_string().c_str());
    return 1;
  }

  carrel::Stub visits = (*engine)->stub("Counter", "visits");
  // The future is ready once the turn's writes are durable (fsynced).
  carrel::Result<std::string> reply = visits.call("add", "").get();
  if (!reply.is_ok()) {
    std::fprintf(stderr, "%s\n", reply.status().to_string().c_str());
    return 1;
  }
  std::printf("visits: %s\n", reply->c_str());
  return 0;
}
