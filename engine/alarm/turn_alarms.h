// A turn's alarm part: its entries, read and written by name, and the limits
// they keep.
//
// Invariants:
//  (1) Reads see, newest first: the entries written above the turn's LMDB
//      snapshot (AlarmOverlay: the turn's own layers, then the object's sealed
//      commits not yet durable), then the snapshot (engine/loop/turn.h (2)).
//  (2) put() is checked in full before it writes: a name or payload over its
//      limit, a new entry past alarms_per_object_max or a turn over
//      turn_dirty_bytes_max writes nothing.
//  (3) Entries are stored encoded (alarm/entry.h); a malformed one is
//      Corruption when read, never skipped.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carrel/alarms.h"
#include "carrel/context.h"
#include "carrel/options.h"
#include "engine/store/keys.h"
#include "engine/store/store.h"

namespace carrel::alarm {

// An entry's stored form (alarm/entry.h); nullopt is a delete.
using Encoded = std::optional<std::string>;
using Writes = std::map<std::string, Encoded, std::less<>>;

// The entries written above a turn's LMDB snapshot: the turn's layers over the
// object's pending overlay. The alarm part owns this interface; the request
// loop implements it (engine/loop/turn.cc), as it implements sql::PageSource.
class AlarmOverlay {
 public:
  virtual ~AlarmOverlay() = default;
  // The newest write of name above the snapshot: an entry or a delete.
  // nullopt: nothing above, the snapshot decides.
  virtual std::optional<Encoded> find(std::string_view name) const = 0;
  // Adds every write above the snapshot to *out, newest winning.
  virtual void collect(Writes* out) const = 0;
  // How many writes above the snapshot store an entry (not a delete): an
  // upper bound of the entries they add to the snapshot's count.
  virtual size_t stored_count() const = 0;
  // The object's entry count in its newest committed record (0: none), at
  // least the snapshot's count (commit/records.h (2)).
  virtual Result<uint32_t> record_count() = 0;
  // Whether the turn itself (not a pending commit) wrote name.
  virtual bool written_by_turn(std::string_view name) const = 0;
  // Records a write (an empty Encoded: a delete) in the turn's top layer.
  virtual void write(std::string name, Encoded entry) = 0;
  // Records a dead letter (alarm/entry.h encode_dead) in the turn's top layer.
  virtual void write_dead(std::string name, std::string encoded) = 0;
  // Charges bytes to the turn's budget; InvalidArgument naming
  // turn_dirty_bytes_max when it would pass it.
  virtual Status charge(size_t bytes) = 0;
};

// One turn's alarm entries (see carrel/alarms.h for the contracts). Lives as
// long as its turn.
class TurnAlarms {
 public:
  TurnAlarms(AlarmOverlay& overlay, const store::ReadTxn& snapshot, MDB_dbi alarms_dbi,
             const ObjectRef& object, store::ObjectNo no, const Options& options)
      : overlay_(overlay),
        snapshot_(snapshot),
        alarms_dbi_(alarms_dbi),
        object_(object),
        no_(no),
        options_(options) {}

  Result<std::optional<AlarmEntry>> get(std::string_view name);
  Status put(const AlarmEntry& entry);
  Result<bool> remove(std::string_view name);
  Result<std::vector<AlarmEntry>> list();
  // Whether this turn wrote the entry (on_alarm re-armed or cancelled it itself).
  bool touched(std::string_view name) const { return overlay_.written_by_turn(name); }
  // Moves an alarm to the dead-letter list in this turn.
  void put_dead_letter(std::string name, std::string encoded) {
    overlay_.write_dead(std::move(name), std::move(encoded));
  }

 private:
  // Invariant (1).
  Result<Encoded> lookup(std::string_view name);
  // An upper bound of the object's entries, from its record and the overlay,
  // below max: put() then need not count exactly.
  bool count_below(size_t max);

  AlarmOverlay& overlay_;
  const store::ReadTxn& snapshot_;
  MDB_dbi alarms_dbi_;
  const ObjectRef& object_;
  const store::ObjectNo no_;  // the prefix of its keys (store/keys.h (2))
  const Options& options_;
};

}  // namespace carrel::alarm

namespace carrel::detail {
class Turn;
// The seam between the request loop and the alarm part: the turn's alarm
// entries. Defined by the request loop (engine/loop/turn.cc).
alarm::TurnAlarms& turn_alarms(Turn* turn);
}  // namespace carrel::detail
