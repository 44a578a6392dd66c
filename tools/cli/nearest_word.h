// "Did you mean ...?": the nearest of a few known words to a mistyped one.
// Header-only, so carrel-bench shares it with the carrel CLI.
//
// Invariant: a word is suggested only when it is clearly nearest: edit
// distance (a prefix counts as 1) at most a third of the typed word, and
// strictly nearer than the runner-up.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace carrel::cli {

// Edit distance counting a swap of two neighbours as one edit (optimal
// string alignment), bounded: inputs are cut to kEditWordMax bytes.
constexpr size_t kEditWordMax = 64;

inline size_t edit_distance(std::string_view a, std::string_view b) {
  a = a.substr(0, kEditWordMax);
  b = b.substr(0, kEditWordMax);
  // Rows i-2, i-1 and i of the distance matrix.
  std::vector<size_t> before(b.size() + 1), prev(b.size() + 1), row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      row[j] = std::min({prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        row[j] = std::min(row[j], before[j - 2] + 1);
      }
    }
    std::swap(before, prev);
    std::swap(prev, row);
  }
  return prev[b.size()];
}

inline std::optional<std::string> nearest_word(std::string_view word,
                                               const std::vector<std::string>& candidates) {
  size_t best = SIZE_MAX, second = SIZE_MAX;
  const std::string* pick = nullptr;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    // A prefix of a command ("obj" for "objects") is as good as one edit.
    if (word.size() >= 2 && c.compare(0, word.size(), word) == 0) d = std::min<size_t>(d, 1);
    if (d < best) {
      second = best, best = d, pick = &c;
    } else if (d < second) {
      second = d;
    }
  }
  size_t allowed = std::max<size_t>(1, std::min(word.size(), kEditWordMax) / 3);
  if (pick == nullptr || best > allowed || second == best) return std::nullopt;
  return *pick;
}

}  // namespace carrel::cli
