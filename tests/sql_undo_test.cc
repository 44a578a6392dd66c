// SQL pages in the history log: which pages a small write rewrites.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "carrel/carrel.h"
#include "engine/history/undo.h"
#include "engine/store/checksum.h"
#include "engine/store/keys.h"
#include "tests/store_probe.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

using store::Db;

struct PageUndo {
  uint32_t page_no = 0;  // as stored: SQLite's page number less one
  size_t bytes = 0;      // of the entry's value
};

class SqlUndoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.dir = dir_.path();
    options_.workers = 1;
    open();
  }
  void TearDown() override {
    if (engine_) ASSERT_TRUE(engine_->close().is_ok());
  }
  void open() {
    auto e = Engine::open(options_);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    engine_ = std::move(e).value();
  }
  void close() {
    ASSERT_TRUE(engine_->close().is_ok());
    engine_.reset();
  }
  Status sql(const std::string& query, const std::vector<SqlValue>& args = {}) {
    return engine_->run(ref_,
                        [&](Context& ctx) { return ctx.sql().exec_values(query, args).status(); });
  }
  Status insert_row(int64_t id) {
    return sql("INSERT INTO t(id, v) VALUES (?, ?)", {id, Blob{std::string(100, 'v')}});
  }
  // The newest log record, and its entries for SQL pages.
  history::LogRecord last_record() {
    auto log = testing::scan_db(*engine_, Db::kHistory);
    EXPECT_FALSE(log.empty());
    if (log.empty()) return {};
    auto rec = history::LogRecord::decode(log.rbegin()->second);
    EXPECT_TRUE(rec.is_ok()) << rec.status().to_string();
    return rec.is_ok() ? *rec : history::LogRecord{};
  }
  std::vector<PageUndo> last_page_undo() {
    std::vector<PageUndo> out;
    for (const history::UndoEntry& e : last_record().undo) {
      if (e.db != Db::kPages) continue;
      out.push_back({store::read_u32(e.key, store::kIdBytes), e.before ? e.before->size() : 0});
    }
    return out;
  }
  std::set<uint32_t> pages_of(const std::vector<PageUndo>& undo) {
    std::set<uint32_t> out;
    for (const PageUndo& p : undo) out.insert(p.page_no);
    return out;
  }
  Result<int64_t> count_rows() {
    int64_t n = -1;
    Status st = engine_->run(ref_, [&](Context& ctx) {
      CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec("SELECT count(*) FROM t"));
      CARREL_ASSIGN_OR_RETURN(auto row, c.one());
      CARREL_ASSIGN_OR_RETURN(n, row.get_int(0));
      return Status::ok();
    });
    if (!st.is_ok()) return st;
    return n;
  }

  testing::TempDir dir_;
  Options options_;
  std::unique_ptr<Engine> engine_;
  ObjectRef ref_ = ObjectRef::named("Doc", "pages");
};

// A one-row INSERT into a leaf with room rewrites that leaf only: not page 1
// (locking_mode=EXCLUSIVE bumps the file change counter once per connection,
// not per commit; the in-header page count changes only when the file grows),
// and nothing else.
TEST_F(SqlUndoTest, OneRowInsertRewritesOnlyTheTableLeaf) {
  ASSERT_TRUE(sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)").is_ok());
  ASSERT_TRUE(insert_row(1).is_ok());
  ASSERT_TRUE(insert_row(2).is_ok());
  auto undo = last_page_undo();
  EXPECT_EQ(pages_of(undo), (std::set<uint32_t>{1})) << undo.size() << " pages";
}

TEST_F(SqlUndoTest, OneRowInsertIntoAnIndexedTableRewritesTheTableLeafAndTheIndexLeaf) {
  ASSERT_TRUE(sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB, k INTEGER)").is_ok());
  ASSERT_TRUE(sql("CREATE INDEX t_k ON t(k)").is_ok());
  ASSERT_TRUE(sql("INSERT INTO t(id, v, k) VALUES (1, x'00', 10)").is_ok());
  ASSERT_TRUE(
      sql("INSERT INTO t(id, v, k) VALUES (2, ?, 5)", {Blob{std::string(100, 'v')}}).is_ok());
  auto undo = last_page_undo();
  EXPECT_EQ(pages_of(undo), (std::set<uint32_t>{1, 2})) << undo.size() << " pages";
}

// Rewriting a page with the bytes it holds dirties nothing and logs nothing
// (group_writer.h (6)): an UPDATE that sets a value to itself.
TEST_F(SqlUndoTest, UnchangedPagesAreNotLogged) {
  ASSERT_TRUE(sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)").is_ok());
  ASSERT_TRUE(insert_row(1).is_ok());
  const size_t records = testing::scan_db(*engine_, Db::kHistory).size();
  ASSERT_TRUE(sql("UPDATE t SET v = v WHERE id = 1").is_ok());
  // The turn may still commit (its counters), but no page is in its undo.
  if (testing::scan_db(*engine_, Db::kHistory).size() > records) {
    EXPECT_TRUE(last_page_undo().empty());
  }
}

}  // namespace
}  // namespace carrel
