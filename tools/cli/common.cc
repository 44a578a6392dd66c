// What every command shares: opening the engine directory (after the
// damage checks of env_check.h) and reporting errors. OBJ arguments are
// resolved in object_name.cc.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "engine/loop/engine_core.h"
#include "engine/store/redo.h"
#include "tools/cli/cli.h"
#include "tools/cli/env_check.h"
#include "tools/cli/line_editor.h"
#include "tools/cli/output.h"
#include "tools/cli/process_guard.h"

namespace carrel::cli {

namespace {
bool json_errors = false;
// The engine directory open_engine() opened: fail() words an LMDB error met
// in it as a damaged file (env_check.h explain_damage).
std::string opened_dir;

// invariant (3) of cli.h; with --json the line is {"error":{"code":...,"message":...}}.
int report(std::string_view code, const std::string& message, int exit_code) {
  std::cout.flush();
  if (json_errors) {
    JsonWriter j;
    j.begin_object().key("error").begin_object().field("code", code);
    j.field("message", message).field("exit_code", exit_code).end_object().end_object();
    std::cerr << j.str() << '\n';
  } else {
    std::cerr << "carrel: " << message << '\n';
  }
  return exit_code;
}
}  // namespace

void set_json_errors(bool on) {
  json_errors = on;
  opened_dir.clear();  // run_main may run again in one process (fuzz/cli_fuzz.cc)
}

int fail(const Status& status) {
  Status s = opened_dir.empty() ? status : explain_damage(opened_dir, status);
  std::string m = s.message();
  if (s.code() == Code::kBusy && m.find("open for writing by") != std::string::npos) {
    m += " (inspection commands work beside it; stop it to change data)";
  }
  return report(code_name(s.code()), m, kExitError);
}

int fail(const std::string& message) {
  return report("Error", message, kExitError);
}

int fail_usage(const std::string& message, const std::string& help) {
  report("Usage", message, kExitUsage);
  if (!json_errors && !help.empty()) std::cerr << '\n' << help;
  return kExitUsage;
}

namespace {

Result<std::unique_ptr<Engine>> open_engine_unchecked(const Globals& g, bool read_only,
                                                      bool discard_lost_redo = false) {
  Options o;
  o.dir = g.dir;
  o.discard_lost_redo_log = discard_lost_redo;
  o.create_if_missing = false;
  o.read_only = read_only;
  // One worker is plenty for one command's turns, and on a shared machine the
  // default (one per core) would spawn threads for nothing.
  o.workers = 1;
  // Ctrl-C in the REPL stops the running statement (line_editor.h (1)).
  o.sql_interrupt = &LineEditor::interrupt_pending;
  return Engine::open(std::move(o));
}

}  // namespace

namespace {

// The directory exists, is one, and holds a data.mdb that passes
// env_check.h's file checks; fail() explains later LMDB errors against it.
Status check_dir(const Globals& g) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status st = fs::status(g.dir, ec);
  if (!fs::exists(st)) {
    return Status::not_found("engine directory '" + g.dir +
                             "' does not exist; make one with `carrel --dir " + g.dir +
                             " init`, or name another with --dir or $CARREL_DIR");
  }
  if (!fs::is_directory(st)) {
    return Status::invalid_argument("'" + g.dir +
                                    "' is a file, not an engine directory; --dir (or $CARREL_DIR) "
                                    "names the directory that holds data.mdb");
  }
  opened_dir = g.dir;
  // Invariant (1) of env_check.h: a damaged or foreign data.mdb is refused
  // before LMDB maps it or anything is created; so is a missing one, naming
  // the command that makes an engine.
  // A meta page read while a running engine rewrites it can be torn: a
  // Corruption verdict counts only when a second look, a moment later, agrees.
  auto figures = check_env_file(g.dir);
  if (!figures.is_ok() && figures.status().code() == Code::kCorruption) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    figures = check_env_file(g.dir);
  }
  if (!figures.is_ok() && figures.status().code() == Code::kCorruption) {
    // After a power loss data.mdb's newest meta page may name pages the disk
    // never got (it is written unsynced with the redo log): recovery puts the
    // checkpoint's back (redo.h (5)), so that is not damage yet. A read-only
    // open then names `carrel recover`; a writable one recovers.
    auto redo = store::read_redo_state(g.dir);
    if (redo.is_ok() && redo->needs_recovery() && !store::Store::writer_alive(g.dir)) {
      figures = EnvFileFigures{};
    }
  }
  if (!figures.is_ok() && figures.status().code() == Code::kNotFound) {
    return Status::not_found(
        "'" + g.dir + "' is not a carrel engine directory (it has no data.mdb); `carrel --dir " +
        g.dir + " init` makes one in a new or empty directory");
  }
  if (!figures.is_ok()) return figures.status();
  note_opening(g.dir);
  return Status::ok();
}

// redo.h (5): a directory the redo log left unclean (a process died with it
// open) is recovered by a writable open, and refused by a read-only one, so
// the read-only probe of open_engine could not run. Recovery writes on the
// checkpoint's snapshot: its page headers are checked first (env_check.h
// (3)). A clean directory (no redo files) is left alone, and so is one an
// engine has open (its redo files are live; the open after this says Busy).
Result<store::RedoRecovery> recover_unclean(const Globals& g) {
  CARREL_ASSIGN_OR_RETURN(store::RedoState state, store::read_redo_state(g.dir));
  if (!state.present || store::Store::writer_alive(g.dir)) return store::RedoRecovery{};
  // The checkpoint's own copy of T's meta page: data.mdb's meta slots may
  // have moved past T, or be torn (recovery writes T's back).
  CARREL_RETURN_IF_ERROR(check_env_tree_at(g.dir, state.checkpoint.meta));
  // A segment missing beside the checkpoint: this open refuses it, naming
  // what is lost (redo.h (9)).
  CARREL_ASSIGN_OR_RETURN(auto engine, open_engine_unchecked(g, /*read_only=*/false));
  store::RedoRecovery done = store_of(*engine).recovery();
  CARREL_RETURN_IF_ERROR(engine->close());  // a clean close: data.mdb alone
  return done;
}

}  // namespace

Result<store::RedoRecovery> recover_dir(const Globals& g, bool discard_lost_redo) {
  CARREL_RETURN_IF_ERROR(check_dir(g));
  if (store::Store::writer_alive(g.dir)) return store::RedoRecovery{};
  CARREL_ASSIGN_OR_RETURN(store::RedoState state, store::read_redo_state(g.dir));
  // A whole log (nothing lost) is recovered as always, from its checkpoint.
  if (discard_lost_redo && !(state.present && store::lost_redo_files(state, true).empty())) {
    // redo.h (9): the open builds on the valid checkpoint's snapshot when
    // there is one, else on data.mdb as it was last written; that snapshot is
    // checked page by page before the open writes to it (env_check.h (3)).
    if (state.present) {
      CARREL_RETURN_IF_ERROR(check_env_tree_at(g.dir, state.checkpoint.meta));
    } else {
      CARREL_ASSIGN_OR_RETURN(EnvFileFigures figures, check_env_file(g.dir));
      CARREL_RETURN_IF_ERROR(check_env_tree(g.dir, figures.txnid));
    }
    CARREL_ASSIGN_OR_RETURN(auto engine, open_engine_unchecked(g, /*read_only=*/false,
                                                              /*discard_lost_redo=*/true));
    store::RedoRecovery done = store_of(*engine).recovery();
    CARREL_RETURN_IF_ERROR(engine->close());
    return done;
  }
  CARREL_ASSIGN_OR_RETURN(store::RedoRecovery done, recover_unclean(g));
  if (!done.found) {
    // Nothing to replay; a read-only open still refuses a directory whose
    // redo files were lost (redo.h (9)), and that is what to report.
    CARREL_ASSIGN_OR_RETURN(auto probe, open_engine_unchecked(g, /*read_only=*/true));
    CARREL_RETURN_IF_ERROR(probe->close());
  }
  return done;
}

Result<std::unique_ptr<Engine>> open_engine(const Globals& g, bool read_only) {
  CARREL_RETURN_IF_ERROR(check_dir(g));
  if (!read_only) CARREL_RETURN_IF_ERROR(recover_unclean(g).status());
  if (!read_only) {
    // A directory that is not a carrel engine (another program's LMDB
    // environment) is refused by a read-only open, before the writable open
    // would create writer.lock in it.
    CARREL_ASSIGN_OR_RETURN(auto probe, open_engine_unchecked(g, /*read_only=*/true));
    {
      // LMDB aborts on an assertion when a write reaches a damaged page, so a
      // command that writes first checks every page header of the snapshot
      // it starts from (env_check.h (3)): damage is a Corruption error.
      CARREL_ASSIGN_OR_RETURN(auto txn, store_of(*probe).begin_read());
      CARREL_RETURN_IF_ERROR(check_env_tree(g.dir, mdb_txn_id(txn.get())));
    }
    CARREL_RETURN_IF_ERROR(probe->close());
  }
  CARREL_ASSIGN_OR_RETURN(auto engine, open_engine_unchecked(g, read_only));
  note_mapping(g.dir);
  if (read_only) allow_graceful_stop();
  return engine;
}

store::Store& store_of(Engine& engine) {
  return engine.core()->store();
}

}  // namespace carrel::cli
