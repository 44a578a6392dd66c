#include "tests/test_util.h"

#include <gtest/gtest.h>

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

}  // namespace carrel::testing
