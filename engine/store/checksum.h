// Checksums on stored values: KV values, SQL pages, alarm entries and dead
// letters are stored sealed, as value ‖ XXH3-64 trailer, and opened (checked)
// on every read, so a flipped bit is a Corruption error naming the object and
// the key or page, never served.
//
// Invariants:
//  (1) Every value in the sealed databases (is_sealed(): kKv, kPages,
//      kAlarms, kDead) is seal(db, key, value) for its own LMDB key; nothing
//      else is ever stored there. The trailer is kChecksumBytes, big-endian.
//  (2) The checksum covers the database, the whole LMDB key (object number ‖ user
//      key, alarm name or page number) and the value: a value that lands under
//      another key, another object or in another database fails open() as
//      surely as a flipped bit does.
//  (3) The trailer is a suffix, so the value is the stored bytes' prefix:
//      open() returns a view into the stored bytes, without a copy.
//  (4) Values are sealed once, by the turn that wrote them (Turn::seal and
//      the page source's take_turn_writes), in place and without a copy
//      (seal_shared): the commit batch and the object's pending overlay hold
//      the same immutable bytes. The group writer stores batch values and
//      undo before-images (which are stored bytes, so sealed) as they are,
//      never sealing twice: a restore writes back exactly the bytes that were
//      stored, and they open as they did then.
//  (5) Every reader of a sealed database calls open() before using a value
//      (the turn's KV, alarm and page reads; the group writer's reads of old
//      alarm entries; the CLI and verify). A value that fails open() is
//      Corruption naming what it is, and is never returned.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "carrel/status.h"
#include "engine/store/store.h"

namespace carrel::store {

constexpr size_t kChecksumBytes = 8;

// Whether db holds sealed values (invariant (1)).
bool is_sealed(Db db);

// The stored form of value under key in db (invariants (1)-(3)).
std::string seal(Db db, std::string_view key, std::string_view value);

// Stored bytes shared, immutable, between a commit batch and the pending
// overlay of the turn that sealed them (invariant (4)); null: a delete.
using SealedBytes = std::shared_ptr<const std::string>;

// A copy of value with room for its trailer, so that seal_shared() seals it
// without reallocating (a turn's KV values and SQL pages are made with it).
std::string sealable(std::string_view value);

// seal() without the copy: appends the trailer to value itself and shares
// the result (invariant (4)).
SealedBytes seal_shared(Db db, std::string_view key, std::string value);

// The value inside stored bytes read from db under key, or Corruption naming
// the object and the key, alarm or page when the checksum does not match or
// the bytes are too short to hold one. The view points into stored.
Result<std::string_view> open(Db db, std::string_view key, std::string_view stored);

// txn.get() and open(): the value under key in a sealed db, nullopt when
// absent, Corruption when it fails its checksum.
Result<std::optional<std::string_view>> read_sealed(const ReadTxn& txn, Db db,
                                                    std::string_view key);

// The value's size inside stored bytes, without checking them (accounting of
// bytes this engine sealed; 0 when too short to hold a checksum).
inline size_t value_bytes(std::string_view stored) {
  return stored.size() < kChecksumBytes ? 0 : stored.size() - kChecksumBytes;
}

// The value inside bytes this process sealed and kept in memory (a pending
// overlay's), without checking them: they never left the process.
inline std::string_view sealed_value(std::string_view stored) {
  return stored.substr(0, value_bytes(stored));
}

// What db's value under key is, for messages: "KV key 'k' of object number
// 12", "SQL page 7 of object number 12", "alarm 'a' of object number 12".
std::string describe_value(Db db, std::string_view key);

}  // namespace carrel::store
