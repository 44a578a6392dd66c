// Writing commands: init, kv put / delete, alarms set / delete, restore,
// backup. Each change is one Engine::run turn (invariant (2) of cli.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "carrel/export.h"
#include "engine/alarm/cron.h"
#include "engine/history/bookmark.h"
#include "tools/cli/cli.h"
#include "tools/cli/env_check.h"
#include "tools/cli/output.h"
#include "tools/cli/process_guard.h"
#include "tools/cli/safe_io.h"

namespace carrel::cli {
namespace {

namespace fs = std::filesystem;

struct Writing {
  std::unique_ptr<Engine> engine;
  ObjectRef ref;
  bool existed = false;
};

// Opens the engine for writing and resolves OBJ. must_exist: the command
// changes something that only an existing object can have (a delete).
Result<Writing> begin_write(const Globals& g, const std::string& obj, bool must_exist) {
  CARREL_ASSIGN_OR_RETURN(ObjectSpec spec, parse_object(obj));
  Writing w;
  CARREL_ASSIGN_OR_RETURN(w.engine, open_engine(g, /*read_only=*/false));
  CARREL_ASSIGN_OR_RETURN(ResolvedObject r, resolve_object(store_of(*w.engine), spec, must_exist));
  w.ref = std::move(r.ref);
  w.existed = r.record.has_value();
  return w;
}

std::string bookmark_after(Writing& w) {
  auto b = w.engine->current_bookmark(w.ref);
  return b.is_ok() ? *b : std::string();
}

Result<std::string> read_value_file(const std::string& path) {
  std::string what = path == "-" ? std::string("the value on stdin") : "value file '" + path + "'";
  return read_bounded(path, Options{}.value_bytes_max, what, "value_bytes_max");
}

// The longest import line a valid export holds: a KV entry's key and value
// (or a SQL page, or an alarm's payload), base64-encoded, plus the JSON around them.
constexpr size_t kImportLineBytesMax = size_t{4} << 20;
static_assert(kImportLineBytesMax >= (495 + (size_t{2} << 20)) / 3 * 4 + 4096,
              "an import line must fit a default-sized KV entry in base64");

// WHEN of alarms set: "now", "+N[ms|s|m|h|d]" from now, or a time parse_time()
// accepts; every error lists the accepted forms and range.
Result<UnixMs> parse_when(const std::string& text, UnixMs now) {
  constexpr std::string_view kForms =
      "RFC 3339 (2030-01-01T09:00:00Z), epoch milliseconds, `now`, or +N with unit ms, s, m, h "
      "or d from now (+30s, +7d)";
  if (text == "now") return now;
  if (!text.empty() && text[0] == '+') {
    size_t digits = 1;
    while (digits < text.size() && isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    std::string unit = text.substr(digits);
    int64_t scale = unit == "ms"                  ? 1
                    : unit == "s" || unit.empty() ? 1000
                    : unit == "m"                 ? 60000
                    : unit == "h"                 ? 3600000
                    : unit == "d"                 ? 86400000
                                                  : 0;
    if (digits == 1 || scale == 0) {
      return Status::invalid_argument("time '" + text + "' is not a valid offset; expected " +
                                      std::string(kForms));
    }
    // Past 18 digits N could overflow; any N past the limit is refused alike.
    int64_t max_n = (kTimeMsMax - now) / scale;
    std::string n_text = text.substr(1, digits - 1);
    if (digits - 1 > 18 || std::stoll(n_text) > max_n) {
      return Status::invalid_argument("time '" + text +
                                      "' reaches past 9999-12-31T23:59:59.999Z, "
                                      "the latest time; from now the offset is at most +" +
                                      std::to_string(max_n) + unit);
    }
    return now + std::stoll(n_text) * scale;
  }
  return parse_time(text, kForms);
}

bool is_pipe(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

// An import error in the CLI's words: the command and the object once (the
// engine's messages begin "import: "), the input by name where the engine
// says "the input", and what an empty pipe means.
Status import_error(const Status& s, const std::string& input, bool from_pipe,
                    const ObjectRef& ref) {
  constexpr std::string_view kPrefix = "import: ", kInput = "the input";
  std::string m = s.message();
  if (m.starts_with(kPrefix)) m.erase(0, kPrefix.size());
  if (m.starts_with(kInput)) m.replace(0, kInput.size(), input);
  if (m == input + " is empty" && from_pipe) {
    m += " (the command writing into the pipe wrote nothing: when it is `carrel export`, it "
         "failed, and its error is above)";
  }
  return Status(s.code(),
                "import " + display_bytes(ref.label()) + ": " + m + "; nothing was imported",
                s.detail());
}

void print_done(const Globals& g, const std::string& human, JsonWriter& j) {
  if (g.json) {
    j.end_object().print_line();
  } else {
    std::cout << human << '\n';
  }
}

}  // namespace

int cmd_init(const Globals& g) {
  std::error_code ec;
  if (fs::exists(fs::path(g.dir) / "data.mdb", ec)) {
    return fail("'" + g.dir + "' already holds a carrel engine; use it as it is (`carrel --dir " +
                g.dir + " objects`), or name a new directory to init");
  }
  if (fs::exists(g.dir, ec) && !fs::is_directory(g.dir, ec)) {
    return fail("'" + g.dir + "' is a file; init makes an engine in a new or empty directory");
  }
  if (fs::exists(g.dir, ec) && !fs::is_empty(g.dir, ec)) {
    return fail("'" + g.dir + "' exists and is not an empty directory; init makes an engine " +
                "only in a new or empty directory, so that it mixes with no other files");
  }
  Options o;
  o.dir = g.dir;
  o.create_if_missing = true;
  o.workers = 1;
  auto engine = Engine::open(std::move(o));
  if (!engine.is_ok()) return fail(engine.status());
  uint32_t page_bytes = store_of(**engine).sql_page_bytes();
  Status s = (*engine)->close();
  if (!s.is_ok()) return fail(s);
  JsonWriter j;
  j.begin_object().field("dir", g.dir).field("sql_page_bytes", page_bytes);
  print_done(g, "initialized an empty engine in " + g.dir, j);
  return kExitOk;
}

int cmd_recover(const Globals& g, bool discard_lost_redo) {
  auto done = recover_dir(g, discard_lost_redo);
  if (!done.is_ok()) return fail(done.status());
  if (!done->found && store::Store::writer_alive(g.dir)) {
    return fail(Status::busy("'" + g.dir + "' is open for writing by a running engine: " +
                             "what it holds is live, not left by a crash; nothing to recover"));
  }
  JsonWriter j;
  j.begin_object().field("dir", g.dir).field("recovered", done->found);
  std::string text = g.dir + " was closed cleanly: nothing to recover";
  if (done->found) {
    j.field("checkpoint", done->checkpoint).field("txnid", done->txnid);
    j.field("meta_restored", done->meta_restored).field("records_replayed", done->records);
    text = "recovered " + g.dir + ": replayed " + std::to_string(done->records) +
           " commit record(s) of the redo log onto checkpoint " +
           std::to_string(done->checkpoint) + " (LMDB transaction " +
           std::to_string(done->txnid) + ")" +
           (done->meta_restored ? ", after setting data.mdb back to that checkpoint's meta page"
                                : "") +
           "; the directory is data.mdb alone now";
  }
  if (!done->discarded.empty()) {
    j.field("discarded_lost_redo", done->discarded);
    text = "accepted the loss of part of the redo log of " + g.dir + " (" + done->discarded +
           "): " +
           (done->found ? "recovered checkpoint " + std::to_string(done->checkpoint) + " and " +
                              std::to_string(done->records) + " record(s) after it"
                        : std::string("data.mdb as it was last written is the state")) +
           ", and the commits only the lost files held are gone; `carrel --dir '" + g.dir +
           "' verify` checks what remains";
  }
  print_done(g, text, j);
  return kExitOk;
}

int cmd_kv_put(const Globals& g, const std::string& obj, const std::string& key,
               const std::optional<std::string>& value,
               const std::optional<std::string>& value_file) {
  if (value.has_value() == value_file.has_value()) {
    return fail("kv put: give either VALUE or --value-file, exactly one");
  }
  std::string bytes;
  if (value_file) {
    auto v = read_value_file(*value_file);
    if (!v.is_ok()) return fail(v.status());
    bytes = std::move(*v);
  } else {
    bytes = *value;
  }
  auto w = begin_write(g, obj, /*must_exist=*/false);
  if (!w.is_ok()) return fail(w.status());
  Status s = w->engine->run(w->ref, [&](Context& ctx) { return ctx.kv().put(key, bytes); });
  if (!s.is_ok()) return fail(s.with_context("kv put " + display_bytes(w->ref.label())));
  std::string bookmark = bookmark_after(*w);
  JsonWriter j;
  j.begin_object().field("object", w->ref.label()).field("id", w->ref.id.to_hex());
  j.bytes_field("key", key).field("bytes", static_cast<uint64_t>(bytes.size()));
  j.field("bookmark", bookmark);
  print_done(g,
             "put '" + display_bytes(key) + "' (" + std::to_string(bytes.size()) +
                 (bytes.size() == 1 ? " byte) in " : " bytes) in ") +
                 display_bytes(w->ref.label()) + "; bookmark " + bookmark,
             j);
  return kExitOk;
}

int cmd_kv_delete(const Globals& g, const std::string& obj, const std::string& key) {
  auto w = begin_write(g, obj, /*must_exist=*/true);
  if (!w.is_ok()) return fail(w.status());
  Status s = w->engine->run(w->ref, [&](Context& ctx) -> Status {
    CARREL_ASSIGN_OR_RETURN(bool existed, ctx.kv().del(key));
    if (!existed) {
      return Status::not_found("key '" + display_bytes(key) + "' not found in object " +
                               display_bytes(ctx.object().label()));
    }
    return Status::ok();
  });
  if (!s.is_ok()) return fail(s);
  std::string bookmark = bookmark_after(*w);
  JsonWriter j;
  j.begin_object().field("object", w->ref.label()).bytes_field("key", key);
  j.key("deleted").boolean(true).field("bookmark", bookmark);
  print_done(g,
             "deleted '" + display_bytes(key) + "' from " + display_bytes(w->ref.label()) +
                 "; bookmark " + bookmark,
             j);
  return kExitOk;
}

int cmd_alarms_set(const Globals& g, const std::string& obj, const AlarmSetArgs& a) {
  Repeat repeat;
  if (a.every_ms) {
    if (*a.every_ms <= 0) {
      return fail("--every " + std::to_string(*a.every_ms) + " must be a period > 0 ms");
    }
    repeat = Repeat::every(*a.every_ms);
  } else if (a.cron) {
    auto c = alarm::CronExpr::parse(*a.cron);
    if (!c.is_ok()) return fail(c.status());
    repeat = Repeat::cron_expr(*a.cron);
  }
  auto when = parse_when(a.when, SystemClock().now_ms());
  if (!when.is_ok()) return fail(when.status());
  auto w = begin_write(g, obj, /*must_exist=*/false);
  if (!w.is_ok()) return fail(w.status());
  Status s = w->engine->run(w->ref, [&](Context& ctx) {
    return ctx.alarms().schedule(a.name, *when, a.payload, repeat);
  });
  if (!s.is_ok()) return fail(s.with_context("alarms set " + display_bytes(w->ref.label())));
  std::string bookmark = bookmark_after(*w);
  JsonWriter j;
  j.begin_object().field("object", w->ref.label()).bytes_field("name", a.name);
  j.field("due_ms", *when).field("due", format_time(*when)).field("bookmark", bookmark);
  std::string what = a.name.empty() ? "the single alarm" : "alarm '" + display_bytes(a.name) + "'";
  print_done(g,
             "set " + what + " of " + display_bytes(w->ref.label()) + " for " + format_time(*when) +
                 "; bookmark " + bookmark,
             j);
  return kExitOk;
}

int cmd_alarms_delete(const Globals& g, const std::string& obj, const std::string& name) {
  auto w = begin_write(g, obj, /*must_exist=*/true);
  if (!w.is_ok()) return fail(w.status());
  std::string what = name.empty() ? "the single alarm" : "alarm '" + display_bytes(name) + "'";
  Status s = w->engine->run(w->ref, [&](Context& ctx) -> Status {
    CARREL_ASSIGN_OR_RETURN(bool removed, ctx.alarms().cancel(name));
    if (!removed) {
      return Status::not_found(display_bytes(ctx.object().label()) + " has no " + what);
    }
    return Status::ok();
  });
  if (!s.is_ok()) return fail(s);
  std::string bookmark = bookmark_after(*w);
  JsonWriter j;
  j.begin_object().field("object", w->ref.label()).bytes_field("name", name);
  j.field("bookmark", bookmark);
  print_done(
      g, "deleted " + what + " of " + display_bytes(w->ref.label()) + "; bookmark " + bookmark, j);
  return kExitOk;
}

int cmd_restore(const Globals& g, const std::string& obj, const std::string& bookmark) {
  auto w = begin_write(g, obj, /*must_exist=*/true);
  if (!w.is_ok()) return fail(w.status());
  auto parsed = history::Bookmark::parse(bookmark);
  if (!parsed.is_ok()) return fail(parsed.status());
  if (parsed->id != w->ref.id) {
    // The bookmark's object in the CLI's notation: its label, else its id.
    std::string owner = "#" + parsed->id.to_hex() + " (which has no record in " + g.dir + ")";
    auto spec = parse_object(parsed->id.to_hex());
    if (spec.is_ok()) {
      auto r = resolve_object(store_of(*w->engine), *spec, /*must_exist=*/true);
      if (r.is_ok()) owner = display_bytes(r->ref.label());
    }
    std::string label = display_bytes(w->ref.label());
    return fail("bookmark '" + bookmark + "' belongs to object " + owner + ", not " + label +
                "; `carrel history " + label + "` lists the bookmarks of " + label);
  }
  auto undo = w->engine->restore(w->ref, bookmark);
  if (!undo.is_ok()) return fail(undo.status().with_context("restore " + w->ref.label()));
  JsonWriter j;
  j.begin_object().field("object", w->ref.label()).field("restored_to", bookmark);
  j.field("undo_bookmark", *undo);
  if (g.json) {
    j.end_object().print_line();
  } else {
    std::cout << "restored " << display_bytes(w->ref.label()) << " to " << bookmark << '\n'
              << "to undo this restore: carrel restore " << obj << ' ' << *undo << '\n';
  }
  return kExitOk;
}

int cmd_import(const Globals& g, const std::string& obj, const std::optional<std::string>& in) {
  int fd = STDIN_FILENO;
  if (in && *in != "-") {
    fd = ::open(in->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail("cannot open import file '" + *in + "': " + std::strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() {
      if (fd != STDIN_FILENO) ::close(fd);
    }
  } closer{fd};
  auto w = begin_write(g, obj, /*must_exist=*/false);
  if (!w.is_ok()) return fail(w.status());
  // Invariant (1) of safe_io.h: a line is cut at its limit while it is read.
  LineCappedBuf buf(fd, kImportLineBytesMax);
  std::istream stream(&buf);
  Status s = import_object(*w->engine, w->ref, stream);
  std::string what = in && *in != "-" ? "import file '" + *in + "'" : std::string("stdin");
  if (buf.line_too_long()) {
    return fail("import " + display_bytes(w->ref.label()) + ": line " +
                std::to_string(buf.line_no()) + " of " + what + " is longer than the limit of " +
                std::to_string(kImportLineBytesMax) + " bytes; nothing was imported");
  }
  if (!buf.read_error().empty()) {
    return fail("import " + display_bytes(w->ref.label()) + ": cannot read " + what + ": " +
                buf.read_error() + "; nothing was imported");
  }
  if (!s.is_ok()) return fail(import_error(s, what, is_pipe(fd), w->ref));
  std::string bookmark = bookmark_after(*w);
  JsonWriter j;
  j.begin_object().field("object", w->ref.label()).field("bookmark", bookmark);
  print_done(g, "imported into " + display_bytes(w->ref.label()) + "; bookmark " + bookmark, j);
  return kExitOk;
}

int cmd_backup(const Globals& g, const std::string& dest) {
  std::error_code ec;
  // A copy inside the directory it copies would be copied into the next
  // backup. (A missing engine directory is open_engine's error, below.)
  auto inside = fs::is_directory(g.dir, ec) ? path_is_within(dest, g.dir) : Result<bool>(false);
  if (!inside.is_ok()) return fail(inside.status().with_context("backup"));
  if (*inside) {
    return fail("backup destination '" + dest + "' is the engine directory '" + g.dir +
                "' or lies inside it; back up to a directory outside it");
  }
  bool dest_existed = fs::exists(dest, ec);
  if (dest_existed && !fs::is_directory(dest, ec)) {
    return fail("backup destination '" + dest +
                "' exists and is not a directory; name a new or empty directory");
  }
  if (dest_existed) {
    // The partial file of a backup cut short (kill -9) holds nothing: the copy replaces it.
    for (const auto& e : fs::directory_iterator(dest, ec)) {
      if (e.path().filename() != store::Store::kBackupPartialFile) {
        return fail("backup destination '" + dest +
                    "' exists and is not an empty directory; name a new or empty directory (a "
                    "backup replaces nothing and mixes with no other files)");
      }
    }
  }
  // A read-only environment copies one consistent snapshot, so a backup works
  // beside a running engine.
  auto engine = open_engine(g, /*read_only=*/true);
  if (!engine.is_ok()) return fail(engine.status());
  {
    // The compacting copy follows every page: check their headers first
    // (env_check.h, invariant (3)), so a damaged page is an error, not a wild read.
    auto txn = store_of(**engine).begin_read();
    if (!txn.is_ok()) return fail(txn.status());
    Status t = check_env_tree(g.dir, mdb_txn_id(txn->get()));
    if (!t.is_ok()) return fail(t.with_context("backup"));
  }
  bool tty = isatty(STDOUT_FILENO) != 0;
  if (tty && !g.json) std::cout << "backing up " << g.dir << " to " << dest << " ..." << std::flush;
  Status s = store_of(**engine).copy_compact(dest, note_copy_fd);
  if (!s.is_ok() && stop_requested()) s = Status::aborted("backup: " + stop_reason());
  if (tty && !g.json) std::cout << "\r\033[K" << std::flush;
  if (!s.is_ok()) {
    // Nothing changed on error: drop what the failed copy left behind.
    if (!dest_existed)
      fs::remove_all(dest, ec);
    else
      for (const auto& e : fs::directory_iterator(dest, ec)) fs::remove_all(e.path(), ec);
    return fail(s);
  }
  uint64_t bytes = fs::file_size(fs::path(dest) / "data.mdb", ec);
  if (ec) bytes = 0;
  JsonWriter j;
  j.begin_object().field("dir", g.dir).field("dest", dest).field("bytes", bytes);
  print_done(g, "backed up " + g.dir + " to " + dest + " (" + format_bytes(bytes) + ", compacted)",
             j);
  return kExitOk;
}

}  // namespace carrel::cli
