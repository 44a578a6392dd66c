// carrel sql: one-shot queries, scripts from stdin, and a REPL on a terminal.
//
// A one-shot query and a whole script each run as ONE turn: they commit
// together or, on the first error, not at all. In the REPL every statement
// (or dot command) is its own turn, and an error is shown without leaving.
//
// Beside a running engine (the writer lock held by another process) the
// statements run instead on one read snapshot, through a query_only
// connection over the object's pages (snapshot_pages.h): SELECT, EXPLAIN and
// read-only pragmas work; the first write is refused naming the process that
// holds the lock, and nothing is written.
#include <sqlite3.h>
#include <unistd.h>

#include <functional>
#include <iostream>
#include <sstream>

#include "engine/sql/sql_database.h"
#include "tools/cli/cli.h"
#include "tools/cli/line_editor.h"
#include "tools/cli/output.h"
#include "tools/cli/safe_io.h"
#include "tools/cli/snapshot_pages.h"

namespace carrel::cli {
namespace {

// Runs SQL on the object: in a turn, or on a read snapshot.
using SqlExec = std::function<Result<SqlCursor>(std::string_view, std::vector<SqlValue>)>;

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
  // Drops a statement being typed (Ctrl-C in the REPL).
  void clear() { buffer_.clear(); }

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

// How the statements of each mode run, as .help tells it.
constexpr std::string_view kReplTurns = "each runs as its own turn (one commit)";
constexpr std::string_view kScriptTurns =
    "the statements of the script (or QUERY) run as one turn: all of them commit, or on an "
    "error none";
constexpr std::string_view kReplSnapshots =
    "each runs on a fresh read-only snapshot (the engine is open in another process), and "
    "nothing is written";
constexpr std::string_view kScriptSnapshot =
    "the statements of the script (or QUERY) run on one read-only snapshot (the engine is open "
    "in another process), and nothing is written";

// Runs a dot command. kQuit is reported through *quit. turns: how the
// statements run in this mode (one of the k*Turns, k*Snapshot* texts).
Status run_dot(const Globals& g, const SqlExec& exec, const std::string& cmd, std::ostream& out,
               std::string_view turns, bool* quit) {
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
           "Statements end with ';'; "
        << turns << ".\n";
    return Status::ok();
  }
  if (name == ".tables" && arg.empty()) {
    CARREL_ASSIGN_OR_RETURN(SqlCursor c, exec(kTablesQuery, {}));
    if (g.json) {
      print_cursor(g, c, out);
    } else {
      for (const SqlRow& row : c.rows()) out << display_sql_value(row[0]) << '\n';
    }
    return Status::ok();
  }
  if (name == ".schema" && extra.empty()) {
    std::string q = "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL";
    Result<SqlCursor> c = arg.empty() ? exec(q + " ORDER BY tbl_name, type DESC, name", {})
                                      : exec(q + " AND tbl_name = ?1 COLLATE NOCASE "
                                                 "ORDER BY type DESC, name",
                                             {SqlValue(arg)});
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

Status run_step(const Globals& g, const SqlExec& exec, const Step& step, std::ostream& out,
                std::string_view turns, bool* quit) {
  if (step.dot) return run_dot(g, exec, step.text, out, turns, quit);
  CARREL_ASSIGN_OR_RETURN(SqlCursor c, exec(step.text, {}));
  print_cursor(g, c, out);
  return Status::ok();
}

SqlExec exec_in(Context& ctx) {
  return [&ctx](std::string_view q, std::vector<SqlValue> args) {
    return ctx.sql().exec_values(q, std::move(args));
  };
}

// A script runs as one turn, whose writes are capped at turn_dirty_bytes_max.
constexpr size_t kScriptBytesMax = size_t{64} << 20;
static_assert(kScriptBytesMax >= 100000,
              "a script holds at least one statement of the largest size");

// Invariant (1) of safe_io.h: the script's limit holds while it is read.
Result<std::string> read_script_stdin() {
  return read_bounded("-", kScriptBytesMax, "the SQL script on stdin", "a script runs as one turn");
}

std::vector<Step> read_steps(std::istream& in) {
  StepReader reader;
  std::vector<Step> steps;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    if (auto step = reader.feed(line, ++line_no)) steps.push_back(std::move(*step));
  }
  if (auto step = reader.finish()) steps.push_back(std::move(*step));
  return steps;
}

// " (statement at line N; nothing was committed)" for a script of several steps.
std::string where_failed(const Step* failed, size_t steps) {
  return failed != nullptr && steps > 1
             ? " (statement at line " + std::to_string(failed->line) + "; nothing was committed)"
             : "";
}

// run_one runs one step (in a turn, or on a snapshot).
using StepRunner = std::function<Status(const Step&, std::ostream&, bool*)>;

int run_repl(const std::string& label, const std::string& note, const StepRunner& run_one) {
  std::cerr << "carrel sql on " << label
            << ": statements end with ';', .help for commands, .quit to leave" << note << "\n";
  StepReader reader;
  LineEditor editor(history_path());
  std::string line;
  int line_no = 0;
  for (;;) {
    auto got = editor.read(reader.in_statement() ? "   ...> " : "carrel> ", &line);
    if (got == LineEditor::Read::kEnd) break;
    if (got == LineEditor::Read::kInterrupted) {
      reader.clear();  // Ctrl-C drops the statement being typed
      continue;
    }
    auto step = reader.feed(line, ++line_no);
    if (!step) continue;
    editor.remember(step->text);
    // .quit needs no turn, so it works whatever state the object is in.
    if (step->dot && (step->text.rfind(".quit", 0) == 0 || step->text.rfind(".exit", 0) == 0)) {
      return kExitOk;
    }
    bool quit = false;
    std::ostringstream out;
    Status s = run_one(*step, out, &quit);
    std::cout << out.str() << std::flush;
    if (!s.is_ok()) std::cerr << "error: " << s.message() << '\n';
    // A Ctrl-C that stopped the statement is in its error; one that came as
    // it ended is reported here.
    if (editor.take_interrupt() && s.is_ok()) {
      std::cerr << "interrupted: the statement had already run to its end and committed\n";
    }
    if (quit) return kExitOk;
  }
  std::cerr << '\n';
  return kExitOk;
}

// unknown: why the object is unknown, when it has no record (a failed
// statement on it then reports that first, as show does).
int run_script(const Globals& g, Engine& engine, const ObjectRef& ref, std::istream& in,
               const Status& unknown) {
  std::vector<Step> steps = read_steps(in);
  if (steps.empty()) return fail("sql: no statements given");
  std::ostringstream out;
  const Step* failed = nullptr;
  Status s = engine.run(ref, [&](Context& ctx) -> Status {
    SqlExec exec = exec_in(ctx);
    for (const Step& step : steps) {
      bool quit = false;
      Status st = run_step(g, exec, step, out, kScriptTurns, &quit);
      if (!st.is_ok()) {
        failed = &step;
        return st;
      }
      if (quit) break;
    }
    return Status::ok();
  });
  if (!s.is_ok() && !unknown.is_ok()) {
    return fail(Status(
        unknown.code(),
        "sql: " + unknown.message() + " (" + s.message() + where_failed(failed, steps.size()) + ")",
        unknown.detail()));
  }
  if (!s.is_ok()) {
    // The turn's status keeps its code and detail (--json, explain_damage).
    return fail(Status(s.code(),
                       "sql " + display_bytes(ref.label()) + ": " + s.message() +
                           where_failed(failed, steps.size()),
                       s.detail()));
  }
  std::cout << out.str();
  return kExitOk;
}

// The statements of `in` on one read snapshot (see the top of this file).
// busy: why the engine could not be opened for writing (names the pid).
// Runs steps on one fresh read snapshot, stopping at the first error; a
// write is refused naming busy (why the engine could not be opened).
Status run_on_snapshot(const Globals& g, store::Store& store, const ObjectSpec& spec,
                       const std::vector<Step>& steps, std::ostream& out, const Status& busy,
                       std::string_view turns, const Step** failed, bool* quit) {
  CARREL_ASSIGN_OR_RETURN(ResolvedObject r, resolve_object(store, spec, /*must_exist=*/true));
  CARREL_ASSIGN_OR_RETURN(store::ReadTxn txn, store.begin_read());
  SnapshotPageSource pages(txn, r.ref.id, r.number(), store.sql_page_bytes(), r.record->sql_pages);
  sql::SqlLimits limits;
  limits.query_only = true;
  limits.interrupt = &LineEditor::interrupt_pending;  // line_editor.h (1)
  std::string label = display_bytes(r.ref.label());
  CARREL_ASSIGN_OR_RETURN(auto db, sql::SqlDatabase::open(&pages, limits, label));
  SqlExec exec = [&](std::string_view q, std::vector<SqlValue> args) { return db->exec(q, args); };
  Status s;
  for (const Step& step : steps) {
    *failed = &step;
    s = run_step(g, exec, step, out, turns, quit);
    if (s.code() == Code::kInvalidArgument &&
        s.message().find("readonly database") != std::string::npos) {
      s = Status(Code::kBusy, "only read-only statements (SELECT, EXPLAIN, read-only pragmas) " +
                                  std::string("run beside a running engine; ") + busy.message());
    }
    if (!s.is_ok() || *quit) break;
  }
  if (s.is_ok()) *failed = nullptr;
  db->rollback_turn();
  return s.with_context("object " + label);
}

int run_script_on_snapshot(const Globals& g, store::Store& store, const ObjectSpec& spec,
                           std::istream& in, const Status& busy) {
  std::vector<Step> steps = read_steps(in);
  if (steps.empty()) return fail("sql: no statements given");
  std::ostringstream out;
  const Step* failed = nullptr;
  bool quit = false;
  Status s = run_on_snapshot(g, store, spec, steps, out, busy, kScriptSnapshot, &failed, &quit);
  if (!s.is_ok())
    return fail(
        Status(s.code(), "sql: " + s.message() + where_failed(failed, steps.size()), s.detail()));
  std::cout << out.str();
  return kExitOk;
}

}  // namespace

int cmd_sql(const Globals& g, const std::string& obj, const std::optional<std::string>& query) {
  auto spec = parse_object(obj);
  if (!spec.is_ok()) return fail(spec.status());
  auto engine = open_engine(g, /*read_only=*/false);
  bool repl = !query && isatty(STDIN_FILENO) != 0;
  if (!engine.is_ok() && engine.status().code() == Code::kBusy) {
    Status busy = engine.status();
    engine = open_engine(g, /*read_only=*/true);
    // Busy with no writer alive: a reader kept the writable open from
    // recovering the directory (store.h (4)), which is the reason to show.
    if (!engine.is_ok()) return fail(store::Store::writer_alive(g.dir) ? engine.status() : busy);
    store::Store& store = store_of(**engine);
    if (!repl) {
      std::string text_bytes = query.value_or("");
      if (!query) {
        auto script = read_script_stdin();
        if (!script.is_ok()) return fail(script.status().with_context("sql " + obj));
        text_bytes = std::move(*script);
      }
      std::istringstream text(std::move(text_bytes));
      return run_script_on_snapshot(g, store, *spec, text, busy);
    }
    auto r = resolve_object(store, *spec, /*must_exist=*/true);
    if (!r.is_ok()) return fail(r.status());
    return run_repl(
        display_bytes(r->ref.label()), " (read-only: the engine is open in another process)",
        [&](const Step& step, std::ostream& out, bool* quit) {
          const Step* failed = nullptr;
          return run_on_snapshot(g, store, *spec, {step}, out, busy, kReplSnapshots, &failed, quit);
        });
  }
  if (!engine.is_ok()) return fail(engine.status());
  store::Store& store = store_of(**engine);
  auto r = resolve_object(store, *spec, /*must_exist=*/false);
  if (!r.is_ok()) return fail(r.status());
  Status unknown;
  if (!r->record) unknown = resolve_object(store, *spec, /*must_exist=*/true).status();
  if (query) {
    std::istringstream in(*query);
    return run_script(g, **engine, r->ref, in, unknown);
  }
  if (repl) {
    Engine& e = **engine;
    return run_repl(display_bytes(r->ref.label()), "",
                    [&](const Step& step, std::ostream& out, bool* quit) {
                      return e.run(r->ref, [&](Context& ctx) {
                        return run_step(g, exec_in(ctx), step, out, kReplTurns, quit);
                      });
                    });
  }
  auto script = read_script_stdin();
  if (!script.is_ok())
    return fail(script.status().with_context("sql " + display_bytes(r->ref.label())));
  std::istringstream in(std::move(*script));
  return run_script(g, **engine, r->ref, in, unknown);
}

}  // namespace carrel::cli
