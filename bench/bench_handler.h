// The object classes the bench tool registers with carrel.
#pragma once

#include <string>

#include "bench/harness.h"
#include "carrel/carrel.h"

namespace carrel::bench {

// What a class creates in on_start (its migration).
enum class Schema : uint8_t { kNone, kBench, kTenTables };

// "put" key\0value, "get" key, "sqlins" row(8)‖value, "sqlget" row(8),
// "chat" row(8)‖body, "wake" key, "rmw" key\0value (get, then put),
// "scan" limit(8)‖start key (KV list): one turn each.
class BenchHandler : public Handler {
 public:
  explicit BenchHandler(Schema schema) : schema_(schema) {}
  Status on_start(Context& ctx) override;
  Result<std::string> on_request(Context& ctx, const Request& request) override;

 private:
  Schema schema_;
};

Status create_schema(Context& ctx, Schema schema);
// The same statements, for the SQLite-file alternative.
const std::vector<std::string>& schema_statements(Schema schema);
inline constexpr const char* kChatLatest =
    "SELECT id, body FROM messages ORDER BY id DESC LIMIT 50";

}  // namespace carrel::bench
