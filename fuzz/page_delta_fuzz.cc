// Fuzzes the page delta decoder (engine/store/page_delta.h) on arbitrary
// bytes: no crash, a malformed delta is Corruption from both check and apply,
// and a delta that checks applies to a base of its page size, after which
// make_page_delta(base, result) rebuilds the same result (invariant (2)).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/store/page_delta.h"

namespace {

using namespace carrel;

// Largest base built for a delta that checks: SQLite's largest page and its
// checksum trailer, so the fuzzer never asks for gigabytes.
constexpr uint32_t kBaseBytesMax = 65536 + 8;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "page_delta: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view delta(reinterpret_cast<const char*>(data), size);
  uint32_t page_bytes = 0;
  Status checked = store::check_page_delta(delta, &page_bytes);
  if (!checked.is_ok()) {
    if (checked.code() != Code::kCorruption) fail("malformed delta is not Corruption");
    auto applied = store::apply_page_delta(delta, std::string(16, 'b'));
    if (applied.is_ok() || applied.status().code() != Code::kCorruption) {
      fail("apply accepted a delta check refused");
    }
    return 0;
  }
  if (page_bytes > kBaseBytesMax) return 0;
  std::string base(page_bytes, '\0');
  for (uint32_t i = 0; i < page_bytes; ++i) base[i] = static_cast<char>(i * 131 + 7);
  auto applied = store::apply_page_delta(delta, base);
  if (!applied.is_ok()) fail("a delta that checks does not apply to a base of its size");
  if (applied->size() != base.size()) fail("apply changed the page size");
  auto wrong = store::apply_page_delta(delta, base + "x");
  if (wrong.is_ok() || wrong.status().code() != Code::kCorruption) {
    fail("apply accepted a base of another size");
  }
  const std::string again = store::make_page_delta(base, *applied);
  auto rebuilt = store::apply_page_delta(again, base);
  if (!rebuilt.is_ok() || *rebuilt != *applied) fail("make -> apply does not round-trip");
  if (again.size() > delta.size()) fail("make_page_delta wrote a larger delta than needed");
  return 0;
}
