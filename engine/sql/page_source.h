// The page set behind one object's SQLite main database file.
//
// Invariants:
//  (1) The VFS never writes to LMDB. write_page()/truncate() land in the
//      current turn's page map; only the engine's turn commit moves pages into
//      LMDB, and only after SQLite's COMMIT returned OK.
//  (2) read_page() sees, newest first: the turn's pages, the object's pages of
//      commits not yet durable, then LMDB.
//  (3) Every page is exactly page_bytes() long; pages are numbered from 0
//      (SQLite's page 1 is page 0 here, at file offset 0).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "carrel/status.h"

namespace carrel::sql {

class PageSource {
 public:
  virtual ~PageSource() = default;
  virtual uint32_t page_bytes() const = 0;
  // The file's length in pages.
  virtual uint32_t page_count() = 0;
  // Fills *out with the page (page_bytes() long) and returns true, or returns
  // false when the page lies at or past page_count() or was never written
  // (the caller treats its content as zeros).
  virtual Result<bool> read_page(uint32_t page_no, std::string* out) = 0;
  // Copies bytes [in_page, in_page + n) of the page into out and returns
  // true, or returns false as read_page does (out untouched); Corruption when
  // the page is not page_bytes() long. The VFS reads through this. This
  // default copies twice (the page, then the slice); a source that holds its
  // pages in memory overrides it to copy once, from where the page lies.
  // REQUIRES: in_page + n <= page_bytes().
  virtual Result<bool> read_slice(uint32_t page_no, uint64_t in_page, uint64_t n, char* out) {
    std::string page;
    CARREL_ASSIGN_OR_RETURN(bool found, read_page(page_no, &page));
    if (!found) return false;
    CARREL_RETURN_IF_ERROR(check_page_size(page_no, page.size()));
    std::memcpy(out, page.data() + in_page, n);
    return true;
  }
  // Writes a whole page; page_count() grows to page_no + 1 when it was smaller.
  virtual Status write_page(uint32_t page_no, std::string_view data) = 0;
  // Sets the file length to page_count pages, dropping pages past it.
  virtual Status truncate(uint32_t page_count) = 0;

 protected:
  // Invariant (3): Corruption naming the page when it is not page_bytes() long.
  Status check_page_size(uint32_t page_no, size_t bytes) const {
    if (bytes == page_bytes()) return Status::ok();
    return Status::corruption("SQL page " + std::to_string(page_no) + " is " +
                              std::to_string(bytes) + " bytes; expected " +
                              std::to_string(page_bytes()));
  }
};

}  // namespace carrel::sql
