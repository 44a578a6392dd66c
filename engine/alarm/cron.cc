// engine/alarm/cron.cc — cron parsing and next-occurrence search, in UTC.
//
// Invariants:
//  (1) A CronExpr returned by parse() has at least one value in every field set, and each
//      set holds only values of its field's range; day-of-week 7 is stored as 0.
//  (2) next_after(t) returns a whole minute strictly after t for which matches() is true.
//  (3) next_after(t) returns the least such minute: the search skips a month, day, hour or
//      minute only when that field's own set excludes it.
//  (4) The search is bounded twice over: by kSearchYears of calendar time, and by a pass
//      count that (3)'s cursor cannot exceed within that horizon (each pass either returns
//      or advances the cursor to a later month, day, hour or minute).
//  (5) Calendar arithmetic is proleptic Gregorian in UTC (no leap seconds), computed here
//      with Howard Hinnant's days_from_civil / civil_from_days; no libc time zone or locale.
#include "engine/alarm/cron.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>

#include "engine/base/check.h"

namespace carrel::alarm {
namespace {

constexpr int64_t kMsPerMinute = 60'000;
constexpr int64_t kMinutesPerDay = 1'440;
constexpr int64_t kMsPerDay = kMsPerMinute * kMinutesPerDay;

// ---- Civil dates (5) ----

struct CivilDate {
  int64_t year;
  unsigned month;  // 1-12
  unsigned day;    // 1-31
};

constexpr int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Days since 1970-01-01 of the given proleptic Gregorian date.
constexpr int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);                 // [0, 399]
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

constexpr CivilDate civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);                    // [0, 146096]
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);  // [0, 365]
  const unsigned mp = (5 * doy + 2) / 153;                       // [0, 11]
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;               // [1, 31]
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;                  // [1, 12]
  return {y + (m <= 2 ? 1 : 0), m, d};
}

// 0 = Sunday. 1970-01-01 was a Thursday.
constexpr unsigned weekday_from_days(int64_t z) {
  return static_cast<unsigned>(z >= -4 ? (z + 4) % 7 : (z + 5) % 7 + 6);
}

static_assert(days_from_civil(1970, 1, 1) == 0);
static_assert(days_from_civil(2000, 3, 1) == 11017);
static_assert(civil_from_days(11017).year == 2000 && civil_from_days(11017).month == 3);
static_assert(weekday_from_days(0) == 4 && weekday_from_days(-1) == 3);

// The supported span: 0001-01-01T00:00Z up to (excluding) 10000-01-01T00:00Z.
constexpr int64_t kFirstDay = days_from_civil(1, 1, 1);
constexpr int64_t kEndDay = days_from_civil(10000, 1, 1);
constexpr UnixMs kMinMs = kFirstDay * kMsPerDay;
constexpr UnixMs kEndMs = kEndDay * kMsPerDay;

// Generous: one pass per month skipped plus at most four per day searched (see (4)).
constexpr int64_t kSearchDays = int64_t{CronExpr::kSearchYears} * 366;
constexpr int64_t kSearchPassesMax = 4 * (kSearchDays + 2) + 13 * (CronExpr::kSearchYears + 1);

// The lowest set bit at index >= from, or -1.
template <size_t N>
int next_set(const std::bitset<N>& bits, unsigned from) {
  for (size_t i = from; i < N; ++i) {
    if (bits[i]) return static_cast<int>(i);
  }
  return -1;
}

// ---- Parsing ----

struct FieldSpec {
  const char* name;
  unsigned min;
  unsigned max;       // the largest value accepted (7 for day-of-week)
  const char* names;  // 3-letter names for min, min+1, ... concatenated, or nullptr
  const char* names_range;
};

constexpr std::array<FieldSpec, 5> kFields = {{
    {"minute", 0, 59, nullptr, nullptr},
    {"hour", 0, 23, nullptr, nullptr},
    {"day-of-month", 1, 31, nullptr, nullptr},
    {"month", 1, 12, "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC", "JAN-DEC"},
    {"day-of-week", 0, 7, "SUNMONTUEWEDTHUFRISAT", "SUN-SAT"},
}};

bool is_separator(char c) {
  return c == ' ' || c == '\t';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
char to_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

std::string describe_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7f) return std::string("'") + c + "'";
  char buf[16];
  std::snprintf(buf, sizeof buf, "byte 0x%02x", u);
  return buf;
}

// Parses one field, text_[begin, end), into a bit mask of its values.
class FieldParser {
 public:
  FieldParser(std::string_view text, size_t begin, size_t end, const FieldSpec& spec)
      : text_(text), pos_(begin), end_(end), spec_(spec) {}

  Result<uint64_t> parse() {
    uint64_t mask = 0;
    while (true) {
      CARREL_RETURN_IF_ERROR(item(mask));
      if (pos_ == end_) return mask;
      if (text_[pos_] != ',')
        return error(pos_, "has an unexpected character " + describe_char(text_[pos_]));
      ++pos_;
    }
  }

 private:
  Status item(uint64_t& mask) {
    const size_t item_at = pos_;
    if (pos_ == end_ || text_[pos_] == ',') return error(item_at, "has an empty list item");
    unsigned lo = spec_.min;
    unsigned hi = spec_.max;
    bool single = false;
    if (text_[pos_] == '*') {
      ++pos_;
    } else {
      CARREL_RETURN_IF_ERROR(value(lo));
      hi = lo;
      single = true;
      if (pos_ < end_ && text_[pos_] == '-') {
        ++pos_;
        CARREL_RETURN_IF_ERROR(value(hi));
        single = false;
        if (lo > hi) {
          return error(item_at, "range " + std::string(text_.substr(item_at, pos_ - item_at)),
                       " is reversed; its start must not exceed its end");
        }
      }
    }
    unsigned step = 1;
    if (pos_ < end_ && text_[pos_] == '/') {
      ++pos_;
      CARREL_RETURN_IF_ERROR(step_value(step));
      if (single) hi = spec_.max;  // `a/n` means a through the field's maximum
    }
    for (unsigned v = lo; v <= hi; v += step) mask |= uint64_t{1} << v;
    return Status::ok();
  }

  // A number or (where the field has them) a 3-letter name, within the field's range.
  Status value(unsigned& out) {
    const size_t at = pos_;
    if (pos_ < end_ && spec_.names != nullptr && is_alpha(text_[pos_])) return name(out);
    unsigned v = 0;
    CARREL_RETURN_IF_ERROR(number(v));
    if (v < spec_.min || v > spec_.max) {
      return error(
          at, "value " + std::string(text_.substr(at, pos_ - at)),
          " is out of range " + std::to_string(spec_.min) + "-" + std::to_string(spec_.max));
    }
    out = v;
    return Status::ok();
  }

  // A step: 1 up to the field's span, so that every step reaches a second value or is 1.
  Status step_value(unsigned& out) {
    const size_t at = pos_;
    unsigned v = 0;
    CARREL_RETURN_IF_ERROR(number(v));
    const unsigned span = spec_.max - spec_.min + 1;
    if (v < 1 || v > span) {
      return error(at, "step " + std::string(text_.substr(at, pos_ - at)),
                   " is out of range 1-" + std::to_string(span));
    }
    out = v;
    return Status::ok();
  }

  // Decimal digits; saturates so that a long run of digits cannot overflow.
  Status number(unsigned& out) {
    const size_t at = pos_;
    if (pos_ == end_) return error(at, "expects a number");
    if (!is_digit(text_[pos_])) {
      return error(at, "expects a number, not " + describe_char(text_[pos_]));
    }
    unsigned v = 0;
    while (pos_ < end_ && is_digit(text_[pos_])) {
      v = std::min(v * 10 + static_cast<unsigned>(text_[pos_] - '0'), 1'000'000u);
      ++pos_;
    }
    out = v;
    return Status::ok();
  }

  Status name(unsigned& out) {
    const size_t at = pos_;
    while (pos_ < end_ && is_alpha(text_[pos_])) ++pos_;
    const std::string_view word = text_.substr(at, pos_ - at);
    if (word.size() == 3) {
      const std::string_view names(spec_.names);
      for (size_t i = 0; i + 3 <= names.size(); i += 3) {
        if (to_upper(word[0]) == names[i] && to_upper(word[1]) == names[i + 1] &&
            to_upper(word[2]) == names[i + 2]) {
          out = spec_.min + static_cast<unsigned>(i / 3);
          return Status::ok();
        }
      }
    }
    return error(at, "name '" + std::string(word) + "'",
                 std::string(" is not one of ") + spec_.names_range);
  }

  // "cron '<text>': <field> <subject> at position <1-based at><rest>"
  Status error(size_t at, const std::string& subject, const std::string& rest = "") const {
    return Status::invalid_argument("cron '" + std::string(text_) + "': " + spec_.name + " " +
                                    subject + " at position " + std::to_string(at + 1) + rest);
  }

  std::string_view text_;
  size_t pos_;
  size_t end_;
  const FieldSpec& spec_;
};

}  // namespace

Result<CronExpr> CronExpr::parse(std::string_view text) {
  if (text.size() > kTextBytesMax) {
    return Status::invalid_argument("cron expression is " + std::to_string(text.size()) +
                                    " bytes; CronExpr::kTextBytesMax is " +
                                    std::to_string(kTextBytesMax));
  }
  // Split on runs of spaces and tabs; leading and trailing ones are ignored.
  std::array<size_t, 5> begin{};
  std::array<size_t, 5> end{};
  size_t count = 0;
  for (size_t i = 0; i < text.size();) {
    if (is_separator(text[i])) {
      ++i;
      continue;
    }
    if (count == kFields.size()) {
      return Status::invalid_argument("cron '" + std::string(text) +
                                      "': unexpected 6th field at position " +
                                      std::to_string(i + 1) +
                                      "; expected 5 (minute hour day-of-month month "
                                      "day-of-week)");
    }
    begin[count] = i;
    while (i < text.size() && !is_separator(text[i])) ++i;
    end[count] = i;
    ++count;
  }
  if (count != kFields.size()) {
    return Status::invalid_argument("cron '" + std::string(text) + "': has " +
                                    std::to_string(count) +
                                    " fields; expected 5 (minute hour day-of-month month "
                                    "day-of-week)");
  }

  std::array<uint64_t, 5> masks{};
  for (size_t f = 0; f < kFields.size(); ++f) {
    Result<uint64_t> mask = FieldParser(text, begin[f], end[f], kFields[f]).parse();
    if (!mask.is_ok()) return mask.status();
    masks[f] = *mask;
  }

  CronExpr expr;
  expr.text_ = std::string(text);
  expr.minutes_ = std::bitset<60>(masks[0]);
  expr.hours_ = std::bitset<24>(masks[1]);
  expr.days_of_month_ = std::bitset<32>(masks[2]);
  expr.months_ = std::bitset<13>(masks[3]);
  const uint64_t sunday_as_7 = (masks[4] >> 7) & 1;
  expr.days_of_week_ = std::bitset<7>((masks[4] | sunday_as_7) & 0x7f);
  expr.day_of_month_star_ = text[begin[2]] == '*';
  expr.day_of_week_star_ = text[begin[4]] == '*';
  // (1): every item sets at least one bit of its field's range.
  CARREL_ASSERT(expr.minutes_.any() && expr.hours_.any() && expr.days_of_month_.any() &&
                    expr.months_.any() && expr.days_of_week_.any(),
                "cron.cc (1): a parsed expression sets a value in every field");
  return expr;
}

bool CronExpr::day_matches(unsigned day_of_month, unsigned day_of_week) const {
  const bool dom = days_of_month_[day_of_month];
  const bool dow = days_of_week_[day_of_week];
  if (day_of_month_star_ || day_of_week_star_) return dom && dow;
  return dom || dow;
}

bool CronExpr::matches(UnixMs t_ms) const {
  if (t_ms < kMinMs || t_ms >= kEndMs) return false;
  const int64_t minute_index = floor_div(t_ms, kMsPerMinute);
  const int64_t days = floor_div(minute_index, kMinutesPerDay);
  const int64_t minute_of_day = minute_index - days * kMinutesPerDay;
  const CivilDate date = civil_from_days(days);
  return months_[date.month] && day_matches(date.day, weekday_from_days(days)) &&
         hours_[static_cast<size_t>(minute_of_day / 60)] &&
         minutes_[static_cast<size_t>(minute_of_day % 60)];
}

std::optional<UnixMs> CronExpr::next_after(UnixMs after_ms) const {
  if (after_ms < kMinMs || after_ms >= kEndMs) return std::nullopt;
  // The cursor: a day (as days since the epoch and as a civil date), an hour and a minute.
  const int64_t first_minute = floor_div(after_ms, kMsPerMinute) + 1;  // strictly after (2)
  int64_t days = floor_div(first_minute, kMinutesPerDay);
  const int64_t last_day = std::min(days + kSearchDays, kEndDay - 1);
  CivilDate date = civil_from_days(days);
  auto hour = static_cast<unsigned>((first_minute - days * kMinutesPerDay) / 60);
  auto minute = static_cast<unsigned>((first_minute - days * kMinutesPerDay) % 60);

  auto next_day = [&] {
    ++days;
    date = civil_from_days(days);
    hour = 0;
    minute = 0;
  };
  for (int64_t pass = 0; pass < kSearchPassesMax; ++pass) {
    if (days > last_day) return std::nullopt;
    if (!months_[date.month]) {
      // Jump to the 1st of the next selected month, this year or the next.
      int month = next_set(months_, date.month + 1);
      if (month < 0) {
        ++date.year;
        month = next_set(months_, 1);
      }
      days = days_from_civil(date.year, static_cast<unsigned>(month), 1);
      date = {date.year, static_cast<unsigned>(month), 1};
      hour = 0;
      minute = 0;
      continue;
    }
    if (!day_matches(date.day, weekday_from_days(days))) {
      next_day();
      continue;
    }
    const int h = next_set(hours_, hour);
    if (h < 0) {
      next_day();
      continue;
    }
    if (static_cast<unsigned>(h) != hour) {
      hour = static_cast<unsigned>(h);
      minute = 0;
    }
    const int m = next_set(minutes_, minute);
    if (m < 0) {
      ++hour;
      minute = 0;
      if (hour == 24) next_day();
      continue;
    }
    return (days * kMinutesPerDay + hour * 60 + m) * kMsPerMinute;
  }
  CARREL_ASSERT(false, "cron.cc (4): the search ends within kSearchPassesMax passes");
  return std::nullopt;
}

}  // namespace carrel::alarm
