// What every command shares: opening the engine directory, reporting errors,
// and resolving OBJ arguments.
#include <chrono>
#include <iostream>
#include <thread>

#include "engine/loop/engine_core.h"
#include "tools/cli/cli.h"
#include "tools/cli/env_check.h"
#include "tools/cli/process_guard.h"

namespace carrel::cli {

int fail(const Status& status) {
  std::string m = status.message();
  if (status.code() == Code::kBusy && m.find("open for writing by process") != std::string::npos) {
    m += " (inspection commands work beside it; stop it to change data)";
  }
  return fail(m);
}

int fail(const std::string& message) {
  std::cout.flush();
  std::cerr << "carrel: " << message << '\n';
  return kExitError;
}

namespace {

Result<std::unique_ptr<Engine>> open_engine_unchecked(const Globals& g, bool read_only) {
  Options o;
  o.dir = g.dir;
  o.create_if_missing = false;
  o.read_only = read_only;
  // One worker is plenty for one command's turns, and on a shared machine the
  // default (one per core) would spawn threads for nothing.
  o.workers = 1;
  return Engine::open(std::move(o));
}

}  // namespace

Result<std::unique_ptr<Engine>> open_engine(const Globals& g, bool read_only) {
  // Invariant (1) of env_check.h: a damaged or foreign data.mdb is refused
  // before LMDB maps it or anything is created. A missing one is left to
  // Engine::open, which words that case.
  // A meta page read while a running engine rewrites it can be torn: a
  // Corruption verdict counts only when a second look, a moment later, agrees.
  auto figures = check_env_file(g.dir);
  if (!figures.is_ok() && figures.status().code() == Code::kCorruption) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    figures = check_env_file(g.dir);
  }
  if (!figures.is_ok() && figures.status().code() != Code::kNotFound) return figures.status();
  if (!read_only && figures.is_ok()) {
    // A directory that is not a carrel engine (another program's LMDB
    // environment) is refused by a read-only open, before the writable open
    // would create writer.lock in it.
    CARREL_ASSIGN_OR_RETURN(auto probe, open_engine_unchecked(g, /*read_only=*/true));
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

Result<ObjectSpec> parse_object(const std::string& text) {
  ObjectSpec spec;
  spec.text = text;
  auto bad = [&](std::string why) {
    return Status::invalid_argument(
        "object '" + text + "' " + why +
        "; expected CLASS:NAME, CLASS:<32-hex id> or a 32-hex-digit id");
  };
  size_t colon = text.find(':');
  if (colon == std::string::npos) {
    auto id = ObjectId::parse(text);
    if (!id.is_ok()) return bad("is not an object id");
    spec.id = *id;
    spec.bare_id = true;
    return spec;
  }
  spec.class_name = text.substr(0, colon);
  std::string rest = text.substr(colon + 1);
  if (spec.class_name.empty()) return bad("has an empty class");
  if (rest.empty()) return bad("has an empty name");
  // A 32-hex-digit name is read as an id (documented in docs/cli.md).
  if (auto id = ObjectId::parse(rest); id.is_ok()) {
    spec.id = *id;
  } else {
    spec.name = rest;
    spec.id = id_from_name(spec.class_name, spec.name);
  }
  return spec;
}

Result<ResolvedObject> resolve_object(store::Store& store, const ObjectSpec& spec,
                                      bool must_exist) {
  CARREL_ASSIGN_OR_RETURN(auto txn, store.begin_read());
  CARREL_ASSIGN_OR_RETURN(auto raw, txn.get(store::Db::kObjects, spec.id.raw()));
  ResolvedObject r;
  if (!raw) {
    if (must_exist || spec.bare_id) {
      return Status::not_found("unknown object '" + spec.text + "' (id " + spec.id.to_hex() +
                               " has no record in " + store.dir() + ")");
    }
    r.ref = ObjectRef{spec.class_name, spec.id, spec.name};
    return r;
  }
  auto rec = store::ObjectRecord::decode(*raw);
  if (!rec.is_ok()) return rec.status().with_context("object '" + spec.text + "'");
  if (!spec.bare_id && rec->class_name != spec.class_name) {
    return Status::invalid_argument("object '" + spec.text + "': id " + spec.id.to_hex() +
                                    " belongs to class '" + rec->class_name + "'");
  }
  r.ref = ObjectRef{rec->class_name, spec.id, rec->name.empty() ? spec.name : rec->name};
  r.record = std::move(*rec);
  return r;
}

}  // namespace carrel::cli
