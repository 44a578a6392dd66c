// NDJSON import (include/carrel/export.h) on arbitrary input, into a fresh
// object each time. Checks: no crash; a refused import leaves the object
// empty (nothing half-imported); an accepted one exports back to an input
// that imports again into another object and exports identically.
#include <sstream>
#include <string>

#include "carrel/export.h"
#include "fuzz/fuzz_engine.h"

namespace {

using namespace carrel;

[[noreturn]] void fail(const std::string& what) {
  carrel::fuzz::fail("import", what);
}

carrel::fuzz::EngineFixture& fixture() {
  static carrel::fuzz::EngineFixture f("import");
  return f;
}

// The export of an object with its header's time and names removed, for comparing two objects.
std::string body_of(Engine& engine, const ObjectRef& ref) {
  std::ostringstream out;
  Status s = export_object(engine, ref, out);
  if (!s.is_ok()) fail("export: " + s.to_string());
  std::string text = out.str();
  size_t eol = text.find('\n');
  return eol == std::string::npos ? text : text.substr(eol + 1);
}

bool is_empty(Engine& engine, const ObjectRef& ref) {
  bool empty = false;
  Status s = engine.run(ref, [&](Context& ctx) -> Status {
    CARREL_ASSIGN_OR_RETURN(auto kv, ctx.kv().list());
    CARREL_ASSIGN_OR_RETURN(auto alarms, ctx.alarms().list());
    CARREL_ASSIGN_OR_RETURN(auto size, ctx.sql().database_size());
    empty = kv.empty() && alarms.empty() && size == 0;
    return Status::ok();
  });
  if (!s.is_ok()) fail("inspect: " + s.to_string());
  return empty;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static uint64_t n = 0;
  Engine& engine = *fixture().engine;
  ++n;
  ObjectRef a = ObjectRef::named("Imported", "a" + std::to_string(n));
  ObjectRef b = ObjectRef::named("Imported", "b" + std::to_string(n));
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  Status s = import_object(engine, a, in);
  if (!s.is_ok()) {
    if (s.code() != Code::kInvalidArgument)
      fail("refusal is not InvalidArgument: " + s.to_string());
    if (!is_empty(engine, a)) fail("a refused import left data behind: " + s.to_string());
    return 0;
  }
  std::ostringstream again;
  Status e = export_object(engine, a, again);
  if (!e.is_ok()) fail("export after import: " + e.to_string());
  std::istringstream in2(again.str());
  Status s2 = import_object(engine, b, in2);
  if (!s2.is_ok()) fail("re-import of an export: " + s2.to_string());
  if (body_of(engine, a) != body_of(engine, b)) fail("export differs after a round trip");
  return 0;
}
