#include "engine/base/check.h"

#include <cstdio>
#include <cstdlib>

namespace carrel::detail {

void invariant_failed(const char* file, int line, const char* cond, const char* text) {
  std::fprintf(stderr, "carrel: invariant broken at %s:%d: %s (%s)\n", file, line, text, cond);
  std::fflush(stderr);
  std::abort();
}

}  // namespace carrel::detail
