// engine/alarm/cron.h — 5-field cron expressions, evaluated in UTC.
//
// Fields, separated by spaces or tabs:
//   minute (0-59)  hour (0-23)  day-of-month (1-31)  month (1-12 or JAN-DEC)
//   day-of-week (0-7 or SUN-SAT; 0 and 7 are both Sunday)
// Each field is a comma-separated list of items; an item is `*`, a value `a`, a range `a-b`,
// or one of those followed by a step `/n`: `*/n`, `a-b/n`, and `a/n` (meaning a through the
// field's maximum, every n). Names are three letters, any case. There are no `@daily`
// macros, no seconds field, and no `?`, `L`, `W` or `#`.
//
// Day rule (Vixie cron): when day-of-month and day-of-week are both restricted, a day
// matches when EITHER matches; when either field starts with `*` (including `*/n`), a day
// must match both. So "0 0 1 * MON" fires on the 1st and on every Monday, while
// "0 0 */2 * MON" fires only on Mondays that fall on an odd day of the month.
#pragma once

#include <bitset>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "carrel/clock.h"
#include "carrel/status.h"

namespace carrel::alarm {

class CronExpr {
 public:
  // Longer text is InvalidArgument naming this limit.
  static constexpr size_t kTextBytesMax = 256;

  // Parses `text`. On failure returns InvalidArgument naming the field and the 1-based
  // character position at fault, e.g.
  //   "cron '61 * * * *': minute value 61 at position 1 is out of range 0-59".
  // Rejected: more than kTextBytesMax bytes, a field count other than 5, empty list items,
  // characters outside the grammar, values out of range, a step of 0 or larger than the
  // field's span, reversed ranges (a-b with a > b) and anything after a complete item.
  static Result<CronExpr> parse(std::string_view text);

  // The first whole minute (seconds and milliseconds 0) strictly after `after_ms` that
  // matches. nullopt when no minute within kSearchYears after `after_ms` matches, which for
  // an expression that parsed means it never matches (e.g. "0 0 30 2 *"), or when
  // `after_ms` or the result lies outside years 1-9999.
  std::optional<UnixMs> next_after(UnixMs after_ms) const;

  // Whether the minute containing `t_ms` matches (false outside years 1-9999).
  bool matches(UnixMs t_ms) const;

  // The text parse() was given.
  const std::string& text() const { return text_; }

  // The search horizon of next_after. The longest gap between matches of a satisfiable
  // expression is 40 years: a day rule that requires both fields can ask for the 29th of
  // February on one weekday ("0 0 29 2 */7" is a leap day that is a Sunday), which comes
  // every 28 years except across a skipped leap year (2088-02-29, then 2128-02-29, as 2100
  // is not a leap year). Without the day rule the longest is 8 years ("0 0 29 2 *" from
  // 2096-03-01 until 2104-02-29). 41 years means "never" is never a false negative; the gap
  // was found by enumerating every (month, day, weekday) over the 400-year Gregorian cycle.
  static constexpr int kSearchYears = 41;

 private:
  CronExpr() = default;
  bool day_matches(unsigned day_of_month, unsigned day_of_week) const;

  std::string text_;
  std::bitset<60> minutes_;         // bit i: minute i
  std::bitset<24> hours_;           // bit i: hour i
  std::bitset<32> days_of_month_;   // bit i: day i (bit 0 unused)
  std::bitset<13> months_;          // bit i: month i (bit 0 unused)
  std::bitset<7> days_of_week_;     // bit i: weekday i, 0 = Sunday (7 is folded into 0)
  bool day_of_month_star_ = false;  // the field starts with `*`: see the day rule above
  bool day_of_week_star_ = false;
};

}  // namespace carrel::alarm
