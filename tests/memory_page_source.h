// A test double for the page set behind one SQL database: a std::map of pages.
// The SQL engine under test is real SQLite; only the PageSource is fake.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "engine/sql/page_source.h"

namespace carrel::testing {

class MemoryPageSource : public sql::PageSource {
 public:
  // The file: its pages (absent = never written) and its length in pages.
  struct Contents {
    std::map<uint32_t, std::string> pages;
    uint32_t page_count = 0;
    bool operator==(const Contents&) const = default;
  };

  explicit MemoryPageSource(uint32_t page_bytes = 1024) : page_bytes_(page_bytes) {}

  uint32_t page_bytes() const override { return page_bytes_; }
  uint32_t page_count() override { return contents_.page_count; }

  Result<bool> read_page(uint32_t page_no, std::string* out) override {
    ++reads;
    if (!fail_reads.is_ok()) return fail_reads;
    if (page_no >= contents_.page_count) return false;
    auto it = contents_.pages.find(page_no);
    if (it == contents_.pages.end()) return false;
    *out = it->second;
    return true;
  }

  Status write_page(uint32_t page_no, std::string_view data) override {
    ++writes;
    if (!fail_writes.is_ok()) return fail_writes;
    if (data.size() != page_bytes_) {
      return Status::invalid_argument("test page source: write of " + std::to_string(data.size()) +
                                      " bytes");
    }
    contents_.pages[page_no] = std::string(data);
    if (page_no >= contents_.page_count) contents_.page_count = page_no + 1;
    return Status::ok();
  }

  Status truncate(uint32_t page_count) override {
    ++truncates;
    if (!fail_writes.is_ok()) return fail_writes;
    contents_.pages.erase(contents_.pages.lower_bound(page_count), contents_.pages.end());
    contents_.page_count = page_count;
    return Status::ok();
  }

  const Contents& contents() const { return contents_; }

  // Counters and injected faults (ok = no fault).
  uint64_t reads = 0;
  uint64_t writes = 0;
  uint64_t truncates = 0;
  Status fail_reads;
  Status fail_writes;

 private:
  uint32_t page_bytes_;
  Contents contents_;
};

// Free-list leaf pages of the SQLite database in `c` (our page numbers: SQLite's
// minus one). SQLite never reads their content, and does not restore it on
// ROLLBACK when a transaction reused them (it fetches them "no content").
inline std::set<uint32_t> free_leaf_pages(const MemoryPageSource::Contents& c) {
  auto u32 = [](const std::string& page, size_t at) {
    auto b = [&](size_t i) {
      return static_cast<uint32_t>(static_cast<unsigned char>(page[at + i]));
    };
    return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
  };
  std::set<uint32_t> leaves;
  auto header = c.pages.find(0);
  if (header == c.pages.end()) return leaves;
  for (uint32_t trunk = u32(header->second, 32); trunk != 0;) {
    auto it = c.pages.find(trunk - 1);
    if (it == c.pages.end()) break;
    const uint32_t count = u32(it->second, 4);
    for (uint32_t i = 0; i < count && 8 + 4 * i + 4 <= it->second.size(); ++i) {
      leaves.insert(u32(it->second, 8 + 4 * i) - 1);
    }
    trunk = u32(it->second, 0);
  }
  return leaves;
}

// True when b holds the same SQLite database as a: same length, and every
// page byte-identical except a's free-list leaf pages.
inline bool same_database(const MemoryPageSource::Contents& a,
                          const MemoryPageSource::Contents& b) {
  if (a.page_count != b.page_count) return false;
  const std::set<uint32_t> free_leaves = free_leaf_pages(a);
  for (uint32_t n = 0; n < a.page_count; ++n) {
    if (free_leaves.count(n) != 0) continue;
    auto x = a.pages.find(n);
    auto y = b.pages.find(n);
    const bool x_has = x != a.pages.end(), y_has = y != b.pages.end();
    if (x_has != y_has || (x_has && x->second != y->second)) return false;
  }
  return true;
}

}  // namespace carrel::testing
