// The carrel CLI: shared declarations of its commands.
//
// Invariants:
//  (1) Inspection commands open the engine directory read-only (an LMDB
//      read-only environment, no writer lock), so they work beside a process
//      that has the engine open for writing, and they never change anything.
//  (2) Writing commands open the full Engine and change state only through
//      Engine::run turns, Engine::restore and Engine::backup, so every change
//      is one atomic, durable commit with its history (undo) record.
//  (3) Every error goes to stderr as one line naming the input at fault, and
//      the exit code is 1; usage errors exit 2 (CLI11 prints the help).
//      Output goes to stdout only after the work it reports has succeeded.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "carrel/engine.h"
#include "carrel/status.h"
#include "engine/store/object_record.h"
#include "engine/store/store.h"

namespace carrel::cli {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

struct Globals {
  std::string dir;
  bool json = false;
  bool no_pager = false;
};

// Prints "carrel: <message>" to stderr and returns kExitError.
int fail(const Status& status);
int fail(const std::string& message);
// A usage error: the message, then help (when not empty and not --json); kExitUsage.
int fail_usage(const std::string& message, const std::string& help);
// With --json, errors go to stderr as one JSON object (docs/cli.md). run_main
// calls it first: it also forgets the directory an earlier run opened.
void set_json_errors(bool on);

// An engine directory opened for one command. read_only: invariant (1).
Result<std::unique_ptr<Engine>> open_engine(const Globals& g, bool read_only);
store::Store& store_of(Engine& engine);
// `carrel recover`'s work, and the first step of every command that writes:
// a directory the redo log left unclean is recovered by a writable open and
// closed cleanly (engine/store/redo.h (5)). Nothing is done to a clean
// directory or one an engine has open (found is false). A directory whose
// redo files were lost (engine/store/redo.h (9)) is refused, Corruption
// naming what is missing; with discard_lost_redo, data.mdb as it was last
// written becomes the state (RedoRecovery::discarded says what was lost).
Result<store::RedoRecovery> recover_dir(const Globals& g, bool discard_lost_redo);

// OBJ arguments (docs/cli.md, "Naming an object"): CLASS:NAME, CLASS:#ID,
// a bare ID, each ID also as a unique prefix; a NAME as printed (escaped, or
// cut with "...") is accepted back. parse_object() checks the syntax only;
// resolve_object() looks the object up.
struct ObjectSpec {
  std::string text;  // as given, for messages
  std::string class_name;
  ObjectId id;            // the exact id: of a bare or '#' id, or id_from_name(class, name)
  std::string name;       // CLASS:NAME as given (may also be an id, escaped or cut)
  std::string id_prefix;  // lowercase hex of a bare or '#' id shorter than 32 digits
  bool bare_id = false;   // no class given: it comes from the record
  bool hash_id = false;   // CLASS:#ID
};
Result<ObjectSpec> parse_object(const std::string& text);

struct ResolvedObject {
  ObjectRef ref;
  std::optional<store::ObjectRecord> record;  // nullopt: the object never committed
  // The prefix of its keys (store/keys.h (2)); 0, which no key starts with,
  // when it never committed.
  store::ObjectNo number() const { return record ? record->number : store::ObjectNo{}; }
};
// Reads the object's record. NotFound naming the input when must_exist and the
// object has none (a bare or '#' id always needs one); InvalidArgument when a
// prefix matches more than one object.
Result<ResolvedObject> resolve_object(store::Store& store, const ObjectSpec& spec, bool must_exist);

// An engine opened read-only (invariant (1)), one snapshot, and the object
// named on the command line (resolved before the snapshot began: read what
// the snapshot holds of it through the snapshot).
struct Inspection {
  std::unique_ptr<Engine> engine;
  store::Store* store = nullptr;
  store::ReadTxn txn;
  ResolvedObject object;
};
// obj: nullptr when the command names no object.
Result<Inspection> inspect(const Globals& g, const std::string* obj);

// Commands. Each returns the process exit code.
int cmd_init(const Globals& g);
int cmd_recover(const Globals& g, bool discard_lost_redo);
int cmd_objects(const Globals& g, const std::optional<std::string>& class_name,
                std::optional<size_t> limit);
int cmd_show(const Globals& g, const std::string& obj);

int cmd_kv_get(const Globals& g, const std::string& obj, const std::string& key, bool raw);
int cmd_kv_put(const Globals& g, const std::string& obj, const std::string& key,
               const std::optional<std::string>& value,
               const std::optional<std::string>& value_file);
int cmd_kv_delete(const Globals& g, const std::string& obj, const std::string& key);
struct KvListArgs {
  std::optional<std::string> prefix, start, start_after, end;
  bool reverse = false;
  std::optional<size_t> limit;
};
int cmd_kv_list(const Globals& g, const std::string& obj, const KvListArgs& args);

int cmd_export(const Globals& g, const std::string& obj, const std::optional<std::string>& out,
               bool force);
int cmd_import(const Globals& g, const std::string& obj, const std::optional<std::string>& in);
int cmd_sql(const Globals& g, const std::string& obj, const std::optional<std::string>& query);

int cmd_alarms_list(const Globals& g, const std::optional<std::string>& obj, bool dead,
                    std::optional<size_t> limit);
struct AlarmSetArgs {
  std::string when;
  std::string name;
  std::string payload;
  std::optional<int64_t> every_ms;
  std::optional<std::string> cron;
};
int cmd_alarms_set(const Globals& g, const std::string& obj, const AlarmSetArgs& args);
int cmd_alarms_delete(const Globals& g, const std::string& obj, const std::string& name);

int cmd_history(const Globals& g, const std::string& obj, std::optional<size_t> limit);
int cmd_bookmark(const Globals& g, const std::string& obj, const std::optional<std::string>& at);
int cmd_restore(const Globals& g, const std::string& obj, const std::string& bookmark);
int cmd_backup(const Globals& g, const std::string& dest);
int cmd_verify(const Globals& g, const std::optional<std::string>& obj);
int cmd_stats(const Globals& g);

}  // namespace carrel::cli
