// Page deltas (engine/store/page_delta.h): a delta rebuilds its target from
// its base (invariant (2)), its runs are ordered, apart and inside the page
// (invariant (1)), and anything else is Corruption.
#include "engine/store/page_delta.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "engine/history/undo.h"
#include "engine/store/checksum.h"
#include "engine/store/codec.h"
#include "engine/store/keys.h"

namespace carrel::history {
namespace {

using store::apply_page_delta;
using store::check_page_delta;
using store::kDeltaHeaderBytes;
using store::kRunGapBytesMax;
using store::kRunHeaderBytes;
using store::make_page_delta;

constexpr size_t kPageBytes = 1024 + 8;  // a default SQL page and its checksum trailer

std::string random_page(std::mt19937_64& rng, size_t bytes) {
  std::string p(bytes, '\0');
  for (char& c : p) c = static_cast<char>(rng());
  return p;
}

// Overwrites up to `edits` random ranges of the page with random bytes.
std::string edited(std::string page, std::mt19937_64& rng, int edits) {
  for (int i = 0; i < edits && !page.empty(); ++i) {
    size_t at = rng() % page.size();
    size_t n = 1 + rng() % std::min<size_t>(page.size() - at, 1 + rng() % 200);
    for (size_t j = 0; j < n; ++j) page[at + j] = static_cast<char>(rng());
  }
  return page;
}

// A delta written by hand: header, then (offset, bytes) runs.
std::string delta_of(uint32_t page_bytes,
                     const std::vector<std::pair<uint32_t, std::string>>& runs) {
  std::string out;
  store::Writer w(&out);
  w.u32(page_bytes);
  w.u32(static_cast<uint32_t>(runs.size()));
  for (auto& [offset, bytes] : runs) {
    w.u32(offset);
    w.u32(static_cast<uint32_t>(bytes.size()));
    w.raw(bytes);
  }
  return out;
}

void expect_runs_apart(const std::string& delta) {
  store::Reader r(delta, "delta");
  uint32_t size = 0, count = 0;
  ASSERT_TRUE(r.u32(&size) && r.u32(&count));
  uint64_t end = 0;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t offset = 0, length = 0;
    std::string_view bytes;
    ASSERT_TRUE(r.u32(&offset) && r.u32(&length) && r.raw(length, &bytes));
    EXPECT_GT(length, 0u);
    if (i > 0) EXPECT_GT(offset, end + kRunGapBytesMax) << "run " << i;
    end = uint64_t{offset} + length;
    EXPECT_LE(end, size);
  }
  EXPECT_TRUE(r.done());
}

// `rounds` random (base, target) pairs of one size, target a random edit of
// base (every tenth of a random size, the rest a default page), fixed seed.
struct EditedPage {
  std::string base;
  std::string target;
};
std::vector<EditedPage> random_edits(uint64_t seed, int rounds) {
  std::mt19937_64 rng(seed);
  std::vector<EditedPage> out;
  for (int round = 0; round < rounds; ++round) {
    const size_t bytes = round % 10 == 0 ? 1 + rng() % 5000 : kPageBytes;
    std::string base = random_page(rng, bytes);
    std::string target = edited(base, rng, static_cast<int>(rng() % 12));
    out.push_back({std::move(base), std::move(target)});
  }
  return out;
}

// Invariant (2), property style: random pages, random edits, fixed seed.
TEST(PageDelta, RebuildsTheTargetFromItsBaseForRandomEdits) {
  int round = 0;
  for (const auto& [base, target] : random_edits(20261130, 2000)) {
    std::string delta = make_page_delta(base, target);
    auto rebuilt = apply_page_delta(delta, base);
    ASSERT_TRUE(rebuilt.is_ok()) << rebuilt.status().to_string();
    ASSERT_EQ(*rebuilt, target) << "round " << round;
    uint32_t page_bytes = 0;
    ASSERT_TRUE(check_page_delta(delta, &page_bytes).is_ok());
    EXPECT_EQ(page_bytes, base.size());
    expect_runs_apart(delta);
    ++round;
  }
}

// One scan's runs, encoded from either page, are exactly the delta
// make_page_delta makes that way (the history log's undo and the redo log's
// redo of one change).
TEST(PageDelta, OneScanEncodesTheDeltaEachWay) {
  int round = 0;
  for (const auto& [before, after] : random_edits(20261202, 500)) {
    const store::PageRuns runs = store::find_page_runs(before, after);
    ASSERT_EQ(store::encode_page_delta(runs, before), make_page_delta(after, before)) << round;
    ASSERT_EQ(store::encode_page_delta(runs, after), make_page_delta(before, after)) << round;
    ++round;
  }
}

// The delta costs the changed bytes plus a header per run, not the page.
TEST(PageDelta, HoldsOnlyTheChangedBytes) {
  std::mt19937_64 rng(7);
  std::string base = random_page(rng, kPageBytes);
  EXPECT_EQ(make_page_delta(base, base).size(), kDeltaHeaderBytes);
  std::string target = base;
  for (size_t i = 600; i < 700; ++i) target[i] = static_cast<char>(~target[i]);
  target[kPageBytes - 1] = static_cast<char>(~target[kPageBytes - 1]);
  EXPECT_EQ(make_page_delta(base, target).size(),
            kDeltaHeaderBytes + 2 * kRunHeaderBytes + 100 + 1);
  // Ranges a few bytes apart are one run: a header costs more than the gap.
  target = base;
  target[10] = static_cast<char>(~target[10]);
  target[10 + kRunGapBytesMax + 1] = static_cast<char>(~target[10 + kRunGapBytesMax + 1]);
  EXPECT_EQ(make_page_delta(base, target).size(),
            kDeltaHeaderBytes + kRunHeaderBytes + kRunGapBytesMax + 2);
}

TEST(PageDelta, BaseOfAnotherSizeIsCorruption) {
  std::string base(kPageBytes, 'a'), target(kPageBytes, 'a');
  target[3] = 'b';
  std::string delta = make_page_delta(base, target);
  auto r = apply_page_delta(delta, base.substr(1));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("1032"), std::string::npos) << r.status().to_string();
}

// Invariant (1): each way a delta can be malformed is Corruption from check
// and from apply, never a write outside the page.
TEST(PageDelta, MalformedDeltasAreCorruption) {
  const std::string base(64, 'a');
  std::string good = delta_of(64, {{0, "x"}, {20, "yy"}});
  ASSERT_TRUE(check_page_delta(good).is_ok());
  struct Case {
    const char* what;
    std::string delta;
  };
  std::string too_many = good;
  too_many[7] = 100;  // run count past what 64 bytes can hold apart
  const Case cases[] = {
      {"truncated header", good.substr(0, 6)},
      {"truncated run", good.substr(0, good.size() - 1)},
      {"trailing bytes", good + "z"},
      {"run count past the page", too_many},
      {"empty run", delta_of(64, {{4, ""}})},
      {"offset past the page", delta_of(64, {{65, "x"}})},
      {"length past the page", delta_of(64, {{60, "xxxxx"}})},
      {"overlapping runs", delta_of(64, {{10, "xxxx"}, {12, "yy"}})},
      {"runs out of order", delta_of(64, {{40, "x"}, {10, "y"}})},
      {"touching runs", delta_of(64, {{10, "xx"}, {12, "y"}})},
      {"runs closer than a header", delta_of(64, {{10, "x"}, {11 + kRunGapBytesMax, "y"}})},
  };
  for (const Case& c : cases) {
    Status checked = check_page_delta(c.delta);
    EXPECT_EQ(checked.code(), Code::kCorruption) << c.what << ": " << checked.to_string();
    EXPECT_NE(checked.message().find("SQL page delta"), std::string::npos) << c.what;
    auto applied = apply_page_delta(c.delta, base);
    EXPECT_FALSE(applied.is_ok()) << c.what;
  }
  // Just far enough apart is well formed.
  EXPECT_TRUE(check_page_delta(delta_of(64, {{10, "x"}, {12 + kRunGapBytesMax, "y"}})).is_ok());
}

// undo.h (7): a before-image rebuilt from a sound delta and the page after it
// is a stored page whose checksum verifies, through a chain of many deltas.
TEST(RebuildBeforeImage, ChainOfDeltasRebuildsEveryStoredPage) {
  std::mt19937_64 rng(11);
  const std::string key = store::page_key(store::ObjectNo{9}, 3);
  auto stored = [&](std::string page) { return store::seal(store::Db::kPages, key, page); };
  std::vector<std::string> pages{stored(random_page(rng, 1024))};
  for (int i = 0; i < 100; ++i)
    pages.push_back(stored(edited(pages.back().substr(0, 1024), rng, 2)));
  // Newest first: each commit's delta rebuilds the page before it from the page it left.
  std::string current = pages.back();
  for (size_t i = pages.size() - 1; i > 0; --i) {
    auto before = rebuild_before_image(key, make_page_delta(pages[i], pages[i - 1]), current, i);
    ASSERT_TRUE(before.is_ok()) << i << ": " << before.status().to_string();
    EXPECT_EQ(*before, pages[i - 1]) << i;
    current = *before;
  }
}

// A flipped byte inside a run's payload leaves the delta well formed; the
// rebuilt page's checksum finds it, and the error names the record and page.
TEST(RebuildBeforeImage, FlippedPayloadByteIsCorruptionNamingRecordAndPage) {
  std::mt19937_64 rng(12);
  const std::string key = store::page_key(store::ObjectNo{9}, 3);
  std::string before = store::seal(store::Db::kPages, key, random_page(rng, 1024));
  std::string after = store::seal(store::Db::kPages, key, edited(before.substr(0, 1024), rng, 1));
  std::string delta = make_page_delta(after, before);
  delta[delta.size() - 1] = static_cast<char>(delta.back() ^ 0x10);  // the last run's last byte
  ASSERT_TRUE(check_page_delta(delta).is_ok());
  auto r = rebuild_before_image(key, delta, after, 42);
  ASSERT_EQ(r.status().code(), Code::kCorruption) << r.status().to_string();
  EXPECT_NE(r.status().message().find("history log record 42: the undo delta of SQL page 3 of "
                                      "object number 9 does not rebuild a page whose checksum"),
            std::string::npos)
      << r.status().message();
  auto none = rebuild_before_image(key, make_page_delta(after, before), std::nullopt, 42);
  EXPECT_EQ(none.status().code(), Code::kCorruption) << none.status().to_string();
}

}  // namespace
}  // namespace carrel::history
