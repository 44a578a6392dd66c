// The redo log (engine/store/redo.h): what a crash or a power loss leaves,
// and what the next open makes of it. The writer runs in a child process that
// is killed with SIGKILL; a power loss is modelled by putting back the
// data.mdb the child copied right after its open (when the log's first
// checkpoint had synced it) with checkpoints held, so the disk's data.mdb is
// exactly that copy and the commits since are only in the log.
#include "engine/store/redo.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <lmdb.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "carrel/carrel.h"
#include "engine/history/bookmark.h"
#include "engine/loop/engine_core.h"
#include "engine/store/page_delta.h"
#include "tests/store_probe.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr int kTurns = 100;
constexpr const char* kRoleEnv = "CARREL_REDO_TEST_ROLE";
constexpr const char* kDirEnv = "CARREL_REDO_TEST_DIR";
constexpr int kReportFd = testing::kRoleReportFd;

const ObjectRef kRef = ObjectRef::named("Redo", "a");

Options options_at(const std::string& dir) {
  Options o;
  o.dir = dir;
  o.durability = Durability::kSync;
  return o;
}

// A writer child: opens with checkpoints held, copies data.mdb as the log's
// first checkpoint synced it, runs `setup` (when set) and then turn i for i
// in 1..kTurns on kRef, reports once every reply came (each is durable), and
// waits to be killed.
[[noreturn]] void play_turns(const char* dir, const std::function<Status(Context&)>& setup,
                             const std::function<Status(Context&, int)>& turn) {
  store::RedoLog::hold_checkpoints_for_tests(true);
  auto e = Engine::open(options_at(dir));
  bool ok = e.is_ok();
  std::error_code ec;
  if (ok) fs::copy_file(std::string(dir) + "/data.mdb", std::string(dir) + "/data.mdb.synced", ec);
  ok = ok && !ec && (!setup || (*e)->run(kRef, setup).is_ok());
  for (int i = 1; ok && i <= kTurns; ++i) {
    ok = (*e)->run(kRef, [&](Context& ctx) { return turn(ctx, i); }).is_ok();
  }
  char c = ok ? 'y' : 'n';
  (void)!::write(kReportFd, &c, 1);
  for (;;) ::pause();
}

// Turn i puts k = i and n<i> = i.
[[noreturn]] void play_writer(const char* dir) {
  play_turns(dir, nullptr, [](Context& ctx, int i) {
    CARREL_RETURN_IF_ERROR(ctx.kv().put("k", std::to_string(i)));
    return ctx.kv().put("n" + std::to_string(i), std::to_string(i));
  });
}

// SQL: the setup creates a table, then turn i inserts row (i, 100 bytes),
// each changing the table's pages in place (redo.h (10)).
[[noreturn]] void play_sql_writer(const char* dir) {
  play_turns(
      dir,
      [](Context& ctx) {
        return ctx.sql().exec("CREATE TABLE t(n INTEGER PRIMARY KEY, v TEXT)").status();
      },
      [](Context& ctx, int i) {
        return ctx.sql()
            .exec("INSERT INTO t VALUES (?, ?)", i,
                  std::string(100, static_cast<char>('a' + i % 26)))
            .status();
      });
}

// A writable open that must recover beside a reader: reports 'b' when it is
// refused Busy naming its parent (the test, holding the reader) as that
// reader, 'y' when it opened, 'n' otherwise; then waits to be killed.
[[noreturn]] void play_recoverer(const char* dir) {
  auto e = Engine::open(options_at(dir));
  const std::string reader = "process " + std::to_string(::getppid()) + " has it open read-only";
  char c = e.is_ok() ? 'y'
           : e.status().code() == Code::kBusy &&
                   e.status().message().find(reader) != std::string::npos
               ? 'b'
               : 'n';
  (void)!::write(kReportFd, &c, 1);
  for (;;) ::pause();
}

// A recovery held at its end: the open's checkpoint (after the replay) reports
// 'y' and waits to be killed; 'n' if the open returns instead.
[[noreturn]] void play_slow_recoverer(const char* dir) {
  Options o = options_at(dir);
  o.redo_fault_hook = [](RedoStep step) {
    if (step == RedoStep::kCheckpoint) {
      char c = 'y';
      (void)!::write(kReportFd, &c, 1);
      for (;;) ::pause();
    }
    return Status::ok();
  };
  auto e = Engine::open(o);
  char c = 'n';
  (void)!::write(kReportFd, &c, 1);
  for (;;) ::pause();
}

// Discards a lost log, writes k = "after" (durable: its reply came), reports
// 'y' and waits to be killed; 'n' when any of it failed.
[[noreturn]] void play_discarder(const char* dir) {
  Options o = options_at(dir);
  o.discard_lost_redo_log = true;
  auto e = Engine::open(o);
  bool ok = e.is_ok() &&
            (*e)->run(kRef, [](Context& ctx) { return ctx.kv().put("k", "after"); }).is_ok();
  char c = ok ? 'y' : 'n';
  (void)!::write(kReportFd, &c, 1);
  for (;;) ::pause();
}

// Deletes the log's mark from data.mdb with LMDB alone (as the last step of a
// writer's clean close does, redo.h (9)), beside the test's read-only open;
// reports 'y' when the deletion committed.
[[noreturn]] void play_unmarker(const char* dir) {
  const std::string meta(store::db_name(store::Db::kMeta));
  const bool ok =
      testing::write_through_lmdb(dir, meta, {{std::string(store::kRedoMarkKey), std::nullopt}}).ok;
  char c = ok ? 'y' : 'n';
  (void)!::write(kReportFd, &c, 1);
  for (;;) ::pause();
}

const bool kPlaysRole = [] {
  const char* role = std::getenv(kRoleEnv);
  const char* dir = std::getenv(kDirEnv);
  if (role == nullptr || dir == nullptr) return false;
  const std::string_view r(role);
  if (r == "writer") play_writer(dir);
  if (r == "sql-writer") play_sql_writer(dir);
  if (r == "recoverer") play_recoverer(dir);
  if (r == "slow-recoverer") play_slow_recoverer(dir);
  if (r == "discarder") play_discarder(dir);
  if (r == "unmarker") play_unmarker(dir);
  return false;
}();

bool write_then_sigkill(const std::string& dir) {
  return testing::play_role_then_sigkill(kRoleEnv, "writer", kDirEnv, dir);
}

// The disk kept only what was synced: data.mdb as the first checkpoint left it.
void lose_unsynced_pages(const std::string& dir) {
  fs::rename(dir + "/data.mdb.synced", dir + "/data.mdb");
  fs::remove(dir + "/lock.mdb");
}

bool has_redo_files(const std::string& dir) {
  return fs::exists(dir + "/redo.ckpt") || fs::exists(dir + "/redo.0") ||
         fs::exists(dir + "/redo.1");
}

void expect_turns(Engine& e, int last) {
  EXPECT_EQ(testing::kv_read(e, kRef, "k"), std::to_string(last));
  for (int i = 1; i <= kTurns; ++i) {
    EXPECT_EQ(testing::kv_read(e, kRef, "n" + std::to_string(i)),
              i <= last ? std::to_string(i) : "(absent)")
        << i;
  }
}

// Where the records of a segment end: its space is allocated ahead in
// zeros (redo.h (8)), and a record ends with a checksum that is not zero.
uint64_t records_end(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t end = bytes.find_last_not_of('\0');
  return end == std::string::npos ? 0 : end + 1;
}

void zero_bytes(const std::string& path, uint64_t at, size_t n) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(std::string(n, '\0').data(), static_cast<std::streamsize>(n));
}

void flip_byte(const std::string& path, uint64_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&c, 1);
}

// committer.h (9): a clean close ends with a checkpoint and removes the log,
// so data.mdb alone is the state (any LMDB tool reads it as it is).
TEST(RedoTest, CleanCloseLeavesDataMdbAlone) {
  TempDir dir;
  {
    auto e = testing::open_engine(options_at(dir.path()));
    ASSERT_TRUE(e);
    EXPECT_TRUE(has_redo_files(dir.path()));
    ASSERT_TRUE(e->run(kRef, [](Context& ctx) { return ctx.kv().put("k", "v"); }).is_ok());
    ASSERT_TRUE(e->close().is_ok());
  }
  EXPECT_FALSE(has_redo_files(dir.path()));
  Options plain = options_at(dir.path());
  plain.redo_log = false;
  auto r = testing::open_engine(plain);
  ASSERT_TRUE(r);
  EXPECT_EQ(testing::kv_read(*r, kRef, "k"), "v");
}

// redo.h (5): after a process death every acknowledged turn is there.
TEST(RedoTest, ProcessDeathIsRecoveredAtTheNextWritableOpen) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  ASSERT_TRUE(fs::exists(dir.path() + "/redo.ckpt"));
  auto e = testing::open_engine(options_at(dir.path()));
  ASSERT_TRUE(e);
  expect_turns(*e, kTurns);
  ASSERT_TRUE(e->close().is_ok());
  EXPECT_FALSE(has_redo_files(dir.path()));
}

// store.cc open_env: a read-only open of a directory the log left unclean,
// with no writer alive, is refused, naming the remedy.
TEST(RedoTest, ReadOnlyOpenOfAnUncleanDirectoryNamesTheRemedy) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  Options ro = options_at(dir.path());
  ro.read_only = true;
  auto e = Engine::open(ro);
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().code(), Code::kBusy) << e.status().to_string();
  EXPECT_NE(e.status().message().find("recover it with `carrel --dir '" + dir.path() + "' recover`"),
            std::string::npos)
      << e.status().to_string();
}

// store.h (4): while a reader that opened beside the writer before it died is
// open, recovery is refused (it would write over the pages of the reader's
// snapshot); once it closes, every acknowledged turn is recovered.
TEST(RedoTest, RecoveryIsRefusedWhileAReaderFromBeforeTheCrashIsOpen) {
  TempDir dir;
  std::unique_ptr<Engine> reader;
  const char reported = testing::play_role(kRoleEnv, "writer", kDirEnv, dir.path(), [&] {
    Options ro = options_at(dir.path());
    ro.read_only = true;
    reader = testing::open_engine(ro);
  });
  ASSERT_EQ(reported, 'y');
  ASSERT_TRUE(reader);
  auto before = reader->current_bookmark(kRef);
  ASSERT_TRUE(before.is_ok()) << before.status().to_string();
  EXPECT_EQ(testing::play_role(kRoleEnv, "recoverer", kDirEnv, dir.path()), 'b');
  auto after = reader->current_bookmark(kRef);  // the reader reads on, undisturbed
  ASSERT_TRUE(after.is_ok()) << after.status().to_string();
  EXPECT_EQ(*after, *before);
  ASSERT_TRUE(reader->close().is_ok());
  reader.reset();
  auto e = testing::open_engine(options_at(dir.path()));
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->core()->store().recovery().found);
  expect_turns(*e, kTurns);
}

// store.h (4): a read-only open while another process recovers the directory
// is refused (it would read the checkpoint, without the acknowledged turns
// the log still holds); a recovery cut short starts again at the next open.
TEST(RedoTest, ReadOnlyOpenDuringRecoveryIsRefused) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  Status refused;
  const char reported = testing::play_role(kRoleEnv, "slow-recoverer", kDirEnv, dir.path(), [&] {
    Options ro = options_at(dir.path());
    ro.read_only = true;
    auto r = Engine::open(ro);
    refused = r.is_ok() ? Status::ok() : r.status();
  });
  ASSERT_EQ(reported, 'y');
  EXPECT_EQ(refused.code(), Code::kBusy) << refused.to_string();
  EXPECT_NE(refused.message().find("is being opened for writing by process"),
            std::string::npos)
      << refused.to_string();
  auto e = testing::open_engine(options_at(dir.path()));
  ASSERT_TRUE(e);
  expect_turns(*e, kTurns);
}

// redo.h (3), (5): data.mdb lost every page written after the checkpoint;
// the checkpoint's meta page is put back and the log replayed onto it.
TEST(RedoTest, LostUnsyncedPagesAreReplayedOntoTheCheckpoint) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  lose_unsynced_pages(dir.path());
  auto e = testing::open_engine(options_at(dir.path()));
  ASSERT_TRUE(e);
  expect_turns(*e, kTurns);
}

// replay_redo: a log longer than one recovery transaction holds (LMDB bounds
// its dirty pages) is replayed in several, and every acknowledged turn is there.
TEST(RedoTest, LongLogIsReplayedInSeveralTransactions) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  lose_unsynced_pages(dir.path());
  store::RedoLog::set_replay_ops_per_txn_for_tests(7);
  auto e = testing::open_engine(options_at(dir.path()));
  store::RedoLog::set_replay_ops_per_txn_for_tests(0);
  ASSERT_TRUE(e);
  const store::RedoRecovery& r = e->core()->store().recovery();
  EXPECT_TRUE(r.found);
  EXPECT_FALSE(r.meta_restored);  // data.mdb is the checkpoint's: its newest meta page is T's
  EXPECT_EQ(r.records, static_cast<uint64_t>(kTurns));
  EXPECT_GT(r.transactions, 10u);
  expect_turns(*e, kTurns);
}

// redo.h (10): SQL pages changed in place are logged as deltas, and the
// replay onto the pages the checkpoint left rebuilds every acknowledged row.
TEST(RedoTest, SqlPageDeltasAreReplayedOntoTheCheckpoint) {
  TempDir dir;
  ASSERT_TRUE(testing::play_role_then_sigkill(kRoleEnv, "sql-writer", kDirEnv, dir.path()));
  lose_unsynced_pages(dir.path());
  // Deltas, not pages: each one-row insert into 1 KiB pages took less than a
  // page of log (~570 bytes here; whole pages took ~1,560).
  EXPECT_LT(records_end(dir.path() + "/redo.0"), kTurns * 1024u);
  auto e = testing::open_engine(options_at(dir.path()));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->core()->store().recovery().records, static_cast<uint64_t>(kTurns + 1));
  int64_t rows = 0, n_sum = 0, v_bytes = 0;
  ASSERT_TRUE(e->run(kRef, [&](Context& ctx) -> Status {
                 CARREL_ASSIGN_OR_RETURN(
                     auto c, ctx.sql().exec("SELECT count(*), sum(n), sum(length(v)) FROM t"));
                 if (c.size() != 1) return Status::aborted("one row expected");
                 CARREL_ASSIGN_OR_RETURN(rows, c.rows()[0].get_int(0));
                 CARREL_ASSIGN_OR_RETURN(n_sum, c.rows()[0].get_int(1));
                 CARREL_ASSIGN_OR_RETURN(v_bytes, c.rows()[0].get_int(2));
                 return Status::ok();
               }).is_ok());
  EXPECT_EQ(rows, kTurns);
  EXPECT_EQ(n_sum, kTurns * (kTurns + 1) / 2);
  EXPECT_EQ(v_bytes, 100 * kTurns);
}

// redo.h (10): a page delta rebuilds only the page its commit changed. Met
// with any other page under its key, the replay stops with Corruption naming
// the record and the page, and stores nothing for it.
TEST(RedoTest, PageDeltaOnAnotherPageIsCorruption) {
  TempDir dir;
  auto st = testing::open_store(dir.path());
  ASSERT_TRUE(st);
  const std::string key = store::page_key(store::ObjectNo{1}, 1);
  const std::string before = store::seal(store::Db::kPages, key, std::string(1024, 'a'));
  std::string changed(1024, 'a');
  changed[10] = 'b';
  const std::string after = store::seal(store::Db::kPages, key, changed);
  const std::string other = store::seal(store::Db::kPages, key, std::string(1024, 'o'));
  store::RedoOps ops;
  ops.put_delta(store::Db::kPages, key, store::make_page_delta(before, after));
  {
    std::ofstream f(dir.path() + "/redo.0", std::ios::binary);
    const std::string record = store::encode_redo_record(1, 0, ops.bytes());
    f.write(record.data(), static_cast<std::streamsize>(record.size()));
  }
  // Puts `page` under key, then replays the log onto it; the key's value after.
  auto replay_onto = [&](const std::string& page, Result<uint64_t>* replayed) {
    MDB_txn* txn = nullptr;
    EXPECT_EQ(mdb_txn_begin(st->env(), nullptr, 0, &txn), 0);
    MDB_val k = store::to_val(key), v = store::to_val(page);
    EXPECT_EQ(mdb_put(txn, st->dbi(store::Db::kPages), &k, &v, 0), 0);
    *replayed = store::replay_redo(
        *st, &txn, 0, [](MDB_txn**) { return Status::aborted("one transaction holds this log"); });
    MDB_val got;
    EXPECT_EQ(mdb_get(txn, st->dbi(store::Db::kPages), &k, &got), 0);
    std::string value(store::from_val(got));
    mdb_txn_abort(txn);
    return value;
  };
  Result<uint64_t> replayed = uint64_t{0};
  EXPECT_EQ(replay_onto(other, &replayed), other);
  ASSERT_FALSE(replayed.is_ok());
  EXPECT_EQ(replayed.status().code(), Code::kCorruption) << replayed.status().to_string();
  for (const char* part : {"redo log record 1", "redo delta", "restore it from a backup"}) {
    EXPECT_NE(replayed.status().message().find(part), std::string::npos)
        << part << ": " << replayed.status().to_string();
  }
  EXPECT_EQ(replay_onto(before, &replayed), after);
  ASSERT_TRUE(replayed.is_ok()) << replayed.status().to_string();
  EXPECT_EQ(*replayed, 1u);
}

// store.cc kFormatValue: a carrel-7 directory its writer left unclean, its
// log holding whole values (all a carrel-7 log holds), is upgraded by the
// next writable open, which replays that log: nothing acknowledged is lost.
TEST(RedoTest, Carrel7LogIsReplayedByTheOpenThatUpgradesIt) {
  TempDir dir;
  {
    auto e = testing::open_engine(options_at(dir.path()));
    ASSERT_TRUE(e);
    ASSERT_TRUE(e->close().is_ok());
  }
  // data.mdb as a carrel-7 writer leaves it: its format, and the log's mark
  // (redo.h (9)); then a checkpoint of its newest transaction and one record.
  const testing::LmdbCommit written =
      testing::write_through_lmdb(dir.path(), std::string(store::db_name(store::Db::kMeta)),
                                  {{"format", "carrel-7"}, {std::string(store::kRedoMarkKey), ""}});
  ASSERT_TRUE(written.ok);
  std::ifstream data(dir.path() + "/data.mdb", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(data)), std::istreambuf_iterator<char>());
  store::RedoCheckpoint c;
  c.number = 1;
  c.txnid = written.txnid;
  c.base = 0;
  c.meta = bytes.substr((c.txnid & 1) * written.page_bytes, store::RedoLog::kMetaBytes);
  // Checkpoint k lives in slot k % 2 (redo.h (3)): number 1 in the second.
  std::string slot = std::string(store::RedoLog::kSlotBytes, '\0') + store::encode_redo_slot(c);
  slot.resize(2 * store::RedoLog::kSlotBytes, '\0');
  store::RedoOps ops;
  ops.put(store::Db::kMeta, "acknowledged", "yes");
  for (auto [name, contents] : {std::pair<const char*, std::string>{"redo.ckpt", slot},
                                {"redo.0", store::encode_redo_record(1, 0, ops.bytes())},
                                {"redo.1", ""}}) {
    std::ofstream f(dir.path() + "/" + name, std::ios::binary | std::ios::trunc);
    f.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  }
  auto e = testing::open_engine(options_at(dir.path()));
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->core()->store().recovery().found);
  EXPECT_EQ(e->core()->store().recovery().records, 1u);
  EXPECT_EQ(testing::read_db(*e, store::Db::kMeta, "acknowledged"), "yes");
  EXPECT_EQ(testing::read_db(*e, store::Db::kMeta, "format"), "carrel-8");
}

// redo.h (2): a torn last record ends the log; what came before is applied.
TEST(RedoTest, TornLastRecordEndsTheLog) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  lose_unsynced_pages(dir.path());
  const std::string seg = dir.path() + "/redo.0";
  const uint64_t end = records_end(seg);
  ASSERT_GT(end, 5u);
  zero_bytes(seg, end - 5, 5);  // the last record's trailer never reached the disk
  auto e = testing::open_engine(options_at(dir.path()));
  ASSERT_TRUE(e);
  expect_turns(*e, kTurns - 1);
}

// redo.h (5): a damaged record with valid ones after it is Corruption, never
// a silent end of the log.
TEST(RedoTest, DamagedRecordBeforeValidOnesIsCorruption) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  lose_unsynced_pages(dir.path());
  const std::string seg = dir.path() + "/redo.0";
  flip_byte(seg, records_end(seg) / 2);
  auto e = Engine::open(options_at(dir.path()));
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().code(), Code::kCorruption) << e.status().to_string();
  EXPECT_NE(e.status().message().find("restore the directory from a backup"), std::string::npos)
      << e.status().to_string();
}

// StoreOptions::redo_log: an open without the log still recovers a
// directory the log left, then removes the log (data.mdb alone from then on).
TEST(RedoTest, OpenWithoutTheLogRecoversAndRemovesIt) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  lose_unsynced_pages(dir.path());
  Options o = options_at(dir.path());
  o.redo_log = false;
  auto e = testing::open_engine(o);
  ASSERT_TRUE(e);
  EXPECT_FALSE(has_redo_files(dir.path()));
  expect_turns(*e, kTurns);
}

// The mark of redo.h (9) as data.mdb holds it, read by a plain open (no log).
std::optional<std::string> redo_mark(const std::string& dir) {
  Options plain = options_at(dir);
  plain.redo_log = false;
  plain.read_only = true;
  auto e = testing::open_engine(plain);
  if (!e) return "(cannot open)";
  return testing::read_db(*e, store::Db::kMeta, std::string(store::kRedoMarkKey));
}

template <typename T>  // an Engine's or a Store's open
void expect_lost(const Result<T>& e, const std::string& what) {
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().code(), Code::kCorruption) << e.status().to_string();
  for (const std::string& part : {"lost part of its redo log: " + what,
                                  std::string("recover --discard-lost-redo")}) {
    EXPECT_NE(e.status().message().find(part), std::string::npos) << e.status().to_string();
  }
}

// A directory whose writer died with its log in use, and whose redo files
// are then gone: the mark says the log is in use, and no file of it is left.
bool lose_the_files(const std::string& dir) {
  if (!write_then_sigkill(dir)) return false;
  for (const char* f : {"/redo.ckpt", "/redo.0", "/redo.1"}) fs::remove(dir + f);
  return true;
}

// A read-only Store::open of dir; hook runs when its first look finds a loss.
Result<std::unique_ptr<store::Store>> open_reader(const std::string& dir,
                                                  std::function<void()> hook) {
  store::StoreOptions so;
  so.dir = dir;
  so.create_if_missing = false;
  so.read_only = true;
  so.reader_first_look_hook = std::move(hook);
  return store::Store::open(so);
}

// redo.h (9): a loss a read-only open still sees at its second look, with no
// writer alive, is refused. (The pair of the test below.)
TEST(RedoTest, AReaderRefusesALossItsSecondLookAgreesWith) {
  TempDir dir;
  ASSERT_TRUE(lose_the_files(dir.path()));
  int first_looks = 0;
  auto st = open_reader(dir.path(), [&] { ++first_looks; });
  EXPECT_EQ(first_looks, 1);
  expect_lost(st, "redo.ckpt is missing");
}

// redo.h (9): a loss seen at the first look but gone at the second (a writer
// closing cleanly between the two removed the mark after its files) is not
// refused: the second look decides.
TEST(RedoTest, AReaderAcceptsALossItsSecondLookDoesNotSee) {
  TempDir dir;
  ASSERT_TRUE(lose_the_files(dir.path()));
  int first_looks = 0;
  auto st = open_reader(dir.path(), [&] {
    ++first_looks;
    EXPECT_EQ(testing::play_role(kRoleEnv, "unmarker", kDirEnv, dir.path()), 'y');
  });
  EXPECT_EQ(first_looks, 1);
  EXPECT_TRUE(st.is_ok()) << st.status().to_string();
}

// redo.h (9): a loss seen while a writer is alive (it holds data.mdb's writer
// lock: it is starting or closing the log) is the writer's work in progress,
// not a loss.
TEST(RedoTest, AReaderAcceptsALossSeenWhileAWriterIsAlive) {
  TempDir dir;
  ASSERT_TRUE(lose_the_files(dir.path()));
  int writer_lock = -1;
  auto st = open_reader(dir.path(), [&] {
    writer_lock = ::open((dir.path() + "/data.mdb").c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_EQ(::flock(writer_lock, LOCK_EX | LOCK_NB), 0);
  });
  ASSERT_GE(writer_lock, 0);
  EXPECT_TRUE(st.is_ok()) << st.status().to_string();
  ::close(writer_lock);
}

// redo.h (9): the mark is in data.mdb while the log is in use, and gone once
// a clean close (or an open without the log) removed the files.
TEST(RedoTest, MarkIsHeldExactlyWhileTheLogIsInUse) {
  const std::string mark(store::kRedoMarkKey);
  TempDir dir;
  {
    auto e = testing::open_engine(options_at(dir.path()));
    ASSERT_TRUE(e);
    EXPECT_TRUE(testing::read_db(*e, store::Db::kMeta, mark).has_value());
    ASSERT_TRUE(e->close().is_ok());
  }
  EXPECT_FALSE(redo_mark(dir.path()).has_value());
  TempDir other;
  ASSERT_TRUE(write_then_sigkill(other.path()));
  Options o = options_at(other.path());
  o.redo_log = false;
  auto e = testing::open_engine(o);
  ASSERT_TRUE(e);
  EXPECT_FALSE(has_redo_files(other.path()));
  EXPECT_FALSE(testing::read_db(*e, store::Db::kMeta, mark).has_value());
}

// redo.h (9): redo files an operator removed are found, not taken for a
// directory closed cleanly, by a writable and by a read-only open. (Before
// the mark, the writable open took data.mdb alone: after a power loss, the
// checkpoint's state without the 100 acknowledged turns.)
TEST(RedoTest, RemovedRedoFilesAreFoundNotTakenForACleanDirectory) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  lose_unsynced_pages(dir.path());
  for (const char* f : {"/redo.ckpt", "/redo.0", "/redo.1"}) fs::remove(dir.path() + f);
  expect_lost(Engine::open(options_at(dir.path())), "redo.ckpt is missing");
  Options ro = options_at(dir.path());
  ro.read_only = true;
  expect_lost(Engine::open(ro), "redo.ckpt is missing");
}

// redo.h (9): a redo.ckpt with neither slot valid, beside records, is damage
// (before, it read as no log at all, and the open removed the records).
TEST(RedoTest, DamagedCheckpointFileBesideRecordsIsCorruption) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  zero_bytes(dir.path() + "/redo.ckpt", 0, 2 * store::RedoLog::kSlotBytes);
  expect_lost(Engine::open(options_at(dir.path())), "redo.ckpt holds no valid checkpoint");
  EXPECT_GT(records_end(dir.path() + "/redo.0"), 0u) << "the records are left for the operator";
}

// redo.h (9): a segment missing beside a valid checkpoint is damage, not an
// empty log (its records would be dropped, and the checkpoint's state taken).
TEST(RedoTest, MissingSegmentBesideAValidCheckpointIsCorruption) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  fs::remove(dir.path() + "/redo.0");
  expect_lost(Engine::open(options_at(dir.path())), "redo.0 is missing beside a valid redo.ckpt");
}

// redo.h (9): told to discard a lost log, a writable open takes data.mdb as
// it was last written (after a process death, the page cache kept every
// turn), says what it gave up, and leaves a directory later opens accept.
TEST(RedoTest, DiscardingALostLogTakesDataMdbAsItWasLastWritten) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  for (const char* f : {"/redo.ckpt", "/redo.0", "/redo.1"}) fs::remove(dir.path() + f);
  Options o = options_at(dir.path());
  o.discard_lost_redo_log = true;
  {
    auto e = testing::open_engine(o);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->core()->store().recovery().discarded,
              "redo.ckpt is missing while data.mdb says a redo log was in use");
    expect_turns(*e, kTurns);
    ASSERT_TRUE(e->close().is_ok());
  }
  auto again = testing::open_engine(options_at(dir.path()));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->core()->store().recovery().discarded.empty());
  expect_turns(*again, kTurns);
}

// redo.h (9): with a valid checkpoint and the segment that held the records
// gone, discarding recovers the checkpoint's state (data.mdb past it is not
// trusted after a power loss) and the directory opens normally afterwards.
TEST(RedoTest, DiscardingAMissingSegmentRecoversTheCheckpoint) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  lose_unsynced_pages(dir.path());
  ASSERT_GT(records_end(dir.path() + "/redo.0"), 0u);
  fs::remove(dir.path() + "/redo.0");
  Options o = options_at(dir.path());
  o.discard_lost_redo_log = true;
  {
    auto e = testing::open_engine(o);
    ASSERT_TRUE(e);
    const store::RedoRecovery& r = e->core()->store().recovery();
    EXPECT_TRUE(r.found);
    EXPECT_EQ(r.records, 0u);
    EXPECT_EQ(r.discarded, "redo.0 is missing beside a valid redo.ckpt");
    EXPECT_EQ(testing::kv_read(*e, kRef, "k"), "(absent)");  // the checkpoint preceded turn 1
    ASSERT_TRUE(e->run(kRef, [](Context& ctx) { return ctx.kv().put("k", "after"); }).is_ok());
    ASSERT_TRUE(e->close().is_ok());
  }
  auto again = testing::open_engine(options_at(dir.path()));
  ASSERT_TRUE(again);
  EXPECT_EQ(testing::kv_read(*again, kRef, "k"), "after");
}

// redo.h (2): records the replay left behind (here: a segment beside a lost
// one holds records past the gap) are never read as the new log's. The new
// log numbers its records past them; before, it restarted after the replay,
// and the recovery after its crash ran on into the discarded records.
TEST(RedoTest, RecordsLeftBehindByARecoveryAreNotReplayedLater) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  lose_unsynced_pages(dir.path());
  // redo.1 as after a segment switch: records 2.. from offset 0; redo.0,
  // which held record 1, is lost.
  const std::string seg0 = dir.path() + "/redo.0";
  std::string bytes;
  {
    std::ifstream f(seg0, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  ASSERT_GT(bytes.size(), 24u);
  uint32_t len = 0;  // header: magic u32, number u64, durable u64, length u32 (big-endian)
  for (int i = 20; i < 24; ++i) len = (len << 8) | static_cast<unsigned char>(bytes[i]);
  const size_t second = 24 + size_t{len} + 8;  // the header, the payload, the checksum
  ASSERT_LT(second, bytes.size());
  std::ofstream(dir.path() + "/redo.1", std::ios::binary | std::ios::trunc) << bytes.substr(second);
  fs::remove(seg0);
  ASSERT_EQ(testing::play_role(kRoleEnv, "discarder", kDirEnv, dir.path()), 'y');
  auto e = testing::open_engine(options_at(dir.path()));
  ASSERT_TRUE(e);
  EXPECT_EQ(testing::kv_read(*e, kRef, "k"), "after");
  EXPECT_EQ(testing::kv_read(*e, kRef, "n50"), "(absent)");
}

// redo.h (9): without the mark, data.mdb was closed whole, so files left by
// a close cut short (and an empty redo.ckpt beside them) are garbage, not a
// loss: the open goes on.
TEST(RedoTest, LeftoversWithoutTheMarkAreNotALoss) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  fs::copy_file(dir.path() + "/redo.0", dir.path() + "/redo.0.keep");
  {
    auto e = testing::open_engine(options_at(dir.path()));
    ASSERT_TRUE(e);
    ASSERT_TRUE(e->close().is_ok());
  }
  fs::rename(dir.path() + "/redo.0.keep", dir.path() + "/redo.0");
  std::ofstream(dir.path() + "/redo.ckpt").close();
  auto e = testing::open_engine(options_at(dir.path()));
  ASSERT_TRUE(e);
  expect_turns(*e, kTurns);
}

// redo.h (9): a damaged redo.ckpt beside records, discarded in nosync mode:
// the report names the damage (not a missing file), and neither the mark nor
// the files are left for later opens to trip on.
TEST(RedoTest, DiscardingADamagedCheckpointInNosyncModeLeavesAPlainDirectory) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  zero_bytes(dir.path() + "/redo.ckpt", 0, 2 * store::RedoLog::kSlotBytes);
  Options o = options_at(dir.path());
  o.durability = Durability::kNoSync;
  o.discard_lost_redo_log = true;
  {
    auto e = testing::open_engine(o);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->core()->store().recovery().discarded,
              "redo.ckpt holds no valid checkpoint while redo.0 or redo.1 holds records");
    expect_turns(*e, kTurns);  // a process death: the page cache kept every turn
    EXPECT_FALSE(testing::read_db(*e, store::Db::kMeta, std::string(store::kRedoMarkKey)));
    ASSERT_TRUE(e->close().is_ok());
  }
  EXPECT_FALSE(has_redo_files(dir.path()));
  auto again = testing::open_engine(options_at(dir.path()));
  ASSERT_TRUE(again);
  expect_turns(*again, kTurns);
}

// redo.h (9): a log cut short between its mark and its first checkpoint (here
// the checkpoint fails, at two opens in a row: the second starts from the
// first's leftovers) has no record yet: the next open is no loss.
TEST(RedoTest, LogCutShortBeforeItsFirstCheckpointIsNotALoss) {
  TempDir dir;
  Options failing = options_at(dir.path());
  failing.redo_fault_hook = [](RedoStep step) {
    return step == RedoStep::kCheckpoint ? Status::io_error("injected") : Status::ok();
  };
  for (int round = 0; round < 2; ++round) {
    auto cut = Engine::open(failing);
    ASSERT_FALSE(cut.is_ok());
    EXPECT_NE(cut.status().message().find("injected"), std::string::npos) << cut.status().to_string();
    ASSERT_TRUE(fs::exists(dir.path() + "/redo.ckpt"));
  }
  auto e = testing::open_engine(options_at(dir.path()));
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->run(kRef, [](Context& ctx) { return ctx.kv().put("k", "v"); }).is_ok());
}

// redo.h (6): checkpoints follow the bytes appended, and the segments are
// written in turn.
TEST(RedoTest, CheckpointsFollowTheLogAndSwitchSegments) {
  TempDir dir;
  auto e = testing::open_engine(options_at(dir.path()));
  ASSERT_TRUE(e);
  const std::string value(16 * 1024, 'v');
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(e->run(kRef, [&](Context& ctx) {
                   return ctx.kv().put("k" + std::to_string(i % 10), value);
                 }).is_ok());
  }
  store::RedoLog* redo = e->core()->store().redo();
  ASSERT_NE(redo, nullptr);
  // 300 records of 16 KiB are more than eighteen checkpoints' worth (256 KiB each).
  EXPECT_TRUE(testing::eventually([&] { return redo->checkpoints() >= 3; }));
  EXPECT_GT(fs::file_size(dir.path() + "/redo.0"), 0u);
  EXPECT_GT(fs::file_size(dir.path() + "/redo.1"), 0u);
}

// ---- faults in the log's own I/O (Options::redo_fault_hook) ----------------

// Fails `step` once armed: every time, or only the first time.
class RedoFault {
 public:
  RedoFault(RedoStep step, Status error, bool once)
      : step_(step), error_(std::move(error)), once_(once) {}
  void arm() { armed_.store(true); }
  RedoFaultHook hook() {
    return [this](RedoStep step) {
      if (step != step_ || !armed_.load()) return Status::ok();
      if (once_) armed_.store(false);
      return error_;
    };
  }

 private:
  const RedoStep step_;
  const Status error_;
  const bool once_;
  std::atomic<bool> armed_{false};
};

Status put(Engine& e, const std::string& key, const std::string& value) {
  return e.run(kRef, [&](Context& ctx) { return ctx.kv().put(key, value); });
}

// An engine on `dir` whose log fails as `fault` says once armed: a = 1 is
// acknowledged, then the fault is armed. Null when that went wrong.
std::unique_ptr<Engine> open_then_arm(RedoFault& fault, const std::string& dir) {
  Options o = options_at(dir);
  o.redo_fault_hook = fault.hook();
  auto e = testing::open_engine(o);
  if (e && !put(*e, "a", "1").is_ok()) e.reset();
  fault.arm();
  return e;
}

// Reopens without faults: what the next open makes of the directory. The
// turn acknowledged before the fault is there.
std::unique_ptr<Engine> reopen(std::unique_ptr<Engine> e, const std::string& dir) {
  (void)e->close();  // fails when the log broke: its records stay for recovery
  e.reset();
  e = testing::open_engine(options_at(dir));
  if (e) EXPECT_EQ(testing::kv_read(*e, kRef, "a"), "1");
  return e;
}

// redo.h (8): a reserve that fails fails its commit before it applies, and
// the next commit tries again (a full disk that frees space).
TEST(RedoFaultTest, FailedReserveFailsItsCommitAndTheNextOneWrites) {
  TempDir dir;
  RedoFault fault(RedoStep::kReserve, Status::no_space("injected: the disk is full"), true);
  auto e = open_then_arm(fault, dir.path());
  ASSERT_TRUE(e);
  Status failed = put(*e, "b", "2");
  EXPECT_EQ(failed.code(), Code::kNoSpace) << failed.to_string();
  ASSERT_TRUE(put(*e, "c", "3").is_ok());
  EXPECT_TRUE(e->core()->store().redo()->status().is_ok());
  e = reopen(std::move(e), dir.path());
  ASSERT_TRUE(e);
  EXPECT_EQ(testing::kv_read(*e, kRef, "b"), "(absent)");
  EXPECT_EQ(testing::kv_read(*e, kRef, "c"), "3");
}

// redo.h (7): a record that could not be written fails its turn, which is
// in data.mdb already; the next open rolls that commit back.
TEST(RedoFaultTest, FailedRecordWriteIsRolledBackByTheNextOpen) {
  TempDir dir;
  RedoFault fault(RedoStep::kWrite, Status::io_error("injected: write failed"), true);
  auto e = open_then_arm(fault, dir.path());
  ASSERT_TRUE(e);
  Status failed = put(*e, "b", "2");
  EXPECT_EQ(failed.code(), Code::kIOError) << failed.to_string();
  e = reopen(std::move(e), dir.path());
  ASSERT_TRUE(e);
  EXPECT_EQ(testing::kv_read(*e, kRef, "b"), "(absent)");
}

// redo.h (7), committer.h (9): once the log is broken no commit is taken and
// no turn runs, not even one that only reads: data.mdb may hold a commit
// whose record was never written.
TEST(RedoFaultTest, BrokenLogRunsNoTurnUntilReopened) {
  TempDir dir;
  RedoFault fault(RedoStep::kWrite, Status::io_error("injected: write failed"), true);
  auto e = open_then_arm(fault, dir.path());
  ASSERT_TRUE(e);
  ASSERT_FALSE(put(*e, "b", "2").is_ok());
  Status write = put(*e, "c", "3");
  EXPECT_NE(write.message().find("is broken"), std::string::npos) << write.to_string();
  std::string seen = "(not run)";
  Status read = e->run(kRef, [&](Context& ctx) -> Status {
    CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().get("b"));
    seen = v ? *v : "(absent)";
    return Status::ok();
  });
  EXPECT_FALSE(read.is_ok()) << "a read of the unlogged commit was released: " << seen;
  EXPECT_NE(read.message().find("until the engine is reopened"), std::string::npos)
      << read.to_string();
  Status closed = e->close();  // the log's records stay for the reopen to recover
  EXPECT_EQ(closed.code(), Code::kIOError) << closed.to_string();
  e = reopen(std::move(e), dir.path());
  ASSERT_TRUE(e);
  EXPECT_EQ(testing::kv_read(*e, kRef, "c"), "(absent)");
}

// redo.h (1), (7): a failed sync fails the turn waiting for it (its record
// may or may not be on the disk) and breaks the log; what was acknowledged
// before is recovered.
TEST(RedoFaultTest, FailedSyncFailsTheWaitingTurn) {
  TempDir dir;
  RedoFault fault(RedoStep::kSync, Status::io_error("injected: fdatasync failed"), false);
  auto e = open_then_arm(fault, dir.path());
  ASSERT_TRUE(e);
  Status failed = put(*e, "b", "2");
  EXPECT_EQ(failed.code(), Code::kIOError) << failed.to_string();
  EXPECT_FALSE(put(*e, "c", "3").is_ok());
  e = reopen(std::move(e), dir.path());
  ASSERT_TRUE(e);
  EXPECT_EQ(testing::kv_read(*e, kRef, "c"), "(absent)");
}

// redo.h (3), (7): a checkpoint that fails (its data sync or slot write)
// breaks the log; every turn acknowledged before is recovered, from the
// previous checkpoint and the records after it.
TEST(RedoFaultTest, FailedCheckpointBreaksTheLogAndLosesNoAcknowledgedTurn) {
  TempDir dir;
  RedoFault fault(RedoStep::kCheckpoint, Status::io_error("injected: data sync failed"), false);
  auto e = open_then_arm(fault, dir.path());
  ASSERT_TRUE(e);
  // 16 KiB a record: a checkpoint begins within the first 17 turns, and
  // fails on its thread; bounded by kMaxTurns whatever happens.
  constexpr int kMaxTurns = 200;
  const std::string value(16 * 1024, 'v');
  int acknowledged = 0;
  bool broke = false;
  for (int i = 1; i <= kMaxTurns && !broke; ++i) {
    if (put(*e, "n" + std::to_string(i), value).is_ok()) {
      acknowledged = i;
    } else {
      broke = true;
    }
  }
  ASSERT_TRUE(broke) << "no turn failed after the checkpoint failed";
  Status s = e->core()->store().redo()->status();
  EXPECT_NE(s.message().find("checkpoint"), std::string::npos) << s.to_string();
  e = reopen(std::move(e), dir.path());
  ASSERT_TRUE(e);
  for (int i = 1; i <= acknowledged; ++i) {
    EXPECT_EQ(testing::kv_read(*e, kRef, "n" + std::to_string(i)), value) << i;
  }
}

// store.h (5), committer.h (6): without the log, the committer's own
// fdatasync of data.mdb (here at the end of a maintenance task) that fails
// stops the engine: no turn runs, not even one that only reads, until it is
// reopened; what was acknowledged before is there.
TEST(DataSyncFaultTest, FailedSyncOfDataMdbStopsTheEngineUntilReopened) {
  TempDir dir;
  std::atomic<bool> armed{false};
  Options o = options_at(dir.path());
  o.redo_log = false;
  o.data_sync_fault_hook = [&armed] {
    return armed.load() ? Status::io_error("injected: fdatasync failed") : Status::ok();
  };
  auto e = testing::open_engine(o);
  ASSERT_TRUE(e);
  ASSERT_TRUE(put(*e, "a", "1").is_ok());
  armed = true;
  Status pruned = e->core()->prune_history_now();
  EXPECT_EQ(pruned.code(), Code::kIOError) << pruned.to_string();
  armed = false;  // the disk is healthy again; the engine stays stopped
  Status write = put(*e, "b", "2");
  EXPECT_NE(write.message().find("reopen the directory"), std::string::npos) << write.to_string();
  Status read = e->run(kRef, [](Context& ctx) { return ctx.kv().get("a").status(); });
  EXPECT_NE(read.message().find("data.mdb' (fdatasync)"), std::string::npos) << read.to_string();
  TempDir copy;
  Status backup = e->backup(copy.path() + "/backup");
  EXPECT_EQ(backup.code(), Code::kIOError) << backup.to_string();
  Status closed = e->close();
  EXPECT_EQ(closed.code(), Code::kIOError) << closed.to_string();
  e.reset();
  o.data_sync_fault_hook = nullptr;
  e = testing::open_engine(o);
  ASSERT_TRUE(e);
  EXPECT_EQ(testing::kv_read(*e, kRef, "a"), "1");
  EXPECT_EQ(testing::kv_read(*e, kRef, "b"), "(absent)");
}

// Holds the redo log's next segment sync once armed, until release() says
// how it ends.
class SyncGate {
 public:
  RedoFaultHook hook() {
    return [this](RedoStep step) {
      if (step != RedoStep::kSync) return Status::ok();
      std::unique_lock<std::mutex> lock(mutex_);
      if (!armed_) return Status::ok();
      armed_ = false;
      held_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return verdict_.has_value(); });
      return *verdict_;
    };
  }
  void arm() {
    std::lock_guard<std::mutex> lock(mutex_);
    armed_ = true;
  }
  bool wait_held() {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, testing::kEventuallyWait, [this] { return held_; });
  }
  void release(Status verdict) {
    std::lock_guard<std::mutex> lock(mutex_);
    verdict_ = std::move(verdict);
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool armed_ = false;
  bool held_ = false;
  std::optional<Status> verdict_;
};

// b = 2 is committed to LMDB and its record written, and the sync that makes
// it durable is held; current_bookmark is asked meanwhile. Null on a failed setup.
struct HeldCommit {
  // A checkpoint (an idle one, after 1 s) that switches segments waits for the
  // syncer (redo.h (4)), so it would stall the committer behind the held sync.
  HeldCommit() { store::RedoLog::hold_checkpoints_for_tests(true); }
  ~HeldCommit() {
    gate.release(Status::ok());  // a failed check never leaves the sync held
    store::RedoLog::hold_checkpoints_for_tests(false);
  }
  SyncGate gate;
  std::unique_ptr<Engine> engine;
  std::future<Status> turn;
  std::future<Result<std::string>> bookmark;
};
// The record cache (what the engine's bookmarks read) holds the object's commit `seq`.
bool cache_holds(Engine& e, uint64_t seq) {
  auto txn = e.core()->store().begin_read();
  if (!txn.is_ok()) return false;
  auto rec = e.core()->records().get(*txn, kRef.id);
  return rec.is_ok() && *rec && (*rec)->last_seq == seq;
}

std::unique_ptr<HeldCommit> hold_commit_then_ask_bookmark(const std::string& dir,
                                                           CommitHook commit_hook = {}) {
  auto h = std::make_unique<HeldCommit>();
  Options o = options_at(dir);
  o.redo_fault_hook = h->gate.hook();
  o.commit_hook = std::move(commit_hook);
  h->engine = testing::open_engine(o);
  if (!h->engine || !put(*h->engine, "a", "1").is_ok()) return nullptr;
  h->gate.arm();
  h->turn = h->engine->submit(kRef, [](Context& ctx) { return ctx.kv().put("b", "2"); });
  // The syncer may reach the held sync before the committer publishes b's
  // record (committer.h (7)).
  Engine* e = h->engine.get();
  if (!h->gate.wait_held() || !testing::eventually([e] { return cache_holds(*e, 2); })) {
    return nullptr;
  }
  h->bookmark = std::async(std::launch::async, [e] { return e->current_bookmark(kRef); });
  return h;
}

// engine_core.h: a bookmark names a durable commit only. The record cache
// holds b's commit before its sync (committer.h (7), (9)); the bookmark
// waits for that sync, then names it.
TEST(RedoFaultTest, BookmarkWaitsForItsCommitToBeDurable) {
  TempDir dir;
  auto h = hold_commit_then_ask_bookmark(dir.path());
  ASSERT_TRUE(h);
  EXPECT_EQ(h->bookmark.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout)
      << "a bookmark named a commit whose sync had not returned";
  h->gate.release(Status::ok());
  ASSERT_EQ(h->bookmark.wait_for(testing::kEventuallyWait), std::future_status::ready);
  Result<std::string> text = h->bookmark.get();
  ASSERT_TRUE(text.is_ok()) << text.status().to_string();
  auto b = history::Bookmark::parse(*text);
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(b->seq, 2u);
  EXPECT_TRUE(h->turn.get().is_ok());
}

// ... and a commit whose sync failed is never named: the bookmark fails with it.
TEST(RedoFaultTest, BookmarkOfACommitWhoseSyncFailedIsRefused) {
  TempDir dir;
  auto h = hold_commit_then_ask_bookmark(dir.path());
  ASSERT_TRUE(h);
  // Time for the bookmark to be asked (and, were it not held, answered) first.
  (void)h->bookmark.wait_for(std::chrono::milliseconds(200));
  h->gate.release(Status::io_error("injected: fdatasync failed"));
  ASSERT_EQ(h->bookmark.wait_for(testing::kEventuallyWait), std::future_status::ready);
  Result<std::string> text = h->bookmark.get();
  // IOError, or Aborted when its batch met the object's reset first.
  EXPECT_FALSE(text.is_ok()) << "named " << *text;
  EXPECT_EQ(h->turn.get().code(), Code::kIOError);
}

// engine_core.h: on the committer's own thread (the commit hook here; a
// call_async reply runs there too) the bookmark of a commit still in flight is
// refused with Deadlock: waiting would wait for that very thread.
TEST(RedoFaultTest, BookmarkOnTheCommitterThreadIsRefusedNotAHang) {
  TempDir dir;
  std::atomic<Engine*> ask_from_hook{nullptr};
  std::promise<Status> seen;
  std::atomic<bool> asked{false};
  auto h = hold_commit_then_ask_bookmark(dir.path(), [&](const CommitInfo&) {
    Engine* e = ask_from_hook.load();
    if (e != nullptr && !asked.exchange(true)) seen.set_value(e->current_bookmark(kRef).status());
    return Status::ok();
  });
  ASSERT_TRUE(h);
  ask_from_hook.store(h->engine.get());
  // Another object's commit runs the hook while b's commit waits for its sync.
  auto other = h->engine->submit(ObjectRef::named("Redo", "other"),
                                 [](Context& ctx) { return ctx.kv().put("x", "1"); });
  auto status = seen.get_future();
  ASSERT_EQ(status.wait_for(testing::kEventuallyWait), std::future_status::ready);
  EXPECT_EQ(status.get().code(), Code::kDeadlock);
  h->gate.release(Status::ok());
  ASSERT_EQ(other.wait_for(testing::kEventuallyWait), std::future_status::ready);
  EXPECT_TRUE(other.get().is_ok());
}

// committer.h (4), (9): a failed commit resets its objects only once no
// earlier commit waits for the log. Here b = 2 is committed and its sync held,
// then the object's next commit fails (a full disk at its reserve). A reset
// object reloads its record, which holds b: had b still waited, the object's
// next turn would read b = 2 and reply before b was durable, and b's release
// would come behind the durable_seq the reload took (an invariant failure).
// The failure waits for the syncer rather than syncing beside it: only the
// syncer syncs a segment (redo.h (1)).
TEST(RedoFaultTest, FailedCommitResetsItsObjectOnlyAfterEarlierCommitsAreDurable) {
  TempDir dir;
  // Declared before the engine (in h), which calls the hook until it closes.
  RedoFault full(RedoStep::kReserve, Status::no_space("injected: the disk is full"), true);
  std::mutex mutex;
  std::set<std::thread::id> syncing;  // the threads that ran a segment sync
  auto h = std::make_unique<HeldCommit>();
  Options o = options_at(dir.path());
  o.redo_fault_hook = [&mutex, &syncing, gate = h->gate.hook(),
                       reserve = full.hook()](RedoStep step) {
    if (step == RedoStep::kSync) {
      std::lock_guard<std::mutex> lock(mutex);
      syncing.insert(std::this_thread::get_id());
    }
    CARREL_RETURN_IF_ERROR(reserve(step));
    return gate(step);
  };
  h->engine = testing::open_engine(o);
  ASSERT_TRUE(h->engine);
  Engine& e = *h->engine;
  ASSERT_TRUE(put(e, "a", "1").is_ok());
  h->gate.arm();
  h->turn = e.submit(kRef, [](Context& ctx) { return ctx.kv().put("b", "2"); });
  ASSERT_TRUE(h->gate.wait_held());
  ASSERT_TRUE(testing::eventually([&] { return cache_holds(e, 2); }));
  full.arm();
  auto failed = e.submit(kRef, [](Context& ctx) { return ctx.kv().put("c", "3"); });
  EXPECT_EQ(failed.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout)
      << "the failed commit reset the object while b still waited for its sync";
  h->gate.release(Status::ok());
  ASSERT_EQ(failed.wait_for(testing::kEventuallyWait), std::future_status::ready);
  EXPECT_EQ(failed.get().code(), Code::kNoSpace);
  ASSERT_EQ(h->turn.wait_for(std::chrono::seconds(0)), std::future_status::ready)
      << "b was not released before the failure that followed it";
  EXPECT_TRUE(h->turn.get().is_ok());
  std::string seen = "(not run)";
  Status read = e.run(kRef, [&](Context& ctx) -> Status {
    CARREL_ASSIGN_OR_RETURN(auto v, ctx.kv().get("b"));
    seen = v ? *v : "(absent)";
    return Status::ok();
  });
  EXPECT_TRUE(read.is_ok()) << read.to_string();
  EXPECT_EQ(seen, "2");
  EXPECT_TRUE(put(e, "d", "4").is_ok());
  EXPECT_EQ(testing::kv_read(e, kRef, "c"), "(absent)");
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_EQ(syncing.size(), 1u) << "a segment was synced by more than one thread";
}

// turn.h: a restore waits for its commit to be durable before its object
// reloads, even when no spare worker may be started for the wait
// (workers_blocked_extra_max): answering Busy with the commit in flight let
// the object's next turn read the restored state and reply before it was
// durable, and the commit's release then broke the seq-order invariant.
TEST(RedoFaultTest, RestoreWaitsForItsCommitWithNoWorkerToSpare) {
  TempDir dir;
  auto h = std::make_unique<HeldCommit>();
  Options o = options_at(dir.path());
  o.redo_fault_hook = h->gate.hook();
  o.workers_blocked_extra_max = 0;
  h->engine = testing::open_engine(o);
  ASSERT_TRUE(h->engine);
  Engine& e = *h->engine;
  ASSERT_TRUE(put(e, "a", "1").is_ok());
  Result<std::string> first = e.current_bookmark(kRef);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  ASSERT_TRUE(put(e, "a", "2").is_ok());
  h->gate.arm();  // the restore's sync is held
  auto restored = std::async(std::launch::async, [&] { return e.restore(kRef, *first); });
  ASSERT_TRUE(h->gate.wait_held());
  EXPECT_EQ(restored.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout)
      << "the restore answered before its commit was durable";
  h->gate.release(Status::ok());
  ASSERT_EQ(restored.wait_for(testing::kEventuallyWait), std::future_status::ready);
  Result<std::string> undo = restored.get();
  EXPECT_TRUE(undo.is_ok()) << undo.status().to_string();
  EXPECT_EQ(testing::kv_read(e, kRef, "a"), "1");
}

// ---- how groups gather while the log syncs (committer.h (9)) -------------

// Holds each armed sync of the redo log's segment until its release: unlike
// SyncGate, it may be armed again.
class SyncHolds {
 public:
  RedoFaultHook hook() {
    return [this](RedoStep step) {
      if (step != RedoStep::kSync) return Status::ok();
      std::unique_lock<std::mutex> lock(mutex_);
      if (armed_ == held_) return Status::ok();
      const int mine = ++held_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return released_ >= mine; });
      return Status::ok();
    };
  }
  void arm() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++armed_;
  }
  // The n-th armed sync is being held.
  bool wait_held(int n) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, testing::kEventuallyWait, [&] { return held_ >= n; });
  }
  void release_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = held_ = armed_;
    cv_.notify_all();
  }
  void release(int n) {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = n;
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int armed_ = 0;
  int held_ = 0;
  int released_ = 0;
};

// The turns of each commit, as the commit hook saw them.
class GroupSizes {
 public:
  CommitHook hook() {
    return [this](const CommitInfo& info) {
      std::lock_guard<std::mutex> lock(mutex_);
      sizes_.push_back(info.turns);
      cv_.notify_all();
      return Status::ok();
    };
  }
  // The n-th commit's turns; 0 when it did not come in time.
  size_t wait_for(size_t n, std::chrono::milliseconds within = testing::kEventuallyWait) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!cv_.wait_for(lock, within, [&] { return sizes_.size() >= n; })) return 0;
    return sizes_[n - 1];
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return sizes_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<size_t> sizes_;
};

// Commits a group of three while a sync is held, so that the next group
// gathers up to three; `holds` then holds the sync of that group (the
// third hold). Null on a failed setup.
struct GatherSetup {
  GatherSetup() { store::RedoLog::hold_checkpoints_for_tests(true); }
  ~GatherSetup() {
    holds.release_all();  // a failed check never leaves a sync held
    for (auto& t : turns) {
      if (t.valid()) (void)t.wait_for(testing::kEventuallyWait);
    }
    engine.reset();
    store::RedoLog::hold_checkpoints_for_tests(false);
  }
  // Lets every held sync go; then every turn submitted must have succeeded.
  void release_and_expect_every_turn_ok() {
    holds.release_all();
    for (auto& t : turns) {
      ASSERT_EQ(t.wait_for(testing::kEventuallyWait), std::future_status::ready);
      EXPECT_TRUE(t.get().is_ok());
    }
  }
  std::future<Status> submit(int i) {
    return engine->submit(ObjectRef::named("Gather", std::to_string(i)),
                          [](Context& ctx) { return ctx.kv().put("k", "v"); });
  }
  TempDir dir;
  SyncHolds holds;
  GroupSizes groups;
  std::unique_ptr<Engine> engine;
  std::vector<std::future<Status>> turns;
  size_t first_after = 0;  // the number of the commit after the group of three
};

std::unique_ptr<GatherSetup> commit_a_group_of_three() {
  auto g = std::make_unique<GatherSetup>();
  Options o = options_at(g->dir.path());
  o.redo_fault_hook = g->holds.hook();
  o.commit_hook = g->groups.hook();
  g->engine = testing::open_engine(o);
  if (!g->engine) return nullptr;
  const size_t before = g->groups.count();
  g->holds.arm();
  g->turns.push_back(g->submit(0));  // its sync is held
  if (!g->holds.wait_held(1) || g->groups.wait_for(before + 1) != 1) return nullptr;
  g->turns.push_back(g->submit(1));  // commits alone, and its record waits for a sync
  if (g->groups.wait_for(before + 2) != 1) return nullptr;
  for (int i = 2; i <= 4; ++i) g->turns.push_back(g->submit(i));  // these gather
  detail::Committer& committer = g->engine->core()->committer();
  if (!testing::eventually([&] { return committer.queued() == 3; })) return nullptr;
  g->holds.arm();
  g->holds.release(1);  // the next sync begins with turn 1 and is held
  if (!g->holds.wait_held(2) || g->groups.wait_for(before + 3) != 3) return nullptr;
  g->holds.arm();
  g->holds.release(2);  // the sync of the group of three begins, and is held
  if (!g->holds.wait_held(3)) return nullptr;
  g->first_after = before + 4;
  return g;
}

// While the sync runs, a group gathers until as many batches wait as the
// last group held, rather than committing the first one that arrives.
TEST(RedoGroupTest, WhileASyncRunsTheNextGroupGathersAsManyAsTheLastOne) {
  auto g = commit_a_group_of_three();
  ASSERT_TRUE(g);
  g->turns.push_back(g->submit(5));
  EXPECT_EQ(g->groups.wait_for(g->first_after, std::chrono::milliseconds(200)), 0u)
      << "a lone batch was committed while the sync ran and fewer waited than the last group";
  g->turns.push_back(g->submit(6));
  g->turns.push_back(g->submit(7));
  EXPECT_EQ(g->groups.wait_for(g->first_after), 3u);
  g->release_and_expect_every_turn_ok();
}

// ... and the gathering lasts no longer than the sync: when it returns, what
// waits commits, however few (a liveness rule: it held before the gathering
// too).
TEST(RedoGroupTest, TheGatheringEndsWhenTheSyncReturns) {
  auto g = commit_a_group_of_three();
  ASSERT_TRUE(g);
  g->turns.push_back(g->submit(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  g->holds.release(3);
  EXPECT_EQ(g->groups.wait_for(g->first_after), 1u);
  g->release_and_expect_every_turn_ok();
}

// ... and while it gathers, what an earlier sync made durable is released at
// once, not held until the next sync returns.
void expect_covered_released_while_gathering(GatherSetup* g) {
  // Turns 5-7 fill a group (3) that commits while the sync of 2-4 is held.
  for (int i = 5; i <= 7; ++i) g->turns.push_back(g->submit(i));
  ASSERT_EQ(g->groups.wait_for(g->first_after), 3u);
  detail::Committer& committer = g->engine->core()->committer();
  g->turns.push_back(g->submit(8));  // alone: it gathers behind the next sync
  ASSERT_TRUE(testing::eventually([&] { return committer.queued() == 1; }));
  g->holds.arm();
  g->holds.release(3);  // 2-4 are durable; the sync of 5-7 begins, and is held
  ASSERT_TRUE(g->holds.wait_held(4));
  // g->turns[2] is turn 2's. Its release takes milliseconds; held, it came
  // ~10 s later.
  EXPECT_EQ(g->turns[2].wait_for(std::chrono::seconds(3)), std::future_status::ready)
      << "turn 2's sync returned, but its reply waits for the next one";
  g->release_and_expect_every_turn_ok();
}

TEST(RedoGroupTest, WhatASyncCoveredIsReleasedWhileTheNextGroupGathers) {
  auto g = commit_a_group_of_three();
  ASSERT_TRUE(g);
  expect_covered_released_while_gathering(g.get());
}

// ... also when the syncs' news came between two rounds of the committer (the
// sync of turns 2-4 returned and that of 5-7 began while it was not waiting):
// the next round must not take it for handled and gather without releasing.
// (The test above failed so under TSan, and ~1 run in 300 in a debug build.)
TEST(RedoGroupTest, WhatASyncCoveredBetweenTwoRoundsIsReleasedToo) {
  detail::Committer::delay_rounds_for_tests(20);
  auto g = commit_a_group_of_three();
  detail::Committer::delay_rounds_for_tests(0);  // read at construction
  ASSERT_TRUE(g);
  expect_covered_released_while_gathering(g.get());
}

}  // namespace
}  // namespace carrel
