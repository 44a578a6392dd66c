// carrel: the operator's command line for a carrel engine directory.
// See docs/cli.md for every command with an example.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <string_view>

#include "carrel/version.h"
#include "tools/cli/cli.h"
#include "tools/cli/pager.h"
#include "tools/cli/usage.h"

namespace {

using carrel::cli::Globals;

// The help of the deepest subcommand the parser selected, for a usage error,
// with its full command path ("Usage: carrel kv get ...").
std::string selected_help(const CLI::App& app) {
  const CLI::App* at = &app;
  std::string path;
  for (;;) {
    auto subs = at->get_subcommands();
    if (subs.empty()) break;
    path += (path.empty() ? "" : " ") + at->get_name();
    at = subs.front();
  }
  return at->help(path);
}

template <typename T>
std::optional<T> given(const CLI::Option* opt, const T& value) {
  return opt->count() > 0 ? std::optional<T>(value) : std::nullopt;
}

}  // namespace

namespace carrel::cli {

// The whole command line; main() in tools/carrel_main.cc, and fuzz/cli_fuzz.cc, call it.
int run_main(int argc, char** argv) {
  namespace cli = carrel::cli;
  CLI::App app{"carrel: inspect and repair a carrel engine directory", "carrel"};
  app.require_subcommand(1);
  // Global options may also follow the command: `carrel kv get OBJ KEY --json`.
  app.fallthrough();
  Globals g;
  const char* env_dir = std::getenv("CARREL_DIR");
  g.dir = env_dir != nullptr && *env_dir != '\0' ? env_dir : "./carrel-data";
  app.add_option("--dir", g.dir, "engine directory (default: $CARREL_DIR, else ./carrel-data)");
  app.add_flag("--json", g.json, "JSON output (NDJSON for lists)");
  app.add_flag("--no-pager", g.no_pager, "never pipe long output through $PAGER");
  app.set_version_flag("--version", "carrel " CARREL_VERSION_STRING,
                       "print carrel's version and exit");
  std::function<int()> run;

  // OBJ help shared by the commands that take one.
  const std::string obj_help = "object: CLASS:NAME, CLASS:<32-hex id> or a 32-hex-digit id";
  std::string obj, key, value, value_file, query, when, name, payload, cron, at, bookmark, dest,
      class_name;
  size_t limit = 0;
  int64_t every_ms = 0;
  bool reverse = false, dead = false, raw = false;
  cli::KvListArgs list_args;

  auto* init = app.add_subcommand("init", "create an empty engine directory");
  init->callback([&] { run = [&] { return cli::cmd_init(g); }; });

  auto* objects = app.add_subcommand("objects", "list objects");
  auto* objects_class = objects->add_option("--class", class_name, "only objects of this class");
  auto* objects_limit =
      objects->add_option("--limit", limit, "at most N objects")->check(cli::positive_count());
  objects->callback([&] {
    run = [&] {
      return cli::cmd_objects(g, given(objects_class, class_name), given(objects_limit, limit));
    };
  });

  auto* show = app.add_subcommand("show", "one object's summary");
  show->add_option("OBJ", obj, obj_help)->required();
  show->callback([&] { run = [&] { return cli::cmd_show(g, obj); }; });

  auto* kv = app.add_subcommand("kv", "read and write an object's keys");
  kv->require_subcommand(1);
  auto* kv_get = kv->add_subcommand("get", "print one value");
  kv_get->add_option("OBJ", obj, obj_help)->required();
  kv_get->add_option("KEY", key, "the key")->required();
  kv_get->add_flag("--raw", raw, "write the value's exact bytes, without a newline");
  kv_get->callback([&] { run = [&] { return cli::cmd_kv_get(g, obj, key, raw); }; });
  auto* kv_put = kv->add_subcommand("put", "write one value (one commit)");
  kv_put->add_option("OBJ", obj, obj_help)->required();
  kv_put->add_option("KEY", key, "the key")->required();
  auto* put_value = kv_put->add_option("VALUE", value, "the value");
  auto* put_file =
      kv_put->add_option("--value-file", value_file, "read the value from a file (- for stdin)");
  put_value->excludes(put_file);
  kv_put->callback([&] {
    if (put_value->count() + put_file->count() != 1) {
      throw CLI::RequiredError("VALUE or --value-file (exactly one)");
    }
    run = [&] {
      return cli::cmd_kv_put(g, obj, key, given(put_value, value), given(put_file, value_file));
    };
  });
  auto* kv_delete = kv->add_subcommand("delete", "delete one key (one commit)");
  kv_delete->add_option("OBJ", obj, obj_help)->required();
  kv_delete->add_option("KEY", key, "the key")->required();
  kv_delete->callback([&] { run = [&] { return cli::cmd_kv_delete(g, obj, key); }; });
  auto* kv_list = kv->add_subcommand("list", "list keys and values in key order");
  kv_list->add_option("OBJ", obj, obj_help)->required();
  auto* l_prefix = kv_list->add_option("--prefix", list_args.prefix, "only keys with this prefix");
  auto* l_start = kv_list->add_option("--start", list_args.start, "first key, inclusive");
  auto* l_after =
      kv_list->add_option("--start-after", list_args.start_after, "first key, exclusive");
  kv_list->add_option("--end", list_args.end, "last key, exclusive");
  kv_list->add_flag("--reverse", reverse, "largest keys first");
  auto* l_limit =
      kv_list->add_option("--limit", limit, "at most N keys")->check(cli::positive_count());
  l_start->excludes(l_after);
  (void)l_prefix;
  kv_list->callback([&] {
    run = [&] {
      list_args.reverse = reverse;
      list_args.limit = given(l_limit, limit);
      return cli::cmd_kv_list(g, obj, list_args);
    };
  });

  auto* sql = app.add_subcommand(
      "sql",
      "run SQL: QUERY as one turn; else a REPL on a terminal, or a script from stdin (one turn)");
  sql->add_option("OBJ", obj, obj_help)->required();
  auto* sql_query = sql->add_option("QUERY", query, "statements to run");
  sql->callback([&] { run = [&] { return cli::cmd_sql(g, obj, given(sql_query, query)); }; });

  auto* alarms = app.add_subcommand("alarms", "an object's alarm queue");
  alarms->require_subcommand(1);
  auto* a_list = alarms->add_subcommand("list", "due time, name, repeat, retries");
  auto* a_list_obj = a_list->add_option("OBJ", obj, obj_help + " (default: every object)");
  a_list->add_flag("--dead", dead, "show dead letters instead");
  auto* a_limit =
      a_list->add_option("--limit", limit, "at most N entries")->check(cli::positive_count());
  a_list->callback([&] {
    run = [&] {
      return cli::cmd_alarms_list(g, given(a_list_obj, obj), dead, given(a_limit, limit));
    };
  });
  cli::AlarmSetArgs set_args;
  auto* a_set = alarms->add_subcommand("set", "schedule an alarm (one commit)");
  a_set->add_option("OBJ", obj, obj_help)->required();
  a_set
      ->add_option("WHEN", set_args.when,
                   "RFC 3339 time, epoch ms, 'now' or +N[ms|s|m|h|d] from now")
      ->required();
  a_set->add_option("--name", set_args.name, "entry name (default: the single alarm)");
  a_set->add_option("--payload", set_args.payload, "payload bytes");
  auto* a_every = a_set->add_option("--every", every_ms, "repeat every MS milliseconds")
                      ->check(cli::positive_ms());
  auto* a_cron = a_set->add_option("--cron", cron, "repeat on a 5-field UTC cron expression");
  a_every->excludes(a_cron);
  a_set->callback([&] {
    run = [&] {
      set_args.every_ms = given(a_every, every_ms);
      set_args.cron = given(a_cron, cron);
      return cli::cmd_alarms_set(g, obj, set_args);
    };
  });
  auto* a_delete = alarms->add_subcommand("delete", "remove an alarm (one commit)");
  a_delete->add_option("OBJ", obj, obj_help)->required();
  a_delete->add_option("--name", name, "entry name (default: the single alarm)");
  a_delete->callback([&] { run = [&] { return cli::cmd_alarms_delete(g, obj, name); }; });

  auto* history = app.add_subcommand("history", "an object's commits, newest first");
  history->add_option("OBJ", obj, obj_help)->required();
  auto* h_limit =
      history->add_option("--limit", limit, "at most N commits")->check(cli::positive_count());
  history->callback([&] { run = [&] { return cli::cmd_history(g, obj, given(h_limit, limit)); }; });

  auto* bm = app.add_subcommand("bookmark", "the current bookmark, or the one for a time");
  bm->add_option("OBJ", obj, obj_help)->required();
  auto* bm_at = bm->add_option("--at", at, "RFC 3339 time or epoch ms");
  bm->callback([&] { run = [&] { return cli::cmd_bookmark(g, obj, given(bm_at, at)); }; });

  auto* restore = app.add_subcommand("restore", "restore an object to a bookmark (one commit)");
  restore->add_option("OBJ", obj, obj_help)->required();
  restore->add_option("BOOKMARK", bookmark, "from carrel history or carrel bookmark")->required();
  restore->callback([&] { run = [&] { return cli::cmd_restore(g, obj, bookmark); }; });

  auto* backup = app.add_subcommand("backup", "write a consistent, compacted copy of the engine");
  backup->add_option("DEST", dest, "new or empty directory, outside the engine directory")
      ->required();
  backup->callback([&] { run = [&] { return cli::cmd_backup(g, dest); }; });

  auto* verify = app.add_subcommand("verify", "check LMDB, records, timetable and SQL integrity");
  auto* v_obj = verify->add_option("OBJ", obj, obj_help + " (default: every object)");
  verify->callback([&] { run = [&] { return cli::cmd_verify(g, given(v_obj, obj)); }; });

  auto* recover = app.add_subcommand(
      "recover", "recover a directory an engine's crash left unclean (replays its redo log)");
  bool discard_lost_redo = false;
  recover->add_flag("--discard-lost-redo", discard_lost_redo,
                    "when the redo files were removed or damaged: take data.mdb as it was last "
                    "written (the commits only the log held are lost)");
  recover->callback([&] { run = [&] { return cli::cmd_recover(g, discard_lost_redo); }; });

  auto* stats = app.add_subcommand("stats", "engine-wide figures");
  stats->callback([&] { run = [&] { return cli::cmd_stats(g); }; });

  std::string file;
  auto* exp = app.add_subcommand("export", "write one object's state as NDJSON (docs/export-format.md)");
  exp->add_option("OBJ", obj, obj_help)->required();
  auto* exp_out = exp->add_option("-o,--output", file, "output file (default: stdout)");
  bool force = false;
  exp->add_flag("--force", force, "replace an existing output file");
  exp->callback(
      [&] { run = [&] { return cli::cmd_export(g, obj, given(exp_out, file), force); }; });
  auto* imp = app.add_subcommand("import", "load an export into an empty object (one commit)");
  imp->add_option("OBJ", obj, obj_help)->required();
  auto* imp_in = imp->add_option("-i,--input", file, "input file (default: stdin)");
  imp->callback([&] { run = [&] { return cli::cmd_import(g, obj, given(imp_in, file)); }; });

  cli::set_json_errors(false);  // run_main may run again in one process (fuzz/cli_fuzz.cc)
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") break;
    if (std::string_view(argv[i]) == "--json") cli::set_json_errors(true);
  }
  if (auto m = cli::command_word_error(app, argc, argv)) return cli::fail_usage(*m, "");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return cli::fail_usage(e.what(), selected_help(app));
  }
  if (!run) return cli::kExitUsage;
  std::string command;
  for (const CLI::App* at = &app; !at->get_subcommands().empty();) {
    at = at->get_subcommands().front();
    command += (command.empty() ? "" : " ") + at->get_name();
  }
  cli::Pager pager(g, command, sql_query->count() == 0 && isatty(STDIN_FILENO) != 0);
  // Errors are values; an exception that escapes a command is still one line and exit 1.
  int rc;
  try {
    rc = run();
  } catch (const std::exception& e) {
    rc = cli::fail(std::string("internal error: ") + e.what());
  } catch (...) {
    rc = cli::fail("internal error: an unknown exception");
  }
  pager.finish();
  return rc;
}

}  // namespace carrel::cli
