// Text for errors that name a limit: "value of 70000 bytes exceeds
// value_bytes_max (65536 bytes)" reads the same in every part.
#pragma once

#include <cstddef>
#include <string>

namespace carrel::detail {

inline std::string bytes_text(size_t n) {
  return std::to_string(n) + " bytes";
}

}  // namespace carrel::detail
