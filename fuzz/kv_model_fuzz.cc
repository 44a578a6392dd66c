// Fuzzes the KV API against a std::map model: operation sequences decoded from
// the input run in turns on a fresh object of one Engine (opened once per
// process in a temporary directory). Every result must agree with the model,
// a turn that fails (on purpose) or a ctx.transaction() that fails must leave
// nothing behind, and the committed state must read back the same.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "carrel/carrel.h"
#include "fuzz/fuzz_engine.h"
#include "fuzz/fuzz_input.h"

namespace {

using namespace carrel;
using Model = std::map<std::string, std::string>;

[[noreturn]] void fail(const std::string& what) { carrel::fuzz::fail("kv_model", what); }

carrel::fuzz::EngineFixture& fixture() {
  static carrel::fuzz::EngineFixture f("kv_model");
  return f;
}

// Keys from a small alphabet (with 0x00 and 0xff) so that keys collide and
// prefixes and ranges have neighbours.
std::string key(fuzz::Input& in) {
  static const char kAlphabet[] = {'a', 'b', 'c', '\0', '\xff'};
  size_t n = 1 + in.pick(3);
  std::string k;
  for (size_t i = 0; i < n; ++i) k.push_back(kAlphabet[in.pick(sizeof(kAlphabet))]);
  return k;
}

std::string show(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    char buf[5];
    std::snprintf(buf, sizeof(buf), c >= 32 && c < 127 ? "%c" : "\\x%02x", c);
    out += buf;
  }
  return out;
}

Entries model_list(const Model& m, const ListOptions& o) {
  Entries all;
  for (const auto& [k, v] : m) {
    if (o.start && k < *o.start) continue;
    if (o.start_after && k <= *o.start_after) continue;
    if (o.end && k >= *o.end) continue;
    if (o.prefix && k.compare(0, o.prefix->size(), *o.prefix) != 0) continue;
    if (o.prefix && k.size() < o.prefix->size()) continue;
    all.emplace_back(k, v);
  }
  if (o.reverse) std::reverse(all.begin(), all.end());
  if (o.limit && all.size() > *o.limit) all.resize(*o.limit);
  return all;
}

// Runs ops until the input says the turn ends. Returns false when it asks the
// turn to fail; the model then must not change.
Status run_ops(fuzz::Input& in, Kv& kv, Model& m, Context& ctx, int depth, bool* fail_turn) {
  for (int ops = 0; ops < 24 && !in.empty(); ++ops) {
    switch (in.pick(10)) {
      case 0: {  // end of this turn / transaction
        return Status::ok();
      }
      case 1: {
        std::string k = key(in), v = in.bytes(12);
        if (!kv.put(k, v).is_ok()) fail("put failed");
        m[k] = v;
        break;
      }
      case 2: {
        std::string k = key(in);
        auto got = kv.get(k);
        if (!got.is_ok()) fail("get failed");
        auto it = m.find(k);
        std::optional<std::string> want;
        if (it != m.end()) want = it->second;
        if (*got != want) fail("get " + show(k) + " disagrees with the model");
        break;
      }
      case 3: {
        std::string k = key(in);
        auto got = kv.del(k);
        if (!got.is_ok() || *got != (m.erase(k) == 1)) fail("del " + show(k) + " disagrees");
        break;
      }
      case 4: {
        ListOptions o;
        uint8_t f = in.byte();
        if (f & 1) o.start = key(in);
        if (f & 2) o.start_after = key(in);
        if (f & 4) o.end = key(in);
        if (f & 8) o.prefix = key(in).substr(0, 1 + in.pick(2));
        o.reverse = f & 16;
        if (f & 32) o.limit = in.pick(5);
        auto got = kv.list(o);
        bool invalid = (o.start && o.start_after) || (o.limit && *o.limit == 0);
        if (invalid) {
          if (got.is_ok() || got.status().code() != Code::kInvalidArgument) {
            fail("list with bad options was not InvalidArgument");
          }
          break;
        }
        if (!got.is_ok()) fail("list failed: " + got.status().to_string());
        if (*got != model_list(m, o)) fail("list disagrees with the model");
        break;
      }
      case 5: {
        Entries batch;
        std::map<std::string, std::string> unique;
        for (size_t i = in.pick(4); i > 0; --i) unique[key(in)] = in.bytes(6);
        for (auto& kv_pair : unique) batch.push_back(kv_pair);
        if (!kv.put_many(batch).is_ok()) fail("put_many failed");
        for (auto& [k, v] : batch) m[k] = v;
        break;
      }
      case 6: {
        std::vector<std::string> keys;
        for (size_t i = in.pick(4); i > 0; --i) keys.push_back(key(in));
        std::map<std::string, int> unique;
        for (auto& k : keys) unique[k] = 1;
        std::vector<std::string> distinct;
        for (auto& [k, _] : unique) distinct.push_back(k);
        auto got = kv.del_many(distinct);
        size_t want = 0;
        for (auto& k : distinct) want += m.erase(k);
        if (!got.is_ok() || *got != want) fail("del_many disagrees");
        break;
      }
      case 7: {
        if (in.pick(4) != 0) break;  // rare: it empties everything
        if (!kv.delete_all().is_ok()) fail("delete_all failed");
        m.clear();
        break;
      }
      case 8: {  // a nested transaction that commits or rolls back
        if (depth >= 3) break;
        const bool roll_back = in.byte() & 1;
        Model inner = m;
        bool ignored = false;
        Status s = ctx.transaction([&] {
          CARREL_RETURN_IF_ERROR(run_ops(in, kv, inner, ctx, depth + 1, &ignored));
          return roll_back ? Status::aborted("rolled back on purpose") : Status::ok();
        });
        if (s.is_ok() == roll_back) fail("transaction result is not what its body returned");
        if (!roll_back) m = std::move(inner);
        break;
      }
      case 9: {  // fail the whole turn
        if (depth == 0) {
          *fail_turn = true;
          return Status::ok();
        }
        break;
      }
    }
  }
  return Status::ok();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static uint64_t object_no = 0;
  Engine& engine = *fixture().engine;
  const ObjectRef ref = ObjectRef::named("KvModel", std::to_string(++object_no));
  fuzz::Input in(data, size);
  Model committed;
  for (int turn = 0; turn < 16 && !in.empty(); ++turn) {
    Model working = committed;
    bool fail_turn = false;
    Status s = engine.run(ref, [&](Context& ctx) {
      CARREL_RETURN_IF_ERROR(run_ops(in, ctx.kv(), working, ctx, 0, &fail_turn));
      return fail_turn ? Status::aborted("failed on purpose") : Status::ok();
    });
    if (s.is_ok() == fail_turn) fail("turn result is not what it returned: " + s.to_string());
    if (!fail_turn) committed = std::move(working);
  }
  // The committed state reads back in full.
  Status s = engine.run(ref, [&](Context& ctx) {
    auto all = ctx.kv().list();
    if (!all.is_ok()) fail("final list failed");
    if (*all != Entries(committed.begin(), committed.end())) fail("committed state differs");
    return Status::ok();
  });
  if (!s.is_ok()) fail("final read failed: " + s.to_string());
  return 0;
}
