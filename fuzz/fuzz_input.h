// Reads typed values off a fuzz input, yielding zeros once it is used up.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace carrel::fuzz {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return at_ >= size_; }
  uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | byte();
    return v;
  }
  uint64_t u64() { return uint64_t{u32()} << 32 | u32(); }
  // Up to max_len bytes, the length taken from the input.
  std::string bytes(size_t max_len) {
    size_t n = max_len == 0 ? 0 : byte() % (max_len + 1);
    std::string s;
    for (size_t i = 0; i < n && !empty(); ++i) s.push_back(static_cast<char>(byte()));
    return s;
  }
  // One of n choices.
  size_t pick(size_t n) { return n == 0 ? 0 : byte() % n; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

}  // namespace carrel::fuzz
