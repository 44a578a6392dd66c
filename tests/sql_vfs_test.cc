// The carrel VFS and SqlDatabase's turn lifecycle over an in-memory page set.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "engine/sql/sql_database.h"
#include "engine/sql/vfs.h"
#include "tests/memory_page_source.h"
#include "tests/sql_test_util.h"
#include "tests/test_util.h"

namespace carrel::sql {
namespace {

using testing::exec_int;
using testing::integrity;
using testing::MemoryPageSource;
using testing::must_exec;
using testing::open_sql;

// A raw SQLite connection on the carrel VFS, to call the file methods directly.
class RawFile {
 public:
  explicit RawFile(PageSource* pages) : binding_{pages, Status::ok()}, registration_(&binding_) {
    EXPECT_TRUE(register_vfs().is_ok());
    EXPECT_EQ(sqlite3_open_v2(registration_.file_name().c_str(), &db_,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, kVfsName),
              SQLITE_OK);
    EXPECT_EQ(sqlite3_file_control(db_, "main", SQLITE_FCNTL_FILE_POINTER, &file_), SQLITE_OK);
  }
  ~RawFile() { sqlite3_close(db_); }
  int read(std::string* buf, int amount, int64_t offset) {
    buf->assign(amount, 'x');
    return file_->pMethods->xRead(file_, buf->data(), amount, offset);
  }
  int write(std::string_view data, int64_t offset) {
    return file_->pMethods->xWrite(file_, data.data(), static_cast<int>(data.size()), offset);
  }
  int64_t size() {
    sqlite3_int64 n = -1;
    EXPECT_EQ(file_->pMethods->xFileSize(file_, &n), SQLITE_OK);
    return n;
  }
  int truncate(int64_t size) { return file_->pMethods->xTruncate(file_, size); }
  PageFileBinding& binding() { return binding_; }

 private:
  PageFileBinding binding_;
  PageFileRegistration registration_;
  sqlite3* db_ = nullptr;
  sqlite3_file* file_ = nullptr;
};

// vfs.h invariant 1: reads and writes are decomposed by page.
TEST(SqlVfs, ReadsAndWritesAreDecomposedByPage) {
  MemoryPageSource pages(1024);
  RawFile f(&pages);
  std::string buf;
  EXPECT_EQ(f.read(&buf, 100, 0), SQLITE_IOERR_SHORT_READ);  // the header of an empty file
  EXPECT_EQ(buf, std::string(100, '\0'));
  ASSERT_EQ(f.write(std::string(1024, 'a'), 0), SQLITE_OK);
  ASSERT_EQ(f.write(std::string(1024, 'b'), 1024), SQLITE_OK);
  EXPECT_EQ(f.size(), 2048);
  EXPECT_EQ(f.read(&buf, 100, 1000), SQLITE_OK);  // spans two pages
  EXPECT_EQ(buf, std::string(24, 'a') + std::string(76, 'b'));
  ASSERT_EQ(f.write("XYZ", 1022), SQLITE_OK);  // unaligned: read-modify-write of two pages
  EXPECT_EQ(pages.contents().pages.at(0).substr(1020), "aaXY");
  EXPECT_EQ(pages.contents().pages.at(1).substr(0, 2), "Zb");
  EXPECT_EQ(f.read(&buf, 100, 2000), SQLITE_IOERR_SHORT_READ);  // past the end: zero-filled
  EXPECT_EQ(buf, std::string(48, 'b') + std::string(52, '\0'));
  ASSERT_EQ(f.truncate(1024), SQLITE_OK);
  EXPECT_EQ(pages.page_count(), 1u);
  EXPECT_EQ(f.size(), 1024);
}

// vfs.h invariant 3: the PageSource's Status is kept for the owner.
TEST(SqlVfs, PageSourceFailureIsKeptInTheBinding) {
  MemoryPageSource pages(1024);
  RawFile f(&pages);
  ASSERT_EQ(f.write(std::string(1024, 'a'), 0), SQLITE_OK);
  pages.fail_reads = Status::io_error("disk unplugged");
  std::string buf;
  EXPECT_EQ(f.read(&buf, 1024, 0), SQLITE_IOERR_READ);
  EXPECT_EQ(f.binding().io_error.message(), "disk unplugged");
  pages.fail_writes = Status::no_space("map full");
  EXPECT_EQ(f.write(std::string(1024, 'a'), 1024), SQLITE_FULL);
  EXPECT_EQ(f.binding().io_error.code(), Code::kNoSpace);
}

// vfs.h invariant 2.
TEST(SqlVfs, UnregisteredFileNameCannotBeOpened) {
  ASSERT_TRUE(register_vfs().is_ok());
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2("carrel-page-file-unknown", &db, SQLITE_OPEN_READWRITE, kVfsName);
  EXPECT_EQ(rc, SQLITE_CANTOPEN);
  sqlite3_close(db);
}

TEST(SqlDatabase, CommittedDataSurvivesReopen) {
  MemoryPageSource pages(1024);
  {
    auto db = open_sql(&pages);
    ASSERT_TRUE(db);
    must_exec(db.get(), "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT)");
    must_exec(db.get(), "INSERT INTO t(b) VALUES (?)", {std::string("hello")});
    ASSERT_TRUE(db->commit_turn().is_ok());
    EXPECT_FALSE(db->in_turn());
  }
  for (const auto& [n, page] : pages.contents().pages) EXPECT_EQ(page.size(), 1024u) << n;
  auto db = open_sql(&pages);
  ASSERT_TRUE(db);
  EXPECT_EQ(exec_int(db.get(), "PRAGMA page_size"), 1024);
  EXPECT_EQ(must_exec(db.get(), "SELECT b FROM t").one()->get_text(0).value(), "hello");
  EXPECT_EQ(integrity(db.get()), "ok");
}

// sql_database.h invariant 2: with room in the cache nothing is written
// before COMMIT, and COMMIT writes every dirty page.
TEST(SqlDatabase, PagesAreWrittenAtCommitWhenTheCacheHasRoom) {
  MemoryPageSource pages(1024);
  SqlLimits limits;
  limits.cache_pages = 2000;
  auto db = open_sql(&pages, limits);
  ASSERT_TRUE(db);
  must_exec(db.get(), "CREATE TABLE t(a INTEGER PRIMARY KEY, b BLOB)");
  ASSERT_TRUE(db->commit_turn().is_ok());
  const uint64_t writes_before = pages.writes;
  for (int i = 0; i < 200; ++i) {
    must_exec(db.get(), "INSERT INTO t(b) VALUES (randomblob(300))");
  }
  EXPECT_EQ(pages.writes, writes_before);
  ASSERT_TRUE(db->commit_turn().is_ok());
  EXPECT_GT(pages.writes, writes_before + 50);
  db.reset();
  auto again = open_sql(&pages);
  EXPECT_EQ(exec_int(again.get(), "SELECT count(*) FROM t"), 200);
}

void fill(SqlDatabase* db, int rows, int blob_bytes) {
  for (int i = 0; i < rows; ++i) {
    must_exec(db, "INSERT INTO t(b, c) VALUES (randomblob(?), ?)",
              {int64_t{blob_bytes}, std::string(50, 'a' + i % 26)});
  }
}

// sql_database.h invariant 3: with a tiny cache SQLite spills pages to the
// page set mid-turn; ROLLBACK must write the originals back and truncate.
TEST(SqlDatabase, RollbackRestoresThePageSetAfterCacheSpills) {
  MemoryPageSource pages(1024);
  SqlLimits limits;
  limits.cache_pages = 10;
  auto db = open_sql(&pages, limits);
  ASSERT_TRUE(db);
  must_exec(db.get(), "CREATE TABLE t(a INTEGER PRIMARY KEY, b BLOB, c TEXT)");
  must_exec(db.get(), "CREATE INDEX t_c ON t(c)");
  fill(db.get(), 200, 500);
  ASSERT_TRUE(db->commit_turn().is_ok());
  const MemoryPageSource::Contents before = pages.contents();
  const uint64_t writes_before = pages.writes;

  ASSERT_TRUE(db->begin_turn().is_ok());
  fill(db.get(), 300, 3000);  // each blob spans several pages
  must_exec(db.get(), "UPDATE t SET c = 'changed' WHERE a % 3 = 0");
  must_exec(db.get(), "DELETE FROM t WHERE a % 5 = 0");
  EXPECT_GT(pages.writes, writes_before) << "the cache never spilled; the test proves nothing";
  EXPECT_GT(pages.page_count(), before.page_count);
  db->rollback_turn();

  EXPECT_FALSE(db->poisoned());
  EXPECT_TRUE(pages.contents() == before);
  EXPECT_EQ(exec_int(db.get(), "SELECT count(*) FROM t"), 200);
  EXPECT_EQ(integrity(db.get()), "ok");
  db->rollback_turn();
  EXPECT_TRUE(pages.contents() == before);
}

TEST(SqlDatabase, SavepointsNestAndRollBack) {
  MemoryPageSource pages(1024);
  auto db = open_sql(&pages);
  ASSERT_TRUE(db);
  must_exec(db.get(), "CREATE TABLE t(a)");
  must_exec(db.get(), "INSERT INTO t VALUES (1)");
  ASSERT_TRUE(db->savepoint(1).is_ok());
  must_exec(db.get(), "INSERT INTO t VALUES (2)");
  ASSERT_TRUE(db->savepoint(2).is_ok());
  must_exec(db.get(), "INSERT INTO t VALUES (3)");
  ASSERT_TRUE(db->rollback_to(2).is_ok());
  EXPECT_EQ(exec_int(db.get(), "SELECT sum(a) FROM t"), 3);
  EXPECT_EQ(db->rollback_to(2).code(), Code::kInvalidArgument);  // ended by rollback_to
  ASSERT_TRUE(db->release(1).is_ok());
  ASSERT_TRUE(db->savepoint(1).is_ok());
  must_exec(db.get(), "INSERT INTO t VALUES (10)");
  EXPECT_EQ(db->savepoint(1).code(), Code::kInvalidArgument);  // not deeper
  ASSERT_TRUE(db->rollback_to(1).is_ok());
  ASSERT_TRUE(db->commit_turn().is_ok());
  EXPECT_EQ(exec_int(db.get(), "SELECT sum(a) FROM t"), 3);
}

TEST(SqlDatabase, SavepointBeginsTheTurn) {
  MemoryPageSource pages(1024);
  auto db = open_sql(&pages);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->savepoint(1).is_ok());
  EXPECT_TRUE(db->in_turn());
  must_exec(db.get(), "CREATE TABLE t(a)");
  ASSERT_TRUE(db->rollback_to(1).is_ok());
  EXPECT_TRUE(db->in_turn());
  ASSERT_TRUE(db->commit_turn().is_ok());
  EXPECT_EQ(exec_int(db.get(), "SELECT count(*) FROM sqlite_schema"), 0);
}

TEST(SqlDatabase, PageSourceReadErrorReachesTheCaller) {
  MemoryPageSource pages(1024);
  {
    auto db = open_sql(&pages);
    must_exec(db.get(), "CREATE TABLE t(a)");
    must_exec(db.get(), "INSERT INTO t VALUES (1)");
    ASSERT_TRUE(db->commit_turn().is_ok());
  }
  auto db = open_sql(&pages);
  ASSERT_TRUE(db);
  pages.fail_reads = Status::io_error("disk unplugged");
  auto r = db->exec("SELECT * FROM t", {});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kIOError);
  EXPECT_NE(r.status().message().find("disk unplugged"), std::string::npos)
      << r.status().to_string();
  EXPECT_NE(r.status().message().find("Test:a"), std::string::npos);
  pages.fail_reads = Status::ok();
  db->rollback_turn();
  EXPECT_EQ(exec_int(db.get(), "SELECT count(*) FROM t"), 1);

  pages.fail_reads = Status::io_error("disk unplugged");
  auto reopened = SqlDatabase::open(&pages, SqlLimits{}, "Test:b");
  ASSERT_FALSE(reopened.is_ok());
  EXPECT_EQ(reopened.status().code(), Code::kIOError);
  EXPECT_NE(reopened.status().message().find("disk unplugged"), std::string::npos);
}

// sql_database.h invariant 6.
TEST(SqlDatabase, NoSpaceFromThePageSetFailsTheTurn) {
  MemoryPageSource pages(1024);
  SqlLimits limits;
  limits.cache_pages = 10;
  auto db = open_sql(&pages, limits);
  ASSERT_TRUE(db);
  must_exec(db.get(), "CREATE TABLE t(a INTEGER PRIMARY KEY, b BLOB, c TEXT)");
  ASSERT_TRUE(db->commit_turn().is_ok());
  const MemoryPageSource::Contents before = pages.contents();
  pages.fail_writes = Status::no_space("map full");
  Status failure;
  for (int i = 0; i < 200 && failure.is_ok(); ++i) {
    failure = db->exec("INSERT INTO t(b) VALUES (randomblob(2000))", {}).status();
  }
  if (failure.is_ok()) failure = db->commit_turn();
  EXPECT_EQ(failure.code(), Code::kNoSpace) << failure.to_string();
  EXPECT_NE(failure.message().find("map full"), std::string::npos) << failure.to_string();
  pages.fail_writes = Status::ok();
  EXPECT_FALSE(db->in_turn());  // SQLite rolled back the whole transaction on SQLITE_FULL
  if (!db->in_turn()) {
    EXPECT_EQ(db->exec("SELECT 1", {}).status().code(), Code::kAborted);
    EXPECT_EQ(db->commit_turn().code(), Code::kAborted);
  }
  db->rollback_turn();
  ASSERT_FALSE(db->poisoned());
  EXPECT_TRUE(pages.contents() == before);
  EXPECT_EQ(exec_int(db.get(), "SELECT count(*) FROM t"), 0);
  EXPECT_EQ(integrity(db.get()), "ok");
}

TEST(SqlDatabase, StoredPageSizeMustMatchThePageSet) {
  MemoryPageSource big(4096);
  {
    auto db = open_sql(&big);
    must_exec(db.get(), "CREATE TABLE t(a)");
    ASSERT_TRUE(db->commit_turn().is_ok());
  }
  MemoryPageSource small(1024);  // the same bytes, cut into 1 KiB pages
  for (const auto& [n, page] : big.contents().pages) {
    for (uint32_t k = 0; k < 4; ++k) {
      ASSERT_TRUE(
          small.write_page(n * 4 + k, std::string_view(page).substr(k * 1024, 1024)).is_ok());
    }
  }
  auto db = SqlDatabase::open(&small, SqlLimits{}, "Test:a");
  ASSERT_FALSE(db.is_ok());
  EXPECT_EQ(db.status().code(), Code::kCorruption) << db.status().to_string();
}

TEST(SqlDatabase, DatabaseSizeCountsUsedPages) {
  MemoryPageSource pages(1024);
  auto db = open_sql(&pages);
  ASSERT_TRUE(db);
  must_exec(db.get(), "CREATE TABLE t(a INTEGER PRIMARY KEY, b BLOB)");
  const uint64_t empty = db->database_size().value();
  must_exec(db.get(),
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 100) "
            "INSERT INTO t(b) SELECT randomblob(1000) FROM s");
  ASSERT_TRUE(db->commit_turn().is_ok());
  const uint64_t full = db->database_size().value();
  EXPECT_GE(full, empty + 100 * 1000);
  EXPECT_EQ(full % 1024, 0u);
  must_exec(db.get(), "DELETE FROM t");
  ASSERT_TRUE(db->commit_turn().is_ok());
  EXPECT_LT(db->database_size().value(), full / 10);
  EXPECT_EQ(uint64_t{pages.page_count()} * 1024, full);  // free pages stay in the file
}

// vfs.h invariant 1: nothing reaches the file system, even temp tables and
// sorts larger than the cache.
TEST(SqlDatabase, NoFileEverAppears) {
  testing::TempDir dir;
  const std::filesystem::path old_cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  const char* old_tmp = std::getenv("TMPDIR");
  std::string saved_tmp = old_tmp != nullptr ? old_tmp : "";
  setenv("TMPDIR", dir.path().c_str(), 1);
  setenv("SQLITE_TMPDIR", dir.path().c_str(), 1);
  {
    MemoryPageSource pages(1024);
    SqlLimits limits;
    limits.cache_pages = 10;
    auto db = open_sql(&pages, limits);
    ASSERT_TRUE(db);
    must_exec(db.get(), "CREATE TABLE t(a INTEGER PRIMARY KEY, b BLOB, c TEXT)");
    fill(db.get(), 300, 2000);
    must_exec(db.get(), "CREATE TEMP TABLE scratch AS SELECT * FROM t");
    must_exec(db.get(), "SELECT c, length(b) FROM t ORDER BY b DESC");
    must_exec(db.get(), "SELECT DISTINCT b FROM t");
    must_exec(db.get(), "CREATE INDEX t_b ON t(b)");
    ASSERT_TRUE(db->commit_turn().is_ok());
    must_exec(db.get(), "UPDATE t SET c = c || 'x'");
    db->rollback_turn();
    EXPECT_EQ(integrity(db.get()), "ok");
  }
  std::filesystem::current_path(old_cwd);
  if (old_tmp != nullptr)
    setenv("TMPDIR", saved_tmp.c_str(), 1);
  else
    unsetenv("TMPDIR");
  unsetenv("SQLITE_TMPDIR");
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
}  // namespace carrel::sql

namespace carrel::sql {
namespace {

// vfs.h: registration and the file registry are process-wide and thread-safe;
// connections on different threads do not interfere.
TEST(SqlVfs, ConnectionsOnManyThreads) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&ok, t] {
      for (int round = 0; round < 5; ++round) {
        testing::MemoryPageSource pages(1024);
        auto db = SqlDatabase::open(&pages, SqlLimits{}, "Thread:" + std::to_string(t));
        if (!db.is_ok()) return;
        bool good = (*db)->exec("CREATE TABLE t(a)", {}).is_ok();
        for (int i = 0; i < 50 && good; ++i) {
          good = (*db)->exec("INSERT INTO t VALUES (?)", {int64_t{i}}).is_ok();
        }
        good = good && (*db)->commit_turn().is_ok();
        auto sum = (*db)->exec("SELECT sum(a) FROM t", {});
        if (good && sum.is_ok() && sum->rows()[0][0] == SqlValue(int64_t{1225})) ++ok;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(ok.load(), 20);
}

}  // namespace
}  // namespace carrel::sql
