// Stored forms of alarm entries and dead letters (values of `alarms` / `dead`).
#pragma once

#include <string>
#include <string_view>

#include "carrel/alarms.h"
#include "carrel/status.h"

namespace carrel::alarm {

// The entry's name is the key suffix, not part of the value.
std::string encode_entry(const AlarmEntry& e);
Result<AlarmEntry> decode_entry(std::string_view name, std::string_view bytes);
// Only the due time (the committer keeps the timetable from it).
Result<UnixMs> decode_due(std::string_view bytes);

std::string encode_dead(const DeadLetter& d);
Result<DeadLetter> decode_dead(std::string_view name, std::string_view bytes);

}  // namespace carrel::alarm
