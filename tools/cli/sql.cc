// carrel sql: one-shot queries, scripts from stdin, and a REPL on a terminal.
//
// A one-shot query and a whole script each run as ONE turn: they commit
// together or, on the first error, not at all. In the REPL every statement
// (or dot command) is its own turn, and an error is shown without leaving.
#include <sqlite3.h>
#include <unistd.h>

#include <iostream>
#include <sstream>

#include "tools/cli/cli.h"
#include "tools/cli/output.h"
#include "tools/cli/safe_io.h"

namespace carrel::cli {
namespace {

// One unit of work: an SQL text (one or more complete statements) or a dot command.
struct Step {
  std::string text;
  int line = 0;  // where it starts, for error messages
  bool dot = false;
};

// Splits input into steps. A dot command is a line starting with '.' outside
// a statement; SQL runs up to each line where sqlite3_complete() says the
// text ends with a complete statement. Leftover text without a ';' is the last step.
class StepReader {
 public:
  // Feeds one line; returns a step when the line completed one.
  std::optional<Step> feed(const std::string& line, int line_no) {
    if (buffer_.empty()) {
      size_t first = line.find_first_not_of(" \t\r");
      if (first == std::string::npos) return std::nullopt;
      if (line[first] == '.') return Step{line.substr(first), line_no, true};
      start_line_ = line_no;
    }
    buffer_ += line;
    buffer_ += '\n';
    if (sqlite3_complete(buffer_.c_str()) != 0) return take();
    return std::nullopt;
  }
  // What remains at end of input (a statement without ';').
  std::optional<Step> finish() {
    if (buffer_.find_first_not_of(" \t\r\n") == std::string::npos) return std::nullopt;
    return take();
  }
  bool in_statement() const { return !buffer_.empty(); }

 private:
  Step take() {
    Step s{std::move(buffer_), start_line_, false};
    buffer_.clear();
    return s;
  }
  std::string buffer_;
  int start_line_ = 0;
};

void print_cursor(const Globals& g, const SqlCursor& c, std::ostream& out) {
  if (g.json) {
    JsonWriter j;
    j.begin_object().key("columns").begin_array();
    for (const auto& col : c.columns()) j.text(col);
    j.end_array().key("rows").begin_array();
    for (const SqlRow& row : c.rows()) {
      j.begin_array();
      for (const SqlValue& v : row.values()) j.sql_value(v);
      j.end_array();
    }
    j.end_array().field("rows_read", c.rows_read()).field("rows_written", c.rows_written());
    j.end_object();
    out << j.str() << '\n';
    return;
  }
  if (c.columns().empty()) {
    out << "ok";
    if (c.rows_written() > 0) {
      out << " (" << c.rows_written() << (c.rows_written() == 1 ? " row" : " rows") << " changed)";
    }
    out << '\n';
    return;
  }
  Table t(c.columns());
  for (size_t col = 0; col < c.columns().size(); ++col) {
    bool numeric = c.size() > 0;
    for (const SqlRow& row : c.rows()) {
      size_t k = row[col].index();
      numeric = numeric && (k == 0 || k == 1 || k == 2);
    }
    if (numeric) t.align_right(col);
  }
  for (const SqlRow& row : c.rows()) {
    std::vector<std::string> cells;
    for (const SqlValue& v : row.values()) cells.push_back(display_sql_value(v));
    t.add(std::move(cells));
  }
  t.print(out);
  out << "(" << c.size() << (c.size() == 1 ? " row" : " rows") << ")\n";
}

constexpr std::string_view kTablesQuery =
    "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' "
    "ESCAPE '\\' ORDER BY name";

// Runs a dot command inside a turn. kQuit is reported through *quit.
Status run_dot(const Globals& g, Context& ctx, const std::string& cmd, std::ostream& out,
               bool* quit) {
  std::istringstream words(cmd);
  std::string name, arg, extra;
  words >> name >> arg >> extra;
  if (name == ".quit" || name == ".exit") {
    *quit = true;
    return Status::ok();
  }
  if (name == ".help") {
    out << ".tables          list tables and views\n"
           ".schema [TABLE]  show CREATE statements\n"
           ".quit            leave\n"
           "Statements end with ';'; each runs as one turn (one commit).\n";
    return Status::ok();
  }
  if (name == ".tables" && arg.empty()) {
    CARREL_ASSIGN_OR_RETURN(SqlCursor c, ctx.sql().exec(kTablesQuery));
    if (g.json) {
      print_cursor(g, c, out);
    } else {
      for (const SqlRow& row : c.rows()) out << display_sql_value(row[0]) << '\n';
    }
    return Status::ok();
  }
  if (name == ".schema" && extra.empty()) {
    std::string q = "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL";
    Result<SqlCursor> c = arg.empty() ? ctx.sql().exec(q + " ORDER BY tbl_name, type DESC, name")
                                      : ctx.sql().exec(q + " AND tbl_name = ?1 COLLATE NOCASE "
                                                           "ORDER BY type DESC, name",
                                                       arg);
    if (!c.is_ok()) return c.status();
    if (!arg.empty() && c->size() == 0) return Status::not_found("no table named '" + arg + "'");
    if (g.json) {
      print_cursor(g, *c, out);
    } else {
      // CREATE statements print as written (newlines included) when they are text.
      for (const SqlRow& row : c->rows()) {
        const auto* text = std::get_if<std::string>(&row[0]);
        out << (text != nullptr && is_valid_utf8(*text) ? *text : display_sql_value(row[0]))
            << ";\n";
      }
    }
    return Status::ok();
  }
  return Status::invalid_argument("unknown dot command '" + cmd +
                                  "' (try .tables, .schema [TABLE], .quit)");
}

Status run_step(const Globals& g, Context& ctx, const Step& step, std::ostream& out, bool* quit) {
  if (step.dot) return run_dot(g, ctx, step.text, out, quit);
  CARREL_ASSIGN_OR_RETURN(SqlCursor c, ctx.sql().exec(step.text));
  print_cursor(g, c, out);
  return Status::ok();
}

int run_repl(const Globals& g, Engine& engine, const ObjectRef& ref) {
  std::cerr << "carrel sql on " << display_bytes(ref.label())
            << ": statements end with ';', .help for commands, .quit to leave\n";
  StepReader reader;
  std::string line;
  int line_no = 0;
  for (;;) {
    std::cerr << (reader.in_statement() ? "   ...> " : "carrel> ") << std::flush;
    if (!std::getline(std::cin, line)) break;
    auto step = reader.feed(line, ++line_no);
    if (!step) continue;
    bool quit = false;
    std::ostringstream out;
    Status s = engine.run(ref, [&](Context& ctx) { return run_step(g, ctx, *step, out, &quit); });
    std::cout << out.str() << std::flush;
    if (!s.is_ok()) std::cerr << "error: " << s.message() << '\n';
    if (quit) return kExitOk;
  }
  std::cerr << '\n';
  return kExitOk;
}

// A script runs as one turn, whose writes are capped at turn_dirty_bytes_max.
constexpr size_t kScriptBytesMax = size_t{64} << 20;
static_assert(kScriptBytesMax >= 100000,
              "a script holds at least one statement of the largest size");

int run_script(const Globals& g, Engine& engine, const ObjectRef& ref, std::istream& in) {
  StepReader reader;
  std::vector<Step> steps;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    if (auto step = reader.feed(line, ++line_no)) steps.push_back(std::move(*step));
  }
  if (auto step = reader.finish()) steps.push_back(std::move(*step));
  if (steps.empty()) return fail("sql: no statements given");
  std::ostringstream out;
  const Step* failed = nullptr;
  Status s = engine.run(ref, [&](Context& ctx) -> Status {
    for (const Step& step : steps) {
      bool quit = false;
      Status st = run_step(g, ctx, step, out, &quit);
      if (!st.is_ok()) {
        failed = &step;
        return st;
      }
      if (quit) break;
    }
    return Status::ok();
  });
  if (!s.is_ok()) {
    std::string where =
        failed != nullptr && steps.size() > 1
            ? " (statement at line " + std::to_string(failed->line) + "; nothing was committed)"
            : "";
    return fail("sql " + display_bytes(ref.label()) + ": " + s.message() + where);
  }
  std::cout << out.str();
  return kExitOk;
}

}  // namespace

int cmd_sql(const Globals& g, const std::string& obj, const std::optional<std::string>& query) {
  auto spec = parse_object(obj);
  if (!spec.is_ok()) return fail(spec.status());
  auto engine = open_engine(g, /*read_only=*/false);
  if (!engine.is_ok()) return fail(engine.status());
  auto r = resolve_object(store_of(**engine), *spec, /*must_exist=*/false);
  if (!r.is_ok()) return fail(r.status());
  if (query) {
    std::istringstream in(*query);
    return run_script(g, **engine, r->ref, in);
  }
  if (isatty(STDIN_FILENO) != 0) return run_repl(g, **engine, r->ref);
  // Invariant (1) of safe_io.h: the script's limit holds while it is read.
  auto script =
      read_bounded("-", kScriptBytesMax, "the SQL script on stdin", "a script runs as one turn");
  if (!script.is_ok())
    return fail(script.status().with_context("sql " + display_bytes(r->ref.label())));
  std::istringstream in(std::move(*script));
  return run_script(g, **engine, r->ref, in);
}

}  // namespace carrel::cli
