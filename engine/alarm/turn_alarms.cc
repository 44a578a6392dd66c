#include "engine/alarm/turn_alarms.h"

#include "engine/alarm/entry.h"
#include "engine/base/limit_text.h"
#include "engine/store/checksum.h"
#include "engine/store/cursor.h"
#include "engine/store/keys.h"

namespace carrel::alarm {

using detail::bytes_text;

Result<Encoded> TurnAlarms::lookup(std::string_view name) {
  if (std::optional<Encoded> above = overlay_.find(name)) return std::move(*above);
  auto read = store::read_sealed(snapshot_, store::Db::kAlarms, store::object_key(no_, name));
  if (!read.is_ok()) return read.status().with_context("object " + object_.id.to_hex());
  const std::optional<std::string_view>& v = *read;
  if (!v) return Encoded{};
  return Encoded{std::string(*v)};
}

Result<std::optional<AlarmEntry>> TurnAlarms::get(std::string_view name) {
  CARREL_ASSIGN_OR_RETURN(auto raw, lookup(name));
  if (!raw) return std::optional<AlarmEntry>{};
  CARREL_ASSIGN_OR_RETURN(AlarmEntry e, decode_entry(name, *raw));
  return std::optional<AlarmEntry>{std::move(e)};
}

Status TurnAlarms::put(const AlarmEntry& e) {
  const Options& o = options_;
  if (e.name.size() > o.alarm_name_bytes_max) {
    return Status::invalid_argument("alarm name of " + bytes_text(e.name.size()) +
                                    " exceeds alarm_name_bytes_max (" +
                                    bytes_text(o.alarm_name_bytes_max) + ")");
  }
  if (e.payload.size() > o.alarm_payload_bytes_max) {
    return Status::invalid_argument("alarm payload of " + bytes_text(e.payload.size()) +
                                    " exceeds alarm_payload_bytes_max (" +
                                    bytes_text(o.alarm_payload_bytes_max) + ")");
  }
  CARREL_ASSIGN_OR_RETURN(auto existing, lookup(e.name));
  if (!existing && !count_below(o.alarms_per_object_max)) {
    CARREL_ASSIGN_OR_RETURN(auto all, list());
    if (all.size() >= o.alarms_per_object_max) {
      return Status::invalid_argument("object " + object_.label() + " has " +
                                      std::to_string(all.size()) +
                                      " alarms, the alarms_per_object_max");
    }
  }
  std::string encoded = encode_entry(e);
  CARREL_RETURN_IF_ERROR(overlay_.charge(e.name.size() + encoded.size()));
  overlay_.write(e.name, std::move(encoded));
  return Status::ok();
}

bool TurnAlarms::count_below(size_t max) {
  // An upper bound without listing: the durable count plus every entry the
  // overlay stores. Only near the limit does put() count exactly.
  // The newest record may count entries the overlay holds too: still a bound.
  auto bound = overlay_.record_count();
  if (!bound.is_ok()) return false;
  return *bound + overlay_.stored_count() < max;
}

Result<bool> TurnAlarms::remove(std::string_view name) {
  CARREL_ASSIGN_OR_RETURN(auto existing, lookup(name));
  overlay_.write(std::string(name), std::nullopt);
  return existing.has_value();
}

Result<std::vector<AlarmEntry>> TurnAlarms::list() {
  Writes merged;
  const std::string prefix = store::object_prefix(no_);
  CARREL_ASSIGN_OR_RETURN(store::Cursor c,
                          store::Cursor::open(snapshot_.get(), alarms_dbi_, store::Db::kAlarms));
  for (bool on = c.seek(prefix); on && c.key().starts_with(prefix); on = c.next()) {
    // checksum.h (5): an entry that fails its checksum ends the list.
    auto entry = store::open(store::Db::kAlarms, c.key(), c.value());
    if (!entry.is_ok()) return entry.status().with_context("object " + object_.id.to_hex());
    merged[std::string(c.key().substr(store::kPrefixBytes))] = std::string(*entry);
  }
  CARREL_RETURN_IF_ERROR(c.status());
  overlay_.collect(&merged);
  std::vector<AlarmEntry> out;
  for (auto& [n, e] : merged) {
    if (!e) continue;
    CARREL_ASSIGN_OR_RETURN(AlarmEntry entry, decode_entry(n, *e));
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace carrel::alarm
