// Checksums on stored values (engine/store/checksum.h): a flipped bit in a
// stored KV value, SQL page, alarm entry or dead letter is a Corruption error
// naming the object and the key, page or alarm, and is never served; restores
// write back values that still open; an older format directory is refused by
// name.
#include "engine/store/checksum.h"

#include <gtest/gtest.h>
#include <lmdb.h>

#include <functional>
#include <string>

#include "carrel/carrel.h"
#include "engine/loop/engine_core.h"
#include "engine/store/keys.h"
#include "engine/store/store.h"
#include "tests/store_probe.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

using store::Db;

Options options_for(const testing::TempDir& dir) {
  Options o = testing::options_in(dir);
  o.workers = 1;
  return o;
}

bool contains(const Status& s, std::string_view part) {
  return s.message().find(part) != std::string::npos;
}

// Rewrites the stored bytes under key in db of a closed engine's directory,
// as damage on disk would.
void damage(const std::string& dir, Db db, const std::string& key,
            const std::function<void(std::string*)>& change) {
  testing::damage_in_txn(dir, db, [&](MDB_txn* txn, MDB_dbi dbi) {
    MDB_val k = store::to_val(key), v;
    if (int rc = mdb_get(txn, dbi, &k, &v); rc != 0) return rc;  // no value to damage
    std::string bytes(store::from_val(v));
    change(&bytes);
    v = store::to_val(bytes);
    return mdb_put(txn, dbi, &k, &v, 0);
  });
}

void flip_bit(std::string* bytes, size_t bit) {
  (*bytes)[bit / 8] = static_cast<char>((*bytes)[bit / 8] ^ (1 << (bit % 8)));
}

class ChecksumEngine : public ::testing::Test {
 protected:
  void open() {
    engine_ = testing::open_engine(options_for(dir_));
    ASSERT_TRUE(engine_);
  }
  void close() { engine_.reset(); }
  // Flips one bit of the value stored under key in db, with the engine closed.
  void flip_and_reopen(Db db, const std::string& key, size_t bit) {
    close();
    damage(dir_.path(), db, key, [bit](std::string* b) { flip_bit(b, bit); });
    open();
  }
  Status run(const std::function<Status(Context&)>& fn) { return engine_->run(ref_, fn); }
  // The object's number, the prefix of its keys (store/keys.h (2)).
  store::ObjectNo no() {
    return engine_ ? testing::object_no(*engine_, ref_.id)
                   : testing::object_no_in(dir_.path(), ref_.id);
  }
  // OK when a turn reads `expected` under key.
  Status kv_reads(const std::string& key, const std::string& expected) {
    return run([&](Context& ctx) -> Status {
      CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().get(key));
      if (v == std::optional<std::string>(expected)) return Status::ok();
      return Status::aborted("'" + key + "' does not read '" + expected + "'");
    });
  }

  testing::TempDir dir_;
  std::unique_ptr<Engine> engine_;
  ObjectRef ref_ = ObjectRef::named("Room", "a");
};

// ---- the framing -----------------------------------------------------------

TEST(Checksum, SealedValueOpensToItself) {
  std::string key = store::object_key(store::ObjectNo{1}, "k");
  for (std::string value : {std::string(), std::string("v"), std::string(5000, 'x')}) {
    std::string stored = store::seal(Db::kKv, key, value);
    EXPECT_EQ(stored.size(), value.size() + store::kChecksumBytes);
    auto opened = store::open(Db::kKv, key, stored);
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    EXPECT_EQ(*opened, value);
    EXPECT_EQ(store::value_bytes(stored), value.size());
  }
}

// Invariant (4): sealing in place stores exactly the bytes a sealed copy
// would, without moving the value (sealable() left room for the trailer).
TEST(Checksum, SealingInPlaceStoresTheBytesOfASealedCopy) {
  std::string key = store::object_key(store::ObjectNo{1}, "k");
  for (std::string value : {std::string(), std::string("v"), std::string(5000, 'x')}) {
    std::string owned = store::sealable(value);
    EXPECT_GE(owned.capacity(), value.size() + store::kChecksumBytes);
    const char* buffer = owned.data();
    bool on_heap = value.size() + store::kChecksumBytes > 15;  // past the short-string buffer
    store::SealedBytes shared = store::seal_shared(Db::kKv, key, std::move(owned));
    ASSERT_NE(shared, nullptr);
    EXPECT_EQ(*shared, store::seal(Db::kKv, key, value));
    if (on_heap) EXPECT_EQ(shared->data(), buffer) << "the value was copied, not sealed in place";
    EXPECT_EQ(store::sealed_value(*shared), value);
  }
}

TEST(Checksum, EveryFlippedBitIsCorruption) {
  std::string key = store::page_key(store::ObjectNo{1}, 7);
  std::string stored = store::seal(Db::kPages, key, std::string(100, 'p'));
  for (size_t bit = 0; bit < stored.size() * 8; ++bit) {
    std::string bad = stored;
    flip_bit(&bad, bit);
    auto opened = store::open(Db::kPages, key, bad);
    ASSERT_FALSE(opened.is_ok()) << "bit " << bit << " went unnoticed";
    EXPECT_EQ(opened.status().code(), Code::kCorruption);
    EXPECT_TRUE(contains(opened.status(), "SQL page 7")) << opened.status().to_string();
  }
}

// Invariant (2): the checksum covers the database and the whole key.
TEST(Checksum, ValueUnderAnotherKeyObjectOrDatabaseIsCorruption) {
  const store::ObjectNo a{1}, b{2};
  std::string stored = store::seal(Db::kKv, store::object_key(a, "k"), "value");
  EXPECT_FALSE(store::open(Db::kKv, store::object_key(a, "j"), stored).is_ok());
  EXPECT_FALSE(store::open(Db::kKv, store::object_key(b, "k"), stored).is_ok());
  EXPECT_FALSE(store::open(Db::kAlarms, store::object_key(a, "k"), stored).is_ok());
  // key ‖ value that concatenate alike still differ.
  std::string ab = store::seal(Db::kKv, store::object_key(a, "ab"), "c");
  EXPECT_FALSE(store::open(Db::kKv, store::object_key(a, "a"), "b" + ab.substr(1)).is_ok());
}

TEST(Checksum, BytesTooShortForAChecksumAreCorruption) {
  std::string key = store::object_key(store::ObjectNo{1}, "k");
  auto opened = store::open(Db::kKv, key, "1234567");
  ASSERT_FALSE(opened.is_ok());
  EXPECT_EQ(opened.status().code(), Code::kCorruption);
  EXPECT_TRUE(contains(opened.status(), "too short")) << opened.status().to_string();
}

// ---- reads in a turn -------------------------------------------------------

TEST_F(ChecksumEngine, FlippedBitInAKvValueIsCorruptionNamingObjectAndKey) {
  open();
  ASSERT_TRUE(run([](Context& ctx) { return ctx.kv().put("greeting", "hello, world"); }).is_ok());
  ASSERT_TRUE(run([](Context& ctx) { return ctx.kv().put("other", "fine"); }).is_ok());
  flip_and_reopen(Db::kKv, store::object_key(no(), "greeting"), 3);
  std::optional<std::string> served;
  Status s = run([&](Context& ctx) -> Status {
    CARREL_ASSIGN_OR_RETURN(served, ctx.kv().get("greeting"));
    return Status::ok();
  });
  EXPECT_EQ(s.code(), Code::kCorruption) << s.to_string();
  EXPECT_TRUE(contains(s, "KV key 'greeting'")) << s.to_string();
  EXPECT_TRUE(contains(s, ref_.id.to_hex())) << s.to_string();
  EXPECT_FALSE(served.has_value()) << "a damaged value was served";
  s = run([](Context& ctx) { return ctx.kv().list().status(); });
  EXPECT_EQ(s.code(), Code::kCorruption) << "list: " << s.to_string();
  // The undamaged key still reads.
  s = kv_reads("other", "fine");
  EXPECT_TRUE(s.is_ok()) << s.to_string();
}

TEST_F(ChecksumEngine, DamagedKvValueCanBeOverwrittenAndDeleted) {
  open();
  ASSERT_TRUE(run([](Context& ctx) -> Status {
                CARREL_RETURN_IF_ERROR(ctx.kv().put("k", "before"));
                CARREL_RETURN_IF_ERROR(ctx.kv().put("gone", "before"));
                return ctx.kv().put("gone-too", "before");
              }).is_ok());
  close();
  for (const char* key : {"k", "gone", "gone-too"}) {
    damage(dir_.path(), Db::kKv, store::object_key(no(), key),
           [](std::string* b) { flip_bit(b, 0); });
  }
  open();
  Status del = run([](Context& ctx) -> Status {
    CARREL_ASSIGN_OR_RETURN(bool existed, ctx.kv().del("gone"));
    return existed ? Status::ok() : Status::aborted("a damaged key did not exist");
  });
  EXPECT_TRUE(del.is_ok()) << del.to_string();
  EXPECT_FALSE(testing::read_db(*engine_, Db::kKv, store::object_key(no(), "gone")));
  Status del_many = run([](Context& ctx) -> Status {
    CARREL_ASSIGN_OR_RETURN(size_t n, ctx.kv().del_many({"gone-too", "never-there"}));
    return n == 1 ? Status::ok() : Status::aborted(std::to_string(n) + " keys deleted, not 1");
  });
  EXPECT_TRUE(del_many.is_ok()) << del_many.to_string();
  ASSERT_TRUE(run([](Context& ctx) { return ctx.kv().put("k", "after"); }).is_ok());
  Status s = kv_reads("k", "after");
  EXPECT_TRUE(s.is_ok()) << s.to_string();
}

TEST_F(ChecksumEngine, FlippedBitInAnSqlPageIsCorruptionNamingThePage) {
  open();
  ASSERT_TRUE(run([](Context& ctx) -> Status {
                CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE TABLE t(a, b)").status());
                return ctx.sql().exec("INSERT INTO t VALUES (1, 'one')").status();
              }).is_ok());
  flip_and_reopen(Db::kPages, store::page_key(no(), 1), 8 * 200 + 5);
  Status s = run([](Context& ctx) { return ctx.sql().exec("SELECT * FROM t").status(); });
  ASSERT_FALSE(s.is_ok()) << "a damaged page was served";
  EXPECT_EQ(s.code(), Code::kCorruption) << s.to_string();
  EXPECT_TRUE(contains(s, "SQL page 1 of object number")) << s.to_string();
  EXPECT_TRUE(contains(s, ref_.id.to_hex())) << s.to_string();
}

TEST_F(ChecksumEngine, FlippedBitInAnAlarmEntryIsCorruptionNamingTheAlarm) {
  open();
  constexpr UnixMs kFarAway = 4102444800000;  // 2100-01-01
  ASSERT_TRUE(run([](Context& ctx) { return ctx.alarms().schedule("nightly", kFarAway); }).is_ok());
  flip_and_reopen(Db::kAlarms, store::object_key(no(), "nightly"), 9);
  Status s = run([](Context& ctx) { return ctx.alarms().list().status(); });
  EXPECT_EQ(s.code(), Code::kCorruption) << s.to_string();
  EXPECT_TRUE(contains(s, "alarm 'nightly' of object number")) << s.to_string();
  EXPECT_TRUE(contains(s, ref_.id.to_hex())) << s.to_string();
  s = run([](Context& ctx) { return ctx.alarms().cancel("nightly").status(); });
  EXPECT_EQ(s.code(), Code::kCorruption) << "cancel: " << s.to_string();
}

// Invariant (4): a restore writes back before-images as stored, so they open.
TEST_F(ChecksumEngine, RestoredValuesPassTheirChecksum) {
  open();
  ASSERT_TRUE(run([](Context& ctx) -> Status {
                CARREL_RETURN_IF_ERROR(ctx.kv().put("k", "first"));
                CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE TABLE t(a)").status());
                return ctx.alarms().schedule("a", 4102444800000);
              }).is_ok());
  auto mark = engine_->current_bookmark(ref_);
  ASSERT_TRUE(mark.is_ok()) << mark.status().to_string();
  ASSERT_TRUE(run([](Context& ctx) -> Status {
                CARREL_RETURN_IF_ERROR(ctx.kv().put("k", "second"));
                CARREL_RETURN_IF_ERROR(ctx.sql().exec("INSERT INTO t VALUES (1)").status());
                return ctx.alarms().cancel("a").status();
              }).is_ok());
  ASSERT_TRUE(engine_->restore(ref_, *mark).is_ok());
  Status s = run([](Context& ctx) -> Status {
    CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().get("k"));
    if (v != std::optional<std::string>("first")) return Status::aborted("kv not restored");
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("SELECT count(*) FROM t").status());
    CARREL_ASSIGN_OR_RETURN(auto alarms, ctx.alarms().list());
    return alarms.size() == 1 ? Status::ok() : Status::aborted("alarm not restored");
  });
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  // Every stored value of the sealed databases opens (scan_db asserts it).
  for (Db db : {Db::kKv, Db::kPages, Db::kAlarms}) {
    EXPECT_FALSE(testing::scan_db(*engine_, db).empty()) << store::db_name(db);
  }
}

TEST(ChecksumFormat, OlderFormatDirectoryIsRefusedNamingBothVersionsAndTheRemedy) {
  testing::TempDir dir;
  { ASSERT_TRUE(Engine::open(options_for(dir)).is_ok()); }
  {
    store::StoreOptions so;
    so.dir = dir.path();
    auto st = store::Store::open(so);
    ASSERT_TRUE(st.is_ok()) << st.status().to_string();
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin((*st)->env(), nullptr, 0, &txn), 0);
    MDB_val k = store::to_val("format"), v = store::to_val("carrel-1");
    ASSERT_EQ(mdb_put(txn, (*st)->dbi(Db::kMeta), &k, &v, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
  }
  auto e = Engine::open(options_for(dir));
  ASSERT_FALSE(e.is_ok());
  EXPECT_TRUE(contains(e.status(), "'carrel-1'")) << e.status().to_string();
  EXPECT_TRUE(contains(e.status(), "'carrel-8'")) << e.status().to_string();
  EXPECT_TRUE(contains(e.status(), "export")) << e.status().to_string();
}

}  // namespace
}  // namespace carrel
