// carrel verify: reads one snapshot of a read-only environment and checks
//   (1) LMDB: environment figures are sane and every database walks cleanly,
//       its entry count matching mdb_stat, its keys strictly ascending;
//   (2) every object record (stored, plus the log tail) matches its data:
//       kv keys and bytes, alarm and dead-letter counts, SQL pages below the
//       recorded page count, history sequence numbers at or below last_seq;
//       no data without a record; no two objects with one number, and every
//       number below meta.next_object_no (store/keys.h (2), records.h (6));
//   (3) the timetable (`schedule`) and the alarm queues (`alarms`) agree one
//       to one, with the same due times;
//   (4) every object's SQL database passes PRAGMA integrity_check, run on a
//       private connection over the snapshot (its writes, if any, stay in
//       memory), so verify works beside a running engine;
//   (5) every KV value, SQL page, alarm entry and dead letter passes its
//       checksum (engine/store/checksum.h); each one that fails is a problem
//       naming the object and the key, page or alarm;
//   (6) the history log: records decode, and each object's records chain in
//       log order (history/undo.h (3)) up to the one its record names; a
//       damaged log key is named once, by the first check that meets it;
//   (7) every SQL page undo held as a delta (history/undo.h (7)) rebuilds a
//       page whose checksum verifies: each object's retained chain is walked
//       newest first from its current pages, as restore walks it, keeping one
//       page image per page number the chain touches.
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>
#include <map>
#include <set>
#include <unordered_map>

#include "engine/alarm/entry.h"
#include "engine/history/tail.h"
#include "engine/history/undo.h"
#include "engine/sql/sql_database.h"
#include "engine/store/checksum.h"
#include "engine/store/keys.h"
#include "engine/store/object_record.h"
#include "engine/store/page_delta.h"
#include "tools/cli/cli.h"
#include "tools/cli/env_check.h"
#include "tools/cli/output.h"
#include "tools/cli/scan.h"
#include "tools/cli/snapshot_pages.h"

namespace carrel::cli {
namespace {

using store::Db;

struct Counted {
  uint64_t kv_keys = 0, kv_bytes = 0, alarms = 0, dead = 0;
};

class Verifier {
 public:
  Verifier(store::Store& store, const store::ReadTxn& txn, std::optional<ObjectId> only,
           bool progress)
      : store_(store), txn_(txn), only_(only), progress_(progress) {}

  Status run();
  const std::vector<std::string>& problems() const { return problems_; }
  const std::map<std::string, uint64_t>& entries() const { return entries_; }
  size_t objects_checked() const { return objects_checked_; }
  size_t sql_checked() const { return sql_checked_; }

 private:
  bool wanted(const ObjectId& id) const { return !only_ || *only_ == id; }
  // Engine messages end in the remedy "run `carrel verify`", which is this.
  void problem(std::string p) {
    constexpr std::string_view kRemedy = "; run `carrel verify`";
    if (p.ends_with(kRemedy)) p.resize(p.size() - kRemedy.size());
    problems_.push_back(std::move(p));
  }
  // The checks that read history keys (the log tail, (6), the chains of (7))
  // each meet a damaged one, and say so in store::decode_u64_key's words,
  // which name the key: the first check to report those words names the key,
  // the later ones skip it.
  void history_problem(const std::string& context, const Status& s) {
    if (!history_errors_.insert(s.message()).second) return;
    problem(context + s.message());
  }
  std::string label(const ObjectId& id) const {
    auto it = records_.find(id);
    if (it == records_.end()) return id.to_hex();
    return it->second.class_name + ":" + (it->second.name.empty() ? id.to_hex() : it->second.name);
  }
  void show_progress(const std::string& what) {
    if (progress_) std::cout << "\r\033[Kverifying " << what << " ..." << std::flush;
  }
  Status check_environment();
  // Walks db, checking order and count; calls visit(key, value) per entry.
  template <typename Visit>
  Status walk(Db db, Visit visit);
  Status check_sql(const ObjectId& id, const store::ObjectRecord& r);
  Status check_page_deltas(const ObjectId& id, const store::ObjectRecord& r);

  store::Store& store_;
  const store::ReadTxn& txn_;
  std::optional<ObjectId> only_;
  bool progress_;
  std::vector<std::string> problems_;
  std::set<std::string> history_errors_;  // reported by history_problem
  std::map<std::string, uint64_t> entries_;
  std::map<ObjectId, store::ObjectRecord> records_;
  // (2) keys name their object by number (store/keys.h (2)).
  std::unordered_map<uint64_t, ObjectId> ids_;
  std::map<ObjectId, Counted> counted_;
  size_t objects_checked_ = 0, sql_checked_ = 0;
  bool intact_ = true;  // the value walk() visits passed its checksum (5)
};

Status Verifier::check_environment() {
  MDB_envinfo info{};
  MDB_stat st{};
  int rc = mdb_env_info(store_.env(), &info);
  if (rc == 0) rc = mdb_env_stat(store_.env(), &st);
  if (rc != 0) return store::from_mdb(rc, "read environment figures");
  uint64_t used = (static_cast<uint64_t>(info.me_last_pgno) + 1) * st.ms_psize;
  struct stat fst {};
  std::string data = store_.dir() + "/data.mdb";
  if (::stat(data.c_str(), &fst) != 0) {
    problem("lmdb: cannot stat " + data);
  } else if (static_cast<uint64_t>(fst.st_size) < used) {
    return Status::corruption("lmdb: data.mdb is " + std::to_string(fst.st_size) +
                              " bytes but its last page ends at " + std::to_string(used));
  }
  if (used > info.me_mapsize) problem("lmdb: used pages exceed the map size");
  if (st.ms_psize == 0 || (st.ms_psize & (st.ms_psize - 1)) != 0) {
    problem("lmdb: page size " + std::to_string(st.ms_psize) + " is not a power of two");
  }
  return Status::ok();
}

template <typename Visit>
Status Verifier::walk(Db db, Visit visit) {
  std::string name(store::db_name(db));
  show_progress(name);
  MDB_stat st{};
  int rc = mdb_stat(txn_.get(), store_.dbi(db), &st);
  if (rc != 0) return store::from_mdb(rc, "stat " + name);
  CARREL_ASSIGN_OR_RETURN(ScanCursor cur, ScanCursor::open(store_, txn_, db));
  uint64_t n = 0;
  std::string prev;
  // A structural failure ends the walk and verify: what follows it in the
  // tree cannot be trusted, and reading on is what a damaged file punishes.
  for (bool ok = cur.first(); ok; ok = cur.next()) {
    if (n > 0 && std::string_view(prev).compare(cur.key()) >= 0) {
      return Status::corruption("lmdb: " + name + " keys are out of order after entry " +
                                std::to_string(n));
    }
    prev.assign(cur.key());
    ++n;
    std::string_view value = cur.value();
    intact_ = true;
    if (store::is_sealed(db)) {
      // (5) A value that fails its checksum is a problem, not a structural
      // failure: the tree around it holds, so the walk goes on, and the
      // entry still counts (its record then agrees); visitors check the
      // contents of intact values only.
      auto opened = cur.opened();
      if (opened.is_ok()) {
        value = *opened;
      } else {
        intact_ = false;
        std::string_view k = cur.key();
        auto it =
            k.size() < store::kPrefixBytes ? ids_.end() : ids_.find(store::prefix_of(k).value);
        if (it == ids_.end() ? !only_ : wanted(it->second)) {
          problem((it == ids_.end() ? "" : label(it->second) + ": ") + opened.status().message());
        }
        value = value.substr(0, store::value_bytes(value));
      }
    }
    visit(cur.key(), value);
  }
  if (!cur.status().is_ok()) {
    if (cur.status().code() == Code::kAborted) return cur.status();
    return Status::corruption("lmdb: walking " + name + " failed after " + std::to_string(n) +
                              " entries: " + cur.status().message());
  }
  if (n != st.ms_entries) {
    return Status::corruption("lmdb: " + name + " walks " + std::to_string(n) +
                              " entries; mdb_stat says " + std::to_string(st.ms_entries));
  }
  entries_[name] = n;
  return Status::ok();
}

Status Verifier::check_sql(const ObjectId& id, const store::ObjectRecord& r) {
  ++sql_checked_;
  SnapshotPageSource pages(txn_, id, r.number, store_.sql_page_bytes(), r.sql_pages);
  auto db = sql::SqlDatabase::open(&pages, sql::SqlLimits{}, label(id));
  if (!db.is_ok()) {
    problem("sql " + label(id) + ": cannot open: " + db.status().message());
    return Status::ok();
  }
  auto c = (*db)->exec("PRAGMA integrity_check", {});
  if (!c.is_ok()) {
    problem("sql " + label(id) + ": integrity_check failed: " + c.status().message());
    return Status::ok();
  }
  for (const SqlRow& row : c->rows()) {
    auto text = row.get_text(0);
    if (!text.is_ok() || *text != "ok") {
      problem("sql " + label(id) + ": " + (text.is_ok() ? *text : display_sql_value(row[0])));
    }
  }
  (*db)->rollback_turn();
  return Status::ok();
}

// (7) Undoes the object's pages newest first, as restore does (history/undo.h
// (4), (7)), without writing: images holds each page as the walk has undone
// it so far, and a page it does not hold is still the one in `pages`. A delta
// that fails is a problem naming the object, the record and the page; the
// page is then unknown until a whole before-image replaces it.
Status Verifier::check_page_deltas(const ObjectId& id, const store::ObjectRecord& r) {
  struct Image {
    bool known = true;
    std::optional<std::string> bytes;  // nullopt: the page did not exist
  };
  std::map<std::string, Image> images;  // one per page number the chain touches
  history::ChainWalk walk(txn_.get(), store_.dbi(Db::kHistory), id, r, 0);
  for (;;) {
    auto step = walk.next();
    if (!step.is_ok()) {
      history_problem("history " + label(id) + ": ", step.status());
      return Status::ok();
    }
    if (!*step) return Status::ok();
    const uint64_t no = (*step)->no;
    auto rec = history::LogRecord::decode((*step)->bytes);
    if (!rec.is_ok()) return Status::ok();  // (6) reported it
    for (history::UndoEntry& e : rec->undo) {
      if (e.db != Db::kPages) continue;
      auto it = images.find(e.key);
      if (!e.delta) {
        images[e.key] = Image{true, std::move(e.before)};
        continue;
      }
      std::optional<std::string_view> current;
      if (it == images.end()) {
        CARREL_ASSIGN_OR_RETURN(current, txn_.get(Db::kPages, e.key));
      } else if (!it->second.known) {
        continue;  // a delta against a page that failed to rebuild proves nothing
      } else if (it->second.bytes) {
        current = *it->second.bytes;
      }
      auto before = history::rebuild_before_image(e.key, *e.before, current, no);
      if (!before.is_ok()) {
        problem(label(id) + ": " + before.status().message());
        images[e.key] = Image{false, std::nullopt};
      } else {
        images[e.key] = Image{true, std::move(*before)};
      }
    }
  }
}

Status Verifier::run() {
  CARREL_RETURN_IF_ERROR(check_environment());
  uint32_t page_bytes = store_.sql_page_bytes();
  CARREL_RETURN_IF_ERROR(walk(Db::kObjects, [&](std::string_view k, std::string_view v) {
    if (k.size() != store::kIdBytes)
      return problem("objects: a key is " + std::to_string(k.size()) + " bytes, not 16");
    auto r = store::ObjectRecord::decode(v);
    if (!r.is_ok())
      return problem("objects: " + ObjectId::from_raw(k).to_hex() + ": " + r.status().message());
    records_.emplace(ObjectId::from_raw(k), std::move(*r));
  }));
  // (2) the records as the engine sees them: stored, plus the log tail from
  // meta.checkpoint_log_no on (history/tail.h).
  if (auto tail = history::tail_records(txn_.get(), store_); !tail.is_ok()) {
    history_problem("history: the log tail does not rebuild the object records: ", tail.status());
  } else {
    for (auto& [id, r] : *tail) records_[id] = std::move(r);
  }
  // (2) one object per number, every number given before meta.next_object_no.
  auto next_raw = txn_.get(Db::kMeta, store::kNextObjectNoKey);
  std::optional<uint64_t> next_no;
  if (next_raw.is_ok() && *next_raw && (*next_raw)->size() == 8) {
    next_no = store::read_u64(**next_raw, 0);
  } else if (!records_.empty()) {
    uint64_t highest = 0;
    for (const auto& [id, r] : records_) highest = std::max(highest, r.number.value);
    problem("meta: next_object_no is " +
            (next_raw.is_ok() && *next_raw ? std::to_string((*next_raw)->size()) + " bytes, not 8"
                                           : std::string("missing")) +
            "; it must be at least " + std::to_string(highest + 1) +
            " (past the highest object number stored) before the engine opens for writing");
  }
  for (const auto& [id, r] : records_) {
    auto [it, first] = ids_.emplace(r.number.value, id);
    if (!first && (wanted(id) || wanted(it->second))) {
      problem("objects: " + label(id) + " and " + label(it->second) + " both hold number " +
              std::to_string(r.number.value));
    }
    if (next_no && r.number.value >= *next_no && wanted(id)) {
      problem("objects: " + label(id) + " holds number " + std::to_string(r.number.value) +
              ", not below meta.next_object_no (" + std::to_string(*next_no) + ")");
    }
  }
  // (2) data without a record, and per-object counts. owner() gives the id
  // of the object whose number the key starts with.
  ObjectId id_of_key;
  auto owner = [&](std::string_view db, std::string_view k,
                   size_t min_bytes) -> const store::ObjectRecord* {
    if (k.size() < min_bytes) {
      problem(std::string(db) + ": a key of " + std::to_string(k.size()) + " bytes is too short");
      return nullptr;
    }
    const uint64_t no = store::prefix_of(k).value;
    auto by_no = ids_.find(no);
    if (by_no == ids_.end()) {
      if (!only_) {
        problem(std::string(db) + ": data of object number " + std::to_string(no) +
                ", which no object record holds");
      }
      return nullptr;
    }
    id_of_key = by_no->second;
    return &records_.at(id_of_key);
  };
  CARREL_RETURN_IF_ERROR(walk(Db::kKv, [&](std::string_view k, std::string_view v) {
    if (owner("kv", k, store::kPrefixBytes) == nullptr) return;
    Counted& c = counted_[id_of_key];
    c.kv_keys += 1;
    c.kv_bytes += k.size() - store::kPrefixBytes + v.size();
  }));
  CARREL_RETURN_IF_ERROR(walk(Db::kPages, [&](std::string_view k, std::string_view v) {
    const store::ObjectRecord* r = owner("pages", k, store::kPrefixBytes + 4);
    if (r == nullptr || !wanted(id_of_key)) return;
    const ObjectId id = id_of_key;
    uint32_t n = store::read_u32(k, store::kPrefixBytes);
    if (k.size() != store::kPrefixBytes + 4) problem("pages " + label(id) + ": malformed page key");
    if (intact_ && v.size() != page_bytes) {
      problem("pages " + label(id) + ": page " + std::to_string(n) + " is " +
              std::to_string(v.size()) + " bytes, not " + std::to_string(page_bytes));
    }
    if (n >= r->sql_pages) {
      problem("pages " + label(id) + ": page " + std::to_string(n) + " lies past the recorded " +
              std::to_string(r->sql_pages) + " pages");
    }
  }));
  // (3) alarms -> schedule
  std::set<std::string> expected_schedule;
  CARREL_RETURN_IF_ERROR(walk(Db::kAlarms, [&](std::string_view k, std::string_view v) {
    if (owner("alarms", k, store::kPrefixBytes) == nullptr) return;
    const ObjectId id = id_of_key;
    counted_[id].alarms += 1;
    std::string_view name = k.substr(store::kPrefixBytes);
    if (!intact_) return;
    auto e = alarm::decode_entry(name, v);
    if (!e.is_ok()) {
      if (wanted(id)) problem("alarms " + label(id) + ": " + e.status().message());
      return;
    }
    std::string sk = store::schedule_key(static_cast<uint64_t>(e->due_ms), id, name);
    expected_schedule.insert(sk);
    auto present = txn_.get(Db::kSchedule, sk);
    if (wanted(id) && (!present.is_ok() || !*present)) {
      problem("timetable: alarm '" + display_bytes(name) + "' of " + label(id) + " due " +
              format_time(e->due_ms) + " has no timetable entry");
    }
  }));
  CARREL_RETURN_IF_ERROR(walk(Db::kSchedule, [&](std::string_view k, std::string_view) {
    if (k.size() < 8 + store::kIdBytes) return problem("schedule: a key is too short");
    ObjectId id = ObjectId::from_raw(k.substr(8, store::kIdBytes));
    if (!wanted(id) || expected_schedule.count(std::string(k)) != 0) return;
    std::string_view name = k.substr(8 + store::kIdBytes);
    problem("timetable: entry for alarm '" + display_bytes(name) + "' of " + label(id) + " at " +
            format_time(static_cast<int64_t>(store::read_u64(k, 0))) +
            " matches no alarm with that due time");
  }));
  CARREL_RETURN_IF_ERROR(walk(Db::kDead, [&](std::string_view k, std::string_view v) {
    if (owner("dead", k, store::kPrefixBytes) == nullptr) return;
    const ObjectId id = id_of_key;
    counted_[id].dead += 1;
    if (!intact_) return;
    auto d = alarm::decode_dead(k.substr(store::kPrefixBytes), v);
    if (!d.is_ok() && wanted(id))
      problem("dead letters " + label(id) + ": " + d.status().message());
  }));
  // (6) the history log (history/undo.h (1), (3)): every record decodes and
  // belongs to an object with a record; each object's records chain in log
  // order, seqs one apart, and its newest is the one its record names.
  struct ChainEnd {
    uint64_t no = 0, seq = 0;
  };
  std::map<ObjectId, ChainEnd> newest;
  uint64_t first_no = 0;
  CARREL_RETURN_IF_ERROR(walk(Db::kHistory, [&](std::string_view k, std::string_view v) {
    auto key_no = store::decode_u64_key(k, "history");
    if (!key_no.is_ok()) return history_problem("", key_no.status());
    uint64_t no = *key_no;
    if (first_no == 0) first_no = no;
    auto rec = history::LogRecord::decode_header(v);
    if (!rec.is_ok()) {
      return problem("history: record " + std::to_string(no) + ": " + rec.status().message());
    }
    const ObjectId& id = rec->id;
    auto it = records_.find(id);
    if (it == records_.end()) {
      if (wanted(id))
        problem("history: record " + std::to_string(no) + " of object " + id.to_hex() +
                ", which has no record");
      return;
    }
    if (!wanted(id)) return;
    auto full = history::LogRecord::decode(v);
    if (!full.is_ok()) {
      return problem("history " + label(id) + ": record " + std::to_string(no) + ": " +
                     full.status().message());
    }
    std::string at = "history " + label(id) + ": record " + std::to_string(no) + " (seq " +
                     std::to_string(rec->seq) + ")";
    auto prev = newest.find(id);
    if (prev != newest.end()) {
      // The object's previous record in log order must be its chain predecessor.
      if (rec->prev_no != 0 &&
          (rec->prev_no != prev->second.no || rec->seq != prev->second.seq + 1)) {
        problem(at + " names record " + std::to_string(rec->prev_no) +
                " as its predecessor, but the object's record before it in the log is " +
                std::to_string(prev->second.no) + " (seq " + std::to_string(prev->second.seq) +
                ")");
      }
    } else if (rec->prev_no >= first_no) {
      problem(at + " names record " + std::to_string(rec->prev_no) +
              " as its predecessor, which is not in the log");
    }
    if (rec->seq > it->second.last_seq)
      problem(at + " is past last_seq " + std::to_string(it->second.last_seq));
    newest[id] = ChainEnd{no, rec->seq};
  }));
  for (const auto& [id, r] : records_) {
    if (!wanted(id) || r.log_no == 0) continue;
    auto it = newest.find(id);
    if (it == newest.end()) {
      // Retention may have pruned the whole chain; it never prunes past the head.
      if (r.log_no >= first_no && first_no != 0)
        problem("record " + label(id) + ": its newest history record " + std::to_string(r.log_no) +
                " is not in the log");
    } else if (it->second.no != r.log_no || it->second.seq != r.last_seq) {
      problem("record " + label(id) + ": names history record " + std::to_string(r.log_no) +
              " (last_seq " + std::to_string(r.last_seq) + ") but the object's newest is " +
              std::to_string(it->second.no) + " (seq " + std::to_string(it->second.seq) + ")");
    }
  }
  // history/undo.h (1): meta.next_log_no is a floor written at checkpoints;
  // below meta.checkpoint_log_no, retention could let a number be used twice.
  if (auto next = txn_.get(Db::kMeta, std::string(history::kNextLogKey)); !next.is_ok()) {
    problem("meta: next_log_no cannot be read: " + next.status().message());
  } else if (*next) {
    auto tail_no = history::checkpoint_log_no(txn_.get(), store_);
    if ((*next)->size() != 8) {
      problem("meta: next_log_no is " + std::to_string((*next)->size()) + " bytes, not 8");
    } else if (tail_no.is_ok() && store::read_u64(**next, 0) < *tail_no) {
      problem("meta: next_log_no " + std::to_string(store::read_u64(**next, 0)) +
              " is below checkpoint_log_no " + std::to_string(*tail_no));
    }
  } else if (history::checkpoint_log_no(txn_.get(), store_).value_or(1) > 1) {
    problem("meta: next_log_no is missing though a checkpoint wrote checkpoint_log_no");
  }
  for (Db db : {Db::kOutbox, Db::kMeta}) {
    CARREL_RETURN_IF_ERROR(walk(db, [](std::string_view, std::string_view) {}));
  }
  // (2) records vs counted data, then (4) SQL.
  for (const auto& entry : records_) {
    const auto& id = entry.first;  // not a structured binding: lambdas below capture it
    const auto& r = entry.second;
    if (!wanted(id)) continue;
    ++objects_checked_;
    Counted c = counted_[id];
    auto mismatch = [&](std::string_view what, uint64_t recorded, uint64_t actual) {
      if (recorded != actual) {
        problem("record " + label(id) + ": " + std::string(what) + " is " +
                std::to_string(recorded) + " in the record but " + std::to_string(actual) +
                " in the data");
      }
    };
    mismatch("kv_keys", r.kv_keys, c.kv_keys);
    mismatch("kv_bytes", r.kv_bytes, c.kv_bytes);
    mismatch("alarms", r.alarms, c.alarms);
    mismatch("dead_letters", r.dead_letters, c.dead);
  }
  for (const auto& [id, r] : records_) {
    if (!wanted(id) || r.sql_pages == 0) continue;
    show_progress("sql of " + label(id));
    CARREL_RETURN_IF_ERROR(check_sql(id, r));
  }
  // (7) SQL undo deltas, per object with a history chain.
  for (const auto& [id, r] : records_) {
    if (!wanted(id) || r.log_no == 0) continue;
    show_progress("history of " + label(id));
    CARREL_RETURN_IF_ERROR(check_page_deltas(id, r));
  }
  if (progress_) std::cout << "\r\033[K" << std::flush;
  return Status::ok();
}

}  // namespace

int cmd_verify(const Globals& g, const std::optional<std::string>& obj) {
  auto engine = open_engine(g, /*read_only=*/true);
  if (!engine.is_ok()) return fail(engine.status());
  store::Store& store = store_of(**engine);
  std::optional<ObjectId> only;
  std::string label = "the engine";
  if (obj) {
    auto spec = parse_object(*obj);
    if (!spec.is_ok()) return fail(spec.status());
    auto r = resolve_object(store, *spec, /*must_exist=*/true);
    if (!r.is_ok()) return fail(r.status());
    only = r->ref.id;
    label = r->ref.label();
  }
  auto txn = store.begin_read();
  if (!txn.is_ok()) return fail(txn.status());
  bool progress_line = !g.json && isatty(STDOUT_FILENO) != 0;
  Verifier v(store, *txn, only, progress_line);
  // Every page header first (env_check.h, invariant (3)): the walks below
  // then read only pages whose structure holds.
  Status s = check_env_tree(g.dir, mdb_txn_id(txn->get()));
  if (s.is_ok()) s = v.run();
  if (!s.is_ok() && s.code() != Code::kCorruption) return fail(s.with_context("verify"));
  // A structural failure is the last problem: verify stopped there.
  std::vector<std::string> problems = v.problems();
  if (!s.is_ok()) {
    std::string m = s.message();  // verify is what the remedy's parenthesis names
    if (m.ends_with(kPageRemedy)) m.resize(m.size() - kPageRemedy.size());
    problems.push_back(m + " (verify stopped here)");
  }
  if (progress_line) std::cout << "\r\033[K" << std::flush;
  if (g.json) {
    JsonWriter j;
    j.begin_object().field("dir", g.dir);
    if (only) j.field("object", label);
    j.key("ok").boolean(problems.empty());
    j.field("objects_checked", static_cast<uint64_t>(v.objects_checked()));
    j.field("sql_checked", static_cast<uint64_t>(v.sql_checked()));
    j.key("entries").begin_object();
    for (const auto& [db, n] : v.entries()) j.field(db, n);
    j.end_object().key("problems").begin_array();
    for (const auto& p : problems) j.text(p);
    j.end_array().end_object().print_line();
  } else {
    uint64_t total = 0;
    for (const auto& [db, n] : v.entries()) total += n;
    std::cout << "checked " << label << ": " << count_of(v.objects_checked(), "object", "objects")
              << ", " << count_of(v.sql_checked(), "SQL database", "SQL databases") << ", "
              << count_of(total, "LMDB entry", "LMDB entries") << '\n';
    for (const auto& p : problems) std::cout << "PROBLEM: " << p << '\n';
    std::cout << (problems.empty() ? "no problems found"
                                   : count_of(problems.size(), "problem", "problems") + " found")
              << '\n';
  }
  if (problems.empty()) return kExitOk;
  return fail("verify found " + count_of(problems.size(), "problem", "problems") + " in '" + g.dir +
              "'" +
              (s.is_ok() ? "" : "; its data.mdb is damaged: restore the directory from a backup"));
}

}  // namespace carrel::cli
