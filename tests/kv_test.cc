// KV semantics checked against a reference model (std::map, which orders
// std::string bytewise like carrel does), over seeded random operation
// sequences spread across turns that commit, fail on purpose, nest
// transactions and pipeline. Also the Durable Objects list rules, isolation
// between objects, the KV limits and the object record's counters.
//
// Invariants checked (carrel/kv.h and engine/loop/turn.h):
//  (K1) Every read sees, newest first: the turn's layers, the pending overlay
//       of sealed-but-not-durable commits, then LMDB.
//  (K2) A failed turn or ctx.transaction leaves no trace of its writes.
//  (K3) list() returns exactly the model's keys in [start, end) ∩ prefix,
//       bytewise ordered, reversed on request, cut at limit.
//  (K4) A call refused by a limit writes nothing, and names the limit.
//  (K5) One object's keys never show in another's namespace.
//  (K6) The object record's kv_keys / kv_bytes / last_seq match the data.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "carrel/carrel.h"
#include "engine/history/tail.h"
#include "engine/loop/engine_core.h"
#include "engine/store/object_record.h"
#include "engine/store/store.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

using Model = std::map<std::string, std::string>;

std::string bin(std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out + "\"";
}

std::string text(const Entries& e) {
  std::string out = "[";
  for (auto& [k, v] : e) out += bin(k) + "=" + bin(v.substr(0, 16)) + " ";
  return out + "]";
}

std::string text(const ListOptions& o) {
  std::string out = "list{";
  if (o.start) out += "start=" + bin(*o.start) + " ";
  if (o.start_after) out += "start_after=" + bin(*o.start_after) + " ";
  if (o.end) out += "end=" + bin(*o.end) + " ";
  if (o.prefix) out += "prefix=" + bin(*o.prefix) + " ";
  if (o.reverse) out += "reverse ";
  if (o.limit) out += "limit=" + std::to_string(*o.limit);
  return out + "}";
}

// What list() must return, computed straight from the rules (K3), without
// the engine's range arithmetic. nullopt: InvalidArgument.
std::optional<Entries> model_list(const Model& m, const ListOptions& o) {
  if (o.start && o.start_after) return std::nullopt;
  if (o.limit && *o.limit == 0) return std::nullopt;
  Entries out;
  for (auto& [k, v] : m) {
    if (o.start && k < *o.start) continue;
    if (o.start_after && k <= *o.start_after) continue;
    if (o.end && k >= *o.end) continue;
    if (o.prefix && k.compare(0, o.prefix->size(), *o.prefix) != 0) continue;
    out.emplace_back(k, v);
  }
  if (o.reverse) std::reverse(out.begin(), out.end());
  if (o.limit && out.size() > *o.limit) out.resize(*o.limit);
  return out;
}

Entries entries_of(const Model& m) {
  return Entries(m.begin(), m.end());
}

// Keys chosen to collide: empty, 0x00 and 0xff bytes, keys that are prefixes
// of each other, bytes either side of 0x7f/0x80 (signed-char traps).
const std::vector<std::string>& key_pool() {
  static const std::vector<std::string> pool = {
      "",
      std::string(1, '\0'),
      std::string(2, '\0'),
      "\xff",
      "\xff\xff",
      "a",
      "ab",
      "abc",
      std::string("a\0", 2),
      std::string("a\0b", 3),
      "a\xff",
      "b",
      "ba",
      "\x7f",
      "\x80",
      "k1",
      "k10",
      "k2",
  };
  return pool;
}

class KeyGen {
 public:
  explicit KeyGen(uint64_t seed) : rng_(seed) {}
  std::mt19937_64& rng() { return rng_; }
  size_t below(size_t n) { return static_cast<size_t>(rng_() % n); }
  bool chance(int percent) { return below(100) < static_cast<size_t>(percent); }

  std::string key() {
    if (chance(60)) return key_pool()[below(key_pool().size())];
    static const char kBytes[] = {'\0', '\x01', 'a', 'b', '\x7f', '\x80', '\xfe', '\xff'};
    std::string k;
    size_t n = below(5);
    for (size_t i = 0; i < n; ++i) k.push_back(kBytes[below(sizeof(kBytes))]);
    return k;
  }
  std::string value() {
    size_t n = chance(3) ? 2000 + below(3000) : below(24);  // some LMDB overflow pages
    std::string v(n, '\0');
    for (auto& c : v) c = static_cast<char>(rng_());
    return v;
  }
  std::vector<std::string> keys(size_t max) {
    std::vector<std::string> ks(below(max + 1));
    for (auto& k : ks) k = key();
    return ks;
  }
  ListOptions list_options() {
    ListOptions o;
    if (chance(35)) o.start = key();
    if (chance(35)) o.start_after = key();
    if (chance(35)) o.end = key();
    if (chance(35)) o.prefix = key();
    o.reverse = chance(50);
    static const size_t kLimits[] = {0, 1, 2, 3, 5, 1000};
    if (chance(40)) o.limit = kLimits[below(6)];
    return o;
  }

 private:
  std::mt19937_64 rng_;
};

// Runs random KV operations inside one turn against a model of what the turn
// should see, recording every disagreement.
class TurnChecker {
 public:
  TurnChecker(Context& ctx, KeyGen& gen, std::vector<std::string>& errors)
      : ctx_(ctx), gen_(gen), errors_(errors) {}

  // Runs n operations on m; returns whether any of them wrote.
  bool run_ops(Model& m, int n, int depth) {
    bool wrote = false;
    for (int i = 0; i < n; ++i) wrote |= one_op(m, depth);
    return wrote;
  }

 private:
  void fail(const std::string& what) { errors_.push_back(what); }

  bool one_op(Model& m, int depth) {
    Kv& kv = ctx_.kv();
    size_t op = gen_.below(100);
    if (op < 25) {
      std::string k = gen_.key(), v = gen_.value();
      Status s = kv.put(k, v);
      if (!s.is_ok()) return fail("put " + bin(k) + ": " + s.to_string()), false;
      m[k] = v;
      return true;
    }
    if (op < 33) {
      Entries es(gen_.below(6));
      for (auto& e : es) e = {gen_.key(), gen_.value()};
      Status s = kv.put_many(es);
      if (!s.is_ok()) return fail("put_many: " + s.to_string()), false;
      for (auto& [k, v] : es) m[k] = v;  // later duplicates win
      return !es.empty();
    }
    if (op < 48) {
      std::string k = gen_.key();
      auto r = kv.get(k);
      auto it = m.find(k);
      if (!r.is_ok()) return fail("get " + bin(k) + ": " + r.status().to_string()), false;
      bool want = it != m.end();
      if (r->has_value() != want || (want && **r != it->second)) {
        fail("get " + bin(k) + " gave " + (r->has_value() ? bin(**r) : "absent") + ", model " +
             (want ? bin(it->second) : "absent"));
      }
      return false;
    }
    if (op < 55) {
      auto ks = gen_.keys(8);
      auto r = kv.get_many(ks);
      if (!r.is_ok()) return fail("get_many: " + r.status().to_string()), false;
      Model want;
      for (auto& k : ks)
        if (auto it = m.find(k); it != m.end()) want.insert(*it);
      if (*r != entries_of(want))
        fail("get_many gave " + text(*r) + ", model " + text(entries_of(want)));
      return false;
    }
    if (op < 66) {
      std::string k = gen_.key();
      auto r = kv.del(k);
      if (!r.is_ok()) return fail("del " + bin(k) + ": " + r.status().to_string()), false;
      bool want = m.erase(k) == 1;
      if (*r != want) fail("del " + bin(k) + " gave " + std::to_string(*r));
      return true;
    }
    if (op < 72) {
      auto ks = gen_.keys(6);
      auto r = kv.del_many(ks);
      if (!r.is_ok()) return fail("del_many: " + r.status().to_string()), false;
      size_t want = 0;
      for (auto& k : ks) want += m.erase(k);
      if (*r != want) {
        fail("del_many gave " + std::to_string(*r) + ", model " + std::to_string(want));
      }
      return !ks.empty();
    }
    if (op < 74) {
      Status s = kv.delete_all();
      if (!s.is_ok()) return fail("delete_all: " + s.to_string()), false;
      m.clear();
      return true;
    }
    if (op < 92) {
      ListOptions o = gen_.list_options();
      auto r = kv.list(o);
      auto want = model_list(m, o);
      if (!want) {
        if (r.is_ok() || r.status().code() != Code::kInvalidArgument) {
          fail(text(o) + " should be InvalidArgument, gave " + r.status().to_string());
        }
      } else if (!r.is_ok()) {
        fail(text(o) + ": " + r.status().to_string());
      } else if (*r != *want) {
        fail(text(o) + " gave " + text(*r) + ", model " + text(*want));
      }
      return false;
    }
    if (depth >= 2) return false;
    // A nested transaction that commits, returns an error or throws (K2).
    Model inner = m;
    int outcome = static_cast<int>(gen_.below(3));  // 0 ok, 1 error, 2 throw
    bool inner_wrote = false;
    Status s = ctx_.transaction([&]() -> Status {
      inner_wrote = run_ops(inner, 1 + static_cast<int>(gen_.below(6)), depth + 1);
      if (outcome == 1) return Status::not_found("nested failure on purpose");
      if (outcome == 2) throw std::runtime_error("nested throw on purpose");
      return Status::ok();
    });
    Code want = outcome == 0 ? Code::kOk : outcome == 1 ? Code::kNotFound : Code::kAborted;
    if (s.code() != want) fail("transaction gave " + s.to_string());
    if (outcome == 0) {
      m = std::move(inner);
      return inner_wrote;
    }
    return false;
  }

  Context& ctx_;
  KeyGen& gen_;
  std::vector<std::string>& errors_;
};

uint64_t base_seed() {
  const char* s = std::getenv("CARREL_TEST_SEED");
  return s ? std::strtoull(s, nullptr, 10) : 20240601;
}

Options test_options(const testing::TempDir& dir) {
  Options o = testing::options_in(dir);
  o.durability = Durability::kNoSync;  // these tests close cleanly; sync is tested elsewhere
  o.workers = 2;
  return o;
}

using testing::open_engine;

// The whole namespace, as one turn sees it.
Result<Entries> list_all(Engine& e, const ObjectRef& ref, const ListOptions& o = {}) {
  Entries out;
  Status s = e.run(ref, [&](Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(out, ctx.kv().list(o));
    return Status::ok();
  });
  if (!s.is_ok()) return s;
  return out;
}

Result<std::optional<store::ObjectRecord>> read_record(Engine& e, const ObjectId& id) {
  CARREL_ASSIGN_OR_RETURN(auto txn, e.core()->store().begin_read());
  return history::current_record(txn.get(), e.core()->store(), id);
}

void expect_record_matches(Engine& e, const ObjectRef& ref, const Model& m, uint64_t seq) {
  auto rec = read_record(e, ref.id);
  ASSERT_TRUE(rec.is_ok()) << rec.status().to_string();
  if (seq == 0) {
    EXPECT_FALSE(rec->has_value());
    return;
  }
  ASSERT_TRUE(rec->has_value());
  const store::ObjectRecord& r = **rec;
  uint64_t bytes = 0;
  for (auto& [k, v] : m) bytes += k.size() + v.size();
  EXPECT_EQ(r.kv_keys, m.size());
  EXPECT_EQ(r.kv_bytes, bytes);
  EXPECT_EQ(r.last_seq, seq);
  EXPECT_EQ(r.class_name, ref.class_name);
  EXPECT_EQ(r.name, ref.name);
}

// One random workload on one object: turns that commit, fail on purpose, or
// read only; after each, the committed namespace must equal the model.
void random_workload(Engine& e, const ObjectRef& ref, KeyGen& gen, Model& model, uint64_t& seq,
                     int turns) {
  for (int t = 0; t < turns; ++t) {
    bool fail_on_purpose = gen.chance(20);
    Model turn_model = model;
    bool wrote = false;
    std::vector<std::string> errors;
    Status s = e.run(ref, [&](Context& ctx) -> Status {
      TurnChecker check(ctx, gen, errors);
      wrote = check.run_ops(turn_model, 1 + static_cast<int>(gen.below(30)), 0);
      if (fail_on_purpose) return Status::aborted("turn fails on purpose");
      return Status::ok();
    });
    for (auto& err : errors) ADD_FAILURE() << "turn " << t << ": " << err;
    if (fail_on_purpose) {
      EXPECT_EQ(s.code(), Code::kAborted) << s.to_string();
    } else {
      ASSERT_TRUE(s.is_ok()) << "turn " << t << ": " << s.to_string();
      model = std::move(turn_model);
      if (wrote) ++seq;
    }
    if (!errors.empty()) return;
    if (gen.chance(30)) {
      auto all = list_all(e, ref);
      ASSERT_TRUE(all.is_ok()) << all.status().to_string();
      ASSERT_EQ(*all, entries_of(model)) << "after turn " << t;
    }
  }
}

TEST(KvModelTest, RandomTurnsMatchModel) {
  for (uint64_t i = 0; i < 12; ++i) {
    uint64_t seed = base_seed() + i;
    SCOPED_TRACE("seed " + std::to_string(seed) + " (rerun with CARREL_TEST_SEED)");
    testing::TempDir dir;
    auto e = open_engine(test_options(dir));
    ASSERT_NE(e, nullptr);
    KeyGen gen(seed);
    ObjectRef ref = ObjectRef::named("Room", "model-" + std::to_string(i));
    Model model;
    uint64_t seq = 0;
    random_workload(*e, ref, gen, model, seq, 60);
    if (HasFailure()) return;
    auto all = list_all(*e, ref);
    ASSERT_TRUE(all.is_ok());
    EXPECT_EQ(*all, entries_of(model));
    expect_record_matches(*e, ref, model, seq);  // (K6)
  }
}

TEST(KvModelTest, SurvivesCloseAndReopen) {
  uint64_t seed = base_seed() + 100;
  SCOPED_TRACE("seed " + std::to_string(seed));
  testing::TempDir dir;
  Options o = test_options(dir);
  o.durability = Durability::kSync;
  KeyGen gen(seed);
  std::vector<ObjectRef> refs = {ObjectRef::named("Room", "a"), ObjectRef::named("Room", "ab"),
                                 ObjectRef::named("Doc", "a")};
  std::vector<Model> models(refs.size());
  std::vector<uint64_t> seqs(refs.size(), 0);
  for (int round = 0; round < 3; ++round) {
    auto e = open_engine(o);
    ASSERT_NE(e, nullptr);
    for (size_t i = 0; i < refs.size(); ++i) {
      // What the last session committed is all there, record included.
      auto all = list_all(*e, refs[i]);
      ASSERT_TRUE(all.is_ok());
      ASSERT_EQ(*all, entries_of(models[i])) << "round " << round << " object " << refs[i].label();
      expect_record_matches(*e, refs[i], models[i], seqs[i]);
      random_workload(*e, refs[i], gen, models[i], seqs[i], 25);
      if (HasFailure()) return;
    }
    ASSERT_TRUE(e->close().is_ok());
  }
}

// Every combination of start / start_after / end / prefix / reverse / limit
// over keys spread across LMDB, the turn's own writes and its deletes (K1, K3).
TEST(KvListTest, EveryOptionCombinationMatchesModel) {
  testing::TempDir dir;
  auto e = open_engine(test_options(dir));
  ASSERT_NE(e, nullptr);
  auto ref = ObjectRef::named("Room", "lists");
  Model model;
  for (size_t i = 0; i < key_pool().size(); ++i) {
    if (i % 3 != 2) model[key_pool()[i]] = "v" + std::to_string(i);
  }
  ASSERT_TRUE(
      e->run(ref, [&](Context& ctx) { return ctx.kv().put_many(entries_of(model)); }).is_ok());

  const std::vector<std::optional<std::string>> bounds = {
      std::nullopt, "",     std::string(1, '\0'), "a", "ab", std::string("a\0", 2),
      "b",          "\xff", "\xff\xff\xff"};
  const std::vector<std::optional<size_t>> limits = {std::nullopt, 0, 1, 3};
  size_t calls = 0;
  std::vector<std::string> errors;
  Status s = e->run(ref, [&](Context& ctx) -> Status {
    // Turn-local changes over the committed keys: overwrite, delete, add.
    Model m = model;
    CARREL_RETURN_IF_ERROR(ctx.kv().put("ab", "turn"));
    m["ab"] = "turn";
    CARREL_RETURN_IF_ERROR(ctx.kv().del("a").status());
    m.erase("a");
    CARREL_RETURN_IF_ERROR(ctx.kv().put("a\xff\xff", "new"));
    m["a\xff\xff"] = "new";
    CARREL_RETURN_IF_ERROR(ctx.kv().del("\xff").status());
    m.erase("\xff");
    for (auto& start : bounds)
      for (auto& after : bounds)
        for (auto& end : bounds)
          for (auto& prefix : bounds)
            for (bool reverse : {false, true})
              for (auto& limit : limits) {
                ListOptions o{start, after, end, prefix, reverse, limit};
                ++calls;
                auto r = ctx.kv().list(o);
                auto want = model_list(m, o);
                if (!want) {
                  if (r.is_ok() || r.status().code() != Code::kInvalidArgument)
                    errors.push_back(text(o) + " should be InvalidArgument");
                } else if (!r.is_ok() || *r != *want) {
                  errors.push_back(text(o) + " gave " +
                                   (r.is_ok() ? text(*r) : r.status().to_string()) + ", model " +
                                   text(*want));
                }
                if (errors.size() > 20) return Status::ok();
              }
    return Status::ok();
  });
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(calls,
            bounds.size() * bounds.size() * bounds.size() * bounds.size() * 2 * limits.size());
  for (auto& err : errors) ADD_FAILURE() << err;
}

TEST(KvListTest, DurableObjectsRules) {
  testing::TempDir dir;
  auto e = open_engine(test_options(dir));
  ASSERT_NE(e, nullptr);
  auto ref = ObjectRef::named("Room", "rules");
  Status s = e->run(ref, [&](Context& ctx) -> Status {
    Kv& kv = ctx.kv();
    for (std::string k : {"a", "b", "ba", "bb", "c"}) CARREL_RETURN_IF_ERROR(kv.put(k, k));
    ListOptions both;
    both.start = "a";
    both.start_after = "a";
    auto r = kv.list(both);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("start_after"), std::string::npos)
        << r.status().to_string();
    ListOptions zero;
    zero.limit = 0;
    r = kv.list(zero);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("limit"), std::string::npos);

    ListOptions prefix;
    prefix.prefix = "b";
    r = kv.list(prefix);
    EXPECT_EQ(*r, (Entries{{"b", "b"}, {"ba", "ba"}, {"bb", "bb"}}));
    prefix.start = "ba";
    prefix.end = "c";  // the narrower bound wins on each side
    r = kv.list(prefix);
    EXPECT_EQ(*r, (Entries{{"ba", "ba"}, {"bb", "bb"}}));
    prefix.reverse = true;
    prefix.limit = 1;
    r = kv.list(prefix);
    EXPECT_EQ(*r, (Entries{{"bb", "bb"}}));

    ListOptions empty;  // start after end: nothing, and no error
    empty.start = "c";
    empty.end = "a";
    r = kv.list(empty);
    EXPECT_TRUE(r.is_ok() && r->empty());
    empty.start = "b";
    empty.end = "b";
    r = kv.list(empty);
    EXPECT_TRUE(r.is_ok() && r->empty());
    ListOptions none_prefix;
    none_prefix.prefix = "z";
    r = kv.list(none_prefix);
    EXPECT_TRUE(r.is_ok() && r->empty());

    ListOptions rev;  // reverse: the same range, largest first
    rev.start_after = "a";
    rev.end = "c";
    rev.reverse = true;
    r = kv.list(rev);
    EXPECT_EQ(*r, (Entries{{"bb", "bb"}, {"ba", "ba"}, {"b", "b"}}));
    rev.limit = 2;
    r = kv.list(rev);
    EXPECT_EQ(*r, (Entries{{"bb", "bb"}, {"ba", "ba"}}));
    return Status::ok();
  });
  EXPECT_TRUE(s.is_ok()) << s.to_string();
}

TEST(KvTest, ReadsSeeOwnUncommittedWritesAndFailedTurnsLeaveNothing) {
  testing::TempDir dir;
  auto e = open_engine(test_options(dir));
  ASSERT_NE(e, nullptr);
  auto ref = ObjectRef::named("Room", "own");
  ASSERT_TRUE(e->run(ref, [](Context& ctx) { return ctx.kv().put("kept", "1"); }).is_ok());
  Status s = e->run(ref, [](Context& ctx) -> Status {
    Kv& kv = ctx.kv();
    CARREL_RETURN_IF_ERROR(kv.put("x", "1"));
    EXPECT_EQ(kv.get("x")->value_or("absent"), "1");
    CARREL_RETURN_IF_ERROR(kv.delete_all());
    EXPECT_FALSE(kv.get("kept")->has_value());
    EXPECT_FALSE(kv.get("x")->has_value());
    CARREL_RETURN_IF_ERROR(kv.put("y", "2"));
    EXPECT_EQ(*kv.list(), (Entries{{"y", "2"}}));
    return Status::invalid_argument("fail on purpose");
  });
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "fail on purpose");
  auto all = list_all(*e, ref);
  ASSERT_TRUE(all.is_ok());
  EXPECT_EQ(*all, (Entries{{"kept", "1"}}));

  // A throw rolls back the same way, and reports Aborted.
  s = e->run(ref, [](Context& ctx) -> Status {
    (void)ctx.kv().put("thrown", "1");
    throw std::runtime_error("thrown on purpose");
  });
  EXPECT_EQ(s.code(), Code::kAborted);
  EXPECT_NE(s.message().find("thrown on purpose"), std::string::npos);
  all = list_all(*e, ref);
  EXPECT_EQ(*all, (Entries{{"kept", "1"}}));
  expect_record_matches(*e, ref, Model{{"kept", "1"}}, 1);
}

TEST(KvTest, FailedNestedTransactionRollsBackAlone) {
  testing::TempDir dir;
  auto e = open_engine(test_options(dir));
  ASSERT_NE(e, nullptr);
  auto ref = ObjectRef::named("Room", "nested");
  ASSERT_TRUE(e->run(ref, [](Context& ctx) { return ctx.kv().put("base", "0"); }).is_ok());
  Status s = e->run(ref, [](Context& ctx) -> Status {
    CARREL_RETURN_IF_ERROR(ctx.kv().put("outer", "1"));
    Status inner = ctx.transaction([&]() -> Status {
      CARREL_RETURN_IF_ERROR(ctx.kv().put("inner", "2"));
      CARREL_RETURN_IF_ERROR(ctx.kv().delete_all());
      EXPECT_TRUE(ctx.kv().list()->empty());
      return Status::not_found("inner fails on purpose");
    });
    EXPECT_EQ(inner.code(), Code::kNotFound);
    // The failed transaction's delete_all and put are gone; the outer put stays.
    EXPECT_EQ(*ctx.kv().list(), (Entries{{"base", "0"}, {"outer", "1"}}));
    return ctx.transaction(
        [&]() -> Status { return ctx.transaction([&]() { return ctx.kv().put("deep", "3"); }); });
  });
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  auto all = list_all(*e, ref);
  EXPECT_EQ(*all, (Entries{{"base", "0"}, {"deep", "3"}, {"outer", "1"}}));
}

// Holds commits in the committer until released, so turns pipeline on
// sealed-but-not-durable state (the pending overlay) deterministically.
using testing::CommitGate;

TEST(KvTurnTest, PipelinedTurnsReadPendingCommits) {
  for (uint64_t i = 0; i < 4; ++i) {
    uint64_t seed = base_seed() + 200 + i;
    SCOPED_TRACE("seed " + std::to_string(seed));
    testing::TempDir dir;
    testing::GatedEngine gated(test_options(dir));
    ASSERT_NE(gated.engine, nullptr);
    auto& e = gated.engine;
    CommitGate& gate = gated.gate;
    auto ref = ObjectRef::named("Room", "pipe");
    KeyGen gen(seed);

    // Committed base state in LMDB.
    Model model;
    for (int k = 0; k < 20; ++k) model[gen.key()] = gen.value();
    ASSERT_TRUE(
        e->run(ref, [&](Context& ctx) { return ctx.kv().put_many(entries_of(model)); }).is_ok());
    uint64_t seq = 1;

    // Hold the commits: every later turn reads through the pending overlay.
    gate.hold();
    // The model lives on the object's turns, which run one at a time in order.
    std::vector<std::string> errors;
    std::vector<std::future<Status>> done;
    std::vector<bool> expect_ok;
    std::atomic<int> ran{0};
    // A sure write first, held in the committer; the random turns pile up behind it.
    expect_ok.push_back(true);
    done.push_back(e->submit(ref, [&](Context& ctx) -> Status {
      CARREL_RETURN_IF_ERROR(ctx.kv().put("held", "1"));
      model["held"] = "1";
      ++seq;
      return Status::ok();
    }));
    ASSERT_TRUE(gate.wait_held().has_value());
    for (int t = 0; t < 40; ++t) {
      bool fail_on_purpose = gen.chance(20);
      uint64_t turn_seed = gen.rng()();
      expect_ok.push_back(!fail_on_purpose);
      done.push_back(e->submit(ref, [&, fail_on_purpose, turn_seed](Context& ctx) -> Status {
        ran.fetch_add(1);
        KeyGen turn_gen(turn_seed);
        Model m = model;
        TurnChecker check(ctx, turn_gen, errors);
        bool wrote = check.run_ops(m, 1 + static_cast<int>(turn_gen.below(20)), 0);
        if (fail_on_purpose) return Status::aborted("turn fails on purpose");
        model = std::move(m);
        if (wrote) ++seq;
        return Status::ok();
      }));
    }
    // Nothing is acknowledged while the first commit is held (output gate).
    EXPECT_EQ(done.front().wait_for(std::chrono::seconds(0)), std::future_status::timeout);
    // Every turn runs while the first commit is still held: all of them read
    // through the pending overlay (bounded wait for the workers).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (ran.load() < 40 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_EQ(ran.load(), 40);
    gate.release();
    for (size_t t = 0; t < done.size(); ++t) {
      Status s = done[t].get();
      EXPECT_EQ(s.is_ok(), expect_ok[t]) << "turn " << t << ": " << s.to_string();
    }
    for (auto& err : errors) ADD_FAILURE() << err;
    auto all = list_all(*e, ref);
    ASSERT_TRUE(all.is_ok());
    EXPECT_EQ(*all, entries_of(model));
    expect_record_matches(*e, ref, model, seq);
    if (HasFailure()) return;
  }
}

TEST(KvTurnTest, DeleteAllPendingHidesCommittedKeys) {
  testing::TempDir dir;
  testing::GatedEngine gated(test_options(dir));
  ASSERT_NE(gated.engine, nullptr);
  auto& e = gated.engine;
  CommitGate& gate = gated.gate;
  auto ref = ObjectRef::named("Room", "clear");
  ASSERT_TRUE(e->run(ref, [](Context& ctx) {
                 return ctx.kv().put_many({{"a", "1"}, {"b", "2"}, {"c", "3"}});
               }).is_ok());
  gate.hold();
  auto f1 = e->submit(ref, [](Context& ctx) -> Status {
    CARREL_RETURN_IF_ERROR(ctx.kv().delete_all());
    return ctx.kv().put("b", "new");
  });
  ASSERT_TRUE(gate.wait_held().has_value());
  Entries seen, seen_rev;
  std::optional<std::string> a;
  auto f2 = e->submit(ref, [&](Context& ctx) -> Status {
    CARREL_ASSIGN_OR_RETURN(seen, ctx.kv().list());
    ListOptions rev;
    rev.reverse = true;
    CARREL_ASSIGN_OR_RETURN(seen_rev, ctx.kv().list(rev));
    CARREL_ASSIGN_OR_RETURN(a, ctx.kv().get("a"));
    return ctx.kv().put("d", "4");
  });
  gate.release();
  ASSERT_TRUE(f1.get().is_ok());
  ASSERT_TRUE(f2.get().is_ok());
  EXPECT_EQ(seen, (Entries{{"b", "new"}}));
  EXPECT_EQ(seen_rev, (Entries{{"b", "new"}}));
  EXPECT_FALSE(a.has_value());
  EXPECT_EQ(*list_all(*e, ref), (Entries{{"b", "new"}, {"d", "4"}}));
  expect_record_matches(*e, ref, Model{{"b", "new"}, {"d", "4"}}, 3);
}

// (K5) Names that share prefixes, ids that share leading bytes, and the
// extreme ids (all 0x00, all 0xff) whose key ranges touch the ends of the kv db.
TEST(KvIsolationTest, ObjectsNeverSeeEachOther) {
  testing::TempDir dir;
  auto e = open_engine(test_options(dir));
  ASSERT_NE(e, nullptr);
  auto id_with = [](std::initializer_list<std::pair<size_t, uint8_t>> bytes, uint8_t fill) {
    ObjectId id;
    id.bytes.fill(fill);
    for (auto [at, b] : bytes) id.bytes[at] = b;
    return id;
  };
  std::vector<ObjectRef> refs = {
      ObjectRef::named("Room", "a"),
      ObjectRef::named("Room", "ab"),
      ObjectRef::named("Roo", "ma"),
      ObjectRef::of("Raw", id_with({}, 0x00)),
      ObjectRef::of("Raw", id_with({{15, 0x01}}, 0x00)),
      ObjectRef::of("Raw", id_with({{15, 0xff}}, 0x00)),
      ObjectRef::of("Raw", id_with({{0, 0x01}}, 0x00)),
      ObjectRef::of("Raw", id_with({{15, 0xfe}}, 0xff)),
      ObjectRef::of("Raw", id_with({}, 0xff)),
  };
  std::vector<Model> models(refs.size());
  for (size_t i = 0; i < refs.size(); ++i) {
    for (auto& k : key_pool()) models[i][k] = refs[i].label() + "/" + k;
    ASSERT_TRUE(e->run(refs[i], [&](Context& ctx) {
                   return ctx.kv().put_many(entries_of(models[i]));
                 }).is_ok());
  }
  auto check_all = [&](const char* when) {
    for (size_t i = 0; i < refs.size(); ++i) {
      SCOPED_TRACE(std::string(when) + ": " + refs[i].label());
      auto all = list_all(*e, refs[i]);
      ASSERT_TRUE(all.is_ok());
      EXPECT_EQ(*all, entries_of(models[i]));
      ListOptions rev;
      rev.reverse = true;
      auto r = list_all(*e, refs[i], rev);
      Entries want = entries_of(models[i]);
      std::reverse(want.begin(), want.end());
      EXPECT_EQ(*r, want);
      ListOptions lim;  // the first and last keys sit right next to the neighbours' ranges
      lim.limit = 1;
      EXPECT_EQ(*list_all(*e, refs[i], lim), model_list(models[i], lim));
      lim.reverse = true;
      EXPECT_EQ(*list_all(*e, refs[i], lim), model_list(models[i], lim));
      expect_record_matches(*e, refs[i], models[i], models[i].empty() ? 2 : 1);
    }
  };
  check_all("after puts");
  for (size_t victim : {size_t{0}, size_t{3}, size_t{8}, size_t{5}}) {
    ASSERT_TRUE(e->run(refs[victim], [](Context& ctx) { return ctx.kv().delete_all(); }).is_ok());
    models[victim].clear();
  }
  check_all("after delete_all");
}

// (K4) Limits: each refusal is InvalidArgument naming the limit, and writes nothing.
TEST(KvLimitsTest, KeyAndValueSizes) {
  testing::TempDir dir;
  Options o = test_options(dir);
  o.value_bytes_max = 1000;
  auto e = open_engine(o);
  ASSERT_NE(e, nullptr);
  auto ref = ObjectRef::named("Room", "limits");
  std::string key495(495, '\xff'), key496(496, 'k');
  Status s = e->run(ref, [&](Context& ctx) -> Status {
    Kv& kv = ctx.kv();
    auto expect_limit = [](const Status& st, const char* limit) {
      EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
      EXPECT_NE(st.message().find(limit), std::string::npos) << st.to_string();
    };
    EXPECT_TRUE(kv.put(key495, "max key").is_ok());
    expect_limit(kv.put(key496, "v"), "key_bytes_max");
    expect_limit(kv.get(key496).status(), "key_bytes_max");
    expect_limit(kv.del(key496).status(), "key_bytes_max");
    expect_limit(kv.get_many({"a", key496}).status(), "key_bytes_max");
    expect_limit(kv.del_many({key495, key496}).status(), "key_bytes_max");
    expect_limit(kv.put_many({{"ok", "1"}, {key496, "v"}}), "key_bytes_max");
    EXPECT_TRUE(kv.put("v1000", std::string(1000, 'v')).is_ok());
    expect_limit(kv.put("v1001", std::string(1001, 'v')), "value_bytes_max");
    expect_limit(kv.put_many({{"ok2", "1"}, {"big", std::string(1001, 'v')}, {"ok3", "1"}}),
                 "value_bytes_max");
    // Nothing of a refused call was written, and the max-size key survived del_many's refusal.
    EXPECT_EQ(kv.list()->size(), 2u);
    EXPECT_TRUE(kv.get(key495)->has_value());
    return Status::ok();
  });
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  auto all = list_all(*e, ref);
  EXPECT_EQ(*all, (Entries{{"v1000", std::string(1000, 'v')}, {key495, "max key"}}));
}

TEST(KvLimitsTest, CustomKeyLimitAndDefaultValueLimit) {
  testing::TempDir dir;
  Options o = test_options(dir);
  o.key_bytes_max = 10;
  auto e = open_engine(o);
  ASSERT_NE(e, nullptr);
  Status s = e->run(ObjectRef::named("Room", "small"), [&](Context& ctx) -> Status {
    EXPECT_TRUE(ctx.kv().put(std::string(10, 'k'), "ok").is_ok());
    Status big = ctx.kv().put(std::string(11, 'k'), "no");
    EXPECT_EQ(big.code(), Code::kInvalidArgument);
    EXPECT_NE(big.message().find("key_bytes_max (10"), std::string::npos) << big.to_string();
    EXPECT_TRUE(ctx.kv().put("v", std::string(size_t{2} << 20, 'v')).is_ok());
    Status value = ctx.kv().put("w", std::string((size_t{2} << 20) + 1, 'v'));
    EXPECT_EQ(value.code(), Code::kInvalidArgument);
    EXPECT_NE(value.message().find("value_bytes_max"), std::string::npos) << value.to_string();
    return Status::ok();
  });
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  auto keys = list_all(*e, ObjectRef::named("Room", "small"));
  ASSERT_TRUE(keys.is_ok());
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].first, std::string(10, 'k'));
  EXPECT_EQ((*keys)[1].second.size(), size_t{2} << 20);
}

TEST(KvLimitsTest, BatchesOverKvBatchKeysMax) {
  testing::TempDir dir;
  auto e = open_engine(test_options(dir));
  ASSERT_NE(e, nullptr);
  auto ref = ObjectRef::named("Room", "batch");
  auto keys_n = [](size_t n) {
    std::vector<std::string> ks;
    for (size_t i = 0; i < n; ++i) ks.push_back("k" + std::to_string(i));
    return ks;
  };
  auto entries_n = [&](size_t n) {
    Entries es;
    for (auto& k : keys_n(n)) es.emplace_back(k, "v");
    return es;
  };
  Status s = e->run(ref, [&](Context& ctx) -> Status {
    Kv& kv = ctx.kv();
    auto expect_limit = [](const Status& st) {
      EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
      EXPECT_NE(st.message().find("kv_batch_keys_max (128)"), std::string::npos) << st.to_string();
    };
    expect_limit(kv.put_many(entries_n(129)));
    EXPECT_TRUE(kv.list()->empty());
    EXPECT_TRUE(kv.put_many(entries_n(128)).is_ok());
    expect_limit(kv.get_many(keys_n(129)).status());
    EXPECT_EQ(kv.get_many(keys_n(128))->size(), 128u);
    expect_limit(kv.del_many(keys_n(129)).status());
    EXPECT_EQ(kv.list()->size(), 128u);
    EXPECT_EQ(*kv.del_many(keys_n(128)), 128u);
    EXPECT_TRUE(kv.list()->empty());
    return kv.put("after", "1");
  });
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(*list_all(*e, ref), (Entries{{"after", "1"}}));
}

TEST(KvLimitsTest, TurnDirtyBytes) {
  testing::TempDir dir;
  Options o = test_options(dir);
  o.turn_dirty_bytes_max = 1000;
  auto e = open_engine(o);
  ASSERT_NE(e, nullptr);
  auto ref = ObjectRef::named("Room", "dirty");
  // Committed keys for del_many to remove below.
  ASSERT_TRUE(e->run(ref, [](Context& ctx) {
                 return ctx.kv().put_many({{"d1", "x"}, {"d2", "x"}, {"d3", "x"}});
               }).is_ok());
  Status s = e->run(ref, [&](Context& ctx) -> Status {
    Kv& kv = ctx.kv();
    auto expect_limit = [](const Status& st) {
      EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
      EXPECT_NE(st.message().find("turn_dirty_bytes_max (1000"), std::string::npos)
          << st.to_string();
    };
    EXPECT_TRUE(kv.put("a", std::string(599, 'a')).is_ok());  // 600 dirty
    expect_limit(kv.put("b", std::string(500, 'b')));
    expect_limit(kv.put_many({{"c", "1"}, {"d", std::string(500, 'd')}}));
    EXPECT_TRUE(kv.put("e", std::string(395, 'e')).is_ok());  // 996 dirty
    // del_many counts each deleted key; 3 more 2-byte keys pass 1000: refuse all of them.
    expect_limit(kv.del_many({"d1", "d2", "d3"}).status());
    EXPECT_TRUE(kv.get("d1")->has_value());
    EXPECT_TRUE(kv.get("d2")->has_value());
    EXPECT_TRUE(kv.get("d3")->has_value());
    EXPECT_FALSE(kv.get("b")->has_value());
    EXPECT_FALSE(kv.get("c")->has_value());
    return Status::ok();
  });
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  auto all = list_all(*e, ref);
  ASSERT_TRUE(all.is_ok());
  std::vector<std::string> keys;
  for (auto& [k, v] : *all) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "d1", "d2", "d3", "e"}));
  // The budget is per turn: the next turn starts at zero.
  EXPECT_TRUE(
      e->run(ref, [](Context& ctx) { return ctx.kv().put("f", std::string(990, 'f')); }).is_ok());
}

// Writes a failed ctx.transaction dropped no longer count against the turn's
// budget: a handler may retry a failed step without running out.
TEST(KvLimitsTest, FailedTransactionReturnsItsDirtyBytes) {
  testing::TempDir dir;
  Options o = test_options(dir);
  o.turn_dirty_bytes_max = 1000;
  auto e = open_engine(o);
  ASSERT_NE(e, nullptr);
  auto ref = ObjectRef::named("Room", "retry");
  Status s = e->run(ref, [&](Context& ctx) -> Status {
    for (int attempt = 0; attempt < 3; ++attempt) {
      Status t = ctx.transaction([&]() -> Status {
        CARREL_RETURN_IF_ERROR(ctx.kv().put("step", std::string(700, 's')));
        return Status::aborted("step fails on purpose");
      });
      EXPECT_EQ(t.code(), Code::kAborted) << "attempt " << attempt << ": " << t.to_string();
    }
    return ctx.kv().put("done", std::string(900, 'd'));
  });
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  auto all = list_all(*e, ref);
  ASSERT_TRUE(all.is_ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].first, "done");
}

}  // namespace
}  // namespace carrel
