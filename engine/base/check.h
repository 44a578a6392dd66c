// Checked invariants.
//
// CARREL_ASSERT(cond, "text") is on in every build: a broken invariant stops
// the process with the text, the file and the line, instead of corrupting
// state. Keep it for cheap checks (a comparison, a flag). CARREL_DASSERT is
// the same in debug and sanitizer builds and compiled out in release builds
// (NDEBUG): for checks that walk a structure. The text names the invariant,
// e.g. "object.h (5): a scheduled slot owns its mailbox".
#pragma once

namespace carrel::detail {

// Prints "carrel: invariant broken at FILE:LINE: TEXT (COND)" and aborts.
[[noreturn]] void invariant_failed(const char* file, int line, const char* cond, const char* text);

}  // namespace carrel::detail

#define CARREL_ASSERT(cond, text)                                          \
  do {                                                                     \
    if (__builtin_expect(!(cond), 0)) {                                    \
      ::carrel::detail::invariant_failed(__FILE__, __LINE__, #cond, text); \
    }                                                                      \
  } while (0)

#ifdef NDEBUG
#define CARREL_DASSERT(cond, text) \
  do {                             \
    if (false && (cond)) {         \
    }                              \
  } while (0)
#else
#define CARREL_DASSERT(cond, text) CARREL_ASSERT(cond, text)
#endif
