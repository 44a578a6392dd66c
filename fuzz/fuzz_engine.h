// One engine per fuzzer process, in a temporary directory removed at exit.
// Fuzz targets that run inputs through objects share it (a fresh object per input).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "carrel/carrel.h"

namespace carrel::fuzz {

[[noreturn]] inline void fail(const char* target, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", target, what.c_str());
  std::abort();
}

struct EngineFixture {
  std::string dir;
  std::unique_ptr<Engine> engine;
  explicit EngineFixture(const char* target) {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/carrel-fuzz-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) fail(target, "mkdtemp");
    dir = tmpl;
    Options o;
    o.dir = dir;
    o.durability = Durability::kNoSync;  // CPU, not the disk, bounds the executions
    o.history_retention_ms = 0;
    o.workers = 1;
    auto e = Engine::open(o);
    if (!e.is_ok()) fail(target, "open: " + e.status().to_string());
    engine = std::move(*e);
  }
  ~EngineFixture() {
    (void)engine->close();
    engine.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

}  // namespace carrel::fuzz
