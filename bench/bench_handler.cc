#include "bench/bench_handler.h"

namespace carrel::bench {

const std::vector<std::string>& schema_statements(Schema schema) {
  static const std::vector<std::string> none;
  static const std::vector<std::string> bench = {
      "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)",
      "CREATE TABLE IF NOT EXISTS messages(id INTEGER PRIMARY KEY, body TEXT)",
  };
  static const std::vector<std::string> ten = [] {
    std::vector<std::string> v;
    for (int i = 0; i < 10; ++i) {
      v.push_back("CREATE TABLE IF NOT EXISTS t" + std::to_string(i) +
                  "(id INTEGER PRIMARY KEY, a TEXT, b INTEGER, c BLOB)");
    }
    return v;
  }();
  switch (schema) {
    case Schema::kBench:
      return bench;
    case Schema::kTenTables:
      return ten;
    default:
      return none;
  }
}

Status create_schema(Context& ctx, Schema schema) {
  for (const std::string& stmt : schema_statements(schema)) {
    CARREL_RETURN_IF_ERROR(ctx.sql().exec(stmt).status());
  }
  return Status::ok();
}

Status BenchHandler::on_start(Context& ctx) {
  return create_schema(ctx, schema_);
}

Result<std::string> BenchHandler::on_request(Context& ctx, const Request& req) {
  const std::string& m = req.method;
  std::string_view payload = req.payload;
  if (m == "put") {
    std::string_view key, value;
    split_payload(payload, &key, &value);
    CARREL_RETURN_IF_ERROR(ctx.kv().put(key, value));
    return std::string();
  }
  if (m == "rmw") {  // read-modify-write of an existing key, one turn
    std::string_view key, value;
    split_payload(payload, &key, &value);
    CARREL_ASSIGN_OR_RETURN(auto old, ctx.kv().get(key));
    if (!old) return Status::not_found("rmw of absent key " + std::string(key));
    CARREL_RETURN_IF_ERROR(ctx.kv().put(key, value));
    return std::string();
  }
  if (m == "scan") {  // limit(8) ‖ start key: the count of entries read
    ListOptions range;
    range.start = std::string(payload.substr(std::min<size_t>(8, payload.size())));
    range.limit = std::max<uint64_t>(1, bytes_u64(payload));
    CARREL_ASSIGN_OR_RETURN(auto entries, ctx.kv().list(range));
    if (entries.empty()) return Status::not_found("scan from " + *range.start);
    return std::to_string(entries.size());
  }
  if (m == "get" || (m == "wake" && schema_ != Schema::kTenTables)) {
    CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().get(payload));
    if (!v) return Status::not_found("key " + std::string(payload));
    return std::move(*v);
  }
  if (m == "wake") {
    CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec("SELECT a FROM t3 WHERE id = 1"));
    if (c.size() != 1) return Status::not_found("row 1 of t3");
    return c.rows()[0].get_text(0);
  }
  int64_t row = static_cast<int64_t>(bytes_u64(payload));
  std::string_view rest = payload.size() > 8 ? payload.substr(8) : std::string_view();
  if (m == "sqlins") {
    CARREL_RETURN_IF_ERROR(
        ctx.sql()
            .exec("INSERT INTO t(id, v) VALUES (?, ?)", row, Blob{std::string(rest)})
            .status());
    return std::string();
  }
  if (m == "sqlget") {
    CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec("SELECT v FROM t WHERE id = ?", row));
    if (c.size() != 1) return Status::not_found("row " + std::to_string(row));
    return c.rows()[0].get_blob(0);
  }
  if (m == "chat") {
    CARREL_RETURN_IF_ERROR(
        ctx.sql().exec("INSERT INTO messages(id, body) VALUES (?, ?)", row, rest).status());
    CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec(kChatLatest));
    if (c.size() == 0) return Status::corruption("chat read no messages after an insert");
    return std::to_string(c.size());
  }
  return Status::invalid_argument("bench: unknown method " + m);
}

}  // namespace carrel::bench
