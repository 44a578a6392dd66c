// The writing half of an export (docs/export-format.md), apart from where the
// object's state is read: export_object (carrel/export.h) reads it in one
// turn, and the carrel CLI beside a running engine reads it from one LMDB
// read snapshot (tools/cli/snapshot_export.cc). Both write through
// write_export, so their files are the same format line for line.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string_view>
#include <vector>

#include "carrel/alarms.h"
#include "carrel/context.h"
#include "carrel/status.h"

namespace carrel::transfer {

// One consistent state of one object as an export reads it: every call reads
// the same state (one turn, or one snapshot).
class ExportSource {
 public:
  virtual ~ExportSource() = default;
  // Calls f on every KV entry, in key order, until f fails.
  virtual Status for_each_kv(
      const std::function<Status(std::string_view key, std::string_view value)>& f) = 0;
  // Calls on_count with the SQL file's length in pages, then on_page on every
  // page in order (a page never written is page_bytes zeros).
  virtual Status for_each_page(
      const std::function<Status(uint32_t count)>& on_count,
      const std::function<Status(uint32_t, std::string_view)>& on_page) = 0;
  // The alarm entries, in name order.
  virtual Result<std::vector<AlarmEntry>> alarms() = 0;
};

// Writes the export of object read from source: the header (with
// page_bytes and exported_ms), the KV entries, the page count and pages, the
// alarms and the end line with the counts. IOError when out fails; an error
// of source as it is.
Status write_export(const ObjectRef& object, uint32_t page_bytes, UnixMs exported_ms,
                    ExportSource& source, std::ostream& out);

}  // namespace carrel::transfer
