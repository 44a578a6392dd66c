// The public Alarms facade: validation here, storage in the turn's alarm part
// (alarm/turn_alarms.h).
#include "carrel/alarms.h"

#include "engine/alarm/cron.h"
#include "engine/alarm/turn_alarms.h"

namespace carrel {
namespace {
// 9999-12-31T23:59:59.999Z: later times are refused as absurd.
constexpr UnixMs kLatestMs = 253402300799999;

Status check_time(UnixMs when_ms) {
  if (when_ms <= 0 || when_ms > kLatestMs) {
    return Status::invalid_argument("alarm time " + std::to_string(when_ms) +
                                    " ms is out of range (1 .. " + std::to_string(kLatestMs) +
                                    ", year 9999)");
  }
  return Status::ok();
}

Status check_repeat(const Repeat& r) {
  switch (r.kind) {
    case Repeat::Kind::kNone: return Status::ok();
    case Repeat::Kind::kEvery:
      if (r.every_ms <= 0 || r.every_ms > kLatestMs) {
        return Status::invalid_argument("repeat every " + std::to_string(r.every_ms) +
                                        " ms: the period must be in 1 .. " +
                                        std::to_string(kLatestMs) + " ms (year 9999)");
      }
      return Status::ok();
    case Repeat::Kind::kCron: return alarm::CronExpr::parse(r.cron).status();
  }
  return Status::invalid_argument("unknown repeat kind");
}
}  // namespace

Status Alarms::set(UnixMs when_ms) { return schedule("", when_ms); }

Result<std::optional<UnixMs>> Alarms::get() {
  CARREL_ASSIGN_OR_RETURN(auto e, detail::turn_alarms(turn_).get(""));
  if (!e) return std::optional<UnixMs>{};
  return std::optional<UnixMs>{e->due_ms};
}

Status Alarms::clear() {
  return detail::turn_alarms(turn_).remove("").status();
}

Status Alarms::schedule(std::string_view name, UnixMs when_ms, std::string_view payload,
                        const Repeat& repeat) {
  CARREL_RETURN_IF_ERROR(check_time(when_ms));
  CARREL_RETURN_IF_ERROR(check_repeat(repeat));
  return detail::turn_alarms(turn_).put(
      AlarmEntry{std::string(name), when_ms, std::string(payload), repeat, 0});
}

Result<bool> Alarms::cancel(std::string_view name) {
  return detail::turn_alarms(turn_).remove(name);
}

Result<std::vector<AlarmEntry>> Alarms::list() {
  return detail::turn_alarms(turn_).list();
}

}  // namespace carrel
