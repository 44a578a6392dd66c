// carrel/export.h — moving one object's state between engines.
//
// An export is newline-delimited JSON (docs/export-format.md, version 1): a
// header line, the object's KV entries, its SQL database as page images, its
// alarm entries, and an end line with counts. It is a consistent snapshot:
// everything is read in one turn.
#pragma once

#include <istream>
#include <ostream>

#include "carrel/context.h"
#include "carrel/engine.h"
#include "carrel/status.h"

namespace carrel {

// Writes the object's KV, SQL and alarm state to out, read in one turn (so the
// class's on_start runs first when the class is registered and the object is
// not active). Dead letters and history are not exported. Errors: those of
// Engine::run, and IOError when out fails. On error, discard what was written.
Status export_object(Engine& engine, const ObjectRef& object, std::ostream& out);

// Reads an export from in and writes it into the object in one turn: all of
// it commits, or nothing does. The object must be empty (no KV key, SQL page
// or alarm, after on_start when its class is registered); otherwise
// InvalidArgument. Malformed input is InvalidArgument naming the line; an
// export made with another sql_page_bytes is InvalidArgument naming both
// sizes. The object keeps its own class and id: the header's are not checked.
// Limits apply as to any turn (value_bytes_max, turn_dirty_bytes_max,
// alarms_per_object_max, ...), each a clear InvalidArgument.
Status import_object(Engine& engine, const ObjectRef& object, std::istream& in);

}  // namespace carrel
