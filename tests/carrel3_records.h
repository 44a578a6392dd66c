// Records as format carrel-3 wrote them, for tests and fuzzers of the
// migration to carrel-4: the engine decodes these versions but never writes
// them. The layouts are frozen here, apart from the engine's decoders, so a
// change on the engine's side that would misread an old directory fails the
// tests that feed it these bytes.
#pragma once

#include <string>

#include "engine/history/undo.h"
#include "engine/store/object_record.h"

namespace carrel::testing {

// Object record version 1: every field fixed-width, the names with 16-bit
// lengths. REQUIRES: both names fit store::kStr16BytesMax.
std::string encode_carrel3(const store::ObjectRecord& record);

// History log record version 2: fixed-width header and counters, whole keys
// and values with 32-bit lengths.
std::string encode_carrel3(const history::LogRecord& record);

}  // namespace carrel::testing
