#include "engine/history/undo.h"

#include "engine/store/keys.h"

namespace carrel::history {
namespace {
constexpr uint8_t kUndoVersion = 1;
constexpr size_t kHeaderBytes = 1 + 8 + 8 + 4;
}  // namespace

std::string UndoRecord::encode() const {
  std::string out;
  out.push_back(static_cast<char>(kUndoVersion));
  store::append_u64(&out, static_cast<uint64_t>(time_ms));
  store::append_u64(&out, seq);
  store::append_u32(&out, sql_pages_before);
  for (const UndoEntry& e : entries) {
    out.push_back(static_cast<char>(e.db));
    store::append_u32(&out, static_cast<uint32_t>(e.key.size()));
    out.append(e.key);
    out.push_back(e.before ? 1 : 0);
    if (e.before) {
      store::append_u32(&out, static_cast<uint32_t>(e.before->size()));
      out.append(*e.before);
    }
  }
  return out;
}

Result<std::pair<int64_t, uint64_t>> UndoRecord::decode_header(std::string_view b) {
  if (b.size() < kHeaderBytes || static_cast<uint8_t>(b[0]) != kUndoVersion) {
    return Status::corruption("undo record header is malformed");
  }
  return std::pair<int64_t, uint64_t>{static_cast<int64_t>(store::read_u64(b, 1)),
                                      store::read_u64(b, 9)};
}

Result<UndoRecord> UndoRecord::decode(std::string_view b) {
  CARREL_ASSIGN_OR_RETURN(auto header, decode_header(b));
  UndoRecord r;
  r.time_ms = header.first;
  r.seq = header.second;
  r.sql_pages_before = store::read_u32(b, 17);
  size_t at = kHeaderBytes;
  auto bad = [&] { return Status::corruption("undo record of seq " + std::to_string(r.seq) + " is truncated"); };
  while (at < b.size()) {
    if (at + 5 > b.size()) return bad();
    UndoEntry e;
    uint8_t db = static_cast<uint8_t>(b[at]);
    if (db >= store::kDbCount) return bad();
    e.db = static_cast<store::Db>(db);
    uint32_t klen = store::read_u32(b, at + 1);
    at += 5;
    if (at + klen + 1 > b.size()) return bad();
    e.key.assign(b.substr(at, klen));
    at += klen;
    bool present = b[at++] != 0;
    if (present) {
      if (at + 4 > b.size()) return bad();
      uint32_t vlen = store::read_u32(b, at);
      at += 4;
      if (at + vlen > b.size()) return bad();
      e.before.emplace(b.substr(at, vlen));
      at += vlen;
    }
    r.entries.push_back(std::move(e));
  }
  return r;
}

}  // namespace carrel::history
