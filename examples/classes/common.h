// examples/classes/common.h — small pieces every example shares.
//
// Payloads in the examples are '|'-separated fields (a name never contains
// '|'), so the programs need no serialization library. Everything here uses
// only the public API in carrel/carrel.h and the standard library.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "carrel/carrel.h"

namespace carrel::examples {

inline constexpr int64_t kDayMs = int64_t{24} * 3600 * 1000;

// "a|b|c" -> {"a", "b", "c"}; "" -> {""}.
inline std::vector<std::string> split_fields(std::string_view payload) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t bar = payload.find('|', start);
    out.emplace_back(payload.substr(start, bar == std::string_view::npos ? bar : bar - start));
    if (bar == std::string_view::npos) return out;
    start = bar + 1;
  }
}

inline std::string join_fields(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += '|';
    out += fields[i];
  }
  return out;
}

// Field i of a payload, or InvalidArgument naming the method and the field count.
inline Result<std::vector<std::string>> expect_fields(const Request& request, size_t count) {
  auto fields = split_fields(request.payload);
  if (fields.size() != count) {
    return Status::invalid_argument("method " + request.method + " takes " + std::to_string(count) +
                                    " '|'-separated fields, got " + std::to_string(fields.size()));
  }
  return fields;
}

inline Status unknown_method(const Context& ctx, const Request& request) {
  return Status::invalid_argument("object " + ctx.object().label() + " has no method '" +
                                  request.method + "'");
}

// Reads a KV value as a string; an absent key gives `fallback`.
inline Result<std::string> kv_string(Context& ctx, std::string_view key,
                                     std::string fallback = {}) {
  CARREL_ASSIGN_OR_RETURN(auto value, ctx.kv().get(key));
  return value ? *value : fallback;
}

// A scratch engine directory for --check runs, removed when the program ends.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "carrel-example-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::exit(2);
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Counts failed expectations of a --check run; the program exits non-zero if any failed.
class Checker {
 public:
  explicit Checker(bool print_passes = true) : print_passes_(print_passes) {}
  void expect(bool ok, const std::string& what) {
    if (!ok || print_passes_) std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    if (!ok) ++failures_;
  }
  // Expects an ok Result and returns its value (or a default one after reporting).
  template <typename T>
  T value(Result<T> result, const std::string& what) {
    if (!result.is_ok()) {
      expect(false, what + ": " + result.status().to_string());
      return T{};
    }
    return std::move(result).value();
  }
  void ok(const Status& status, const std::string& what) {
    expect(status.is_ok(), status.is_ok() ? what : what + ": " + status.to_string());
  }
  int exit_code() const {
    std::printf("%s: %d failed\n", failures_ == 0 ? "PASS" : "FAILED", failures_);
    return failures_ == 0 ? 0 : 1;
  }

 private:
  bool print_passes_;
  int failures_ = 0;
};

// Waits (bounded) until `done` holds. Alarms and messages are delivered by the
// engine's threads, so a check polls instead of assuming a delivery time.
inline bool wait_until(const std::function<bool()>& done, int64_t deadline_ms = 10000) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return done();
}

// Calls a method and waits for its durable reply.
inline Result<std::string> call(Engine& engine, std::string_view class_name, std::string_view name,
                                std::string_view method, std::string_view payload = {}) {
  return engine.stub(class_name, name).call(method, payload).get();
}

// Opens an engine on dir, or prints why not and exits: the examples have
// nothing sensible to do without one.
inline std::unique_ptr<Engine> open_or_exit(const std::string& dir,
                                            std::shared_ptr<Clock> clock = nullptr) {
  Options options;
  options.dir = dir;
  options.clock = std::move(clock);
  options.random_seed = 42;  // reproducible alarm retry jitter
  auto engine = Engine::open(options);
  if (!engine.is_ok()) {
    std::fprintf(stderr, "cannot open %s: %s\n", dir.c_str(), engine.status().to_string().c_str());
    std::exit(2);
  }
  return std::move(engine).value();
}

// 2025-01-15T12:00:00Z: where the examples' ManualClock starts.
inline constexpr UnixMs kExampleEpochMs = 1736942400000;

// Parses the program's flags: --check, and --dir DIR.
struct ExampleArgs {
  bool check = false;
  std::string dir;
};
inline ExampleArgs parse_args(int argc, char** argv, const char* usage) {
  ExampleArgs args;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--check") {
      args.check = true;
    } else if (a == "--dir" && i + 1 < argc) {
      args.dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s\n", usage);
      std::exit(a == "--help" || a == "-h" ? 0 : 2);
    }
  }
  return args;
}

}  // namespace carrel::examples
