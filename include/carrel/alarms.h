// carrel/alarms.h — one object's durable alarm queue.
//
// The Durable-Objects single alarm (set/get/clear) is the entry with the empty
// name; named entries live beside it. Every change commits with the turn that
// made it, so a rolled-back turn leaves no alarm behind. Delivery is at least
// once; the entry's removal (or move to its next occurrence) commits in the
// same turn as the handler's writes, so its effect on state is exactly once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carrel/clock.h"
#include "carrel/status.h"

namespace carrel {

namespace detail {
class Turn;
}  // namespace detail
class Context;

struct Repeat {
  enum class Kind : uint8_t { kNone = 0, kEvery = 1, kCron = 2 };
  Kind kind = Kind::kNone;
  int64_t every_ms = 0;  // kEvery: the period, > 0
  std::string cron;      // kCron: 5 fields, UTC: minute hour day-of-month month day-of-week

  static Repeat none() { return {}; }
  static Repeat every(int64_t ms) { return {Kind::kEvery, ms, {}}; }
  static Repeat cron_expr(std::string expr) { return {Kind::kCron, 0, std::move(expr)}; }
  bool operator==(const Repeat&) const = default;
};

struct AlarmEntry {
  std::string name;  // empty: the single alarm
  UnixMs due_ms = 0;
  std::string payload;
  Repeat repeat;
  int retry_count = 0;  // failed deliveries of the current occurrence
  bool operator==(const AlarmEntry&) const = default;
};

// What on_alarm receives.
struct AlarmInfo {
  std::string name;
  std::string payload;
  UnixMs scheduled_ms = 0;
  int retry_count = 0;
  bool is_retry = false;
};

// An entry that exhausted its retries.
struct DeadLetter {
  AlarmEntry entry;
  UnixMs failed_ms = 0;
  std::string last_error;
};

class Alarms {
 public:
  // The single alarm. A time in the past fires as soon as possible; a time
  // <= 0 or past year 9999 is InvalidArgument.
  Status set(UnixMs when_ms);
  Result<std::optional<UnixMs>> get();
  Status clear();

  // Adds or replaces the entry `name` (at most Options::alarm_name_bytes_max bytes).
  Status schedule(std::string_view name, UnixMs when_ms, std::string_view payload = {},
                  const Repeat& repeat = {});
  // Whether an entry was removed.
  Result<bool> cancel(std::string_view name);
  // All entries, by name.
  Result<std::vector<AlarmEntry>> list();

 private:
  friend class detail::Turn;
  friend class Context;
  explicit Alarms(detail::Turn* turn) : turn_(turn) {}
  detail::Turn* turn_;
};

}  // namespace carrel
