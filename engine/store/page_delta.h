// Page deltas: how to rebuild one stored SQL page from another of the same
// size, by the byte ranges where they differ. The history log keeps the undo
// of a page changed in place as a delta from the page the commit left
// (history/undo.h (7)), and the redo log its redo as a delta from the page
// before the commit (redo.h (10)), so a one-row INSERT costs each log about
// the row's bytes, not a whole page.
//
// Layout (codec.h): u32 page bytes (the stored size, checksum trailer
// included), u32 run count, then per run u32 offset, u32 length and the
// target's `length` bytes at that offset. Bytes outside every run are the
// base's.
//
// Invariants:
//  (1) Runs are in ascending offset order, non-empty, inside the page and
//      apart: each starts past the end of the one before plus kRunGapBytesMax
//      (make_page_delta merges runs any closer, since a run's header costs as
//      much as that gap). A delta breaking any of these is Corruption, never
//      applied.
//  (2) apply_page_delta(make_page_delta(base, target), base) == target, for
//      any base and target of one size. Applied to another base of that size
//      it yields some page: the caller checks what it rebuilt (rebuild_page,
//      for history/undo.h (7) and redo.h (10): the stored page's checksum
//      trailer must verify).
//  (3) The run count is at most page bytes / (kRunGapBytesMax + 1) + 1, which
//      (1) implies; a count past it is refused before anything is reserved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "carrel/status.h"

namespace carrel::store {

// Runs closer than this many unchanged bytes are merged (invariant (1)): a
// run's header (offset and length) is 8 bytes.
constexpr size_t kRunGapBytesMax = 8;
// Bytes of a delta before its runs: page bytes and run count.
constexpr size_t kDeltaHeaderBytes = 4 + 4;
// Bytes of a run before its payload: offset and length.
constexpr size_t kRunHeaderBytes = 4 + 4;
static_assert(kRunGapBytesMax == kRunHeaderBytes, "merge a gap that costs no more than a header");

// The delta that rebuilds `target` from `base`. REQUIRES: base.size() ==
// target.size() <= UINT32_MAX.
std::string make_page_delta(std::string_view base, std::string_view target);

// The runs where two pages of one size differ, [start, end), apart as
// invariant (1) says; the same runs either way. A commit that keeps both logs
// compares a changed page once and encodes the runs for each (the history
// log's undo from the new page, the redo log's from the old one).
// REQUIRES: base.size() == target.size() <= UINT32_MAX.
using PageRuns = std::vector<std::pair<uint32_t, uint32_t>>;
PageRuns find_page_runs(std::string_view base, std::string_view target);
// The delta of `runs` that rebuilds `target`: with runs =
// find_page_runs(base, target) (or (target, base)), make_page_delta(base, target).
// REQUIRES: runs come from find_page_runs of target and a page of its size.
std::string encode_page_delta(const PageRuns& runs, std::string_view target);

// OK when `delta` is well formed (invariant (1)); Corruption naming the
// first fault otherwise. Its page bytes, when out is not null.
Status check_page_delta(std::string_view delta, uint32_t* page_bytes = nullptr);

// The page `delta` rebuilds from `base` (invariant (2)). Corruption when the
// delta is malformed or base is not of the delta's page size.
Result<std::string> apply_page_delta(std::string_view delta, std::string_view base);

// The stored page under `key` (a pages key) that `delta` rebuilds from
// `current` (nullopt: there is none). The rebuilt page is a stored value, so
// its checksum trailer must verify (invariant (2)). Otherwise Corruption
// that starts with `what` (the delta's record), names the page and ends with
// `remedy`. Restore, `carrel verify` (undo deltas: history/undo.h (7)) and
// redo replay (redo.h (10)) all rebuild through here.
Result<std::string> rebuild_page(std::string_view key, std::string_view delta,
                                 std::optional<std::string_view> current, std::string_view what,
                                 std::string_view remedy);

}  // namespace carrel::store
