#include "engine/history/undo.h"

#include "engine/store/codec.h"
#include "engine/store/keys.h"
#include "engine/store/page_delta.h"

namespace carrel::history {
namespace {
// 4 (carrel-7): version 3's varints (carrel-4 to carrel-6) with the object's
// number after its id, and a key under the record's own object prefix (the
// number) holds only what follows it (invariant (9)). Only version 4 decodes:
// older records name keys by the id prefix carrel-7 no longer uses.
constexpr uint8_t kVersion = 4;
// How an entry holds its value: absent, whole, or a page delta (invariant (7)).
enum class Form : uint8_t { kAbsent = 0, kWhole = 1, kDelta = 2 };
// The entry tag: the database in the low bits, the form above it,
// and whether the key is the record's id followed by the stored bytes.
constexpr uint8_t kTagDbMask = 0x0f;
constexpr int kTagFormShift = 4;
constexpr uint8_t kTagFormMask = 0x30;
constexpr uint8_t kTagOwnKey = 0x40;
static_assert(store::kDbCount <= kTagDbMask + 1, "a database number fits the tag");
// The flags byte.
constexpr uint8_t kFlagUndoKept = 0x01;
// version, id, number, seq, time, prev_no; counters and flags
constexpr size_t kHeaderBytesMax = 1 + store::kIdBytes + 4 * store::kVarintBytesMax;
constexpr size_t kSummaryBytesMax = kHeaderBytesMax + 1 + 6 * store::kVarintBytesMax + 2 * 5;
// Entries a record of n bytes can hold at most: each takes at least this
// many bytes (tag, key length), so a count past that is malformed, not a
// reason to reserve memory.
constexpr size_t kEntryBytesMin = 1 + 1;

void encode_entries(store::Writer& w, store::ObjectNo no, const std::vector<UndoEntry>& entries) {
  w.varint(entries.size());
  const std::string prefix = store::object_prefix(no);
  for (const UndoEntry& e : entries) {
    Form form = !e.before ? Form::kAbsent : e.delta ? Form::kDelta : Form::kWhole;
    const bool own = std::string_view(e.key).starts_with(prefix);  // invariant (9)
    w.u8(static_cast<uint8_t>(static_cast<uint8_t>(e.db) |
                              static_cast<uint8_t>(form) << kTagFormShift |
                              (own ? kTagOwnKey : 0)));
    w.vstr(own ? std::string_view(e.key).substr(prefix.size()) : std::string_view(e.key));
    if (e.before) w.vstr(*e.before);
  }
}

// The database, key and form of one entry.
bool decode_entry_head(store::Reader& r, std::string_view prefix, uint8_t* db, uint8_t* form,
                       std::string* key) {
  uint8_t tag = 0;
  std::string_view stored;
  if (!r.u8(&tag) || (tag & ~(kTagDbMask | kTagFormMask | kTagOwnKey)) != 0 || !r.vstr(&stored)) {
    return false;
  }
  *db = tag & kTagDbMask;
  *form = static_cast<uint8_t>((tag & kTagFormMask) >> kTagFormShift);
  key->clear();
  if (tag & kTagOwnKey) key->append(prefix);
  key->append(stored);
  return true;
}

// Malformed entries are Corruption naming the section and the entry.
Status decode_entries(store::Reader& r, store::ObjectNo no, std::string_view section,
                      std::vector<UndoEntry>* out) {
  uint32_t n = 0;
  if (!r.varint(&n) || n > r.remaining() / kEntryBytesMin) return r.corruption(section);
  const std::string prefix = store::object_prefix(no);
  out->reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    UndoEntry e;
    uint8_t db = 0, form = 0;
    auto bad = [&](std::string_view what) {
      return r.corruption(std::string(section) + ", entry " + std::to_string(i) + ": " +
                          std::string(what));
    };
    if (!decode_entry_head(r, prefix, &db, &form, &e.key) || db >= store::kDbCount ||
        form > static_cast<uint8_t>(Form::kDelta)) {
      return bad("database, key or form");
    }
    e.db = static_cast<store::Db>(db);
    if (form != static_cast<uint8_t>(Form::kAbsent)) {
      std::string v;
      if (!r.vstr(&v)) return bad("value");
      e.before = std::move(v);
    }
    if (form == static_cast<uint8_t>(Form::kDelta)) {
      // Invariant (7): only pages, and only well-formed deltas.
      if (e.db != store::Db::kPages) return bad("a delta outside the pages database");
      Status delta = store::check_page_delta(*e.before);
      if (!delta.is_ok()) return bad(delta.message());
      e.delta = true;
    }
    out->push_back(std::move(e));
  }
  return Status::ok();
}

bool decode_header_into(store::Reader& r, LogHeader* h) {
  std::string_view id;
  if (!r.version(kVersion) || !r.raw(store::kIdBytes, &id)) return false;
  h->id = ObjectId::from_raw(id);
  return r.varint(&h->number.value) && h->number.value != 0 && r.varint(&h->seq) &&
         r.svarint(&h->time_ms) && r.varint(&h->prev_no);
}

bool decode_counters(store::Reader& r, LogRecord* rec) {
  uint8_t kept = 0;
  CounterDeltas& d = rec->deltas;
  bool ok = r.u8(&kept) && (kept & ~kFlagUndoKept) == 0 && r.varint(&rec->sql_pages_before) &&
            r.varint(&rec->sql_pages_after) && r.svarint(&d.kv_keys) && r.svarint(&d.kv_bytes) &&
            r.svarint(&d.alarms) && r.svarint(&d.dead_letters);
  rec->undo_kept = (kept & kFlagUndoKept) != 0;
  return ok;
}

// Everything before the entries; the reader stays at the undo section.
Status decode_summary_into(store::Reader& r, LogRecord* rec) {
  if (!decode_header_into(r, &rec->header)) return r.corruption("header");
  if (!decode_counters(r, rec)) {
    return r.corruption("counters of seq " + std::to_string(rec->header.seq));
  }
  return Status::ok();
}

}  // namespace

std::string LogRecord::encode() const {
  std::string out;
  size_t bytes = kSummaryBytesMax + 2 * store::kVarintBytesMax;
  for (const UndoEntry& e : undo) {
    bytes += 1 + 2 * store::kVarintBytesMax + e.key.size() + (e.before ? e.before->size() : 0);
  }
  out.reserve(bytes);
  store::Writer w(&out);
  CARREL_ASSERT(header.number.value != 0, "keys.h (3): a committed object has a number");
  w.version(kVersion);
  w.raw(header.id.raw());
  w.varint(header.number.value);
  w.varint(header.seq);
  w.svarint(header.time_ms);
  w.varint(header.prev_no);
  w.u8(undo_kept ? kFlagUndoKept : 0);  // invariant (8)
  w.varint(sql_pages_before);
  w.varint(sql_pages_after);
  w.svarint(deltas.kv_keys);
  w.svarint(deltas.kv_bytes);
  w.svarint(deltas.alarms);
  w.svarint(deltas.dead_letters);
  encode_entries(w, header.number, undo);
  encode_entries(w, header.number, redo);  // invariant (5)
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
  const store::ObjectNo no = rec.header.number;
  CARREL_RETURN_IF_ERROR(decode_entries(r, no, "undo entries of seq " + seq, &rec.undo));
  CARREL_RETURN_IF_ERROR(decode_entries(r, no, "redo section of seq " + seq, &rec.redo));
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
  if (step.header.id == id_ && step.header.seq == seq_ && step.header.number != number_) {
    return Status::corruption("history log record " + std::to_string(no_) + " of object " +
                              id_.to_hex() + " names object number " +
                              std::to_string(step.header.number.value) + ", but the object's " +
                              "record holds number " + std::to_string(number_.value) +
                              ": the record is damaged and is not applied; run `carrel verify`");
  }
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

Result<std::string> rebuild_before_image(std::string_view key, std::string_view delta,
                                         std::optional<std::string_view> current, uint64_t no) {
  return store::rebuild_page(key, delta, current,
                             "history log record " + std::to_string(no) + ": the undo delta",
                             "run `carrel verify`");
}

}  // namespace carrel::history
