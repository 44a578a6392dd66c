// The object-record cache and its checkpoints (engine/commit/records.h), and
// records rebuilt from the log tail (engine/history/tail.h): real LMDB in
// temporary directories, a real child process killed with SIGKILL, faults
// through Options::commit_hook.
#include "engine/commit/records.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "carrel/carrel.h"
#include "engine/commit/group_writer.h"
#include "engine/history/tail.h"
#include "engine/loop/engine_core.h"
#include "engine/store/checksum.h"
#include "engine/store/keys.h"
#include "tests/store_probe.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

using testing::TempDir;
constexpr UnixMs kT0 = 1'700'000'000'000;
constexpr int kObjects = 6;
constexpr int kTurnsPerObject = 5;

ObjectRef object_no(int i) {
  return ObjectRef::named("Room", "r" + std::to_string(i));
}

// Commits one batch of `ref`, sealed under `number`, that writes key "k", as
// the committer commits a group of one: apply, finish, commit, publish. With
// `checkpointed` set, the group checkpoints when the cache says one is due
// (records.h (4)) and *checkpointed says whether it did; without, it never does.
Status commit_one(store::Store& st, detail::Records& records, const ObjectRef& ref, uint64_t number,
                  uint64_t seq, bool* checkpointed = nullptr) {
  detail::CommitBatch b;
  b.object = ref;
  b.object_no = store::ObjectNo{number};
  b.seq = seq;
  b.commit_ms = kT0;
  b.kv.emplace_back(
      "k", store::seal_shared(store::Db::kKv, store::object_key(b.object_no, "k"), "value"));
  MDB_txn* txn = nullptr;
  if (int rc = mdb_txn_begin(st.env(), nullptr, 0, &txn); rc != 0) {
    return store::from_mdb(rc, "begin");
  }
  detail::GroupWriter w(st, records, txn, kT0, /*keep_history=*/true, 0);
  Status s = w.apply(b);
  const bool due = s.is_ok() && checkpointed && records.checkpoint_due(w.object_count(), kT0);
  if (s.is_ok()) s = w.finish(due);
  if (!s.is_ok()) {
    mdb_txn_abort(txn);
    return s;
  }
  if (int rc = mdb_txn_commit(txn); rc != 0) return store::from_mdb(rc, "commit");
  records.publish(w.take_records(), w.log_records(), w.checkpoint_log_no(), kT0);
  if (checkpointed) *checkpointed = due;
  return Status::ok();
}

// A fixed clock: no checkpoint falls due by time (records.h
// kCheckpointIntervalMs), so every commit after the first of each object is
// in the log tail only.
Options options_at(const std::string& dir, std::shared_ptr<ManualClock> clock) {
  Options o;
  o.dir = dir;
  o.workers = 1;
  o.clock = std::move(clock);
  return o;
}

// Object i ends with i + 1 keys (k0..ki), one deleted key, and, for even i,
// one alarm: a mix of counter deltas in the tail.
Status write_objects(Engine& e) {
  for (int i = 0; i < kObjects; ++i) {
    for (int t = 0; t < kTurnsPerObject; ++t) {
      CARREL_RETURN_IF_ERROR(e.run(object_no(i), [&](Context& ctx) -> Status {
        if (t == 0) CARREL_RETURN_IF_ERROR(ctx.kv().put("gone", "soon"));
        if (t == 1) CARREL_RETURN_IF_ERROR(ctx.kv().del("gone").status());
        for (int k = 0; k <= i; ++k) {
          CARREL_RETURN_IF_ERROR(ctx.kv().put("k" + std::to_string(k), std::string(t + 1, 'v')));
        }
        if (t == 2 && i % 2 == 0) CARREL_RETURN_IF_ERROR(ctx.alarms().set(kT0 + 3'600'000));
        return Status::ok();
      }));
    }
  }
  return Status::ok();
}

// Every record agrees with the object's data, and with what write_objects made.
void expect_records_match_data(Engine& e) {
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> counted;  // by number: keys, bytes
  for (auto& [key, value] : testing::scan_db(e, store::Db::kKv)) {
    auto& c = counted[store::prefix_of(key).value];
    c.first += 1;
    c.second += key.size() - store::kPrefixBytes + value.size();  // scan_db opens values
  }
  auto records = testing::all_records(e);
  ASSERT_EQ(records.size(), static_cast<size_t>(kObjects));
  for (int i = 0; i < kObjects; ++i) {
    const ObjectId id = object_no(i).id;
    ASSERT_EQ(records.count(id), 1u) << i;
    const store::ObjectRecord& r = records[id];
    EXPECT_EQ(r.last_seq, static_cast<uint64_t>(kTurnsPerObject)) << i;
    EXPECT_EQ(r.kv_keys, counted[r.number.value].first) << i;
    EXPECT_EQ(r.kv_bytes, counted[r.number.value].second) << i;
    EXPECT_EQ(r.kv_keys, static_cast<uint64_t>(i + 1)) << i;
    EXPECT_EQ(r.alarms, i % 2 == 0 ? 1u : 0u) << i;
    // The engine's own view (cache, records.h (1)) is the same record.
    auto txn = e.core()->store().begin_read();
    ASSERT_TRUE(txn.is_ok());
    auto cached = e.core()->records().get(*txn, id);
    ASSERT_TRUE(cached.is_ok() && cached->has_value()) << cached.status().to_string();
    EXPECT_EQ(**cached, r) << i;
  }
  testing::expect_timetable_matches(e);
}

uint64_t meta_u64(Engine& e, std::string_view key) {
  auto raw = testing::read_db(e, store::Db::kMeta, std::string(key));
  return raw && raw->size() == 8 ? store::read_u64(*raw, 0) : 0;
}

// history/undo.h (1): the number the next log record takes, as the committer
// derives it (the log's last record, or meta.next_log_no's floor).
uint64_t next_log_no(Engine& e) {
  uint64_t out = 0;
  testing::with_store(e, [&](store::Store& st) {
    auto txn = st.begin_read();
    ASSERT_TRUE(txn.is_ok()) << txn.status().to_string();
    auto next = history::next_log_no(txn->get(), st);
    ASSERT_TRUE(next.is_ok()) << next.status().to_string();
    out = *next;
  });
  return out;
}

// The child of the SIGKILL test: writes, reports on fd 3 once every turn is
// durable, and waits to be killed with its commits in the log tail only.
constexpr const char* kRoleEnv = "CARREL_RECORDS_TEST_ROLE";
constexpr int kReportFd = testing::kRoleReportFd;

[[noreturn]] void play_writer(const char* dir) {
  auto e = Engine::open(options_at(dir, std::make_shared<ManualClock>(kT0)));
  char ok = e.is_ok() && write_objects(**e).is_ok() ? 'y' : 'n';
  (void)!::write(kReportFd, &ok, 1);
  for (;;) ::pause();
}

const bool kPlaysRole = [] {
  const char* role = std::getenv(kRoleEnv);
  const char* dir = std::getenv("CARREL_RECORDS_TEST_DIR");
  if (role != nullptr && dir != nullptr && std::string_view(role) == "writer") play_writer(dir);
  return false;
}();

bool write_then_sigkill(const std::string& dir) {
  return testing::play_role_then_sigkill(kRoleEnv, "writer", "CARREL_RECORDS_TEST_DIR", dir);
}

// records.h (1), tail.h (2): after a SIGKILL, the records the checkpoint did
// not write come back from the log tail, exact.
TEST(RecordCacheTest, CountsAreExactAfterSigkillWithCommitsSinceTheCheckpoint) {
  TempDir dir;
  ASSERT_TRUE(write_then_sigkill(dir.path()));
  auto clock = std::make_shared<ManualClock>(kT0);
  auto e = Engine::open(options_at(dir.path(), clock));
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  // The killed engine left a tail: commits after each object's creation.
  EXPECT_LT(meta_u64(**e, history::kCheckpointLogKey), next_log_no(**e));
  EXPECT_EQ((*e)->core()->records().dirty_count(), static_cast<size_t>(kObjects));
  // The stored records are behind: the tail is what makes them exact.
  auto stored = testing::read_db(**e, store::Db::kObjects, std::string(object_no(0).id.raw()));
  ASSERT_TRUE(stored.has_value());
  auto r0 = store::ObjectRecord::decode(*stored);
  ASSERT_TRUE(r0.is_ok());
  EXPECT_LT(r0->last_seq, static_cast<uint64_t>(kTurnsPerObject));
  expect_records_match_data(**e);
  // Commits go on from the recovered records.
  ASSERT_TRUE(
      (*e)->run(object_no(0), [](Context& ctx) { return ctx.kv().del("k0").status(); }).is_ok());
  auto after = testing::object_record(**e, object_no(0).id);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->last_seq, static_cast<uint64_t>(kTurnsPerObject) + 1);
  EXPECT_EQ(after->kv_keys, 0u);
}

// committer.h (6): a clean close checkpoints, leaving no tail.
TEST(RecordCacheTest, CloseWritesEveryRecordAndLeavesNoTail) {
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(kT0);
  {
    auto e = Engine::open(options_at(dir.path(), clock));
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    ASSERT_TRUE(write_objects(**e).is_ok());
    ASSERT_GT((*e)->core()->records().dirty_count(), 0u);
    ASSERT_TRUE((*e)->close().is_ok());
  }
  auto e = Engine::open(options_at(dir.path(), clock));
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  EXPECT_EQ(meta_u64(**e, history::kCheckpointLogKey), next_log_no(**e));
  EXPECT_EQ((*e)->core()->records().dirty_count(), 0u);
  auto stored = testing::read_db(**e, store::Db::kObjects, std::string(object_no(3).id.raw()));
  ASSERT_TRUE(stored.has_value());
  auto r = store::ObjectRecord::decode(*stored);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->last_seq, static_cast<uint64_t>(kTurnsPerObject));
  expect_records_match_data(**e);
}

// records.h (2): a failed commit leaves the cache as it was, and the next
// commit continues from the record of the last durable one.
TEST(RecordCacheTest, FailedCommitLeavesTheCacheUnchanged) {
  TempDir dir;
  auto failing = std::make_shared<std::atomic<bool>>(false);
  Options o = options_at(dir.path(), std::make_shared<ManualClock>(kT0));
  o.commit_hook = [failing](const CommitInfo&) -> Status {
    return failing->load() ? Status::io_error("injected commit failure") : Status::ok();
  };
  auto e = Engine::open(o);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  const ObjectRef ref = object_no(0);
  for (int t = 0; t < 2; ++t) {
    ASSERT_TRUE(
        (*e)->run(ref, [&](Context& ctx) { return ctx.kv().put("k" + std::to_string(t), "v"); })
            .is_ok());
  }
  auto before = (*e)->core()->records().find_dirty(ref.id);
  ASSERT_TRUE(before.has_value());
  ASSERT_EQ(before->last_seq, 2u);
  failing->store(true);
  Status s = (*e)->run(ref, [](Context& ctx) { return ctx.kv().put("lost", "value"); });
  EXPECT_FALSE(s.is_ok());
  auto unchanged = (*e)->core()->records().find_dirty(ref.id);
  ASSERT_TRUE(unchanged.has_value());
  EXPECT_EQ(*unchanged, *before);
  failing->store(false);
  ASSERT_TRUE((*e)->run(ref, [](Context& ctx) { return ctx.kv().put("k2", "v"); }).is_ok());
  auto after = testing::object_record(**e, ref.id);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->last_seq, 3u);
  EXPECT_EQ(after->kv_keys, 3u);
}

// tail.h (1): retention keeps every log record at or after the checkpoint,
// also with history off, and prunes them once a checkpoint passed them.
TEST(RecordCacheTest, RetentionDoesNotPrunePastTheCheckpoint) {
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(kT0);
  Options o = options_at(dir.path(), clock);
  o.history_retention_ms = 0;  // history off: every record is past retention
  {
    auto e = Engine::open(o);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    ASSERT_TRUE(write_objects(**e).is_ok());
    const uint64_t tail_no = meta_u64(**e, history::kCheckpointLogKey);
    ASSERT_TRUE((*e)->core()->prune_history_now().is_ok());
    auto log = testing::scan_db(**e, store::Db::kHistory);
    ASSERT_FALSE(log.empty());
    EXPECT_EQ(store::read_u64(log.front().first, 0), std::max<uint64_t>(tail_no, 1));
    EXPECT_EQ(log.size(), next_log_no(**e) - std::max<uint64_t>(tail_no, 1));
    expect_records_match_data(**e);
    ASSERT_TRUE((*e)->close().is_ok());
  }
  auto e = Engine::open(o);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  ASSERT_TRUE((*e)->core()->prune_history_now().is_ok());
  EXPECT_TRUE(testing::scan_db(**e, store::Db::kHistory).empty());
  expect_records_match_data(**e);
}

// records.h (4): once the dirty records would pass the cap, the group
// checkpoints: every record goes to `objects`, the cache empties, and
// meta.checkpoint_log_no moves to the log's end. Creation alone dirties
// nothing (records.h (5)).
TEST(RecordCacheTest, CheckpointIsTriggeredByTheDirtyCap) {
  TempDir dir;
  auto st = testing::open_store(dir.path());
  ASSERT_TRUE(st);
  constexpr size_t kCap = 4;
  detail::Records records(*st, /*follow_log=*/false, kCap);
  ASSERT_TRUE(records.recover().is_ok());
  // One commit of one object per group: seq 1 creates objects 0..kCap; seq 2
  // dirties them, and the (kCap + 1)th dirty record checkpoints.
  auto commit = [&](size_t i, uint64_t seq) -> bool {
    bool checkpointed = false;
    Status s = commit_one(*st, records, object_no(static_cast<int>(i)), i + 1, seq, &checkpointed);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    return checkpointed;
  };
  for (size_t i = 0; i <= kCap; ++i) EXPECT_FALSE(commit(i, 1)) << i;
  EXPECT_EQ(records.dirty_count(), 0u);
  for (size_t i = 0; i < kCap; ++i) {
    EXPECT_FALSE(commit(i, 2)) << i;
    EXPECT_EQ(records.dirty_count(), i + 1) << i;
  }
  EXPECT_TRUE(commit(kCap, 2));
  EXPECT_EQ(records.dirty_count(), 0u);
  const uint64_t end = 2 * (kCap + 1) + 1;  // log numbers 1..2(kCap+1) are covered
  EXPECT_EQ(records.checkpoint_log_no(), end);
  auto txn = st->begin_read();
  ASSERT_TRUE(txn.is_ok());
  auto at = history::checkpoint_log_no(txn->get(), *st);
  ASSERT_TRUE(at.is_ok());
  EXPECT_EQ(*at, end);
  for (size_t i = 0; i <= kCap; ++i) {
    auto r = history::stored_record(txn->get(), *st, object_no(static_cast<int>(i)).id);
    ASSERT_TRUE(r.is_ok() && r->has_value()) << i;
    EXPECT_EQ((*r)->kv_keys, 1u) << i;
    EXPECT_EQ((*r)->last_seq, 2u) << i;
    EXPECT_EQ((*r)->log_no, kCap + 2 + i) << i;
  }
}

// records.h (6), store/keys.h (3): objects are numbered in the order they are
// first loaded, a number given to an object that never commits is skipped,
// and numbering resumes past every stored number after a reopen, so no two
// objects ever share a key prefix.
TEST(ObjectNumberTest, NumbersFollowCreationOrderAndResumeAfterReopen) {
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(kT0);
  auto put = [](Engine& e, const ObjectRef& ref) {
    return e.run(ref, [](Context& ctx) { return ctx.kv().put("k", "v"); });
  };
  std::vector<uint64_t> numbers;
  {
    auto e = testing::open_engine(options_at(dir.path(), clock));
    ASSERT_TRUE(e);
    ASSERT_TRUE(put(*e, object_no(0)).is_ok());
    // Loaded, never committed: its number is given and skipped.
    ASSERT_TRUE(
        e->run(object_no(1), [](Context& ctx) { return ctx.kv().get("k").status(); }).is_ok());
    ASSERT_TRUE(put(*e, object_no(2)).is_ok());
    ASSERT_TRUE(put(*e, object_no(0)).is_ok());  // an existing object keeps its number
    for (int i : {0, 2}) numbers.push_back(testing::object_no(*e, object_no(i).id).value);
    EXPECT_FALSE(testing::object_record(*e, object_no(1).id).has_value());
    ASSERT_TRUE(e->close().is_ok());
  }
  EXPECT_EQ(numbers, (std::vector<uint64_t>{1, 3}));
  auto e = testing::open_engine(options_at(dir.path(), clock));
  ASSERT_TRUE(e);
  ASSERT_TRUE(put(*e, object_no(3)).is_ok());
  ASSERT_TRUE(put(*e, object_no(1)).is_ok());
  EXPECT_EQ(testing::object_no(*e, object_no(3).id).value, 4u);
  EXPECT_EQ(testing::object_no(*e, object_no(1).id).value, 5u);
  EXPECT_EQ(testing::object_no(*e, object_no(0).id).value, 1u);
  EXPECT_EQ(testing::kv_read(*e, object_no(0), "k"), "v");
  // The kv keys lie in creation order, each object's under its own number.
  std::vector<uint64_t> prefixes;
  for (auto& [key, value] : testing::scan_db(*e, store::Db::kKv)) {
    prefixes.push_back(store::prefix_of(key).value);
  }
  EXPECT_EQ(prefixes, (std::vector<uint64_t>{1, 3, 4, 5}));
}

// group_writer.cc load(): a batch sealed under another number than its
// object holds (its values' checksums cover that number) is refused, and
// nothing of it is written.
TEST(ObjectNumberTest, BatchSealedForAnotherNumberIsRefused) {
  TempDir dir;
  auto st = testing::open_store(dir.path());
  ASSERT_TRUE(st);
  detail::Records records(*st, /*follow_log=*/false);
  ASSERT_TRUE(records.recover().is_ok());
  ASSERT_TRUE(commit_one(*st, records, object_no(0), 7, 1).is_ok());
  Status s = commit_one(*st, records, object_no(0), 8, 2);
  EXPECT_EQ(s.code(), Code::kAborted) << s.to_string();
  EXPECT_NE(s.message().find("sealed for object number 8"), std::string::npos) << s.to_string();
  EXPECT_NE(s.message().find("holds number 7"), std::string::npos) << s.to_string();
  auto txn = st->begin_read();
  ASSERT_TRUE(txn.is_ok());
  auto stray = txn->get(store::Db::kKv, store::object_key(store::ObjectNo{8}, "k"));
  ASSERT_TRUE(stray.is_ok());
  EXPECT_FALSE(stray->has_value());
  auto next = txn->get(store::Db::kMeta, store::kNextObjectNoKey);
  ASSERT_TRUE(next.is_ok() && next->has_value());
  EXPECT_EQ(store::read_u64(**next, 0), 8u);  // past number 7
}

// records.h (6): numbering that restarted at 1 would hand a new object
// another object's keys, so a counter missing beside stored objects stops
// the open instead.
TEST(ObjectNumberTest, MissingCounterBesideStoredObjectsStopsTheOpen) {
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(kT0);
  {
    auto e = testing::open_engine(options_at(dir.path(), clock));
    ASSERT_TRUE(e);
    ASSERT_TRUE(e->run(object_no(0), [](Context& ctx) { return ctx.kv().put("k", "v"); }).is_ok());
    ASSERT_TRUE(e->close().is_ok());
  }
  testing::damage_db(dir.path(), store::Db::kMeta, store::kNextObjectNoKey, std::nullopt);
  auto e = Engine::open(options_at(dir.path(), clock));
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().code(), Code::kCorruption) << e.status().to_string();
  EXPECT_NE(e.status().message().find("next_object_no is missing"), std::string::npos)
      << e.status().to_string();
}

// history::ChainWalk: a log record whose number is not its object's (a
// damaged varint) is Corruption, never applied: its own keys would decode
// under another object's prefix, and a restore would write them there.
TEST(ObjectNumberTest, LogRecordWithAnotherNumberIsNotRestored) {
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(kT0);
  const ObjectRef a = object_no(0), b = object_no(1);
  std::string mark;
  {
    auto e = testing::open_engine(options_at(dir.path(), clock));
    ASSERT_TRUE(e);
    ASSERT_TRUE(e->run(b, [](Context& ctx) { return ctx.kv().put("k", "b's"); }).is_ok());
    ASSERT_TRUE(e->run(a, [](Context& ctx) { return ctx.kv().put("k", "one"); }).is_ok());
    auto m = e->current_bookmark(a);
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    mark = *m;
    clock->advance_ms(1);
    ASSERT_TRUE(e->run(a, [](Context& ctx) { return ctx.kv().put("k", "two"); }).is_ok());
    ASSERT_TRUE(e->close().is_ok());
  }
  // a's newest record now names b's number (1; a, made second, holds 2).
  testing::damage_in_txn(dir.path(), store::Db::kHistory, [](MDB_txn* txn, MDB_dbi dbi) {
    MDB_cursor* c = nullptr;
    if (int rc = mdb_cursor_open(txn, dbi, &c); rc != 0) return rc;
    MDB_val k, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    mdb_cursor_close(c);
    if (rc != 0) return rc;
    std::string key(store::from_val(k));
    auto rec = history::LogRecord::decode(store::from_val(v));
    if (!rec.is_ok() || rec->header.number.value != 2) return MDB_INCOMPATIBLE;
    rec->header.number = store::ObjectNo{1};
    std::string bytes = rec->encode();
    MDB_val pk = store::to_val(key), pv = store::to_val(bytes);
    return mdb_put(txn, dbi, &pk, &pv, 0);
  });
  auto e = testing::open_engine(options_at(dir.path(), clock));
  ASSERT_TRUE(e);
  auto restored = e->restore(a, mark);
  ASSERT_FALSE(restored.is_ok());
  EXPECT_EQ(restored.status().code(), Code::kCorruption) << restored.status().to_string();
  EXPECT_NE(restored.status().message().find("names object number 1"), std::string::npos)
      << restored.status().to_string();
  EXPECT_EQ(testing::kv_read(*e, b, "k"), "b's");  // the other object is untouched
  EXPECT_EQ(testing::kv_read(*e, a, "k"), "two");
}

// undo.h (7): the summary the tail applies is the record without its entries,
// and a record made with history off says so.
TEST(LogTailTest, SummaryIsTheRecordWithoutItsEntries) {
  history::LogRecord rec;
  rec.header = {object_no(0).id, store::ObjectNo{1}, 7, kT0, 3};
  rec.sql_pages_before = 2;
  rec.sql_pages_after = 5;
  rec.deltas = {1, 40, -1, 0};
  rec.undo_kept = false;
  rec.undo.push_back({store::Db::kKv, store::object_key(store::ObjectNo{1}, "k"), std::nullopt});
  const std::string bytes = rec.encode();
  auto full = history::LogRecord::decode(bytes);
  ASSERT_TRUE(full.is_ok()) << full.status().to_string();
  EXPECT_EQ(*full, rec);
  auto summary = history::LogRecord::decode_summary(bytes);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  history::LogRecord head = rec;
  head.undo.clear();
  EXPECT_EQ(*summary, head);
  // The summary is the record less its two (empty) entry counts, one byte each.
  const size_t summary_bytes = head.encode().size() - 2;
  for (size_t n = 0; n < summary_bytes; ++n) {
    EXPECT_FALSE(history::LogRecord::decode_summary(bytes.substr(0, n)).is_ok()) << n;
  }
}

// tail.h (2): a log record applies only when its seq follows the record's;
// one already in the record is skipped, a gap is Corruption.
TEST(LogTailTest, ARecordAppliesOnlyWhenItsSeqFollowsTheRecords) {
  store::ObjectRecord r;
  r.last_seq = 4;
  r.kv_keys = 3;
  r.alarms = 1;
  history::LogRecord s;
  s.header = {object_no(0).id, store::ObjectNo{1}, 4, kT0, 0};
  s.deltas = {1, 10, -1, 0};
  s.sql_pages_after = 9;
  bool applied = true;
  ASSERT_TRUE(history::apply_to_record(r, 20, s, &applied).is_ok());
  EXPECT_FALSE(applied);
  EXPECT_EQ(r.kv_keys, 3u);
  s.header.seq = 5;
  ASSERT_TRUE(history::apply_to_record(r, 21, s, &applied).is_ok());
  EXPECT_TRUE(applied);
  EXPECT_EQ(r.last_seq, 5u);
  EXPECT_EQ(r.kv_keys, 4u);
  EXPECT_EQ(r.kv_bytes, 10u);
  EXPECT_EQ(r.alarms, 0u);
  EXPECT_EQ(r.sql_pages, 9u);
  EXPECT_EQ(r.log_no, 21u);
  s.header.seq = 7;
  Status gap = history::apply_to_record(r, 22, s);
  EXPECT_EQ(gap.code(), Code::kCorruption) << gap.to_string();
  EXPECT_NE(gap.message().find("missing from the log tail"), std::string::npos);
}

}  // namespace
}  // namespace carrel
