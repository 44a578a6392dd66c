// Page deltas. See page_delta.h for the layout and the invariants.
#include "engine/store/page_delta.h"

#include <cstring>
#include <utility>
#include <vector>

#include "engine/base/check.h"
#include "engine/store/checksum.h"
#include "engine/store/codec.h"

namespace carrel::store {
namespace {

uint64_t load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The first offset at or past `from` where a and b differ, or n.
size_t next_difference(const char* a, const char* b, size_t from, size_t n) {
  size_t i = from;
  while (i + 8 <= n && load64(a + i) == load64(b + i)) i += 8;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// Invariant (3): the most runs a page of page_bytes can hold apart.
uint64_t runs_max(uint32_t page_bytes) {
  return uint64_t{page_bytes} / (kRunGapBytesMax + 1) + 1;
}

// Reads the delta's runs in order, checking invariant (1), and hands each to
// fn(offset, bytes). Its page size in *page_bytes.
template <typename Fn>
Status read_runs(std::string_view delta, uint32_t* page_bytes, Fn&& fn) {
  Reader r(delta, "SQL page delta");
  uint32_t size = 0, count = 0;
  if (!r.u32(&size) || !r.u32(&count)) return r.corruption("header");
  if (count > runs_max(size)) {
    return r.corruption(std::to_string(count) + " runs, more than a page of " +
                        std::to_string(size) + " bytes holds");
  }
  uint64_t next_min = 0;  // invariant (1): where the next run may start
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t offset = 0, length = 0;
    std::string_view bytes;
    if (!r.u32(&offset) || !r.u32(&length)) return r.corruption("run " + std::to_string(i));
    if (length == 0 || offset < next_min || offset > size || length > size - offset) {
      return r.corruption("run " + std::to_string(i) + " at offset " + std::to_string(offset) +
                          " of " + std::to_string(length) +
                          " bytes is empty, out of order, "
                          "too close to the run before, or past the page's " +
                          std::to_string(size) + " bytes");
    }
    if (!r.raw(length, &bytes)) return r.corruption("bytes of run " + std::to_string(i));
    fn(offset, bytes);
    next_min = uint64_t{offset} + length + kRunGapBytesMax + 1;
  }
  if (!r.done()) return r.corruption("bytes past its last run");
  *page_bytes = size;
  return Status::ok();
}

}  // namespace

PageRuns find_page_runs(std::string_view base, std::string_view target) {
  CARREL_ASSERT(base.size() == target.size() && base.size() <= UINT32_MAX,
                "page_delta.h: a delta joins two pages of one size");
  const size_t n = base.size();
  const char* a = base.data();
  const char* b = target.data();
  PageRuns runs;
  size_t i = next_difference(a, b, 0, n);
  while (i < n) {
    size_t start = i, end = i;
    for (;;) {
      while (end < n && a[end] != b[end]) ++end;
      // Invariant (1): a gap of at most kRunGapBytesMax joins the next run.
      size_t k = end;
      while (k < n && k - end <= kRunGapBytesMax && a[k] == b[k]) ++k;
      if (k == n || k - end > kRunGapBytesMax) break;
      end = k;
    }
    runs.emplace_back(static_cast<uint32_t>(start), static_cast<uint32_t>(end));
    i = next_difference(a, b, end, n);
  }
  return runs;
}

std::string encode_page_delta(const PageRuns& runs, std::string_view target) {
  CARREL_ASSERT(
      target.size() <= UINT32_MAX && (runs.empty() || runs.back().second <= target.size()),
      "page_delta.h: the runs lie inside the page they are encoded from");
  std::string out;
  size_t bytes = kDeltaHeaderBytes;
  for (auto [start, end] : runs) bytes += kRunHeaderBytes + (end - start);
  out.reserve(bytes);
  Writer w(&out);
  w.u32(static_cast<uint32_t>(target.size()));
  w.u32(static_cast<uint32_t>(runs.size()));
  for (auto [start, end] : runs) {
    w.u32(start);
    w.u32(end - start);
    w.raw(target.substr(start, end - start));
  }
  return out;
}

std::string make_page_delta(std::string_view base, std::string_view target) {
  return encode_page_delta(find_page_runs(base, target), target);
}

Status check_page_delta(std::string_view delta, uint32_t* page_bytes) {
  uint32_t size = 0;
  CARREL_RETURN_IF_ERROR(read_runs(delta, &size, [](uint32_t, std::string_view) {}));
  if (page_bytes != nullptr) *page_bytes = size;
  return Status::ok();
}

Result<std::string> apply_page_delta(std::string_view delta, std::string_view base) {
  std::string out(base);
  uint32_t size = 0;
  // Runs lie inside the delta's page size (invariant (1)); they fit base
  // when its size is the delta's, checked once the header is read.
  CARREL_RETURN_IF_ERROR(read_runs(delta, &size, [&](uint32_t offset, std::string_view bytes) {
    if (bytes.size() <= out.size() && offset <= out.size() - bytes.size()) {
      std::memcpy(out.data() + offset, bytes.data(), bytes.size());
    }
  }));
  if (base.size() != size) {
    return Status::corruption("SQL page delta rebuilds a page of " + std::to_string(size) +
                              " bytes, but its base page is " + std::to_string(base.size()) +
                              " bytes");
  }
  return out;
}

Result<std::string> rebuild_page(std::string_view key, std::string_view delta,
                                 std::optional<std::string_view> current, std::string_view what,
                                 std::string_view remedy) {
  const std::string at = std::string(what) + " of " + describe_value(Db::kPages, key);
  if (!current) {
    return Status::corruption(at + " has no current page to apply to; " + std::string(remedy));
  }
  auto rebuilt = apply_page_delta(delta, *current);
  if (!rebuilt.is_ok()) {
    return Status::corruption(at + ": " + rebuilt.status().message() + "; " + std::string(remedy));
  }
  if (!store::open(Db::kPages, key, *rebuilt).is_ok()) {
    return Status::corruption(at + " does not rebuild a page whose checksum verifies; " +
                              std::string(remedy));
  }
  return rebuilt;
}

}  // namespace carrel::store
