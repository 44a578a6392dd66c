// Point-in-time recovery: bookmarks, restore (and undoing it), retention,
// restarts, and backups under concurrent writes.
//
// Undo invariant (2) of engine/history/undo.h: applying an object's undo
// records newest first down to seq s + 1 yields exactly the state after
// commit s. The randomized test checks it for KV, SQL and alarms together.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "carrel/carrel.h"
#include "engine/history/undo.h"
#include "tests/store_probe.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

constexpr UnixMs kT0 = 1700000000000;
// Alarms in these tests never fall due: only their stored form matters.
constexpr UnixMs kFarFuture = kT0 + int64_t{365} * 24 * 3600 * 1000;

// Everything a user can see of one object.
struct Snapshot {
  Entries kv;
  std::vector<SqlRow> schema;                         // sqlite_master, by name
  std::map<std::string, std::vector<SqlRow>> tables;  // rows by rowid
  std::vector<AlarmEntry> alarms;
  bool operator==(const Snapshot&) const = default;
};

std::string describe(const Snapshot& s) {
  std::string out =
      std::to_string(s.kv.size()) + " keys, " + std::to_string(s.tables.size()) + " tables (";
  for (auto& [t, rows] : s.tables) out += t + ":" + std::to_string(rows.size()) + " ";
  return out + "), " + std::to_string(s.alarms.size()) + " alarms";
}

Result<Snapshot> take_snapshot(Context& ctx) {
  Snapshot s;
  CARREL_ASSIGN_OR_RETURN(s.kv, ctx.kv().list());
  CARREL_ASSIGN_OR_RETURN(
      auto schema, ctx.sql().exec("SELECT type, name, sql FROM sqlite_master ORDER BY name"));
  s.schema = schema.to_vector();
  for (const SqlRow& row : s.schema) {
    if (*row.get_text(0) != "table") continue;
    std::string table = *row.get_text(1);
    CARREL_ASSIGN_OR_RETURN(
        auto rows, ctx.sql().exec("SELECT rowid, * FROM \"" + table + "\" ORDER BY rowid"));
    s.tables[table] = rows.to_vector();
  }
  CARREL_ASSIGN_OR_RETURN(s.alarms, ctx.alarms().list());
  return s;
}

class EngineHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clock_ = std::make_shared<ManualClock>(kT0);
    options_.dir = dir_.path();
    options_.clock = clock_;
    options_.workers = 2;
  }
  void TearDown() override {
    if (engine_) {
      ASSERT_TRUE(engine_->close().is_ok());
      testing::expect_timetable_matches(*engine_);
    }
  }
  void open() {
    auto e = Engine::open(options_);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    engine_ = std::move(e).value();
  }
  void reopen() {
    ASSERT_TRUE(engine_->close().is_ok());
    engine_.reset();
    open();
  }
  Snapshot snapshot(const ObjectRef& ref) {
    Snapshot s;
    Status st = engine_->run(ref, [&](Context& ctx) {
      CARREL_ASSIGN_OR_RETURN(s, take_snapshot(ctx));
      return Status::ok();
    });
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return s;
  }
  void expect_integrity(const ObjectRef& ref) {
    std::string verdict;
    Status st = engine_->run(ref, [&](Context& ctx) {
      CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec("PRAGMA integrity_check"));
      CARREL_ASSIGN_OR_RETURN(auto row, c.one());
      CARREL_ASSIGN_OR_RETURN(verdict, row.get_text(0));
      return Status::ok();
    });
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    EXPECT_EQ(verdict, "ok");
  }
  std::string bookmark(const ObjectRef& ref) {
    auto b = engine_->current_bookmark(ref);
    EXPECT_TRUE(b.is_ok()) << b.status().to_string();
    return b.is_ok() ? *b : std::string();
  }
  Status put(const ObjectRef& ref, const std::string& k, const std::string& v) {
    return engine_->run(ref, [&](Context& ctx) { return ctx.kv().put(k, v); });
  }
  // n random turns (random_turn, below) 5 ms apart; each one's bookmark and snapshot.
  void random_history(const ObjectRef& ref, std::mt19937_64& rng, int n,
                      std::vector<std::string>* marks, std::vector<Snapshot>* snaps);

  testing::TempDir dir_;
  std::shared_ptr<ManualClock> clock_;
  Options options_;
  std::unique_ptr<Engine> engine_;
};

// One random turn: KV puts and deletes, SQL inserts/updates/deletes and DDL,
// alarm schedules and cancels, all in the same commit.
Status random_turn(Context& ctx, std::mt19937_64& rng, int turn_no) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  if (turn_no == 0) {
    CARREL_RETURN_IF_ERROR(
        ctx.sql().exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n REAL)").status());
  }
  int ops = 1 + pick(6);
  for (int i = 0; i < ops; ++i) {
    std::string key = "k" + std::to_string(pick(30));
    switch (pick(9)) {
      case 0:
      case 1:
        CARREL_RETURN_IF_ERROR(ctx.kv().put(key, std::string(pick(300), 'a' + pick(26))));
        break;
      case 2:
        CARREL_RETURN_IF_ERROR(ctx.kv().del(key).status());
        break;
      case 3:
      case 4:
        // Large text values spread rows over many pages, so restores move pages around.
        CARREL_RETURN_IF_ERROR(ctx.sql()
                                   .exec("INSERT INTO t(v, n) VALUES (?, ?)",
                                         std::string(pick(3000), 'x'), pick(1000) / 7.0)
                                   .status());
        break;
      case 5:
        CARREL_RETURN_IF_ERROR(
            ctx.sql().exec("UPDATE t SET v = v || 'u' WHERE id % 3 = ?", pick(3)).status());
        break;
      case 6:
        CARREL_RETURN_IF_ERROR(ctx.sql().exec("DELETE FROM t WHERE id % 5 = ?", pick(5)).status());
        break;
      case 7:
        CARREL_RETURN_IF_ERROR(
            ctx.alarms().schedule("a" + std::to_string(pick(5)), kFarFuture + pick(100000), key,
                                  pick(2) ? Repeat::every(1000) : Repeat::none()));
        break;
      case 8:
        if (pick(2)) {
          CARREL_RETURN_IF_ERROR(ctx.alarms().cancel("a" + std::to_string(pick(5))).status());
        } else if (pick(2)) {
          std::string table = "side" + std::to_string(pick(3));
          CARREL_RETURN_IF_ERROR(
              ctx.sql().exec("CREATE TABLE IF NOT EXISTS " + table + "(x BLOB)").status());
          CARREL_RETURN_IF_ERROR(
              ctx.sql().exec("INSERT INTO " + table + " VALUES (randomblob(500))").status());
        } else {
          CARREL_RETURN_IF_ERROR(ctx.sql().exec("DROP TABLE IF EXISTS side0").status());
        }
        break;
    }
  }
  return Status::ok();
}

void EngineHistoryTest::random_history(const ObjectRef& ref, std::mt19937_64& rng, int n,
                                       std::vector<std::string>* marks,
                                       std::vector<Snapshot>* snaps) {
  for (int i = 0; i < n; ++i) {
    clock_->advance_ms(5);
    ASSERT_TRUE(engine_->run(ref, [&](Context& ctx) { return random_turn(ctx, rng, i); }).is_ok());
    marks->push_back(bookmark(ref));
    snaps->push_back(snapshot(ref));
  }
}

TEST_F(EngineHistoryTest, RestoreToEveryBookmarkOfARandomHistory) {
  open();
  auto ref = ObjectRef::named("Doc", "random");
  std::mt19937_64 rng(20240601);
  std::vector<std::string> marks;
  std::vector<Snapshot> snaps;
  // seq 0: the state before the first commit (empty).
  marks.push_back("");
  snaps.push_back(snapshot(ref));
  for (int i = 0; i < 40; ++i) {
    clock_->advance_ms(static_cast<int64_t>(rng() % 3));  // some commits share a time
    Status s = engine_->run(ref, [&](Context& ctx) { return random_turn(ctx, rng, i); });
    ASSERT_TRUE(s.is_ok()) << "turn " << i << ": " << s.to_string();
    marks.push_back(bookmark(ref));
    snaps.push_back(snapshot(ref));
  }
  auto zero = engine_->bookmark_for_time(ref, kT0 - 1);
  ASSERT_TRUE(zero.is_ok()) << zero.status().to_string();
  marks[0] = *zero;

  // Bookmarks sort lexically in commit order.
  for (size_t i = 1; i < marks.size(); ++i) EXPECT_LT(marks[i - 1], marks[i]) << i;

  // Restore to every bookmark, in a shuffled order, each after other restores.
  std::vector<size_t> order(marks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::string previous_mark = bookmark(ref);
  for (size_t i : order) {
    clock_->advance_ms(1);
    auto undo = engine_->restore(ref, marks[i]);
    ASSERT_TRUE(undo.is_ok()) << "bookmark " << i << ": " << undo.status().to_string();
    EXPECT_EQ(*undo, previous_mark);  // the bookmark of the state just left
    Snapshot now = snapshot(ref);
    EXPECT_TRUE(now == snaps[i]) << "bookmark " << i << ": got " << describe(now) << ", want "
                                 << describe(snaps[i]);
    expect_integrity(ref);
    previous_mark = bookmark(ref);
    EXPECT_GT(previous_mark, marks.back());  // a restore is a new commit, not a rewind
  }
}

TEST_F(EngineHistoryTest, UndoingARestoreReturnsToThePreRestoreState) {
  open();
  auto ref = ObjectRef::named("Doc", "undo");
  ASSERT_TRUE(engine_
                  ->run(ref,
                        [](Context& ctx) {
                          CARREL_RETURN_IF_ERROR(ctx.kv().put("a", "1"));
                          CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE TABLE t(x)").status());
                          CARREL_RETURN_IF_ERROR(
                              ctx.sql().exec("INSERT INTO t VALUES (1)").status());
                          return ctx.alarms().schedule("r", kFarFuture, "early");
                        })
                  .is_ok());
  std::string early = bookmark(ref);
  Snapshot early_state = snapshot(ref);
  clock_->advance_ms(10);
  ASSERT_TRUE(engine_
                  ->run(ref,
                        [](Context& ctx) {
                          CARREL_RETURN_IF_ERROR(ctx.kv().put("a", "2"));
                          CARREL_RETURN_IF_ERROR(ctx.kv().put("b", "new"));
                          CARREL_RETURN_IF_ERROR(
                              ctx.sql().exec("INSERT INTO t VALUES (2)").status());
                          CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE TABLE u(y)").status());
                          CARREL_RETURN_IF_ERROR(ctx.alarms().cancel("r").status());
                          return ctx.alarms().set(kFarFuture + 5);
                        })
                  .is_ok());
  Snapshot late_state = snapshot(ref);
  ASSERT_FALSE(late_state == early_state);
  clock_->advance_ms(10);
  auto undo = engine_->restore(ref, early);
  ASSERT_TRUE(undo.is_ok()) << undo.status().to_string();
  EXPECT_TRUE(snapshot(ref) == early_state);
  clock_->advance_ms(10);
  auto redo = engine_->restore(ref, *undo);
  ASSERT_TRUE(redo.is_ok()) << redo.status().to_string();
  EXPECT_TRUE(snapshot(ref) == late_state);
  expect_integrity(ref);
  // And the undo of the undo goes back again.
  ASSERT_TRUE(engine_->restore(ref, *redo).is_ok());
  EXPECT_TRUE(snapshot(ref) == early_state);
  // Restoring to the current bookmark changes nothing and returns it.
  std::string current = bookmark(ref);
  auto same = engine_->restore(ref, current);
  ASSERT_TRUE(same.is_ok());
  EXPECT_EQ(*same, current);
  EXPECT_EQ(bookmark(ref), current);
}

TEST_F(EngineHistoryTest, RestoreAcrossRestarts) {
  open();
  auto ref = ObjectRef::named("Doc", "restart");
  std::vector<std::string> marks;
  std::vector<Snapshot> snaps;
  std::mt19937_64 rng(7);
  random_history(ref, rng, 8, &marks, &snaps);
  reopen();
  auto undo = engine_->restore(ref, marks[2]);
  ASSERT_TRUE(undo.is_ok()) << undo.status().to_string();
  EXPECT_EQ(*undo, marks.back());
  EXPECT_TRUE(snapshot(ref) == snaps[2]);
  reopen();
  EXPECT_TRUE(snapshot(ref) == snaps[2]);  // the restore itself is durable
  ASSERT_TRUE(engine_->restore(ref, marks[6]).is_ok());
  EXPECT_TRUE(snapshot(ref) == snaps[6]);
  expect_integrity(ref);
}

TEST_F(EngineHistoryTest, BookmarkForTime) {
  open();
  auto ref = ObjectRef::named("Doc", "time");
  EXPECT_EQ(engine_->bookmark_for_time(ref, kT0).status().code(), Code::kNotFound);
  EXPECT_EQ(engine_->current_bookmark(ref).status().code(), Code::kNotFound);
  std::vector<std::pair<UnixMs, std::string>> commits;
  for (int i = 0; i < 6; ++i) {
    clock_->set_ms(kT0 + 100 * (i / 2));  // two commits per time: 0,0,100,100,200,200
    ASSERT_TRUE(put(ref, "k", std::to_string(i)).is_ok());
    commits.emplace_back(clock_->now_ms(), bookmark(ref));
  }
  // At or after a time: the last commit at or before it.
  EXPECT_EQ(*engine_->bookmark_for_time(ref, kT0), commits[1].second);
  EXPECT_EQ(*engine_->bookmark_for_time(ref, kT0 + 99), commits[1].second);
  EXPECT_EQ(*engine_->bookmark_for_time(ref, kT0 + 100), commits[3].second);
  EXPECT_EQ(*engine_->bookmark_for_time(ref, kT0 + 150), commits[3].second);
  EXPECT_EQ(*engine_->bookmark_for_time(ref, kT0 + 200), commits[5].second);
  EXPECT_EQ(*engine_->bookmark_for_time(ref, kT0 + 100000), commits[5].second);
  // Before the first commit: the empty state, which restores like any other.
  auto before = engine_->bookmark_for_time(ref, kT0 - 1);
  ASSERT_TRUE(before.is_ok());
  EXPECT_LT(*before, commits[0].second);
  ASSERT_TRUE(engine_->restore(ref, *before).is_ok());
  EXPECT_TRUE(snapshot(ref).kv.empty());
  ASSERT_TRUE(engine_->restore(ref, *engine_->bookmark_for_time(ref, kT0 + 150)).is_ok());
  EXPECT_EQ(snapshot(ref).kv, (Entries{{"k", "3"}}));
}

TEST_F(EngineHistoryTest, MalformedOrForeignBookmarksAreInvalidArgument) {
  open();
  auto ref = ObjectRef::named("Doc", "a");
  auto other = ObjectRef::named("Doc", "b");
  ASSERT_TRUE(put(ref, "k", "v").is_ok());
  ASSERT_TRUE(put(other, "k", "v").is_ok());
  std::string good = bookmark(ref);
  std::string upper = good;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  std::string no_dash = good;
  no_dash[16] = '0';
  std::string future_seq = good.substr(0, 17) + "00000000000000ff" + good.substr(33);
  std::string wrong_time = "0000000000000001" + good.substr(16);
  for (const std::string& bad : {std::string(), std::string("garbage"), good + "0", good.substr(1),
                                 upper, no_dash, future_seq, wrong_time, bookmark(other)}) {
    auto r = engine_->restore(ref, bad);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument)
        << "'" << bad << "': " << r.status().to_string();
  }
  auto foreign = engine_->restore(ref, bookmark(other));
  EXPECT_NE(foreign.status().message().find(other.id.to_hex()), std::string::npos)
      << foreign.status().message();
  EXPECT_EQ(snapshot(ref).kv, (Entries{{"k", "v"}}));
}

TEST_F(EngineHistoryTest, NoHistoryRestoresOnlyTheCurrentBookmark) {
  options_.history_retention_ms = 0;
  open();
  auto ref = ObjectRef::named("Doc", "nohist");
  ASSERT_TRUE(put(ref, "k", "1").is_ok());
  std::string first = bookmark(ref);
  ASSERT_TRUE(put(ref, "k", "2").is_ok());
  std::string second = bookmark(ref);
  // Each commit still appends a log record, without undo (history/undo.h (8)):
  // it rebuilds the object record until a checkpoint, then retention drops it.
  auto log = testing::scan_db(*engine_, store::Db::kHistory);
  ASSERT_EQ(log.size(), 2u);
  for (auto& [key, value] : log) {
    auto rec = history::LogRecord::decode(value);
    ASSERT_TRUE(rec.is_ok()) << rec.status().to_string();
    EXPECT_FALSE(rec->undo_kept);
    EXPECT_TRUE(rec->undo.empty());
  }
  auto r = engine_->restore(ref, first);
  EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().to_string();
  EXPECT_NE(r.status().message().find("retention"), std::string::npos) << r.status().message();
  auto same = engine_->restore(ref, second);
  ASSERT_TRUE(same.is_ok()) << same.status().to_string();
  EXPECT_EQ(*same, second);
  // bookmark_for_time finds the current commit, and nothing before it.
  clock_->advance_ms(100);
  EXPECT_EQ(*engine_->bookmark_for_time(ref, clock_->now_ms()), second);
  auto earlier = engine_->bookmark_for_time(ref, kT0 - 1);
  EXPECT_EQ(earlier.status().code(), Code::kNotFound);
  EXPECT_NE(earlier.status().message().find("history_retention_ms"), std::string::npos)
      << earlier.status().message();
  EXPECT_EQ(snapshot(ref).kv, (Entries{{"k", "2"}}));
}

TEST_F(EngineHistoryTest, PerObjectCommitCapKeepsTheLastCommits) {
  options_.history_commits_max = 5;
  open();
  auto ref = ObjectRef::named("Doc", "capped");
  auto other = ObjectRef::named("Doc", "other");
  std::vector<std::string> marks;
  for (int i = 0; i < 20; ++i) {
    clock_->advance_ms(10);
    ASSERT_TRUE(put(ref, "k", std::to_string(i)).is_ok());
    marks.push_back(bookmark(ref));
  }
  ASSERT_TRUE(put(other, "k", "x").is_ok());
  // Commit 15's state needs records 16..20: kept.
  ASSERT_TRUE(engine_->restore(ref, marks[14]).is_ok());
  EXPECT_EQ(snapshot(ref).kv, (Entries{{"k", "14"}}));
  // Commit 10's state needs record 11, which the cap hides (the restore was
  // commit 21, so the window is now commits 17..21).
  auto r = engine_->restore(ref, marks[9]);
  EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().to_string();
  EXPECT_NE(r.status().message().find("history_commits_max is 5"), std::string::npos)
      << r.status().message();
  auto t = engine_->bookmark_for_time(ref, kT0 + 100);  // commit 10's time
  EXPECT_EQ(t.status().code(), Code::kNotFound) << t.status().to_string();
  EXPECT_NE(t.status().message().find("history_commits_max is 5"), std::string::npos)
      << t.status().message();
}

// The cap costs no delete per turn: hidden records stay until retention
// reaches the log's head, which then drops them (and only them).
TEST_F(EngineHistoryTest, RetentionDeletesRecordsTheCapHidesFromTheLogHead) {
  options_.history_commits_max = 5;
  open();
  auto ref = ObjectRef::named("Doc", "capped");
  auto other = ObjectRef::named("Doc", "other");
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(put(ref, "k", std::to_string(i)).is_ok());
  ASSERT_TRUE(put(other, "k", "x").is_ok());
  EXPECT_EQ(testing::scan_db(*engine_, store::Db::kHistory).size(), 21u);
  reopen();  // a checkpoint: retention keeps the log tail after it (history/tail.h (1))
  ASSERT_TRUE(engine_->core()->prune_history_now().is_ok());
  // 5 records for the capped object (commits 16..20), 1 for the other.
  auto log = testing::scan_db(*engine_, store::Db::kHistory);
  ASSERT_EQ(log.size(), 6u);
  auto first = history::LogRecord::decode_header(log.begin()->second);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ(first->seq, 16u);
  EXPECT_EQ(first->id, ref.id);
}

// One log for every object, appended in commit order: keys are consecutive
// log numbers, and each object's records chain back from its record's log_no.
TEST_F(EngineHistoryTest, CommitsAppendToOneLogThatChainsEachObject) {
  open();
  auto a = ObjectRef::named("Doc", "a");
  auto b = ObjectRef::named("Doc", "b");
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(put(a, "k", std::to_string(i)).is_ok());
    ASSERT_TRUE(put(b, "k", std::to_string(i)).is_ok());
  }
  auto log = testing::scan_db(*engine_, store::Db::kHistory);
  ASSERT_EQ(log.size(), 8u);
  uint64_t expected_no = 1;
  std::map<ObjectId, std::pair<uint64_t, uint64_t>> newest;  // id -> (no, seq)
  for (auto& [key, value] : log) {
    ASSERT_EQ(key.size(), store::kLogKeyBytes);
    uint64_t no = store::read_u64(key, 0);
    EXPECT_EQ(no, expected_no++);
    auto rec = history::LogRecord::decode(value);
    ASSERT_TRUE(rec.is_ok()) << rec.status().to_string();
    auto& [prev_no, prev_seq] = newest[rec->header.id];
    EXPECT_EQ(rec->header.prev_no, prev_no) << "record " << no;
    EXPECT_EQ(rec->header.seq, prev_seq + 1) << "record " << no;
    EXPECT_TRUE(rec->redo.empty());
    newest[rec->header.id] = {no, rec->header.seq};
  }
  for (const ObjectRef& ref : {a, b}) {
    auto r = testing::object_record(*engine_, ref.id);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->log_no, newest[ref.id].first);
    EXPECT_EQ(r->last_seq, 4u);
  }
  // The counter deltas say what each commit did to the record's counts.
  auto last = history::LogRecord::decode(log.rbegin()->second);
  ASSERT_TRUE(last.is_ok());
  EXPECT_EQ(last->deltas.kv_keys, 0);
  EXPECT_EQ(last->deltas.kv_bytes, 0);  // "2" -> "3": same size
  auto first = history::LogRecord::decode(log.begin()->second);
  ASSERT_TRUE(first.is_ok());
  EXPECT_EQ(first->deltas.kv_keys, 1);
  EXPECT_EQ(first->deltas.kv_bytes, 2);  // "k" + "0"
  // The next number survives a restart: the log goes on where it stopped.
  reopen();
  ASSERT_TRUE(put(a, "k", "after").is_ok());
  auto tail = testing::scan_db(*engine_, store::Db::kHistory);
  ASSERT_EQ(tail.size(), 9u);
  EXPECT_EQ(store::read_u64(tail.rbegin()->first, 0), 9u);
}

// A commit made with history off ends the object's chain: what lies before it
// cannot be restored, and retention with history off deletes the old log.
TEST_F(EngineHistoryTest, CommitWithHistoryOffEndsTheChain) {
  open();
  auto ref = ObjectRef::named("Doc", "gap");
  ASSERT_TRUE(put(ref, "k", "1").is_ok());
  std::string first = bookmark(ref);
  ASSERT_TRUE(put(ref, "k", "2").is_ok());
  options_.history_retention_ms = 0;
  reopen();
  ASSERT_TRUE(put(ref, "k", "3").is_ok());
  options_.history_retention_ms = int64_t{30} * 24 * 3600 * 1000;
  reopen();
  ASSERT_TRUE(put(ref, "k", "4").is_ok());
  std::string fourth = bookmark(ref);
  ASSERT_TRUE(put(ref, "k", "5").is_ok());
  auto r = engine_->restore(ref, first);
  EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().to_string();
  ASSERT_TRUE(engine_->restore(ref, fourth).is_ok());
  EXPECT_EQ(snapshot(ref).kv, (Entries{{"k", "4"}}));
  options_.history_retention_ms = 0;
  reopen();
  ASSERT_TRUE(engine_->core()->prune_history_now().is_ok());
  EXPECT_TRUE(testing::scan_db(*engine_, store::Db::kHistory).empty());
}

TEST_F(EngineHistoryTest, BookmarkOlderThanRetainedHistoryIsNotFound) {
  options_.history_retention_ms = 10000;
  open();
  auto ref = ObjectRef::named("Doc", "pruned");
  std::vector<std::string> marks;
  for (int i = 0; i < 6; ++i) {
    clock_->set_ms(kT0 + 5000 * i);  // commits at 0, 5, 10, 15, 20, 25 s
    ASSERT_TRUE(put(ref, "k", std::to_string(i)).is_ok());
    marks.push_back(bookmark(ref));
  }
  clock_->set_ms(kT0 + 31000);  // cutoff 21 s: records of commits at 0..20 s go
  ASSERT_TRUE(engine_->core()->prune_history_now().is_ok());
  EXPECT_EQ(testing::scan_db(*engine_, store::Db::kHistory).size(), 1u);
  // Commit 5 (at 20 s) needs only record 6, which is kept.
  ASSERT_TRUE(engine_->restore(ref, marks[4]).is_ok());
  EXPECT_EQ(snapshot(ref).kv, (Entries{{"k", "4"}}));
  auto r = engine_->restore(ref, marks[1]);
  EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().to_string();
  EXPECT_NE(r.status().message().find("does not reach back"), std::string::npos)
      << r.status().message();
  auto t = engine_->bookmark_for_time(ref, kT0 + 5000);
  EXPECT_EQ(t.status().code(), Code::kNotFound) << t.status().to_string();
  EXPECT_EQ(snapshot(ref).kv, (Entries{{"k", "4"}}));  // a refused restore changed nothing
}

// A damaged history key is Corruption naming the database and the key, never
// an abort: retention reads the log's head, where a 2-byte key sorts first,
// and it neither deletes that key nor reads past it.
TEST_F(EngineHistoryTest, DamagedKeyAtTheLogHeadIsCorruptionForRetention) {
  options_.history_retention_ms = 10000;
  open();
  auto ref = ObjectRef::named("Doc", "head");
  ASSERT_TRUE(put(ref, "k", "1").is_ok());
  std::string record = testing::scan_db(*engine_, store::Db::kHistory).front().second;
  ASSERT_TRUE(engine_->close().is_ok());
  testing::damage_db(dir_.path(), store::Db::kHistory, std::string(2, '\0'), record);
  open();
  clock_->set_ms(kT0 + 60000);  // every record is past retention
  Status s = engine_->core()->prune_history_now();
  EXPECT_EQ(s.code(), Code::kCorruption) << s.to_string();
  EXPECT_NE(s.message().find("history: key 0000 is 2 bytes, not the 8"), std::string::npos)
      << s.message();
  EXPECT_EQ(testing::scan_db(*engine_, store::Db::kHistory).size(), 2u);
}

// A record missing from the middle of an object's chain is Corruption for
// restore and bookmark_for_time, not the NotFound of pruned history:
// retention deletes only the log's head (history/undo.h (3)).
TEST_F(EngineHistoryTest, LogRecordMissingFromTheChainIsCorruptionNotPrunedHistory) {
  open();
  auto ref = ObjectRef::named("Doc", "gap");
  std::vector<std::string> marks;
  for (int i = 0; i < 5; ++i) {
    clock_->set_ms(kT0 + 1000 * i);
    ASSERT_TRUE(put(ref, "k", std::to_string(i)).is_ok());
    marks.push_back(bookmark(ref));
  }
  auto log = testing::scan_db(*engine_, store::Db::kHistory);
  ASSERT_EQ(log.size(), 5u);
  const auto& [key3, record3] = log[2];
  ASSERT_TRUE(engine_->close().is_ok());
  // Record 3's key loses its last byte: 7 zero bytes, the log's first key.
  testing::damage_db(dir_.path(), store::Db::kHistory, key3, std::nullopt);
  testing::damage_db(dir_.path(), store::Db::kHistory, key3.substr(0, 7), record3);
  open();
  auto r = engine_->restore(ref, marks[0]);
  EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().to_string();
  EXPECT_NE(r.status().message().find("history: key 00000000000000 is 7 bytes"), std::string::npos)
      << r.status().message();
  auto t = engine_->bookmark_for_time(ref, kT0);
  EXPECT_EQ(t.status().code(), Code::kCorruption) << t.status().to_string();
  // Restores that stop above the gap still work.
  ASSERT_TRUE(engine_->restore(ref, marks[3]).is_ok());
  EXPECT_EQ(snapshot(ref).kv, (Entries{{"k", "3"}}));
  // Without the damaged key, the gap itself is named.
  ASSERT_TRUE(engine_->close().is_ok());
  testing::damage_db(dir_.path(), store::Db::kHistory, key3.substr(0, 7), std::nullopt);
  open();
  r = engine_->restore(ref, marks[0]);
  EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().to_string();
  EXPECT_NE(r.status().message().find("history log record 3 (commit 3 of object " +
                                      ref.id.to_hex() + ") is missing"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(snapshot(ref).kv, (Entries{{"k", "3"}}));  // a refused restore changed nothing
}

// Open rebuilds object records from the log tail (history/tail.h); a damaged
// key there fails the open with Corruption naming it.
TEST_F(EngineHistoryTest, DamagedKeyInTheLogTailFailsOpenWithCorruption) {
  open();
  auto ref = ObjectRef::named("Doc", "tail");
  ASSERT_TRUE(put(ref, "k", "1").is_ok());
  std::string record = testing::scan_db(*engine_, store::Db::kHistory).front().second;
  ASSERT_TRUE(engine_->close().is_ok());
  engine_.reset();
  testing::damage_db(dir_.path(), store::Db::kHistory, store::log_key(100) + "x", record);
  auto e = Engine::open(options_);
  EXPECT_EQ(e.status().code(), Code::kCorruption) << e.status().to_string();
  EXPECT_NE(e.status().message().find("history: key 000000000000006478 is 9 bytes"),
            std::string::npos)
      << e.status().message();
}

// Each writer turn adds one KV key and one SQL row and bumps a KV counter, so
// a consistent copy has counter == keys == rows for every object.
TEST_F(EngineHistoryTest, BackupUnderConcurrentWritesIsConsistent) {
  options_.clock.reset();  // real time: the backup races real commits
  open();
  constexpr int kObjects = 4;
  std::atomic<bool> stop{false};
  std::atomic<int> turns{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kObjects; ++w) {
    writers.emplace_back([&, w] {
      auto ref = ObjectRef::named("Doc", "w" + std::to_string(w));
      for (int i = 0; !stop.load() || i < 20; ++i) {
        Status s = engine_->run(ref, [&](Context& ctx) -> Status {
          if (i == 0) CARREL_RETURN_IF_ERROR(ctx.sql().exec("CREATE TABLE r(i)").status());
          CARREL_RETURN_IF_ERROR(ctx.kv().put("row" + std::to_string(i), std::string(100, 'r')));
          CARREL_RETURN_IF_ERROR(ctx.kv().put("count", std::to_string(i + 1)));
          return ctx.sql().exec("INSERT INTO r VALUES (?)", i).status();
        });
        ASSERT_TRUE(s.is_ok()) << s.to_string();
        turns.fetch_add(1);
      }
    });
  }
  ASSERT_TRUE(testing::eventually([&] { return turns.load() >= 40; }));
  testing::TempDir backup_dir;
  std::string dest = backup_dir.sub("copy");
  ASSERT_TRUE(engine_->backup(dest).is_ok());
  int turns_at_backup = turns.load();
  stop.store(true);
  for (auto& t : writers) t.join();
  EXPECT_EQ(engine_->backup(dest).code(), Code::kInvalidArgument);  // not empty any more

  Options copy_options;
  copy_options.dir = dest;
  copy_options.create_if_missing = false;
  auto copy = Engine::open(copy_options);
  ASSERT_TRUE(copy.is_ok()) << copy.status().to_string();
  int total = 0;
  for (int w = 0; w < kObjects; ++w) {
    auto ref = ObjectRef::named("Doc", "w" + std::to_string(w));
    int64_t counter = -1, keys = -1, rows = -1;
    std::string integrity;
    Status s = (*copy)->run(ref, [&](Context& ctx) -> Status {
      CARREL_ASSIGN_OR_RETURN(auto c, ctx.kv().get("count"));
      counter = c ? std::stoll(*c) : 0;
      ListOptions lo;
      lo.prefix = "row";
      CARREL_ASSIGN_OR_RETURN(auto all, ctx.kv().list(lo));
      keys = static_cast<int64_t>(all.size());
      if (counter == 0) {
        rows = 0;
        return Status::ok();
      }
      CARREL_ASSIGN_OR_RETURN(auto n, ctx.sql().exec("SELECT count(*) FROM r"));
      CARREL_ASSIGN_OR_RETURN(auto row, n.one());
      CARREL_ASSIGN_OR_RETURN(rows, row.get_int(0));
      CARREL_ASSIGN_OR_RETURN(auto ic, ctx.sql().exec("PRAGMA integrity_check"));
      CARREL_ASSIGN_OR_RETURN(integrity, ic.one()->get_text(0));
      return Status::ok();
    });
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    EXPECT_EQ(counter, keys) << "object " << w;
    EXPECT_EQ(counter, rows) << "object " << w;
    if (counter > 0) EXPECT_EQ(integrity, "ok");
    total += static_cast<int>(counter);
  }
  // The copy holds at least what was acknowledged before backup() began.
  EXPECT_GE(total, 40);
  EXPECT_LE(total, turns_at_backup + kObjects);
  ASSERT_TRUE((*copy)->close().is_ok());
}

TEST_F(EngineHistoryTest, BookmarkOfSeqZeroWithATimeIsInvalidArgument) {
  open();
  auto ref = ObjectRef::named("Doc", "zero");
  ASSERT_TRUE(put(ref, "k", "v").is_ok());
  auto r = engine_->restore(ref, "7fffffffffffffff-0000000000000000-" + ref.id.to_hex());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().to_string();
  EXPECT_NE(r.status().message().find("seq 0"), std::string::npos) << r.status().message();
  EXPECT_EQ(snapshot(ref).kv, (Entries{{"k", "v"}}));
}

TEST_F(EngineHistoryTest, LastCommitWithTheWrongTimeIsInvalidArgumentWithoutHistory) {
  options_.history_retention_ms = 0;
  open();
  auto ref = ObjectRef::named("Doc", "nohist-time");
  ASSERT_TRUE(put(ref, "k", "1").is_ok());
  std::string good = bookmark(ref);
  std::string wrong_time = "0000000000000001" + good.substr(16);
  auto r = engine_->restore(ref, wrong_time);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().to_string();
}

TEST_F(EngineHistoryTest, BackupReplacesTheLeftoverOfACopyCutShort) {
  open();
  ASSERT_TRUE(put(ObjectRef::named("Doc", "a"), "k", "v").is_ok());
  testing::TempDir backup_dir;
  std::string dest = backup_dir.sub("copy");
  std::filesystem::create_directories(dest);
  {
    std::ofstream partial(dest + "/data.mdb.partial");
    partial << std::string(5000, 'x');
  }
  // The leftover is not an engine.
  Options copy_options;
  copy_options.dir = dest;
  copy_options.create_if_missing = false;
  EXPECT_EQ(Engine::open(copy_options).status().code(), Code::kNotFound);
  ASSERT_TRUE(engine_->backup(dest).is_ok());
  EXPECT_FALSE(std::filesystem::exists(dest + "/data.mdb.partial"));
  auto copy = Engine::open(copy_options);
  ASSERT_TRUE(copy.is_ok()) << copy.status().to_string();
  ASSERT_TRUE((*copy)->close().is_ok());
}

}  // namespace
}  // namespace carrel
