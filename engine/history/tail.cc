#include "engine/history/tail.h"

#include <algorithm>
#include <set>

#include "engine/store/cursor.h"
#include "engine/store/keys.h"

namespace carrel::history {

Result<uint64_t> checkpoint_log_no(MDB_txn* txn, const store::Store& store) {
  MDB_val k = store::to_val(kCheckpointLogKey), v;
  int rc = mdb_get(txn, store.dbi(store::Db::kMeta), &k, &v);
  if (rc == MDB_NOTFOUND) return uint64_t{1};
  if (rc != 0) return store::from_mdb(rc, "read meta.checkpoint_log_no");
  if (v.mv_size != 8) {
    return Status::corruption("meta.checkpoint_log_no is " + std::to_string(v.mv_size) +
                              " bytes, not 8; run `carrel verify`");
  }
  return store::read_u64(store::from_val(v), 0);
}

Result<uint64_t> next_log_no(MDB_txn* txn, const store::Store& store) {
  MDB_val k = store::to_val(kNextLogKey), v;
  int rc = mdb_get(txn, store.dbi(store::Db::kMeta), &k, &v);
  uint64_t next = 1;
  if (rc == 0) {
    if (v.mv_size != 8) {
      return Status::corruption("meta.next_log_no is " + std::to_string(v.mv_size) +
                                " bytes, not 8; run `carrel verify`");
    }
    next = store::read_u64(store::from_val(v), 0);
  } else if (rc != MDB_NOTFOUND) {
    return store::from_mdb(rc, "read meta.next_log_no");
  }
  // The tail is read from checkpoint_log_no on (invariant (1)): a number
  // below it would never be read back, whatever meta.next_log_no says.
  CARREL_ASSIGN_OR_RETURN(uint64_t tail_no, checkpoint_log_no(txn, store));
  next = std::max(next, tail_no);
  MDB_cursor* c = nullptr;
  rc = mdb_cursor_open(txn, store.dbi(store::Db::kHistory), &c);
  if (rc != 0) return store::from_mdb(rc, "open a cursor on the history log");
  MDB_val lk, lv;
  rc = mdb_cursor_get(c, &lk, &lv, MDB_LAST);
  mdb_cursor_close(c);
  if (rc == MDB_NOTFOUND) return next;
  if (rc != 0) return store::from_mdb(rc, "read the history log's last record");
  CARREL_ASSIGN_OR_RETURN(uint64_t last, store::decode_u64_key(store::from_val(lk), "history"));
  return std::max(next, last + 1);
}

Status apply_to_record(store::ObjectRecord& r, uint64_t no, const LogRecord& s, bool* applied) {
  const LogHeader& h = s.header;
  if (applied != nullptr) *applied = false;
  if (h.seq <= r.last_seq) return Status::ok();  // invariant (2): already stored
  if (h.seq != r.last_seq + 1) {
    return Status::corruption("history log record " + std::to_string(no) + " holds commit " +
                              std::to_string(h.seq) + " of object " + h.id.to_hex() +
                              ", but the object's record is at commit " +
                              std::to_string(r.last_seq) +
                              ": a commit is missing from the log tail; run `carrel verify`");
  }
  r.last_seq = h.seq;
  r.last_commit_ms = std::max(r.last_commit_ms, h.time_ms);
  r.sql_pages = s.sql_pages_after;
  r.kv_keys += static_cast<uint64_t>(s.deltas.kv_keys);
  r.kv_bytes += static_cast<uint64_t>(s.deltas.kv_bytes);
  r.alarms = static_cast<uint32_t>(static_cast<int64_t>(r.alarms) + s.deltas.alarms);
  r.dead_letters =
      static_cast<uint32_t>(static_cast<int64_t>(r.dead_letters) + s.deltas.dead_letters);
  r.log_no = s.undo_kept ? no : 0;  // undo.h (8): a record without undo ends the chain
  if (applied != nullptr) *applied = true;
  return Status::ok();
}

Status for_each_in_tail(MDB_txn* txn, store::Store& store,
                        const std::function<Status(uint64_t, const LogRecord&)>& f) {
  CARREL_ASSIGN_OR_RETURN(uint64_t from, checkpoint_log_no(txn, store));
  CARREL_ASSIGN_OR_RETURN(auto c, store::Cursor::open(store, txn, store::Db::kHistory));
  // The tail is bounded (invariant (3)); the cap guards a damaged meta.
  constexpr uint64_t kScanMax = kTailRecordsMax * 4 + (uint64_t{1} << 16);
  uint64_t seen = 0;
  for (bool on = c.seek(store::log_key(from)); on; on = c.next()) {
    if (++seen > kScanMax) {
      return Status::corruption("the history log holds more than " + std::to_string(kScanMax) +
                                " records past meta.checkpoint_log_no " + std::to_string(from) +
                                "; run `carrel verify`");
    }
    CARREL_ASSIGN_OR_RETURN(uint64_t no, store::decode_u64_key(c.key(), "history"));
    auto s = LogRecord::decode_summary(c.value());
    if (!s.is_ok()) return s.status().with_context("history log record " + std::to_string(no));
    CARREL_RETURN_IF_ERROR(f(no, *s));
  }
  return c.status();
}

Result<std::optional<store::ObjectRecord>> stored_record(MDB_txn* txn, const store::Store& store,
                                                         const ObjectId& id) {
  MDB_val k = store::to_val(id.raw()), v;
  int rc = mdb_get(txn, store.dbi(store::Db::kObjects), &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<store::ObjectRecord>{};
  if (rc != 0) return store::from_mdb(rc, "read the record of object " + id.to_hex());
  auto r = store::ObjectRecord::decode(store::from_val(v));
  if (!r.is_ok()) return r.status().with_context("object " + id.to_hex());
  return std::optional<store::ObjectRecord>{std::move(*r)};
}

namespace {

// Applies a tail record to the record in *records, loading it from
// `objects` on first sight.
Status apply_loaded(MDB_txn* txn, const store::Store& store,
                    std::map<ObjectId, store::ObjectRecord>* records, std::set<ObjectId>* changed,
                    uint64_t no, const LogRecord& s) {
  auto it = records->find(s.header.id);
  if (it == records->end()) {
    CARREL_ASSIGN_OR_RETURN(auto stored, stored_record(txn, store, s.header.id));
    if (!stored) {
      return Status::corruption("history log record " + std::to_string(no) + " holds commit " +
                                std::to_string(s.header.seq) + " of object " +
                                s.header.id.to_hex() + ", which has no record in `objects`");
    }
    it = records->emplace(s.header.id, std::move(*stored)).first;
  }
  bool applied = false;
  CARREL_RETURN_IF_ERROR(apply_to_record(it->second, no, s, &applied));
  if (applied) changed->insert(s.header.id);
  return Status::ok();
}

}  // namespace

Result<std::map<ObjectId, store::ObjectRecord>> tail_records(MDB_txn* txn, store::Store& store) {
  std::map<ObjectId, store::ObjectRecord> records;
  std::set<ObjectId> changed;
  CARREL_RETURN_IF_ERROR(for_each_in_tail(txn, store, [&](uint64_t no, const LogRecord& s) {
    return apply_loaded(txn, store, &records, &changed, no, s);
  }));
  std::erase_if(records, [&](const auto& e) { return changed.count(e.first) == 0; });
  return records;
}

Status for_each_record(
    MDB_txn* txn, store::Store& store,
    const std::function<Status(const ObjectId&, const store::ObjectRecord&)>& f) {
  CARREL_ASSIGN_OR_RETURN(auto tail, tail_records(txn, store));
  auto next_tail = tail.begin();
  CARREL_ASSIGN_OR_RETURN(auto c, store::Cursor::open(store, txn, store::Db::kObjects));
  for (bool on = c.first(); on; on = c.next()) {
    if (c.key().size() != store::kIdBytes) {
      return Status::corruption("objects: a key of " + std::to_string(c.key().size()) +
                                " bytes, not " + std::to_string(store::kIdBytes));
    }
    ObjectId id = ObjectId::from_raw(c.key());
    for (; next_tail != tail.end() && next_tail->first < id; ++next_tail) {
      CARREL_RETURN_IF_ERROR(f(next_tail->first, next_tail->second));
    }
    if (next_tail != tail.end() && next_tail->first == id) {
      CARREL_RETURN_IF_ERROR(f(id, next_tail->second));
      ++next_tail;
      continue;
    }
    auto r = store::ObjectRecord::decode(c.value());
    if (!r.is_ok()) return r.status().with_context("object " + id.to_hex());
    CARREL_RETURN_IF_ERROR(f(id, *r));
  }
  CARREL_RETURN_IF_ERROR(c.status());
  for (; next_tail != tail.end(); ++next_tail) {
    CARREL_RETURN_IF_ERROR(f(next_tail->first, next_tail->second));
  }
  return Status::ok();
}

Result<std::optional<store::ObjectRecord>> current_record(MDB_txn* txn, store::Store& store,
                                                          const ObjectId& id) {
  std::map<ObjectId, store::ObjectRecord> records;
  std::set<ObjectId> changed;
  CARREL_ASSIGN_OR_RETURN(auto stored, stored_record(txn, store, id));
  if (stored) records.emplace(id, std::move(*stored));
  CARREL_RETURN_IF_ERROR(for_each_in_tail(txn, store, [&](uint64_t no, const LogRecord& s) {
    if (s.header.id != id) return Status::ok();
    return apply_loaded(txn, store, &records, &changed, no, s);
  }));
  auto it = records.find(id);
  if (it == records.end()) return std::optional<store::ObjectRecord>{};
  return std::optional<store::ObjectRecord>{std::move(it->second)};
}

}  // namespace carrel::history
