#include "tests/carrel3_records.h"

#include "engine/store/codec.h"

namespace carrel::testing {
namespace {
// The version bytes carrel-3 wrote (object_record.cc and undo.cc read them).
constexpr uint8_t kObjectRecordVersion = 1;
constexpr uint8_t kLogRecordVersion = 2;
// How a version 2 log entry holds its value (undo.h (7)).
constexpr uint8_t kFormAbsent = 0, kFormWhole = 1, kFormDelta = 2;
}  // namespace

std::string encode_carrel3(const store::ObjectRecord& record) {
  std::string out;
  store::Writer w(&out);
  w.version(kObjectRecordVersion);
  w.i64(record.created_ms);
  w.u64(record.last_seq);
  w.i64(record.last_commit_ms);
  w.u64(record.kv_keys);
  w.u64(record.kv_bytes);
  w.u64(record.log_no);
  w.u32(record.sql_pages);
  w.u32(record.alarms);
  w.u32(record.dead_letters);
  w.str16(record.class_name);
  w.str16(record.name);
  return out;
}

std::string encode_carrel3(const history::LogRecord& record) {
  std::string out;
  store::Writer w(&out);
  w.version(kLogRecordVersion);
  w.raw(record.header.id.raw());
  w.u64(record.header.seq);
  w.i64(record.header.time_ms);
  w.u64(record.header.prev_no);
  w.u32(record.sql_pages_before);
  w.u32(record.sql_pages_after);
  w.i64(record.deltas.kv_keys);
  w.i64(record.deltas.kv_bytes);
  w.i64(record.deltas.alarms);
  w.i64(record.deltas.dead_letters);
  w.u8(record.undo_kept ? 1 : 0);
  for (const auto* entries : {&record.undo, &record.redo}) {
    w.u32(static_cast<uint32_t>(entries->size()));
    for (const history::UndoEntry& e : *entries) {
      w.u8(static_cast<uint8_t>(e.db));
      w.str32(e.key);
      w.u8(!e.before ? kFormAbsent : e.delta ? kFormDelta : kFormWhole);
      if (e.before) w.str32(*e.before);
    }
  }
  return out;
}

}  // namespace carrel::testing
