// A turn's KV part: its reads, writes and lists, and the limits they keep.
//
// Invariants:
//  (1) Reads see, newest first: the writes above the turn's LMDB snapshot
//      (KvOverlay: the turn's own layers, then the object's sealed commits not
//      yet durable), then the snapshot. A delete_all() above hides every older
//      write, the snapshot's included (engine/loop/turn.h (2)).
//  (2) A call is checked in full before it writes: a refused call (a key or
//      value over its limit, a batch over kv_batch_keys_max, a turn over
//      turn_dirty_bytes_max) writes nothing.
//  (3) Every write is charged to the turn's budget before it is taken.
//  (4) list() returns each key at most once, in increasing order (decreasing
//      when reversed): the overlay's writes merged into the snapshot's keys,
//      the newer write winning.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carrel/context.h"
#include "carrel/kv.h"
#include "carrel/options.h"
#include "engine/store/keys.h"
#include "engine/store/store.h"

namespace carrel::kv {

// A written value; nullopt is a delete.
using Value = std::optional<std::string>;
using Writes = std::map<std::string, Value, std::less<>>;

// The visible key range of a list() call, as [lo, hi) on user keys; no hi
// means unbounded.
struct KeyRange {
  std::string lo;
  std::optional<std::string> hi;
  bool empty() const { return hi && *hi <= lo; }
  bool contains(std::string_view k) const { return k >= lo && (!hi || k < *hi); }
};

// The writes above a turn's LMDB snapshot: the turn's layers over the object's
// pending overlay. The KV part owns this interface; the request loop
// implements it over its layers and overlay (engine/loop/turn.cc), as it
// implements sql::PageSource (engine/sql/page_source.h).
class KvOverlay {
 public:
  virtual ~KvOverlay() = default;
  // The newest write of key above the snapshot: a value, or a delete (an empty
  // Value; a delete_all() counts as one). nullopt: nothing above, the
  // snapshot decides.
  virtual std::optional<Value> find(std::string_view key) const = 0;
  // Adds every write above the snapshot whose key lies in range to *out,
  // newest winning. Returns true when a delete_all() among them hides the
  // snapshot (and everything older than it).
  virtual bool collect(const KeyRange& range, Writes* out) const = 0;
  // Records a write (an empty Value: a delete) in the turn's top layer.
  virtual void write(std::string key, Value value) = 0;
  // Records a delete_all() in the turn's top layer.
  virtual void clear() = 0;
  // Charges bytes to the turn's budget; InvalidArgument naming
  // turn_dirty_bytes_max when it would pass it.
  virtual Status charge(size_t bytes) = 0;
};

// One turn's KV (see carrel/kv.h for the contracts). Lives as long as its turn.
class TurnKv {
 public:
  // id names the object in messages; no is its key prefix (store/keys.h (2)).
  TurnKv(KvOverlay& overlay, const store::ReadTxn& snapshot, MDB_dbi kv_dbi, const ObjectId& id,
         store::ObjectNo no, const Options& options)
      : overlay_(overlay),
        snapshot_(snapshot),
        kv_dbi_(kv_dbi),
        id_(id),
        no_(no),
        options_(options) {}

  Result<std::optional<std::string>> get(std::string_view key);
  Result<Entries> get_many(const std::vector<std::string>& keys);
  Status put(std::string_view key, std::string_view value);
  Status put_many(const Entries& entries);
  Result<bool> del(std::string_view key);
  Result<size_t> del_many(const std::vector<std::string>& keys);
  Status delete_all();
  Result<Entries> list(const ListOptions& options);

 private:
  Status check_key(std::string_view key) const;
  Status check_batch(std::string_view call, size_t n, std::string_view what) const;
  // Invariant (1), for one key already checked.
  Result<std::optional<std::string>> lookup(std::string_view key);
  // Whether key holds a value, damaged or not (for deletes: checksum.h (5)).
  Result<bool> present(std::string_view key);
  // Merges the overlay's writes in range with the snapshot's keys.
  Result<Entries> merge_list(const KeyRange& range, const ListOptions& options);

  KvOverlay& overlay_;
  const store::ReadTxn& snapshot_;
  MDB_dbi kv_dbi_;
  const ObjectId& id_;
  const store::ObjectNo no_;
  const Options& options_;
};

}  // namespace carrel::kv

namespace carrel::detail {
class Turn;
// The seam between the request loop and the KV part: the turn's KV. Defined by
// the request loop (engine/loop/turn.cc), as detail::turn_sql (sql/turn_sql.h).
kv::TurnKv& turn_kv(Turn* turn);
}  // namespace carrel::detail
