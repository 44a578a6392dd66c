// A test double for the page set behind one SQL database: a std::map of pages.
// The SQL engine under test is real SQLite; only the PageSource is fake.
#pragma once

#include <cstdint>
#include <map>
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

}  // namespace carrel::testing
