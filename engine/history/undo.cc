#include "engine/history/undo.h"

#include "engine/history/page_delta.h"
#include "engine/store/codec.h"
#include "engine/store/keys.h"

namespace carrel::history {
namespace {
// 2 (carrel-3): an entry's before-image may be a page delta (invariant (7)).
constexpr uint8_t kLogVersion = 2;
// How an entry holds its value: absent, whole, or a page delta (invariant (7)).
enum class Form : uint8_t { kAbsent = 0, kWhole = 1, kDelta = 2 };
// version, id, seq, time, prev_no
constexpr size_t kHeaderBytes = 1 + store::kIdBytes + 8 + 8 + 8;
// Entries a record of n bytes can hold at most: each takes at least 6 bytes
// (db, key length, presence), so a count past this is malformed, not a
// reason to reserve memory.
constexpr size_t kEntryBytesMin = 1 + 4 + 1;

void encode_entries(store::Writer& w, const std::vector<UndoEntry>& entries) {
  w.u32(static_cast<uint32_t>(entries.size()));
  for (const UndoEntry& e : entries) {
    w.u8(static_cast<uint8_t>(e.db));
    w.str32(e.key);
    Form form = !e.before ? Form::kAbsent : e.delta ? Form::kDelta : Form::kWhole;
    w.u8(static_cast<uint8_t>(form));
    if (e.before) w.str32(*e.before);
  }
}

// Malformed entries are Corruption naming the section and the entry.
Status decode_entries(store::Reader& r, std::string_view section, std::vector<UndoEntry>* out) {
  uint32_t n = 0;
  if (!r.u32(&n) || n > r.remaining() / kEntryBytesMin) return r.corruption(section);
  out->reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    UndoEntry e;
    uint8_t db = 0, form = 0;
    auto bad = [&](std::string_view what) {
      return r.corruption(std::string(section) + ", entry " + std::to_string(i) + ": " +
                          std::string(what));
    };
    if (!r.u8(&db) || db >= store::kDbCount || !r.str32(&e.key) || !r.u8(&form) ||
        form > static_cast<uint8_t>(Form::kDelta)) {
      return bad("database, key or form");
    }
    e.db = static_cast<store::Db>(db);
    if (form != static_cast<uint8_t>(Form::kAbsent)) {
      std::string v;
      if (!r.str32(&v)) return bad("value");
      e.before = std::move(v);
    }
    if (form == static_cast<uint8_t>(Form::kDelta)) {
      // Invariant (7): only pages, and only well-formed deltas.
      if (e.db != store::Db::kPages) return bad("a delta outside the pages database");
      Status delta = check_page_delta(*e.before);
      if (!delta.is_ok()) return bad(delta.message());
      e.delta = true;
    }
    out->push_back(std::move(e));
  }
  return Status::ok();
}

bool decode_header_into(store::Reader& r, LogHeader* h) {
  std::string_view id;
  if (!r.version(kLogVersion) || !r.raw(store::kIdBytes, &id)) return false;
  h->id = ObjectId::from_raw(id);
  return r.u64(&h->seq) && r.i64(&h->time_ms) && r.u64(&h->prev_no);
}

// Everything before the entries; the reader stays at the undo section.
Status decode_summary_into(store::Reader& r, LogRecord* rec) {
  if (!decode_header_into(r, &rec->header)) return r.corruption("header");
  uint8_t kept = 0;
  bool ok = r.u32(&rec->sql_pages_before) && r.u32(&rec->sql_pages_after) &&
            r.i64(&rec->deltas.kv_keys) && r.i64(&rec->deltas.kv_bytes) &&
            r.i64(&rec->deltas.alarms) && r.i64(&rec->deltas.dead_letters) && r.u8(&kept) &&
            kept <= 1;
  if (!ok) return r.corruption("counters of seq " + std::to_string(rec->header.seq));
  rec->undo_kept = kept == 1;
  return Status::ok();
}

}  // namespace

std::string LogRecord::encode() const {
  std::string out;
  size_t bytes = kHeaderBytes + 4 + 4 + 4 * 8 + 1 + 4 + 4;
  for (const UndoEntry& e : undo) bytes += 10 + e.key.size() + (e.before ? e.before->size() : 0);
  out.reserve(bytes);
  store::Writer w(&out);
  w.version(kLogVersion);
  w.raw(header.id.raw());
  w.u64(header.seq);
  w.i64(header.time_ms);
  w.u64(header.prev_no);
  w.u32(sql_pages_before);
  w.u32(sql_pages_after);
  w.i64(deltas.kv_keys);
  w.i64(deltas.kv_bytes);
  w.i64(deltas.alarms);
  w.i64(deltas.dead_letters);
  w.u8(undo_kept ? 1 : 0);  // invariant (8)
  encode_entries(w, undo);
  encode_entries(w, redo);  // invariant (5)
  return out;
}

Result<LogHeader> LogRecord::decode_header(std::string_view b) {
  store::Reader r(b, "history log record");
  LogHeader h;
  if (!decode_header_into(r, &h)) return r.corruption("header");
  return h;
}

Result<LogRecord> LogRecord::decode_summary(std::string_view b) {
  store::Reader r(b, "history log record");
  LogRecord rec;
  CARREL_RETURN_IF_ERROR(decode_summary_into(r, &rec));
  return rec;
}

Result<LogRecord> LogRecord::decode(std::string_view b) {
  store::Reader r(b, "history log record");
  LogRecord rec;
  CARREL_RETURN_IF_ERROR(decode_summary_into(r, &rec));
  const std::string seq = std::to_string(rec.header.seq);
  CARREL_RETURN_IF_ERROR(decode_entries(r, "undo entries of seq " + seq, &rec.undo));
  CARREL_RETURN_IF_ERROR(decode_entries(r, "redo section of seq " + seq, &rec.redo));
  if (!r.done()) return r.corruption("bytes past the redo section of seq " + seq);
  return rec;
}

Status ChainWalk::check_pruned() const {
  // Invariant (3): retention takes only the log's head, so a record it
  // pruned lies before the log's first record.
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn_, log_, &c);
  if (rc != 0) return store::from_mdb(rc, "open a cursor on the history log");
  MDB_val k, v;
  rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
  std::string first(rc == 0 ? store::from_val(k) : std::string_view{});
  mdb_cursor_close(c);
  if (rc == MDB_NOTFOUND) return Status::ok();
  if (rc != 0) return store::from_mdb(rc, "read the history log's first record");
  CARREL_ASSIGN_OR_RETURN(uint64_t first_no, store::decode_u64_key(first, "history"));
  if (first_no < no_) {
    return Status::corruption(
        "history log record " + std::to_string(no_) + " (commit " + std::to_string(seq_) +
        " of object " + id_.to_hex() + ") is missing, but the log holds records from " +
        std::to_string(first_no) + " on and retention deletes only its head; run `carrel verify`");
  }
  return Status::ok();
}

Result<std::optional<ChainWalk::Step>> ChainWalk::next() {
  if (no_ == 0 || seq_ == 0 || seq_ <= floor_) return std::optional<Step>{};
  std::string key = store::log_key(no_);
  MDB_val k = store::to_val(key), v;
  int rc = mdb_get(txn_, log_, &k, &v);
  if (rc == MDB_NOTFOUND) {  // pruned: invariant (3)
    CARREL_RETURN_IF_ERROR(check_pruned());
    return std::optional<Step>{};
  }
  if (rc != 0) return store::from_mdb(rc, "read history log record " + std::to_string(no_));
  Step step;
  step.no = no_;
  step.bytes = store::from_val(v);
  CARREL_ASSIGN_OR_RETURN(step.header, LogRecord::decode_header(step.bytes));
  if (step.header.id != id_ || step.header.seq != seq_) {
    return Status::corruption("history log record " + std::to_string(no_) + " holds commit " +
                              std::to_string(step.header.seq) + " of object " +
                              step.header.id.to_hex() + ", but the chain of object " +
                              id_.to_hex() + " expects its commit " + std::to_string(seq_) +
                              " there; run `carrel verify`");
  }
  no_ = step.header.prev_no;
  --seq_;
  return std::optional<Step>{step};
}

}  // namespace carrel::history
