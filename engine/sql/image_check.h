// Checks of a whole SQLite database image that did not come through user SQL
// (the pages of an import), before any of it is written.
#pragma once

#include <cstdint>
#include <string_view>

#include "carrel/status.h"

namespace carrel::sql {

// OK when `image` (page_bytes-sized pages, page 0 first; empty: no database)
// is a SQLite database that the engine could have made: the SQLite header
// with this page size and a rollback journal (not WAL); a page count equal to
// the pages given; a schema that follows the authorizer's rules (no _carrel_
// names, only the allowed virtual table modules; authorizer.h invariants 3
// and 4); and PRAGMA integrity_check passes. Otherwise InvalidArgument naming
// what is wrong. Reads the image in memory; writes nothing anywhere.
Status check_database_image(std::string_view image, uint32_t page_bytes);

}  // namespace carrel::sql
