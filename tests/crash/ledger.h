// The ledger: a self-checking workload for crash and fault tests.
//
// Objects "Ledger:o0" .. "Ledger:o<N-1>". Method "turn" on object i writes turn
// k = last + 1 across every part of the object's state, in one turn:
//   KV    k/<k> = value(i, k)                 (k zero-padded: list order = k order)
//   SQL   INSERT INTO ledger(k, v) VALUES (k, value(i, k))
//   alarm a<k> due kAlarmBaseMs + k, payload value(i, k); and a<k - kAlarmWindow>
//         cancelled, so the queue stays small (the engine lists it per new alarm)
//   KV    last = k
//   send  "msg" "<i> <k>" to object (i + 1) % N
// and replies k. Method "msg" records m/<from>/<k> and counts mc += 1.
//
// Invariants the checker proves after a crash or failed commits:
//  (1) Every acknowledged turn is present: acked k <= last.
//  (2) No turn is partly present: the KV k/ keys, the SQL rows and the alarm
//      entries are exactly turns 1..last (alarms: the last kAlarmWindow of
//      them), each with its value.
//  (3) A sent message is delivered exactly once: the target holds m/<i>/k for
//      exactly k in 1..last of the sender, and mc counts them once each.
//  (4) Each object record matches the data (kv_keys, kv_bytes, alarms, dead
//      letters, SQL pages, history of last_seq), and the `schedule` timetable
//      holds exactly one entry per `alarms` entry, at its due time.
//  (5) SQLite's PRAGMA integrity_check says ok for every object.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "carrel/carrel.h"

namespace carrel::ledger {

inline constexpr char kClass[] = "Ledger";
inline constexpr UnixMs kAlarmBaseMs = 4102444800000;  // 2100-01-01: never due in a test
inline constexpr uint64_t kAlarmWindow = 16;

ObjectRef object(int i);
std::string value(int i, uint64_t k);

// Engine options for a ledger directory (the same for the writer and the checker).
Options options(const std::string& dir, Durability durability);

// Registers the Ledger class for `objects` objects.
Status register_class(Engine& engine, int objects);

// Reads an acknowledgement file of "<object> <k>\n" lines; returns, per object,
// the largest acknowledged k (0: none). A torn last line (no newline) is ignored.
Result<std::vector<uint64_t>> read_acks(const std::string& path, int objects);

struct Totals {
  uint64_t turns = 0;     // sum of last over all objects
  uint64_t messages = 0;  // messages delivered
  uint64_t alarms = 0;    // alarm entries
};

// Checks invariants (1)-(5). Waits (bounded) for the outbox to drain first, so
// run it on an engine that has the Ledger class registered. Corruption names
// the object and the invariant at fault.
Status check(Engine& engine, int objects, const std::vector<uint64_t>& acked, Totals* totals);

// Invariant (4) alone: one read snapshot of the whole store.
Status check_store(Engine& engine);

}  // namespace carrel::ledger
