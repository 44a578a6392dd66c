#include "engine/commit/group_writer.h"

#include <algorithm>

#include "engine/alarm/entry.h"
#include "engine/base/check.h"
#include "engine/history/tail.h"
#include "engine/kv/reserved.h"
#include "engine/store/checksum.h"
#include "engine/store/codec.h"
#include "engine/store/cursor.h"
#include "engine/store/keys.h"
#include "engine/store/page_delta.h"

namespace carrel::detail {
namespace {

using store::Db;
constexpr std::string_view kNextMessageKey = "next_message_no";
constexpr uint8_t kMessageVersion = 1;

// A meta counter (u64 BE), or first when absent.
Result<uint64_t> decode_counter(const std::optional<std::string>& raw, std::string_view name,
                                uint64_t first) {
  if (!raw) return first;
  if (raw->size() != 8) {
    return Status::corruption("meta." + std::string(name) + " is " + std::to_string(raw->size()) +
                              " bytes, not 8");
  }
  return store::read_u64(*raw, 0);
}

// A batch value as write() takes it: the shared sealed bytes, nullopt for a delete.
std::optional<std::string_view> stored_bytes(const store::SealedBytes& value) {
  if (!value) return std::nullopt;
  return std::string_view(*value);
}

// For CARREL_DASSERT: whether db holds key.
bool holds(MDB_txn* txn, MDB_dbi dbi, std::string_view key) {
  MDB_val k = store::to_val(key), v;
  return mdb_get(txn, dbi, &k, &v) == 0;
}

// Invariant (7), for CARREL_DASSERT.
bool pages_within_file(const CommitBatch& b) {
  if (b.pages.empty()) return true;
  if (!b.sql_pages) return false;
  return std::all_of(b.pages.begin(), b.pages.end(),
                     [&](const auto& p) { return !p.second || p.first < *b.sql_pages; });
}

}  // namespace

// The outbox record (codec.h): version, target class, id and name, sender,
// method, and the payload as the rest.
std::string encode_message(const OutMessage& m) {
  std::string out;
  out.reserve(1 + 2 + m.target.class_name.size() + store::kIdBytes + 2 + m.target.name.size() +
              2 + m.sender.size() + 4 + m.method.size() + m.payload.size());
  store::Writer w(&out);
  w.version(kMessageVersion);
  w.str16(m.target.class_name);
  w.raw(m.target.id.raw());
  w.str16(m.target.name);
  w.str16(m.sender);
  w.str32(m.method);
  w.raw(m.payload);
  return out;
}

Result<OutMessage> decode_message(std::string_view b) {
  store::Reader r(b, "outbox message");
  OutMessage m;
  std::string_view id;
  bool ok = r.version(kMessageVersion) && r.str16(&m.target.class_name) &&
            r.raw(store::kIdBytes, &id) && r.str16(&m.target.name) && r.str16(&m.sender) &&
            r.str32(&m.method);
  if (!ok) return r.corruption();
  m.target.id = ObjectId::from_raw(id);
  m.payload.assign(r.rest());
  return m;
}

Result<std::optional<std::string>> GroupWriter::get_raw(Db db, std::string_view key) {
  MDB_val k = store::to_val(key), v;
  int rc = mdb_get(txn_, store_.dbi(db), &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string>{};
  if (rc != 0) return store::from_mdb(rc, "read " + std::string(store::db_name(db)));
  return std::optional<std::string>{std::string(store::from_val(v))};
}

Status GroupWriter::put_raw(Db db, std::string_view key, std::string_view value) {
  MDB_val k = store::to_val(key), v = store::to_val(value);
  int rc = mdb_put(txn_, store_.dbi(db), &k, &v, 0);
  bytes_written_ += key.size() + value.size();
  if (redo_) redo_->put(db, key, value);
  return store::from_mdb(rc, "write " + std::string(store::db_name(db)));
}

Status GroupWriter::del_raw(Db db, std::string_view key) {
  MDB_val k = store::to_val(key);
  int rc = mdb_del(txn_, store_.dbi(db), &k, nullptr);
  if (rc == MDB_NOTFOUND) return Status::ok();
  if (redo_) redo_->del(db, key);
  return store::from_mdb(rc, "delete from " + std::string(store::db_name(db)));
}

Result<GroupWriter::ObjectState*> GroupWriter::load(const CommitBatch& b) {
  auto it = objects_.find(b.object.id);
  if (it == objects_.end()) {
    ObjectState st;
    st.id = b.object.id;
    // Invariant (2), records.h (1): the cache holds the newest record of an
    // object committed since the checkpoint, `objects` every other one's.
    std::optional<store::ObjectRecord> cached = records_.find_dirty(b.object.id);
    if (cached) {
      st.record = std::move(*cached);
    } else {
      CARREL_ASSIGN_OR_RETURN(auto stored, history::stored_record(txn_, store_, b.object.id));
      if (stored) {
        st.record = std::move(*stored);
      } else {
        st.record.class_name = b.object.class_name;
        st.record.created_ms = b.commit_ms;
        st.record.number = b.object_no;  // records.h (6)
        st.created = true;
        next_object_no_ = std::max(next_object_no_.value_or(0), b.object_no.value + 1);
      }
    }
    it = objects_.emplace(b.object.id, std::move(st)).first;
  }
  ObjectState& st = it->second;
  // records.h (6): the batch's values were sealed under the number its
  // activation read from this record (or gave it, for a new one).
  if (st.record.number != b.object_no) {
    return Status::aborted("commit " + std::to_string(b.seq) + " of " + b.object.label() +
                           " was sealed for object number " + std::to_string(b.object_no.value) +
                           ", but the object holds number " +
                           std::to_string(st.record.number.value) +
                           ": its values are not written; the object reloads its state from "
                           "disk, and the turn may be retried");
  }
  if (st.record.name.empty() && !b.object.name.empty()) st.record.name = b.object.name;
  return &st;
}

Result<MDB_cursor*> GroupWriter::cursor(Db db) {
  MDB_cursor*& c = cursors_[static_cast<size_t>(db)];
  if (c == nullptr) {
    // A write transaction's cursors are freed when it ends (invariant (5)).
    int rc = mdb_cursor_open(txn_, store_.dbi(db), &c);
    if (rc != 0) return store::from_mdb(rc, "open cursor on " + std::string(store::db_name(db)));
  }
  return c;
}

Status GroupWriter::write(ObjectState& st, Db db, const std::string& key,
                          std::optional<std::string_view> value) {
  // Invariant (5): one descent finds the before-image, and the put or delete
  // happens at the cursor's position.
  CARREL_ASSIGN_OR_RETURN(MDB_cursor * c, cursor(db));
  MDB_val k = store::to_val(key), v;
  int rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
  if (rc != 0 && rc != MDB_NOTFOUND) {
    return store::from_mdb(rc, "read " + std::string(store::db_name(db)));
  }
  std::optional<std::string> old;
  if (rc == 0) old.emplace(store::from_val(v));
  if (!old && !value) return Status::ok();
  // Invariant (6): rewriting a page with its own bytes changes nothing.
  if (db == Db::kPages && old && value && *old == *value) return Status::ok();
  Change change(db, old, value);
  if (keep_history_) CARREL_RETURN_IF_ERROR(note_undo(st, db, key, change));
  if (value) {
    MDB_val pk = store::to_val(key), pv = store::to_val(*value);
    rc = mdb_cursor_put(c, &pk, &pv, old ? MDB_CURRENT : 0);
    bytes_written_ += key.size() + value->size();
    if (redo_) note_redo(db, key, change);
    CARREL_RETURN_IF_ERROR(store::from_mdb(rc, "write " + std::string(store::db_name(db))));
  } else {
    rc = mdb_cursor_del(c, 0);
    if (redo_) redo_->del(db, key);
    CARREL_RETURN_IF_ERROR(store::from_mdb(rc, "delete from " + std::string(store::db_name(db))));
  }
  store::ObjectRecord& r = st.record;
  std::string_view suffix = std::string_view(key).substr(store::kPrefixBytes);
  switch (db) {
    case Db::kKv:
      if (old) r.kv_keys -= 1, r.kv_bytes -= suffix.size() + store::value_bytes(*old);
      if (value) r.kv_keys += 1, r.kv_bytes += suffix.size() + store::value_bytes(*value);
      break;
    case Db::kAlarms: {
      const ObjectId& id = st.id;
      // Store messages name the object by number (store/keys.h (2)); add its id.
      auto opened = [&](std::string_view stored) {
        Result<std::string_view> r = store::open(db, key, stored);
        return r.is_ok()
                   ? r
                   : Result<std::string_view>(r.status().with_context("object " + id.to_hex()));
      };
      if (old) {
        CARREL_ASSIGN_OR_RETURN(std::string_view entry, opened(*old));
        CARREL_ASSIGN_OR_RETURN(UnixMs due, alarm::decode_due(entry));
        std::string timetable_key = store::schedule_key(due, id, suffix);
        CARREL_DASSERT(holds(txn_, store_.dbi(Db::kSchedule), timetable_key),
                       "group_writer.h (1): a stored alarm has its timetable key");
        CARREL_RETURN_IF_ERROR(del_raw(Db::kSchedule, timetable_key));
        r.alarms -= 1;
      }
      if (value) {
        CARREL_ASSIGN_OR_RETURN(std::string_view entry, opened(*value));
        CARREL_ASSIGN_OR_RETURN(UnixMs due, alarm::decode_due(entry));
        CARREL_RETURN_IF_ERROR(put_raw(Db::kSchedule, store::schedule_key(due, id, suffix), {}));
        r.alarms += 1;
        earliest_alarm_ = std::min(earliest_alarm_.value_or(due), due);
      }
      break;
    }
    case Db::kDead:
      if (old) r.dead_letters -= 1;
      if (value) r.dead_letters += 1;
      break;
    default: break;
  }
  return Status::ok();
}

void GroupWriter::note_redo(Db db, std::string_view key, Change& change) {
  // store/redo.h (10): a page changed in place is logged by the bytes that
  // changed, when they are fewer than the page.
  if (change.page_in_place) {
    const std::string delta = store::encode_page_delta(change.page_runs(), *change.value);
    if (delta.size() < change.value->size()) {
      redo_->put_delta(db, key, delta);
      return;
    }
  }
  redo_->put(db, key, *change.value);
}

Status GroupWriter::note_undo(ObjectState& st, Db db, const std::string& key, Change& change) {
  const std::optional<std::string>& old = change.old;
  auto [it, first] = st.touched.try_emplace({static_cast<uint8_t>(db), key}, st.log.undo.size());
  if (first) {
    // Invariant (6), history/undo.h (7): a page changed in place keeps the
    // bytes that rebuild its before-image from the new value.
    if (change.page_in_place) {
      std::string delta = store::encode_page_delta(change.page_runs(), *old);
      CARREL_DASSERT(store::apply_page_delta(delta, *change.value).value_or("") == *old,
                     "page_delta.h (2): the delta rebuilds the before-image from the new page");
      st.log.undo.push_back({db, key, std::move(delta), true});
    } else {
      st.log.undo.push_back({db, key, old});
    }
    return Status::ok();
  }
  history::UndoEntry& e = st.log.undo[it->second];
  if (!e.delta) return Status::ok();
  // The delta's base, the value this batch wrote, is about to change: keep
  // the whole before-image instead (invariant (6)).
  CARREL_ASSERT(old.has_value(), "group_writer.h (6): a delta's base is the value the batch wrote");
  CARREL_ASSIGN_OR_RETURN(std::string whole, store::apply_page_delta(*e.before, *old));
  e.before = std::move(whole);
  e.delta = false;
  return Status::ok();
}

Status GroupWriter::clear_range(ObjectState& st, Db db, const std::string& from,
                                const std::string& to) {
  std::vector<std::string> keys;
  {
    CARREL_ASSIGN_OR_RETURN(store::Cursor c, store::Cursor::open(store_, txn_, db));
    for (bool on = c.seek(from); on && (to.empty() || c.key() < to); on = c.next()) {
      keys.emplace_back(c.key());
    }
    CARREL_RETURN_IF_ERROR(c.status());
  }
  for (const std::string& key : keys) CARREL_RETURN_IF_ERROR(write(st, db, key, std::nullopt));
  return Status::ok();
}

Status GroupWriter::apply_restore(ObjectState& st, const ObjectId& id, uint64_t to_seq) {
  // Undo newest first (invariant (4) of history/undo.h). The restore's own log
  // record captures the current values on first touch, so it can be undone.
  const store::ObjectRecord& r = st.record;
  history::ChainWalk walk(txn_, store_.dbi(Db::kHistory), id, r,
                          history::cap_floor(r.last_seq, history_commits_max_));
  uint32_t sql_pages = r.sql_pages;
  for (uint64_t seq = r.last_seq; seq > to_seq; --seq) {
    CARREL_ASSIGN_OR_RETURN(auto step, walk.next());
    if (!step) {
      return Status::not_found("history of object " + id.to_hex() + " has no record of commit " +
                               std::to_string(seq));
    }
    auto rec = history::LogRecord::decode(step->bytes);
    if (!rec.is_ok()) {
      return rec.status().with_context("history log record " + std::to_string(step->no));
    }
    for (const history::UndoEntry& e : rec->undo) {
      // Connection records stay as they are: the connections belong to the
      // transport, which a restore does not roll back (kv/reserved.h).
      if (e.db == Db::kKv && is_reserved_key(std::string_view(e.key).substr(store::kPrefixBytes))) {
        continue;
      }
      if (!e.delta) {
        CARREL_RETURN_IF_ERROR(write(st, e.db, e.key, e.before));
        continue;
      }
      CARREL_ASSIGN_OR_RETURN(std::string before, rebuild_page(e, step->no));
      CARREL_RETURN_IF_ERROR(write(st, e.db, e.key, std::string_view(before)));
    }
    sql_pages = rec->sql_pages_before;
  }
  st.record.sql_pages = sql_pages;
  return Status::ok();
}

Result<std::string> GroupWriter::rebuild_page(const history::UndoEntry& e, uint64_t no) {
  // history/undo.h (7): the key holds the page the delta was taken against.
  CARREL_ASSIGN_OR_RETURN(auto current, get_raw(e.db, e.key));
  return history::rebuild_before_image(e.key, *e.before, current, no);
}

Result<uint64_t> GroupWriter::next_message_no() {
  if (!message_no_) {
    CARREL_ASSIGN_OR_RETURN(auto raw, get_raw(Db::kMeta, kNextMessageKey));
    CARREL_ASSIGN_OR_RETURN(message_no_, decode_counter(raw, kNextMessageKey, 1));
  }
  return (*message_no_)++;
}

Result<uint64_t> GroupWriter::next_log_no() {
  if (!log_no_) {
    CARREL_ASSIGN_OR_RETURN(log_no_, history::next_log_no(txn_, store_));  // undo.h (1)
  }
  return (*log_no_)++;
}

Status GroupWriter::apply(const CommitBatch& b) {
  if (!b.has_writes()) return Status::ok();
  CARREL_ASSIGN_OR_RETURN(ObjectState * st, load(b));
  store::ObjectRecord& r = st->record;
  if (b.seq != r.last_seq + 1) {
    return Status::aborted("commit " + std::to_string(b.seq) + " of " + b.object.label() +
                           " does not follow its last commit " + std::to_string(r.last_seq));
  }
  st->touched.clear();
  const store::ObjectRecord before = r;
  history::LogRecord& log = st->log;
  log = history::LogRecord{};
  log.header.id = b.object.id;
  log.header.number = r.number;
  log.header.seq = b.seq;
  log.header.prev_no = r.log_no;
  log.sql_pages_before = r.sql_pages;
  const ObjectId& id = b.object.id;
  const store::ObjectNo number = r.number;
  if (b.restore_to_seq) CARREL_RETURN_IF_ERROR(apply_restore(*st, id, *b.restore_to_seq));
  if (b.kv_cleared) {
    std::string from = store::object_prefix(number);
    CARREL_RETURN_IF_ERROR(clear_range(*st, Db::kKv, from, store::prefix_successor(from)));
  }
  for (auto& [k, v] : b.kv) {
    CARREL_RETURN_IF_ERROR(write(*st, Db::kKv, store::object_key(number, k), stored_bytes(v)));
  }
  CARREL_DASSERT(pages_within_file(b), "group_writer.h (7): no SQL page past the file's length");
  for (auto& [n, page] : b.pages) {
    CARREL_RETURN_IF_ERROR(write(*st, Db::kPages, store::page_key(number, n), stored_bytes(page)));
  }
  if (b.sql_pages) {
    CARREL_RETURN_IF_ERROR(clear_range(*st, Db::kPages, store::page_key(number, *b.sql_pages),
                                       store::prefix_successor(store::object_prefix(number))));
    r.sql_pages = *b.sql_pages;
  }
  for (auto& [name, v] : b.alarms) {
    CARREL_RETURN_IF_ERROR(
        write(*st, Db::kAlarms, store::object_key(number, name), stored_bytes(v)));
  }
  for (auto& [name, v] : b.dead) {
    CARREL_RETURN_IF_ERROR(write(*st, Db::kDead, store::object_key(number, name), stored_bytes(v)));
  }
  for (const OutMessage& m : b.messages) {
    CARREL_ASSIGN_OR_RETURN(uint64_t no, next_message_no());
    std::string key;
    store::append_u64(&key, no);
    CARREL_RETURN_IF_ERROR(put_raw(Db::kOutbox, key, encode_message(m)));
    sent_.emplace_back(no, m);
  }
  if (b.consumed_message) {
    std::string key;
    store::append_u64(&key, *b.consumed_message);
    CARREL_RETURN_IF_ERROR(del_raw(Db::kOutbox, key));
  }
  r.last_seq = b.seq;
  r.last_commit_ms = std::max(b.commit_ms, r.last_commit_ms);
  // Invariant (4), also with history off (history/undo.h (8)): the record is
  // what rebuilds the object record (history/tail.h). The per-object cap
  // costs nothing here: ChainWalk enforces it, and retention deletes the
  // records it hides from the log's head.
  log.undo_kept = keep_history_;
  log.header.time_ms = r.last_commit_ms;
  log.sql_pages_after = r.sql_pages;
  log.deltas.kv_keys = static_cast<int64_t>(r.kv_keys - before.kv_keys);
  log.deltas.kv_bytes = static_cast<int64_t>(r.kv_bytes - before.kv_bytes);
  log.deltas.alarms = static_cast<int64_t>(r.alarms) - before.alarms;
  log.deltas.dead_letters = static_cast<int64_t>(r.dead_letters) - before.dead_letters;
  CARREL_ASSIGN_OR_RETURN(uint64_t no, next_log_no());
  std::string key = store::log_key(no), value = log.encode();
  MDB_val k = store::to_val(key), v = store::to_val(value);
  int rc = mdb_put(txn_, store_.dbi(Db::kHistory), &k, &v, MDB_APPEND);
  if (rc == MDB_KEYEXIST) {
    return Status::corruption("history log record " + std::to_string(no) +
                              " is not past the log's last record (meta.next_log_no is behind "
                              "the log); run `carrel verify`");
  }
  CARREL_RETURN_IF_ERROR(store::from_mdb(rc, "append to the history log"));
  if (redo_) redo_->put(Db::kHistory, key, value);
  bytes_written_ += key.size() + value.size();
  ++log_records_;
  r.log_no = keep_history_ ? no : 0;  // with history off the chain ends here (undo.h (3))
  return Status::ok();
}

int64_t GroupWriter::commit_ms_of(const ObjectId& id) {
  auto it = objects_.find(id);
  return it == objects_.end() ? now_ms_ : it->second.record.last_commit_ms;
}

Result<uint64_t> GroupWriter::peek_log_no() {
  CARREL_ASSIGN_OR_RETURN(uint64_t no, next_log_no());
  --*log_no_;
  return no;
}

RecordList GroupWriter::take_records() {
  RecordList out;
  out.reserve(objects_.size());
  for (auto& [id, st] : objects_) {
    // records.h (5): a created object's record went to `objects` whole.
    if (!st.created || checkpoint_no_) out.emplace_back(id, std::move(st.record));
  }
  objects_.clear();
  return out;
}

Status GroupWriter::write_checkpoint() {
  // records.h (3): every dirty record and this group's, in id order through
  // one cursor, and the log number from which the tail starts.
  RecordList group;
  group.reserve(objects_.size());
  for (auto& [id, st] : objects_) group.emplace_back(id, st.record);
  CARREL_ASSIGN_OR_RETURN(MDB_cursor * c, cursor(Db::kObjects));
  for (const auto& [id, record] : records_.checkpoint_set(group)) {
    std::string value = record.encode();
    MDB_val k = store::to_val(id.raw()), v = store::to_val(value);
    CARREL_RETURN_IF_ERROR(store::from_mdb(mdb_cursor_put(c, &k, &v, 0), "checkpoint objects"));
    if (redo_) redo_->put(Db::kObjects, id.raw(), value);
    bytes_written_ += store::kIdBytes + value.size();
  }
  CARREL_ASSIGN_OR_RETURN(uint64_t next, peek_log_no());
  std::string v;
  store::append_u64(&v, next);
  CARREL_RETURN_IF_ERROR(put_raw(Db::kMeta, history::kCheckpointLogKey, v));
  // undo.h (1): the floor for the next log number, so retention, which may
  // delete every record before this one, never lets a number be used twice.
  CARREL_RETURN_IF_ERROR(put_raw(Db::kMeta, history::kNextLogKey, v));
  checkpoint_no_ = next;
  return Status::ok();
}

Status GroupWriter::finish(bool checkpoint) {
  if (checkpoint) {
    CARREL_RETURN_IF_ERROR(write_checkpoint());
  } else {
    for (auto& [id, st] : objects_) {
      if (!st.created) continue;  // records.h (5)
      CARREL_RETURN_IF_ERROR(put_raw(Db::kObjects, id.raw(), st.record.encode()));
    }
  }
  if (message_no_) {
    std::string v;
    store::append_u64(&v, *message_no_);
    CARREL_RETURN_IF_ERROR(put_raw(Db::kMeta, kNextMessageKey, v));
  }
  if (next_object_no_) {
    // records.h (6): numbers given out of creation order never lower it.
    CARREL_ASSIGN_OR_RETURN(auto raw, get_raw(Db::kMeta, store::kNextObjectNoKey));
    CARREL_ASSIGN_OR_RETURN(uint64_t stored, decode_counter(raw, store::kNextObjectNoKey, 1));
    if (*next_object_no_ > stored) {
      std::string v;
      store::append_u64(&v, *next_object_no_);
      CARREL_RETURN_IF_ERROR(put_raw(Db::kMeta, store::kNextObjectNoKey, v));
    }
  }
  return Status::ok();
}

}  // namespace carrel::detail
