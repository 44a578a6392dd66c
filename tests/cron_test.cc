// Cron expressions: next occurrences worked out by hand (weekdays checked with `date -u -d`)
// and parse errors with the position they name. Invariants: engine/alarm/cron.cc.
#include "engine/alarm/cron.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <optional>
#include <string>

namespace carrel::alarm {
namespace {

// "YYYY-MM-DD HH:MM[:SS[.mmm]]" in UTC, through libc's timegm as an independent oracle
// for the engine's own calendar arithmetic.
UnixMs utc(const char* text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0;
  int n = std::sscanf(text, "%d-%d-%d %d:%d:%d.%d", &y, &mo, &d, &h, &mi, &s, &ms);
  EXPECT_GE(n, 5) << text;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<UnixMs>(timegm(&tm)) * 1000 + ms;
}

std::string show(std::optional<UnixMs> t) {
  if (!t) return "never";
  std::time_t secs = static_cast<std::time_t>(*t / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %a", &tm);
  return std::string(buf) + (*t % 1000 != 0 ? " +ms" : "");
}

struct NextCase {
  const char* expr;
  const char* after;
  const char* expected;  // nullptr: never
  const char* why;
};

// 2026-01-01 is a Thursday; 2026-01-02 Fri, 01-03 Sat, 01-04 Sun, 01-05 Mon.
const NextCase kNextCases[] = {
    {"* * * * *", "2026-03-15 10:20:30.500", "2026-03-15 10:21", "next whole minute"},
    {"* * * * *", "2026-12-31 23:59:30", "2027-01-01 00:00", "minute rolls the year"},
    {"30 10 * * *", "2026-03-15 10:29:59.999", "2026-03-15 10:30", "1 ms before a match"},
    {"30 10 * * *", "2026-03-15 10:30", "2026-03-16 10:30", "an exact match is skipped"},
    {"30 10 * * *", "2026-03-15 10:30:00.001", "2026-03-16 10:30", "inside the matching minute"},
    // Month ends: the 31st skips months that are shorter.
    {"0 0 31 * *", "2026-01-31 00:00", "2026-03-31 00:00", "February has no 31st"},
    {"0 0 31 * *", "2026-03-31 00:00", "2026-05-31 00:00", "April has no 31st"},
    {"0 0 31 * *", "2026-07-31 00:00", "2026-08-31 00:00", "July and August both have 31"},
    {"0 0 29-31 * *", "2026-01-31 00:00", "2026-03-29 00:00", "February 2026 has 28 days"},
    {"0 0 29-31 * *", "2028-01-31 00:00", "2028-02-29 00:00", "February 2028 has 29 days"},
    // Leap years.
    {"0 0 29 2 *", "2026-01-01 00:00", "2028-02-29 00:00", "next leap day"},
    {"0 0 29 2 *", "2024-02-29 00:00", "2028-02-29 00:00", "from a leap day itself"},
    {"0 0 29 2 *", "2096-03-01 00:00", "2104-02-29 00:00", "2100 is not a leap year"},
    {"0 0 29 2 *", "2399-03-01 00:00", "2400-02-29 00:00", "2400 is a leap year"},
    // The longest gaps need the day rule's AND: a weekday on one date.
    {"0 0 29 2 */7", "2088-03-01 00:00", "2128-02-29 00:00", "leap-day Sunday: 40 years"},
    {"28 0 */7 3 2", "1968-02-29 00:00", "1977-03-01 00:28", "Tuesday 1 March: 9 years"},
    {"0 0 1 3 */7", "2099-03-02 00:00", "2105-03-01 00:00", "Sunday 1 March across 2100"},
    {"0 0 30 2 *", "2026-01-01 00:00", nullptr, "February never has a 30th"},
    {"0 0 31 4,6,9,11 *", "2026-01-01 00:00", nullptr, "30-day months never have a 31st"},
    // Day-of-month OR day-of-week when both are restricted.
    {"0 12 13 * 5", "2026-01-01 00:00", "2026-01-02 12:00", "the 13th OR a Friday: Fri 2nd"},
    {"0 12 13 * *", "2026-01-01 00:00", "2026-01-13 12:00", "day-of-week is *: only the 13th"},
    {"0 12 * * 5", "2026-01-03 00:00", "2026-01-09 12:00", "day-of-month is *: Fridays"},
    {"0 12 13 * 1", "2026-01-06 00:00", "2026-01-12 12:00", "Monday the 12th matches by weekday"},
    {"0 12 13 * 1", "2026-01-12 12:00", "2026-01-13 12:00", "Tuesday the 13th matches by day"},
    // Vixie: a field starting with `*` counts as unrestricted, so both must match.
    {"0 0 */2 * 1", "2026-01-01 00:00", "2026-01-05 00:00", "odd day AND Monday: the 5th"},
    {"0 0 */2 * 1", "2026-01-05 00:00", "2026-01-19 00:00", "the 12th is even; the 19th"},
    {"0 0 1 * */3", "2026-01-01 00:00", "2026-02-01 00:00", "1st AND Sun/Wed/Sat: Sun Feb 1"},
    // Steps, ranges and lists.
    {"*/15 * * * *", "2026-01-01 10:16", "2026-01-01 10:30", "*/15"},
    {"*/15 * * * *", "2026-01-01 10:45", "2026-01-01 11:00", "*/15 rolls the hour"},
    {"5/20 * * * *", "2026-01-01 10:46", "2026-01-01 11:05", "a/n is a-59/n: 5,25,45"},
    {"10-30/10 9 * * *", "2026-01-01 09:31", "2026-01-02 09:10", "10,20,30 past 9 only"},
    {"0 9-17/4 * * MON-FRI", "2026-01-02 17:00", "2026-01-05 09:00", "weekend skipped"},
    {"0 9-17/4 * * MON-FRI", "2026-01-05 09:00", "2026-01-05 13:00", "9,13,17"},
    {"15,45 6,18 * * *", "2026-01-01 06:45", "2026-01-01 18:15", "lists in two fields"},
    {"0 0 1,15 * *", "2026-01-15 00:00", "2026-02-01 00:00", "list of days"},
    // Sunday is 0 and 7.
    {"0 0 * * 0", "2026-01-01 00:00", "2026-01-04 00:00", "Sunday as 0"},
    {"0 0 * * 7", "2026-01-01 00:00", "2026-01-04 00:00", "Sunday as 7"},
    {"0 0 * * 5-7", "2026-01-03 00:00", "2026-01-04 00:00", "Fri-Sun as 5-7"},
    {"0 0 * * sun", "2026-01-01 00:00", "2026-01-04 00:00", "Sunday by name"},
    {"0 8 * * Sat", "2026-01-01 00:00", "2026-01-03 08:00", "names are case-insensitive"},
    // Months and years.
    {"0 0 1 jan,Jul *", "2026-02-01 00:00", "2026-07-01 00:00", "month names"},
    {"0 0 1 1 *", "2026-06-01 00:00", "2027-01-01 00:00", "year rollover"},
    {"59 23 31 12 *", "2026-12-31 23:59", "2027-12-31 23:59", "last minute of the year"},
    {"0 0 1 1 *", "1969-06-01 00:00", "1970-01-01 00:00", "before the epoch"},
    {"0 0 * 2 *", "2026-03-01 00:00", "2027-02-01 00:00", "month skip crosses a year"},
};

TEST(CronExprTest, NextAfterMatchesHandComputedTable) {
  for (const NextCase& c : kNextCases) {
    SCOPED_TRACE(std::string(c.expr) + " after " + c.after + " (" + c.why + ")");
    Result<CronExpr> expr = CronExpr::parse(c.expr);
    ASSERT_TRUE(expr.is_ok()) << expr.status().to_string();
    std::optional<UnixMs> next = expr->next_after(utc(c.after));
    std::optional<UnixMs> expected;
    if (c.expected != nullptr) expected = utc(c.expected);
    EXPECT_EQ(next, expected) << "got " << show(next) << ", want " << show(expected);
    if (next) {
      // Invariant (2): a whole minute, strictly later, that matches.
      EXPECT_EQ(*next % 60'000, 0);
      EXPECT_GT(*next, utc(c.after));
      EXPECT_TRUE(expr->matches(*next));
    }
  }
}

// Invariant (3): nothing between after_ms and the result matches, checked minute by minute.
TEST(CronExprTest, NextAfterSkipsNoMatchingMinute) {
  const char* exprs[] = {"*/7 */5 * * *",     "0 0 13 * 5",  "0 0 */2 * 1",
                         "0,30 12 29-31 * *", "5 4 * * 0,7", "* 23 31 12 *"};
  for (const char* text : exprs) {
    SCOPED_TRACE(text);
    Result<CronExpr> expr = CronExpr::parse(text);
    ASSERT_TRUE(expr.is_ok());
    UnixMs t = utc("2026-12-20 00:00:00.250");
    for (int i = 0; i < 20; ++i) {
      std::optional<UnixMs> next = expr->next_after(t);
      ASSERT_TRUE(next.has_value());
      for (UnixMs m = (t / 60'000 + 1) * 60'000; m < *next; m += 60'000) {
        ASSERT_FALSE(expr->matches(m)) << show(m) << " matches but " << show(next) << " came first";
      }
      EXPECT_EQ(expr->next_after(*next - 1), next);
      t = *next;
    }
  }
}

TEST(CronExprTest, OutOfRangeTimesGiveNullopt) {
  Result<CronExpr> every = CronExpr::parse("* * * * *");
  ASSERT_TRUE(every.is_ok());
  EXPECT_EQ(every->next_after(utc("9999-12-31 23:59")), std::nullopt);
  EXPECT_EQ(every->next_after(utc("9999-12-31 23:58:59.999")), utc("9999-12-31 23:59"));
  EXPECT_EQ(every->next_after(INT64_MAX), std::nullopt);
  EXPECT_EQ(every->next_after(INT64_MIN), std::nullopt);
  EXPECT_FALSE(every->matches(INT64_MAX));
}

TEST(CronExprTest, TextIsKept) {
  Result<CronExpr> expr = CronExpr::parse("  0 9 * * mon-fri ");
  ASSERT_TRUE(expr.is_ok()) << expr.status().to_string();
  EXPECT_EQ(expr->text(), "  0 9 * * mon-fri ");
  EXPECT_TRUE(CronExpr::parse("0\t9\t*\t*\t*").is_ok());
}

struct ErrorCase {
  const char* expr;
  const char* message;  // after "cron '<expr>': "
};

const ErrorCase kErrorCases[] = {
    {"61 * * * *", "minute value 61 at position 1 is out of range 0-59"},
    {"* 24 * * *", "hour value 24 at position 3 is out of range 0-23"},
    {"* * 0 * *", "day-of-month value 0 at position 5 is out of range 1-31"},
    {"* * 32 * *", "day-of-month value 32 at position 5 is out of range 1-31"},
    {"* * * 13 *", "month value 13 at position 7 is out of range 1-12"},
    {"* * * * 8", "day-of-week value 8 at position 9 is out of range 0-7"},
    {"1,99999999999 * * * *", "minute value 99999999999 at position 3 is out of range 0-59"},
    {"*/0 * * * *", "minute step 0 at position 3 is out of range 1-60"},
    {"* */25 * * *", "hour step 25 at position 5 is out of range 1-24"},
    {"5-3 * * * *",
     "minute range 5-3 at position 1 is reversed; its start must not exceed its end"},
    {"* * * * SAT-SUN",
     "day-of-week range SAT-SUN at position 9 is reversed; its start must not exceed its end"},
    {"1,,2 * * * *", "minute has an empty list item at position 3"},
    {",1 * * * *", "minute has an empty list item at position 1"},
    {"* 1, * * *", "hour has an empty list item at position 5"},
    {"5x * * * *", "minute has an unexpected character 'x' at position 2"},
    {"1-2-3 * * * *", "minute has an unexpected character '-' at position 4"},
    {"*/2/3 * * * *", "minute has an unexpected character '/' at position 4"},
    {"** * * * *", "minute has an unexpected character '*' at position 2"},
    {"*\n * * * *", "minute has an unexpected character byte 0x0a at position 2"},
    {"? * * * *", "minute expects a number, not '?' at position 1"},
    {"MON * * * *", "minute expects a number, not 'M' at position 1"},
    {"*/ * * * *", "minute expects a number at position 3"},
    {"* * * * MON-", "day-of-week expects a number at position 13"},
    {"* * * FOO *", "month name 'FOO' at position 7 is not one of JAN-DEC"},
    {"* * * * MONDAY", "day-of-week name 'MONDAY' at position 9 is not one of SUN-SAT"},
    {"* * * * MON/x", "day-of-week expects a number, not 'x' at position 13"},
    {"* * * * L", "day-of-week name 'L' at position 9 is not one of SUN-SAT"},
    {"* * * * * *",
     "unexpected 6th field at position 11; expected 5 (minute hour day-of-month month "
     "day-of-week)"},
    {"* * * *", "has 4 fields; expected 5 (minute hour day-of-month month day-of-week)"},
    {"", "has 0 fields; expected 5 (minute hour day-of-month month day-of-week)"},
    {"   ", "has 0 fields; expected 5 (minute hour day-of-month month day-of-week)"},
    {"@daily", "has 1 fields; expected 5 (minute hour day-of-month month day-of-week)"},
};

TEST(CronExprTest, ParseErrorsNameFieldAndPosition) {
  for (const ErrorCase& c : kErrorCases) {
    SCOPED_TRACE(c.expr);
    Result<CronExpr> expr = CronExpr::parse(c.expr);
    ASSERT_FALSE(expr.is_ok());
    EXPECT_EQ(expr.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(expr.status().message(), "cron '" + std::string(c.expr) + "': " + c.message);
  }
}

TEST(CronExprTest, TextLongerThanLimitIsRejected) {
  std::string text = "0 0 * * " + std::string(CronExpr::kTextBytesMax - 8, '1');
  ASSERT_EQ(text.size(), CronExpr::kTextBytesMax);
  // At the limit: parses far enough to judge the value, not the length.
  EXPECT_NE(CronExpr::parse(text).status().message().find("day-of-week value"), std::string::npos);
  text += "1";
  Result<CronExpr> expr = CronExpr::parse(text);
  ASSERT_FALSE(expr.is_ok());
  EXPECT_EQ(expr.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(expr.status().message(),
            "cron expression is 257 bytes; CronExpr::kTextBytesMax is 256");
}

TEST(CronExprTest, AcceptsFullGrammar) {
  const char* ok[] = {"* * * * *",        "0-59 0-23 1-31 1-12 0-7", "*/60 */24 */31 */12 */8",
                      "59 23 31 DEC SAT", "0 0 1 jan-mar,oct-DEC *", "1,2,3-5,10-20/5 * * * *",
                      "0 0 * * 7",        "0/7 * * * 1/2",           "0 0 * * sun,SAT"};
  for (const char* text : ok) {
    EXPECT_TRUE(CronExpr::parse(text).is_ok())
        << text << ": " << CronExpr::parse(text).status().to_string();
  }
}

}  // namespace
}  // namespace carrel::alarm
