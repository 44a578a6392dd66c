// Fuzzes ObjectId::parse on arbitrary bytes: an accepted id prints back as the input in
// lowercase and parses again to the same id; a rejected one is InvalidArgument.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "carrel/id.h"

namespace {

char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  carrel::Result<carrel::ObjectId> id = carrel::ObjectId::parse(input);
  if (!id.is_ok()) {
    if (id.status().code() != carrel::Code::kInvalidArgument) std::abort();
    if (id.status().message().empty()) std::abort();
    return 0;
  }
  if (size != 32) std::abort();
  const std::string hex = id->to_hex();
  std::string lowered(input);
  for (char& c : lowered) c = to_lower(c);
  if (hex != lowered) std::abort();
  carrel::Result<carrel::ObjectId> again = carrel::ObjectId::parse(hex);
  if (!again.is_ok() || *again != *id) std::abort();
  return 0;
}
