// Fuzzes CronExpr::parse on arbitrary text and, when it parses, compares next_after with an
// independent oracle from a few fixed and input-derived times. The oracle reads the 5-field
// spec (engine/alarm/cron.h) itself and walks the calendar minute by minute on broken-down UTC
// times from gmtime_r, so it shares neither the parser nor the calendar arithmetic of
// engine/alarm/cron.cc; it skips a whole day only when the day's own fields exclude it.
#include <time.h>

#include <algorithm>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/alarm/cron.h"

namespace {

using carrel::UnixMs;
using carrel::alarm::CronExpr;

constexpr UnixMs kMsPerMinute = 60'000;
constexpr int64_t kSecondsPerDay = 86'400;
// Longer than the longest gap between matches (40 years, cron.h) and than next_after's horizon.
constexpr int64_t kOracleDays = int64_t{CronExpr::kSearchYears} * 366 + 2;

UnixMs floor_div(UnixMs a, UnixMs b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

std::string show(std::optional<UnixMs> t) {
  return t ? std::to_string(*t) : std::string("never");
}

[[noreturn]] void fail(const CronExpr& expr, UnixMs t, const std::string& what) {
  std::fprintf(stderr, "cron '%s' after %lld: %s\n", expr.text().c_str(), static_cast<long long>(t),
               what.c_str());
  std::abort();
}

// ---- The oracle's reading of the spec ----

struct Spec {
  std::bitset<60> minute;
  std::bitset<24> hour;
  std::bitset<32> day_of_month;
  std::bitset<13> month;
  std::bitset<7> day_of_week;  // 0 = Sunday; 7 is read as 0
  bool day_of_month_star = false;
  bool day_of_week_star = false;
};

// A number or (in month and day-of-week) a three-letter name; nullopt when it is neither.
std::optional<int> read_value(std::string_view v, const char* names, int first) {
  if (v.empty()) return std::nullopt;
  bool digits = true;
  int n = 0;
  for (char c : v) {
    digits = digits && c >= '0' && c <= '9';
    n = std::min(n * 10 + (c - '0'), 1'000'000);
  }
  if (digits) return n;
  if (names == nullptr || v.size() != 3) return std::nullopt;
  for (int i = 0; names[3 * i] != '\0'; ++i) {
    bool same = true;
    for (int j = 0; j < 3; ++j) same = same && (v[j] & ~0x20) == names[3 * i + j];
    if (same) return first + i;
  }
  return std::nullopt;
}

// Reads one field ("a", "a-b", "*", each optionally "/n", comma-separated) into the values
// lo..hi it allows; false when the text is not of that form or leaves the range.
bool read_field(std::string_view field, int lo, int hi, const char* names, std::vector<int>* out) {
  size_t start = 0;
  while (start <= field.size()) {
    size_t comma = field.find(',', start);
    if (comma == std::string_view::npos) comma = field.size();
    std::string_view item = field.substr(start, comma - start);
    int step = 1;
    const size_t slash = item.find('/');
    if (slash != std::string_view::npos) {
      auto n = read_value(item.substr(slash + 1), nullptr, 0);
      if (!n || *n < 1) return false;
      step = *n;
      item = item.substr(0, slash);
    }
    int a = lo, b = hi;
    if (item != "*") {
      size_t dash = item.find('-');
      auto first = read_value(item.substr(0, dash), names, lo);
      if (!first) return false;
      a = *first;
      b = a;
      if (dash != std::string_view::npos) {
        auto last = read_value(item.substr(dash + 1), names, lo);
        if (!last) return false;
        b = *last;
      } else if (slash != std::string_view::npos) {
        b = hi;  // "a/n": a through the maximum
      }
    }
    if (a < lo || b > hi || a > b) return false;
    for (int v = a; v <= b; v += step) out->push_back(v);
    start = comma + 1;
  }
  return true;
}

std::optional<Spec> read_spec(std::string_view text) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != '\t') ++j;
    if (j > i) fields.push_back(text.substr(i, j - i));
    i = j;
  }
  if (fields.size() != 5) return std::nullopt;
  std::vector<int> v[5];
  if (!read_field(fields[0], 0, 59, nullptr, &v[0]) ||
      !read_field(fields[1], 0, 23, nullptr, &v[1]) ||
      !read_field(fields[2], 1, 31, nullptr, &v[2]) ||
      !read_field(fields[3], 1, 12, "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC", &v[3]) ||
      !read_field(fields[4], 0, 7, "SUNMONTUEWEDTHUFRISAT", &v[4])) {
    return std::nullopt;
  }
  Spec s;
  for (int x : v[0]) s.minute.set(x);
  for (int x : v[1]) s.hour.set(x);
  for (int x : v[2]) s.day_of_month.set(x);
  for (int x : v[3]) s.month.set(x);
  for (int x : v[4]) s.day_of_week.set(x % 7);
  s.day_of_month_star = fields[2][0] == '*';
  s.day_of_week_star = fields[4][0] == '*';
  return s;
}

// Vixie cron's day rule (cron.h): either field starting with '*' makes both required.
bool day_matches(const Spec& s, const struct tm& tm) {
  const bool dom = s.day_of_month[tm.tm_mday];
  const bool dow = s.day_of_week[tm.tm_wday];
  if (!s.month[tm.tm_mon + 1]) return false;
  return s.day_of_month_star || s.day_of_week_star ? dom && dow : dom || dow;
}

// Whether the spec allows the minute starting at `minute` (minutes since the epoch).
bool oracle_matches(const Spec& s, int64_t minute) {
  const time_t at = static_cast<time_t>(minute * 60);
  struct tm tm {};
  if (gmtime_r(&at, &tm) == nullptr) return false;
  return day_matches(s, tm) && s.hour[tm.tm_hour] && s.minute[tm.tm_min];
}

// The first whole minute strictly after t that the spec allows, within kOracleDays.
std::optional<UnixMs> oracle_next(const Spec& s, UnixMs t) {
  int64_t minute = floor_div(t, kMsPerMinute) + 1;
  const int64_t end_minute = minute + kOracleDays * 1440;
  while (minute < end_minute) {
    const time_t at = static_cast<time_t>(minute * 60);
    struct tm tm {};
    if (gmtime_r(&at, &tm) == nullptr) return std::nullopt;
    if (!day_matches(s, tm)) {  // on to 00:00 of the next day
      minute = (floor_div(minute * 60, kSecondsPerDay) + 1) * 1440;
      continue;
    }
    if (s.hour[tm.tm_hour] && s.minute[tm.tm_min]) return minute * kMsPerMinute;
    ++minute;
  }
  return std::nullopt;
}

// Compares next_after(t) with the oracle; returns it.
std::optional<UnixMs> check_next(const CronExpr& expr, const Spec& spec, UnixMs t) {
  const std::optional<UnixMs> next = expr.next_after(t);
  const std::optional<UnixMs> want = oracle_next(spec, t);
  if (next != want)
    fail(expr, t, "next_after is " + show(next) + ", the oracle says " + show(want));
  // matches() against the oracle on the minute of t and, when there is one, of next_after.
  for (UnixMs at : {t, next.value_or(t)}) {
    if (expr.matches(at) != oracle_matches(spec, floor_div(at, kMsPerMinute))) {
      fail(expr, t, "matches(" + std::to_string(at) + ") disagrees with the oracle");
    }
  }
  return next;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  carrel::Result<CronExpr> expr = CronExpr::parse(text);
  if (!expr.is_ok()) {
    if (expr.status().code() != carrel::Code::kInvalidArgument) std::abort();
    if (expr.status().message().empty()) std::abort();
    return 0;
  }
  if (expr->text() != text) std::abort();
  const std::optional<Spec> spec = read_spec(text);
  if (!spec) fail(*expr, 0, "parse accepted what the oracle cannot read as the 5-field spec");

  // An input-derived time within ~139 years of the epoch, in either direction.
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 1099511628211ULL;
  const auto derived = static_cast<UnixMs>(h % (uint64_t{1} << 42)) - (UnixMs{1} << 41);

  const UnixMs times[] = {
      0,
      -1,
      1767225600000,  // 2026-01-01T00:00Z, a Thursday
      1767225599999,
      4107542400000,  // 2100-03-01T00:00Z, just after a skipped leap day
      derived,
  };
  for (UnixMs t : times) check_next(*expr, *spec, t);
  // A short walk of consecutive occurrences from the input-derived time.
  std::optional<UnixMs> at = derived;
  for (int i = 0; i < 3 && at; ++i) at = check_next(*expr, *spec, *at);
  return 0;
}
