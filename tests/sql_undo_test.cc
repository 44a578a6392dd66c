// SQL pages in the history log: which pages a small write rewrites, how their
// undo is stored (engine/history/undo.h (7): a delta from the page the
// commit left), and a damaged delta found by restore.
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
  bool delta = false;
  size_t bytes = 0;  // of the entry's value
};

class SqlUndoTest : public ::testing::Test {
 public:
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
      out.push_back(
          {store::read_u32(e.key, store::kPrefixBytes), e.delta, e.before ? e.before->size() : 0});
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

// undo.h (7): the leaf changed in place keeps a delta of about the row's
// bytes, not the whole 1 KiB before-image.
TEST_F(SqlUndoTest, InPlaceUndoOfAOneRowInsertIsADeltaOfAboutTheRowsBytes) {
  ASSERT_TRUE(sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)").is_ok());
  ASSERT_TRUE(insert_row(1).is_ok());
  ASSERT_TRUE(insert_row(2).is_ok());
  auto undo = last_page_undo();
  ASSERT_EQ(undo.size(), 1u);
  EXPECT_TRUE(undo[0].delta);
  EXPECT_LT(undo[0].bytes, 200u);
}

// A page that did not exist before the commit has no before-image to diff
// against: its entry says it was absent.
TEST_F(SqlUndoTest, NewPagesKeepAnAbsentBeforeImage) {
  ASSERT_TRUE(sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)").is_ok());
  ASSERT_TRUE(sql("INSERT INTO t(id, v) VALUES (1, ?)", {Blob{std::string(5000, 'v')}}).is_ok());
  size_t absent = 0;
  for (const history::UndoEntry& e : last_record().undo) {
    if (e.db == Db::kPages && !e.before) ++absent;
    if (!e.before) EXPECT_FALSE(e.delta);
  }
  EXPECT_GE(absent, 4u);  // the row's overflow pages
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

// Restore through many SQL commits that change pages in place, grow the file
// and (restoring back) truncate it: every earlier state comes back.
TEST_F(SqlUndoTest, RestoreThroughManyInPlaceCommitsReturnsEachEarlierRowCount) {
  ASSERT_TRUE(sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)").is_ok());
  std::vector<std::string> marks;
  for (int64_t i = 1; i <= 60; ++i) {
    ASSERT_TRUE(insert_row(i).is_ok());
    if (i % 7 == 0) ASSERT_TRUE(sql("UPDATE t SET v = x'01' WHERE id = ?", {i - 3}).is_ok());
    auto b = engine_->current_bookmark(ref_);
    ASSERT_TRUE(b.is_ok());
    marks.push_back(*b);
  }
  size_t deltas = 0;
  for (auto& [key, value] : testing::scan_db(*engine_, Db::kHistory)) {
    auto rec = history::LogRecord::decode(value);
    ASSERT_TRUE(rec.is_ok());
    for (auto& e : rec->undo) deltas += e.delta;
  }
  EXPECT_GT(deltas, 50u);
  for (int64_t want : {30, 5, 59, 1, 44}) {
    auto undo = engine_->restore(ref_, marks[want - 1]);
    ASSERT_TRUE(undo.is_ok()) << undo.status().to_string();
    auto n = count_rows();
    ASSERT_TRUE(n.is_ok()) << n.status().to_string();
    EXPECT_EQ(*n, want);
  }
}

// Rewrites the newest log record's first page delta with `damage`.
template <typename Fn>
uint64_t damage_last_delta(const std::string& dir, Fn damage) {
  store::StoreOptions so;
  so.dir = dir;
  auto st = store::Store::open(so);
  EXPECT_TRUE(st.is_ok()) << st.status().to_string();
  if (!st.is_ok()) return 0;
  MDB_txn* txn = nullptr;
  EXPECT_EQ(mdb_txn_begin((*st)->env(), nullptr, 0, &txn), 0);
  MDB_cursor* c = nullptr;
  EXPECT_EQ(mdb_cursor_open(txn, (*st)->dbi(Db::kHistory), &c), 0);
  MDB_val k, v;
  EXPECT_EQ(mdb_cursor_get(c, &k, &v, MDB_LAST), 0);
  std::string key(store::from_val(k));
  auto rec = history::LogRecord::decode(store::from_val(v));
  EXPECT_TRUE(rec.is_ok());
  mdb_cursor_close(c);
  bool damaged = false;
  for (auto& e : rec->undo) {
    if (!e.delta || damaged) continue;
    damage(&*e.before);
    damaged = true;
  }
  EXPECT_TRUE(damaged) << "no page delta in the newest record";
  std::string value = rec->encode();
  MDB_val nk = store::to_val(key), nv = store::to_val(value);
  EXPECT_EQ(mdb_put(txn, (*st)->dbi(Db::kHistory), &nk, &nv, 0), 0);
  EXPECT_EQ(mdb_txn_commit(txn), 0);
  return store::read_u64(key, 0);
}

// Two one-row commits, the second's page delta damaged while the engine is
// closed, then a restore to the first: it must fail Corruption naming the
// damaged log record, and leave both rows.
template <typename Fn>
Status restore_through_damaged_delta(SqlUndoTest& t, Fn damage) {
  EXPECT_TRUE(t.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)").is_ok());
  EXPECT_TRUE(t.insert_row(1).is_ok());
  auto mark = t.engine_->current_bookmark(t.ref_);
  EXPECT_TRUE(mark.is_ok());
  EXPECT_TRUE(t.insert_row(2).is_ok());
  t.close();
  uint64_t no = damage_last_delta(t.dir_.path(), damage);
  t.open();
  auto r = t.engine_->restore(t.ref_, mark.value_or(""));
  if (r.is_ok()) {
    ADD_FAILURE() << "restore through a damaged delta succeeded";
    return Status::ok();
  }
  EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().to_string();
  EXPECT_NE(r.status().message().find("history log record " + std::to_string(no)),
            std::string::npos)
      << r.status().to_string();
  auto n = t.count_rows();
  EXPECT_TRUE(n.is_ok() && *n == 2);
  return r.status();
}

// undo.h (7): a delta that decodes but rebuilds a page whose checksum fails
// is Corruption naming the log record; nothing is restored.
TEST_F(SqlUndoTest, DamagedDeltaIsCorruptionNamingTheLogRecord) {
  // The last byte of the delta is a byte of its last run, the checksum trailer.
  Status st = restore_through_damaged_delta(*this, [](std::string* d) { d->back() ^= 0x5a; });
  EXPECT_NE(st.message().find("checksum"), std::string::npos) << st.to_string();
}

// A structurally malformed delta (a run past the page) is Corruption from
// the log record's decoder, named by restore.
TEST_F(SqlUndoTest, MalformedDeltaIsCorruptionNamingTheLogRecord) {
  // The first run's offset (bytes 8..11) past the page.
  Status st = restore_through_damaged_delta(*this, [](std::string* d) { (*d)[8] = '\x7f'; });
  EXPECT_NE(st.message().find("SQL page delta"), std::string::npos) << st.to_string();
}

}  // namespace
}  // namespace carrel
