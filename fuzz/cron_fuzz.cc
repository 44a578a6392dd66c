// Fuzzes CronExpr::parse on arbitrary text and, when it parses, checks next_after's
// invariants (engine/alarm/cron.cc (2) and (3)) from a few fixed and input-derived times.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <vector>

#include "engine/alarm/cron.h"

namespace {

using carrel::UnixMs;
using carrel::alarm::CronExpr;

constexpr UnixMs kMsPerMinute = 60'000;
constexpr UnixMs kMinutesPerDay = 1'440;

UnixMs floor_div(UnixMs a, UnixMs b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

[[noreturn]] void fail(const CronExpr& expr, UnixMs t, const char* what) {
  std::fprintf(stderr, "cron '%s' after %lld: %s\n", expr.text().c_str(), static_cast<long long>(t),
               what);
  std::abort();
}

// Invariant (3) with matches() as the oracle, one probe per day: the minutes of the day that
// match are the same on every matching day, so they are read off the day `next` falls on,
// and every day before it (from `first_minute` on) must have none of them matching.
void check_none_earlier(const CronExpr& expr, UnixMs t, UnixMs first_minute, UnixMs next) {
  const UnixMs next_minute = next / kMsPerMinute;
  const UnixMs next_day = floor_div(next_minute, kMinutesPerDay);
  std::vector<UnixMs> minutes_of_day;
  for (UnixMs s = 0; s < kMinutesPerDay; ++s) {
    if (expr.matches((next_day * kMinutesPerDay + s) * kMsPerMinute)) minutes_of_day.push_back(s);
  }
  if (minutes_of_day.empty()) fail(expr, t, "the day of next_after has no matching minute");
  for (UnixMs day = floor_div(first_minute, kMinutesPerDay); day <= next_day; ++day) {
    for (UnixMs s : minutes_of_day) {
      const UnixMs minute = day * kMinutesPerDay + s;
      if (minute < first_minute) continue;
      if (minute >= next_minute) break;
      if (expr.matches(minute * kMsPerMinute)) fail(expr, t, "an earlier minute matches");
      break;  // the rest of this day's minutes match exactly when this one does
    }
  }
}

// Returns next_after(t) after checking invariants (2) and (3).
std::optional<UnixMs> check_next(const CronExpr& expr, UnixMs t) {
  std::optional<UnixMs> next = expr.next_after(t);
  if (!next) return next;
  if (*next <= t) fail(expr, t, "next_after is not strictly after the input");
  if (*next % kMsPerMinute != 0) fail(expr, t, "next_after is not a whole minute");
  if (!expr.matches(*next)) fail(expr, t, "next_after does not match");
  if (expr.next_after(*next - 1) != next) fail(expr, t, "next_after(next - 1) != next");
  check_none_earlier(expr, t, floor_div(t, kMsPerMinute) + 1, *next);
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
  for (UnixMs t : times) check_next(*expr, t);
  // A short walk of consecutive occurrences from the input-derived time.
  std::optional<UnixMs> at = derived;
  for (int i = 0; i < 3 && at; ++i) at = check_next(*expr, *at);
  return 0;
}
