// Export and import of one object (docs/export-format.md). A service above
// the request loop: each runs as one turn through Engine::run, and reaches the
// turn's raw SQL pages and alarm entries through Turn (engine/loop/turn.h).
//
// Invariants:
//  (1) An export is read in one turn, so it is one consistent state.
//  (2) An import is parsed and checked in full before its turn starts, and
//      written in one turn: a malformed or refused import writes nothing.
//  (3) Import writes exactly what export read: KV bytes, SQL page images and
//      page count, and alarm entries with their retry counts.
#include "carrel/export.h"

#include <map>
#include <optional>
#include <set>

#include "engine/alarm/cron.h"
#include "engine/loop/engine_core.h"
#include "engine/loop/turn.h"
#include "engine/sql/image_check.h"
#include "engine/transfer/export_writer.h"
#include "engine/transfer/json_line.h"

namespace carrel {
namespace {

using transfer::base64_decode;
using transfer::base64_encode;
using transfer::JsonLine;
using Fields = std::map<std::string, JsonLine::Value, std::less<>>;

constexpr int64_t kFormatVersion = 1;
constexpr size_t kKvPageKeys = 1000;  // KV entries read per list() call while exporting

std::string_view repeat_kind_name(Repeat::Kind k) {
  switch (k) {
    case Repeat::Kind::kNone:
      return "none";
    case Repeat::Kind::kEvery:
      return "every";
    case Repeat::Kind::kCron:
      return "cron";
  }
  return "none";
}

Status write_line(std::ostream& out, const JsonLine& line) {
  out << line.text() << '\n';
  if (!out) return Status::io_error("export: the output stream failed");
  return Status::ok();
}

// An export's source in a turn: the turn's KV, SQL pages and alarms.
class TurnExportSource final : public transfer::ExportSource {
 public:
  explicit TurnExportSource(Context& ctx) : ctx_(ctx) {}
  Status for_each_kv(const std::function<Status(std::string_view, std::string_view)>& f) override {
    ListOptions list;
    list.limit = kKvPageKeys;
    for (;;) {
      CARREL_ASSIGN_OR_RETURN(Entries batch, ctx_.kv().list(list));
      for (auto& [k, v] : batch) CARREL_RETURN_IF_ERROR(f(k, v));
      if (batch.size() < kKvPageKeys) return Status::ok();
      list.start_after = batch.back().first;
    }
  }
  Status for_each_page(const std::function<Status(uint32_t)>& on_count,
                       const std::function<Status(uint32_t, std::string_view)>& on_page) override {
    return detail::Turn::of(ctx_).export_pages(on_count, on_page);
  }
  Result<std::vector<AlarmEntry>> alarms() override { return ctx_.alarms().list(); }

 private:
  Context& ctx_;
};

// Everything an import writes, parsed and checked before its turn.
struct ImportPlan {
  Entries kv;
  std::optional<uint32_t> sql_pages;
  std::map<uint32_t, std::string> pages;
  std::vector<AlarmEntry> alarms;
};

// Field access for one line; errors name the line and the field.
class LineFields {
 public:
  LineFields(Fields f, size_t line_no) : f_(std::move(f)), line_no_(line_no) {}
  Status error(std::string_view what) const {
    return Status::invalid_argument("import: line " + std::to_string(line_no_) + ": " +
                                    std::string(what));
  }
  bool has(std::string_view k) const { return f_.count(k) != 0; }
  Result<std::string> text(std::string_view k) const {
    auto it = f_.find(k);
    if (it == f_.end()) return error("lacks field \"" + std::string(k) + "\"");
    if (auto* s = std::get_if<std::string>(&it->second)) return *s;
    return error("field \"" + std::string(k) + "\" is not a string");
  }
  Result<std::string> bytes(std::string_view k) const {
    CARREL_ASSIGN_OR_RETURN(std::string t, text(k));
    auto b = base64_decode(t);
    if (!b.is_ok()) return error("field \"" + std::string(k) + "\": " + b.status().message());
    return std::move(b).value();
  }
  Result<int64_t> integer(std::string_view k, int64_t lo, int64_t hi) const {
    auto it = f_.find(k);
    if (it == f_.end()) return error("lacks field \"" + std::string(k) + "\"");
    auto* v = std::get_if<int64_t>(&it->second);
    if (v == nullptr) return error("field \"" + std::string(k) + "\" is not an integer");
    if (*v < lo || *v > hi) {
      return error("field \"" + std::string(k) + "\" is " + std::to_string(*v) + ", outside " +
                   std::to_string(lo) + ".." + std::to_string(hi));
    }
    return *v;
  }
  // Fields other than the allowed ones are refused, so typos are not ignored.
  Status only(std::initializer_list<std::string_view> allowed) const {
    for (auto& [k, v] : f_) {
      bool ok = false;
      for (auto a : allowed) ok |= a == k;
      if (!ok) return error("unexpected field \"" + k + "\"");
    }
    return Status::ok();
  }

 private:
  Fields f_;
  size_t line_no_;
};

Status parse_header(const LineFields& f, uint32_t page_bytes) {
  if (!f.has("carrel_export")) {
    return Status::invalid_argument(
        "import: the input is not a carrel export: line 1 lacks the \"carrel_export\" field of an "
        "export's header");
  }
  CARREL_ASSIGN_OR_RETURN(int64_t version, f.integer("carrel_export", 0, INT64_MAX));
  if (version != kFormatVersion) {
    return f.error("export format version " + std::to_string(version) + " is not supported (this " +
                   "engine reads version " + std::to_string(kFormatVersion) + ")");
  }
  CARREL_RETURN_IF_ERROR(
      f.only({"carrel_export", "class", "name", "id", "page_bytes", "exported_ms"}));
  CARREL_RETURN_IF_ERROR(f.text("class").status());
  CARREL_RETURN_IF_ERROR(f.text("name").status());
  CARREL_ASSIGN_OR_RETURN(std::string id, f.text("id"));
  if (!ObjectId::parse(id).is_ok()) return f.error("field \"id\" is not 32 hex digits");
  CARREL_ASSIGN_OR_RETURN(int64_t bytes, f.integer("page_bytes", 512, 65536));
  if (bytes != page_bytes) {
    return f.error("the export's SQL pages are " + std::to_string(bytes) +
                   " bytes but this engine's sql_page_bytes is " + std::to_string(page_bytes));
  }
  return Status::ok();
}

Result<AlarmEntry> parse_alarm(const LineFields& f) {
  CARREL_RETURN_IF_ERROR(
      f.only({"alarm", "due_ms", "payload", "repeat", "every_ms", "cron", "retry_count"}));
  AlarmEntry e;
  CARREL_ASSIGN_OR_RETURN(e.name, f.bytes("alarm"));
  CARREL_ASSIGN_OR_RETURN(e.due_ms, f.integer("due_ms", 1, INT64_MAX));
  CARREL_ASSIGN_OR_RETURN(e.payload, f.bytes("payload"));
  CARREL_ASSIGN_OR_RETURN(int64_t retries, f.integer("retry_count", 0, INT32_MAX));
  e.retry_count = static_cast<int>(retries);
  CARREL_ASSIGN_OR_RETURN(std::string kind, f.text("repeat"));
  if (kind == "none") {
    e.repeat = Repeat::none();
  } else if (kind == "every") {
    CARREL_ASSIGN_OR_RETURN(int64_t every, f.integer("every_ms", 1, INT64_MAX));
    e.repeat = Repeat::every(every);
  } else if (kind == "cron") {
    CARREL_ASSIGN_OR_RETURN(std::string cron, f.text("cron"));
    auto parsed = alarm::CronExpr::parse(cron);
    if (!parsed.is_ok()) return f.error(parsed.status().message());
    e.repeat = Repeat::cron_expr(cron);
  } else {
    return f.error("field \"repeat\" is \"" + kind + "\"; expected none, every or cron");
  }
  return e;
}

Status parse_end(const LineFields& f, const ImportPlan& plan) {
  CARREL_RETURN_IF_ERROR(f.only({"end", "kv", "pages", "alarms"}));
  CARREL_ASSIGN_OR_RETURN(int64_t kv, f.integer("kv", 0, INT64_MAX));
  CARREL_ASSIGN_OR_RETURN(int64_t pages, f.integer("pages", 0, INT64_MAX));
  CARREL_ASSIGN_OR_RETURN(int64_t alarms, f.integer("alarms", 0, INT64_MAX));
  auto mismatch = [&](std::string_view what, int64_t said, size_t got) {
    return f.error("end line counts " + std::to_string(said) + " " + std::string(what) + " but " +
                   std::to_string(got) + " were read (truncated or edited export?)");
  };
  if (static_cast<size_t>(kv) != plan.kv.size()) return mismatch("KV entries", kv, plan.kv.size());
  if (static_cast<size_t>(pages) != plan.pages.size())
    return mismatch("pages", pages, plan.pages.size());
  if (static_cast<size_t>(alarms) != plan.alarms.size()) {
    return mismatch("alarms", alarms, plan.alarms.size());
  }
  return Status::ok();
}

// What the lines so far named, so that a repeat is refused.
struct ImportSeen {
  std::set<std::string> kv_keys, alarm_names;
};

Status parse_kv(const LineFields& f, ImportPlan* plan, ImportSeen* seen) {
  CARREL_RETURN_IF_ERROR(f.only({"kv", "value"}));
  CARREL_ASSIGN_OR_RETURN(std::string k, f.bytes("kv"));
  CARREL_ASSIGN_OR_RETURN(std::string v, f.bytes("value"));
  if (!seen->kv_keys.insert(k).second) return f.error("repeats a KV key");
  plan->kv.emplace_back(std::move(k), std::move(v));
  return Status::ok();
}

Status parse_sql_pages(const LineFields& f, ImportPlan* plan) {
  CARREL_RETURN_IF_ERROR(f.only({"sql_pages"}));
  if (plan->sql_pages) return f.error("repeats the sql_pages line");
  CARREL_ASSIGN_OR_RETURN(int64_t n, f.integer("sql_pages", 0, UINT32_MAX));
  plan->sql_pages = static_cast<uint32_t>(n);
  return Status::ok();
}

Status parse_page(const LineFields& f, uint32_t page_bytes, ImportPlan* plan) {
  CARREL_RETURN_IF_ERROR(f.only({"page", "data"}));
  if (!plan->sql_pages) return f.error("a page comes before the sql_pages line");
  CARREL_ASSIGN_OR_RETURN(int64_t n, f.integer("page", 0, int64_t{*plan->sql_pages} - 1));
  CARREL_ASSIGN_OR_RETURN(std::string data, f.bytes("data"));
  if (data.size() != page_bytes) {
    return f.error("page " + std::to_string(n) + " is " + std::to_string(data.size()) +
                   " bytes, not " + std::to_string(page_bytes));
  }
  if (!plan->pages.emplace(static_cast<uint32_t>(n), std::move(data)).second) {
    return f.error("repeats page " + std::to_string(n));
  }
  return Status::ok();
}

// A line between the header and the end line: a KV entry, the page count, a
// page or an alarm.
Status parse_entry(const LineFields& f, uint32_t page_bytes, ImportPlan* plan, ImportSeen* seen) {
  if (f.has("kv")) return parse_kv(f, plan, seen);
  if (f.has("sql_pages")) return parse_sql_pages(f, plan);
  if (f.has("page")) return parse_page(f, page_bytes, plan);
  if (f.has("alarm")) {
    CARREL_ASSIGN_OR_RETURN(AlarmEntry e, parse_alarm(f));
    if (!seen->alarm_names.insert(e.name).second) return f.error("repeats an alarm name");
    plan->alarms.push_back(std::move(e));
    return Status::ok();
  }
  return f.error("is not a kv, sql_pages, page, alarm or end line");
}

// Invariant (2): the whole stream is parsed before anything is written.
Result<ImportPlan> parse_export(std::istream& in, uint32_t page_bytes) {
  ImportPlan plan;
  ImportSeen seen;
  std::string text;
  size_t line_no = 0;
  bool ended = false;
  while (std::getline(in, text)) {
    ++line_no;
    if (ended) {
      return Status::invalid_argument("import: line " + std::to_string(line_no) +
                                      ": text after the end line");
    }
    auto parsed = JsonLine::parse(text);
    if (!parsed.is_ok() && in.eof()) {  // the last line lacks its newline: the input was cut
      return Status::invalid_argument(
          "import: the input ends inside line " + std::to_string(line_no) +
          ", which is not whole (truncated export?): " + parsed.status().message());
    }
    if (!parsed.is_ok() && line_no == 1) {
      return Status::invalid_argument(
          "import: the input is not a carrel export: line 1 is not a "
          "JSON object (" +
          parsed.status().message() + ")");
    }
    if (!parsed.is_ok()) {
      return Status::invalid_argument("import: line " + std::to_string(line_no) + ": " +
                                      parsed.status().message());
    }
    LineFields f(std::move(parsed).value(), line_no);
    if (line_no == 1) {
      CARREL_RETURN_IF_ERROR(parse_header(f, page_bytes));
    } else if (f.has("end")) {  // before kv: the end line counts kv entries too
      CARREL_RETURN_IF_ERROR(parse_end(f, plan));
      ended = true;
    } else {
      CARREL_RETURN_IF_ERROR(parse_entry(f, page_bytes, &plan, &seen));
    }
  }
  if (in.bad()) return Status::io_error("import: reading the input failed");
  if (line_no == 0) return Status::invalid_argument("import: the input is empty");
  if (!ended) {
    return Status::invalid_argument("import: the input ends at line " + std::to_string(line_no) +
                                    " without its end line (truncated export?)");
  }
  return plan;
}

// Invariant (2): the SQL pages are every page of one database that SQL
// itself could have made (image_check.h), checked before the turn.
Status check_sql_pages(const ImportPlan& plan, uint32_t page_bytes) {
  uint32_t count = plan.sql_pages.value_or(0);
  if (plan.pages.size() != count) {
    return Status::invalid_argument("import: the sql_pages line says " + std::to_string(count) +
                                    " pages but " + std::to_string(plan.pages.size()) +
                                    " page lines were given (an export lists every page)");
  }
  std::string image;
  image.reserve(static_cast<size_t>(count) * page_bytes);
  for (const auto& [n, data] : plan.pages) image += data;  // 0..count-1, in order
  return sql::check_database_image(image, page_bytes).with_context("import");
}

Status import_in_turn(Context& ctx, const ImportPlan& plan) {
  detail::Turn& turn = detail::Turn::of(ctx);
  ListOptions one;
  one.limit = 1;
  CARREL_ASSIGN_OR_RETURN(Entries any_kv, ctx.kv().list(one));
  CARREL_ASSIGN_OR_RETURN(auto any_alarm, ctx.alarms().list());
  if (!any_kv.empty() || !any_alarm.empty()) {
    return Status::invalid_argument(
        "import: object " + ctx.object().label() + " is not empty (it has " +
        (any_kv.empty() ? "alarms" : "KV entries") + "); import writes only into an empty object");
  }
  for (auto& [k, v] : plan.kv) CARREL_RETURN_IF_ERROR(ctx.kv().put(k, v));
  // import_pages refuses an object that has SQL pages already.
  Status s = turn.import_pages(plan.sql_pages.value_or(0), plan.pages);
  if (!s.is_ok()) return s.with_context("import");
  for (const AlarmEntry& e : plan.alarms) {
    // schedule() applies the public rules (time range, repeat); the entry is
    // then stored as exported, retry count included (invariant (3)).
    CARREL_RETURN_IF_ERROR(ctx.alarms().schedule(e.name, e.due_ms, e.payload, e.repeat));
    if (e.retry_count != 0) CARREL_RETURN_IF_ERROR(turn.alarms().put(e));
  }
  return Status::ok();
}

}  // namespace

namespace transfer {

Status write_export(const ObjectRef& o, uint32_t page_bytes, UnixMs exported_ms,
                    ExportSource& source, std::ostream& out) {
  CARREL_RETURN_IF_ERROR(write_line(out, JsonLine()
                                             .add("carrel_export", kFormatVersion)
                                             .add("class", o.class_name)
                                             .add("name", o.name)
                                             .add("id", o.id.to_hex())
                                             .add("page_bytes", int64_t{page_bytes})
                                             .add("exported_ms", exported_ms)));
  int64_t kv = 0;
  CARREL_RETURN_IF_ERROR(source.for_each_kv([&](std::string_view k, std::string_view v) {
    ++kv;
    return write_line(out, JsonLine().add("kv", base64_encode(k)).add("value", base64_encode(v)));
  }));
  // The page count goes first so a reader knows the file's length before its pages.
  int64_t pages = 0;
  CARREL_RETURN_IF_ERROR(source.for_each_page(
      [&](uint32_t count) { return write_line(out, JsonLine().add("sql_pages", int64_t{count})); },
      [&](uint32_t n, std::string_view p) {
        ++pages;
        return write_line(out, JsonLine().add("page", int64_t{n}).add("data", base64_encode(p)));
      }));
  CARREL_ASSIGN_OR_RETURN(auto alarms, source.alarms());
  for (const AlarmEntry& e : alarms) {
    JsonLine line;
    line.add("alarm", base64_encode(e.name))
        .add("due_ms", e.due_ms)
        .add("payload", base64_encode(e.payload))
        .add("repeat", repeat_kind_name(e.repeat.kind));
    if (e.repeat.kind == Repeat::Kind::kEvery) line.add("every_ms", e.repeat.every_ms);
    if (e.repeat.kind == Repeat::Kind::kCron) line.add("cron", e.repeat.cron);
    line.add("retry_count", int64_t{e.retry_count});
    CARREL_RETURN_IF_ERROR(write_line(out, line));
  }
  return write_line(out, JsonLine()
                             .add("end", true)
                             .add("kv", kv)
                             .add("pages", pages)
                             .add("alarms", static_cast<int64_t>(alarms.size())));
}

}  // namespace transfer

Status export_object(Engine& engine, const ObjectRef& object, std::ostream& out) {
  uint32_t page_bytes = engine.core()->store().sql_page_bytes();
  return engine.run(object, [&](Context& ctx) {
    TurnExportSource source(ctx);
    return transfer::write_export(ctx.object(), page_bytes, ctx.now_ms(), source, out);
  });
}

Status import_object(Engine& engine, const ObjectRef& object, std::istream& in) {
  uint32_t page_bytes = engine.core()->store().sql_page_bytes();
  CARREL_ASSIGN_OR_RETURN(ImportPlan plan, parse_export(in, page_bytes));
  CARREL_RETURN_IF_ERROR(check_sql_pages(plan, page_bytes));
  return engine.run(object, [&](Context& ctx) { return import_in_turn(ctx, plan); });
}

}  // namespace carrel
