// Fuzzes recovery from the redo log (engine/store/redo.h (2), (5)): the
// input becomes redo.ckpt and the two segments beside a valid data.mdb, and a
// writable open must recover or refuse with an error: no crash, no hang.
//
// The first byte picks the form. Raw: the rest is split into the three files
// as they are (checksums almost never hold: the readers' rejection paths).
// Built: a checkpoint naming data.mdb's real transaction and meta page, and
// records numbered from its base with valid checksums but fuzzed numbers,
// durable claims and operations (the replay's parser and LMDB's input checks),
// and page deltas of sealed pages, valid or not (page_delta_ops).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "engine/store/checksum.h"
#include "engine/store/keys.h"
#include "engine/store/page_delta.h"
#include "engine/store/redo.h"
#include "engine/store/store.h"
#include "fuzz/fuzz_input.h"

namespace {

namespace fs = std::filesystem;
using carrel::store::RedoCheckpoint;
using carrel::store::RedoLog;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "redo: %s\n", what.c_str());
  std::abort();
}

struct Template {
  std::string root;      // a scratch directory of this process
  std::string data;      // a valid data.mdb's bytes
  RedoCheckpoint point;  // its newest transaction and meta page prefix
};

const Template& the_template() {
  static const Template t = [] {
    Template t;
    char pattern[] = "/tmp/carrel-redo-fuzz-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) fail("mkdtemp");
    t.root = pattern;
    const std::string dir = t.root + "/template";
    carrel::store::StoreOptions o;
    o.dir = dir;
    o.sync = false;
    auto st = carrel::store::Store::open(o);
    if (!st.is_ok()) fail("template: " + st.status().to_string());
    MDB_envinfo info{};
    MDB_stat stat{};
    mdb_env_info((*st)->env(), &info);
    mdb_env_stat((*st)->env(), &stat);
    st->reset();
    std::ifstream in(dir + "/data.mdb", std::ios::binary);
    t.data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    const size_t at = (info.me_last_txnid & 1) * stat.ms_psize;
    if (t.data.size() < at + RedoLog::kMetaBytes) fail("template data.mdb is short");
    t.point.txnid = info.me_last_txnid;
    t.point.meta = t.data.substr(at, RedoLog::kMetaBytes);
    return t;
  }();
  return t;
}

void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Operations ending in a page delta (redo.h (10)) of a sealed page: put
// whole first and then changed by the delta (replay stores it), or the delta
// alone (no page to apply to), or onto another sealed page, or with a byte of
// the delta flipped (the rebuilt page's checksum fails).
std::string page_delta_ops(carrel::fuzz::Input& in) {
  using carrel::store::Db;
  const std::string key = carrel::store::page_key(carrel::store::ObjectNo{1 + in.pick(4)},
                                                  static_cast<uint32_t>(in.pick(8)));
  std::string value = in.bytes(256);
  value.resize(256, 'p');
  std::string changed = value;
  changed[in.pick(changed.size())] ^= static_cast<char>(1 + in.pick(255));
  const std::string before = carrel::store::seal(Db::kPages, key, value);
  std::string delta =
      carrel::store::make_page_delta(before, carrel::store::seal(Db::kPages, key, changed));
  carrel::store::RedoOps ops;
  switch (in.pick(4)) {
    case 0:
      ops.put(Db::kPages, key, before);
      break;
    case 1:
      break;
    case 2:
      ops.put(Db::kPages, key, carrel::store::seal(Db::kPages, key, changed + "x"));
      break;
    default:
      ops.put(Db::kPages, key, before);
      delta[in.pick(delta.size())] ^= static_cast<char>(1 + in.pick(255));
  }
  ops.put_delta(Db::kPages, key, delta);
  return ops.bytes();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Template& t = the_template();
  carrel::fuzz::Input in(data, size);
  const std::string dir = t.root + "/engine";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  write_file(dir + "/data.mdb", t.data);

  std::string files[3];  // redo.ckpt, redo.0, redo.1
  const uint8_t form = in.byte();
  if (form % 2 == 0) {
    for (std::string& f : files) f = in.bytes(1 << 16);
  } else {
    RedoCheckpoint c = t.point;
    c.number = 1 + in.pick(4);
    c.base = in.pick(8);
    std::string slot = carrel::store::encode_redo_slot(c);
    slot.resize(RedoLog::kSlotBytes, '\0');
    // Checkpoint k lives in slot k % 2 (redo.h (3)).
    files[0] = (c.number % 2 == 0 ? slot : std::string(RedoLog::kSlotBytes, '\0') + slot);
    uint64_t number = c.base + 1;
    const size_t records = in.pick(32);
    for (size_t i = 0; i < records; ++i) {
      const uint8_t shape = in.byte();
      if (shape % 16 == 0) number += shape / 16;  // a gap, or stale numbers
      const uint64_t durable = shape % 16 == 1 ? number + in.pick(4) : number - 1;
      // Operations: kind, database, key and value as the replay reads them,
      // built from fuzzed bytes (lengths included); or a page delta onto a
      // page the template lacks or one the record put first (redo.h (10)).
      std::string payload;
      if (shape % 16 == 3) {
        payload = page_delta_ops(in);
      } else {
        payload = in.bytes(512);
      }
      files[1 + (shape % 16 == 2 ? 1 : 0)] +=
          carrel::store::encode_redo_record(number, durable, payload);
      ++number;
    }
  }
  write_file(dir + "/" + RedoLog::kCheckpointName, files[0]);
  write_file(dir + "/" + RedoLog::kSegmentNames[0], files[1]);
  write_file(dir + "/" + RedoLog::kSegmentNames[1], files[2]);

  carrel::store::StoreOptions o;
  o.dir = dir;
  o.create_if_missing = false;
  o.sync = true;
  o.redo_log = (form & 2) != 0;
  auto st = carrel::store::Store::open(o);
  if (st.is_ok()) {
    // Recovered: the directory reopens read-only as it is (the log started
    // fresh or was removed).
    st->reset();
    o.read_only = true;
    auto again = carrel::store::Store::open(o);
    if (!again.is_ok()) fail("a recovered directory does not reopen: " + again.status().to_string());
  }
  return 0;
}
