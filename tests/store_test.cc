// Opening engine directories: option validation, the one-handle rules of
// engine/store/store.h invariant (1), directories that are not carrel
// engines, and a full LMDB map.
#include "engine/store/store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <lmdb.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include "carrel/carrel.h"
#include "engine/history/tail.h"
#include "engine/loop/engine_core.h"
#include "engine/store/object_record.h"
#include "tests/store_probe.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

namespace fs = std::filesystem;

Options options_for(const std::string& dir) {
  Options o;
  o.dir = dir;
  o.workers = 1;
  return o;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string garbage(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

bool contains(const Status& s, std::string_view part) {
  return s.message().find(part) != std::string::npos;
}

TEST(StoreOpenTest, OptionsAreValidatedBeforeTheDirectoryIsTouched) {
  testing::TempDir dir;
  std::string path = dir.sub("never-made");
  struct Case {
    const char* what;
    std::function<void(Options&)> set;
    const char* named;
  };
  const Case cases[] = {
      {"key_bytes_max 504", [](Options& o) { o.key_bytes_max = 504; }, "key_bytes_max"},
      {"key_bytes_max 0", [](Options& o) { o.key_bytes_max = 0; }, "key_bytes_max"},
      {"sql_page_bytes 1000", [](Options& o) { o.sql_page_bytes = 1000; }, "sql_page_bytes"},
      {"sql_page_bytes 256", [](Options& o) { o.sql_page_bytes = 256; }, "sql_page_bytes"},
      {"sql_page_bytes 131072", [](Options& o) { o.sql_page_bytes = 131072; }, "sql_page_bytes"},
      {"value_bytes_max 0", [](Options& o) { o.value_bytes_max = 0; }, "value_bytes_max"},
      {"kv_batch_keys_max 0", [](Options& o) { o.kv_batch_keys_max = 0; }, "kv_batch_keys_max"},
      {"alarm_name_bytes_max 500", [](Options& o) { o.alarm_name_bytes_max = 500; },
       "alarm_name_bytes_max"},
      {"workers -1", [](Options& o) { o.workers = -1; }, "workers"},
      {"mailbox_depth_max 0", [](Options& o) { o.mailbox_depth_max = 0; }, "mailbox_depth_max"},
      {"history_retention_ms -1", [](Options& o) { o.history_retention_ms = -1; },
       "history_retention_ms"},
      {"alarm_retry_jitter 1", [](Options& o) { o.alarm_retry_jitter = 1; }, "jitter"},
      {"connections_per_object_max 0", [](Options& o) { o.connections_per_object_max = 0; },
       "connections_per_object_max"},
      {"connection_tags_max 70000", [](Options& o) { o.connection_tags_max = 70000; },
       "connection_tags_max"},
      {"connection_tag_bytes_max 0", [](Options& o) { o.connection_tag_bytes_max = 0; },
       "connection_tag_bytes_max"},
      {"connection_tag_bytes_max 65536", [](Options& o) { o.connection_tag_bytes_max = 65536; },
       "connection_tag_bytes_max"},
      {"connection_frame_bytes_max 0", [](Options& o) { o.connection_frame_bytes_max = 0; },
       "connection_frame_bytes_max"},
      {"a frame larger than the queue",
       [](Options& o) {
         o.connection_queued_bytes_max = 1000;
         o.connection_frame_bytes_max = 1001;
       },
       "no frame could be queued"},
      {"connection_queued_bytes_max 0", [](Options& o) { o.connection_queued_bytes_max = 0; },
       "connection_queued_bytes_max"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Options o = options_for(path);
    c.set(o);
    auto e = Engine::open(o);
    ASSERT_FALSE(e.is_ok());
    EXPECT_EQ(e.status().code(), Code::kInvalidArgument) << e.status().to_string();
    EXPECT_TRUE(contains(e.status(), c.named)) << e.status().to_string();
    EXPECT_FALSE(fs::exists(path));
  }
  // The bounds themselves are fine.
  Options o = options_for(path);
  o.key_bytes_max = 503;
  o.sql_page_bytes = 65536;
  auto e = Engine::open(o);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
}

TEST(StoreOpenTest, SameDirectoryTwiceInOneProcessIsBusy) {
  testing::TempDir dir;
  auto first = Engine::open(options_for(dir.path()));
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  // The same directory under another spelling is still the same directory.
  for (const std::string& path : {dir.path(), dir.path() + "/./",
                                  dir.path() + "/../" + fs::path(dir.path()).filename().string()}) {
    SCOPED_TRACE(path);
    auto second = Engine::open(options_for(path));
    ASSERT_FALSE(second.is_ok());
    EXPECT_EQ(second.status().code(), Code::kBusy);
    EXPECT_TRUE(contains(second.status(), "already open")) << second.status().to_string();
    Options ro = options_for(path);
    ro.read_only = true;
    auto reader = Engine::open(ro);
    EXPECT_EQ(reader.status().code(), Code::kBusy) << reader.status().to_string();
  }
  // The refused opens did not disturb the first engine.
  auto ref = ObjectRef::named("Room", "a");
  EXPECT_TRUE((*first)->run(ref, [](Context& ctx) { return ctx.kv().put("k", "v"); }).is_ok());
  ASSERT_TRUE((*first)->close().is_ok());
  first = Status::aborted("dropped");  // destroys the engine: the directory is free again
  auto again = Engine::open(options_for(dir.path()));
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  std::optional<std::string> v;
  ASSERT_TRUE((*again)
                  ->run(ref,
                        [&](Context& ctx) -> Status {
                          CARREL_ASSIGN_OR_RETURN(v, ctx.kv().get("k"));
                          return Status::ok();
                        })
                  .is_ok());
  EXPECT_EQ(v, "v");
}

TEST(StoreOpenTest, MissingDirectoryWithoutCreateIsNotFound) {
  testing::TempDir dir;
  Options o = options_for(dir.sub("missing"));
  o.create_if_missing = false;
  auto e = Engine::open(o);
  EXPECT_EQ(e.status().code(), Code::kNotFound) << e.status().to_string();
  EXPECT_FALSE(fs::exists(dir.sub("missing")));
  // An existing but empty directory is not an engine either.
  o.dir = dir.path();
  e = Engine::open(o);
  EXPECT_EQ(e.status().code(), Code::kNotFound) << e.status().to_string();
  // Nor is a missing directory opened read-only, whatever create_if_missing says.
  o.dir = dir.sub("missing");
  o.create_if_missing = true;
  o.read_only = true;
  e = Engine::open(o);
  EXPECT_EQ(e.status().code(), Code::kNotFound) << e.status().to_string();
  EXPECT_FALSE(fs::exists(dir.sub("missing")));
}

TEST(StoreOpenTest, GarbageDataFileIsCorruption) {
  for (size_t bytes : {size_t{100}, size_t{4096}, size_t{65536}}) {
    SCOPED_TRACE(std::to_string(bytes) + " bytes of garbage");
    testing::TempDir dir;
    write_file(dir.sub("data.mdb"), garbage(bytes, bytes));
    auto e = Engine::open(options_for(dir.path()));
    ASSERT_FALSE(e.is_ok());
    EXPECT_EQ(e.status().code(), Code::kCorruption) << e.status().to_string();
    EXPECT_TRUE(contains(e.status(), dir.path())) << e.status().to_string();
    // The failed open released the directory: once repaired, it opens.
    fs::remove(dir.sub("data.mdb"));
    fs::remove(dir.sub("lock.mdb"));
    auto fresh = Engine::open(options_for(dir.path()));
    EXPECT_TRUE(fresh.is_ok()) << fresh.status().to_string();
  }
}

// Writes one key into a plain LMDB environment (no carrel databases).
void make_plain_lmdb(const std::string& dir) {
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_open(env, dir.c_str(), 0, 0644), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi dbi;
  ASSERT_EQ(mdb_dbi_open(txn, nullptr, 0, &dbi), 0);
  MDB_val k{3, const_cast<char*>("key")}, v{5, const_cast<char*>("value")};
  ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

TEST(StoreOpenTest, LmdbEnvironmentThatIsNotAnEngineIsCorruption) {
  testing::TempDir dir;
  make_plain_lmdb(dir.path());
  auto e = Engine::open(options_for(dir.path()));
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().code(), Code::kCorruption) << e.status().to_string();
  EXPECT_TRUE(contains(e.status(), "not a carrel engine")) << e.status().to_string();
  Options ro = options_for(dir.path());
  ro.read_only = true;
  e = Engine::open(ro);
  EXPECT_EQ(e.status().code(), Code::kCorruption) << e.status().to_string();
}

// Puts key -> value into the LMDB database `db` in dir through LMDB itself
// (another release's marker, a damaged record).
void put_through_lmdb(const testing::TempDir& dir, const char* db, const std::string& key,
                      const std::string& value) {
  ASSERT_TRUE(testing::write_through_lmdb(dir.path(), db, {{key, value}}).ok) << db << " " << key;
}

// Creates an engine in dir, then puts key -> value as put_through_lmdb does.
void make_engine_with(const testing::TempDir& dir, const char* db, const std::string& key,
                      const std::string& value) {
  {
    auto e = Engine::open(options_for(dir.path()));
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  }
  put_through_lmdb(dir, db, key, value);
}

std::optional<std::string> get_through_lmdb(const testing::TempDir& dir, const char* db,
                                            const std::string& key) {
  return testing::read_through_lmdb(dir.path(), db, key);
}

void make_engine_with_format(const testing::TempDir& dir, const std::string& format) {
  make_engine_with(dir, "meta", "format", format);
}

// An acknowledged send must not vanish: a malformed outbox entry stops the
// open with Corruption naming it, instead of being skipped.
TEST(StoreOpenTest, MalformedOutboxMessageAtOpenIsCorruption) {
  testing::TempDir dir;
  make_engine_with(dir, "outbox", std::string(7, '\0') + "\x05", std::string("\x01\x00\x09Do", 5));
  auto e = Engine::open(options_for(dir.path()));
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().code(), Code::kCorruption) << e.status().to_string();
  EXPECT_TRUE(contains(e.status(), "outbox message 5")) << e.status().to_string();
}

TEST(StoreOpenTest, OtherFormatVersionIsCorruption) {
  testing::TempDir dir;
  make_engine_with_format(dir, "carrel-9");
  auto e = Engine::open(options_for(dir.path()));
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().code(), Code::kCorruption) << e.status().to_string();
  EXPECT_TRUE(contains(e.status(), "carrel-9")) << e.status().to_string();
}

// store.cc kFormatValue: carrel-8 differs from carrel-7 only in what its
// redo log may hold (page deltas, redo.h (10)), so a carrel-7 directory is
// read as it is by a read-only open and upgraded in place by the first
// writable one, its data kept.
TEST(StoreOpenTest, Carrel7DirectoryIsReadAsItIsAndUpgradedByAWritableOpen) {
  testing::TempDir dir;
  const ObjectRef ref = ObjectRef::named("Room", "kept");
  {
    auto e = Engine::open(options_for(dir.path()));
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    ASSERT_TRUE((*e)->run(ref, [](Context& ctx) { return ctx.kv().put("k", "v"); }).is_ok());
  }
  put_through_lmdb(dir, "meta", "format", "carrel-7");
  {
    Options ro = options_for(dir.path());
    ro.read_only = true;
    auto e = Engine::open(ro);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    EXPECT_EQ(testing::read_db(**e, store::Db::kMeta, "format"), "carrel-7");
  }
  EXPECT_EQ(get_through_lmdb(dir, "meta", "format"), "carrel-7");  // a reader changes nothing
  {
    Options o = options_for(dir.path());
    o.durability = Durability::kSync;
    auto e = Engine::open(o);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    EXPECT_EQ(testing::kv_read(**e, ref, "k"), "v");
  }
  EXPECT_EQ(get_through_lmdb(dir, "meta", "format"), "carrel-8");
}

// store.cc kFormatValue: every older format keyed an object's data by its
// id; carrel-7 and later read only their own layout. The error names both formats and
// the way across (export, then import).
TEST(StoreOpenTest, OlderFormatIsRefusedNamingBothVersionsAndTheRemedy) {
  for (const char* older :
       {"carrel-1", "carrel-2", "carrel-3", "carrel-4", "carrel-5", "carrel-6"}) {
    testing::TempDir dir;
    make_engine_with_format(dir, older);
    for (bool read_only : {false, true}) {
      Options o = options_for(dir.path());
      o.read_only = read_only;
      auto e = Engine::open(o);
      ASSERT_FALSE(e.is_ok());
      EXPECT_EQ(e.status().code(), Code::kInvalidArgument) << e.status().to_string();
      for (const char* part : {older, "carrel-8", "carrel export", "import"}) {
        EXPECT_TRUE(contains(e.status(), part)) << part << ": " << e.status().to_string();
      }
    }
  }
}

// store.cc kFormatValue: an older directory's redo files hold its own keys,
// so the refusal comes before they are read: a carrel-6 directory left by a
// crash keeps its log, byte for byte, for the build that wrote it.
TEST(StoreOpenTest, OlderFormatsRedoFilesAreLeftAsTheyAre) {
  // ... and so does a newer format's (carrel-9 stands for one): its log may
  // hold operations this build does not know (store.h check_format).
  for (auto [format, code] :
       {std::pair{"carrel-6", Code::kInvalidArgument}, std::pair{"carrel-9", Code::kCorruption}}) {
    testing::TempDir dir;
    make_engine_with_format(dir, format);
    const std::string log = std::string(4096, 'r');
    for (const char* file : {"redo.ckpt", "redo.0", "redo.1"}) write_file(dir.sub(file), log);
    put_through_lmdb(dir, "meta", "redo_log", "");  // redo.h (9): the log's mark
    Options o = options_for(dir.path());
    o.durability = Durability::kSync;
    auto e = Engine::open(o);
    ASSERT_FALSE(e.is_ok()) << format;
    EXPECT_EQ(e.status().code(), code) << e.status().to_string();
    for (const char* part : {format, "carrel-8", "was changed"}) {
      EXPECT_TRUE(contains(e.status(), part)) << part << ": " << e.status().to_string();
    }
    for (const char* file : {"redo.ckpt", "redo.0", "redo.1"}) {
      std::ifstream f(dir.sub(file), std::ios::binary);
      EXPECT_EQ(std::string(std::istreambuf_iterator<char>(f), {}), log) << format << " " << file;
    }
  }
}

TEST(StoreOpenTest, PathThatIsAFileIsInvalidArgument) {
  testing::TempDir dir;
  write_file(dir.sub("file"), "not a directory");
  auto e = Engine::open(options_for(dir.sub("file")));
  EXPECT_EQ(e.status().code(), Code::kInvalidArgument) << e.status().to_string();
}

// A second process asking to write is refused while the first holds the
// directory, and is told the holder's pid. The child is forked before this
// process opens anything, so it shares no LMDB handle and no in-process
// registry entry: it meets only the cross-process lock.
TEST(StoreOpenTest, SecondProcessForWritingIsBusyNamingThePid) {
  testing::TempDir dir;
  int go[2], report[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(report), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(go[1]);
    close(report[0]);
    char c = 0;
    if (read(go[0], &c, 1) != 1 || c != 'g') _exit(90);
    auto e = Engine::open(options_for(dir.path()));
    std::string msg = e.is_ok() ? std::string("opened") : e.status().to_string();
    (void)!write(report[1], msg.data(), msg.size());
    _exit(e.is_ok() ? 0 : e.status().code() == Code::kBusy ? 10 : 20);
  }
  close(go[0]);
  close(report[1]);
  auto e = Engine::open(options_for(dir.path()));
  char c = e.is_ok() ? 'g' : 'x';
  EXPECT_EQ(write(go[1], &c, 1), 1);
  close(go[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = read(report[0], buf, sizeof(buf))) > 0;)
    msg.append(buf, static_cast<size_t>(n));
  close(report[0]);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 10) << msg;
  EXPECT_NE(msg.find("Busy"), std::string::npos) << msg;
  EXPECT_NE(msg.find("process " + std::to_string(getpid())), std::string::npos) << msg;
}

TEST(StoreOpenTest, FullMapIsNoSpaceAndKeepsCommittedData) {
  testing::TempDir dir;
  Options o = options_for(dir.path());
  o.map_bytes_max = size_t{1} << 20;
  o.durability = Durability::kNoSync;
  auto ref = ObjectRef::named("Room", "full");
  std::string value(20000, 'v');
  int committed = 0;
  Status failure;
  {
    auto e = Engine::open(o);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    for (int i = 0; i < 200; ++i) {
      Status s = (*e)->run(ref, [&](Context& ctx) {
        return ctx.kv().put("k" + std::to_string(i), value + std::to_string(i));
      });
      if (!s.is_ok()) {
        failure = s;
        break;
      }
      ++committed;
    }
    ASSERT_FALSE(failure.is_ok()) << "1 MiB map never filled";
    EXPECT_EQ(failure.code(), Code::kNoSpace) << failure.to_string();
    EXPECT_TRUE(contains(failure, "map_bytes_max")) << failure.to_string();
    ASSERT_GT(committed, 0);
    // The object was reset to its durable state: reads still work and see it.
    size_t seen = 0;
    Status r = (*e)->run(ref, [&](Context& ctx) -> Status {
      CARREL_ASSIGN_OR_RETURN(auto all, ctx.kv().list());
      seen = all.size();
      return Status::ok();
    });
    EXPECT_TRUE(r.is_ok()) << r.to_string();
    EXPECT_EQ(seen, static_cast<size_t>(committed));
    EXPECT_TRUE((*e)->close().is_ok());
  }
  o.map_bytes_max = size_t{64} << 20;
  auto e = Engine::open(o);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  Entries all;
  ASSERT_TRUE((*e)->run(ref,
                        [&](Context& ctx) -> Status {
                          CARREL_ASSIGN_OR_RETURN(all, ctx.kv().list());
                          return ctx.kv().put("after", "reopen");
                        })
                  .is_ok());
  ASSERT_EQ(all.size(), static_cast<size_t>(committed));
  for (auto& [k, v] : all) EXPECT_EQ(v, value + k.substr(1)) << k;
  auto txn = (*e)->core()->store().begin_read();
  ASSERT_TRUE(txn.is_ok());
  auto rec = history::current_record(txn->get(), (*e)->core()->store(), ref.id);
  ASSERT_TRUE(rec.is_ok() && rec->has_value()) << rec.status().to_string();
  EXPECT_EQ((*rec)->kv_keys, static_cast<uint64_t>(committed) + 1);
  EXPECT_EQ((*rec)->last_seq, static_cast<uint64_t>(committed) + 1);
}

TEST(StoreOpenTest, StoreRecordsFormatAndPageSize) {
  testing::TempDir dir;
  {
    Options o = options_for(dir.path());
    o.sql_page_bytes = 4096;
    auto e = Engine::open(o);
    ASSERT_TRUE(e.is_ok());
    EXPECT_EQ((*e)->core()->store().sql_page_bytes(), 4096u);
  }
  // The stored page size wins over a later option.
  Options o = options_for(dir.path());
  o.sql_page_bytes = 1024;
  auto e = Engine::open(o);
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ((*e)->core()->store().sql_page_bytes(), 4096u);
}

// from_mdb carries what LMDB found in the Status's code and detail, so a
// caller tells a damaged page apart without reading the message.
TEST(StoreErrorTest, LmdbDamagedPageIsCorruptionWithTheDamagedPageDetail) {
  for (int rc : {MDB_PAGE_NOTFOUND, MDB_CORRUPTED}) {
    Status s = store::from_mdb(rc, "read from kv");
    EXPECT_EQ(s.code(), Code::kCorruption) << s.to_string();
    EXPECT_EQ(s.detail(), Detail::kDamagedPage) << s.to_string();
  }
}

TEST(StoreErrorTest, LmdbFailedTransactionIsIOErrorWithTheFailedTxnDetail) {
  Status s = store::from_mdb(MDB_BAD_TXN, "read from kv");
  EXPECT_EQ(s.code(), Code::kIOError) << s.to_string();
  EXPECT_EQ(s.detail(), Detail::kFailedTxn) << s.to_string();
}

TEST(StoreErrorTest, OtherLmdbErrorsCarryNoDetail) {
  for (int rc : {MDB_NOTFOUND, MDB_MAP_FULL, MDB_INVALID, MDB_VERSION_MISMATCH, MDB_READERS_FULL,
                 EIO, ENOSPC}) {
    Status s = store::from_mdb(rc, "read from kv");
    EXPECT_FALSE(s.is_ok());
    EXPECT_EQ(s.detail(), Detail::kNone) << s.to_string();
  }
}

TEST(StoreErrorTest, ContextKeepsTheDetail) {
  Status s = store::from_mdb(MDB_PAGE_NOTFOUND, "read from kv").with_context("object Room:a");
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_EQ(s.detail(), Detail::kDamagedPage);
  EXPECT_TRUE(s.message().starts_with("object Room:a: read from kv: ")) << s.message();
}

}  // namespace
}  // namespace carrel
