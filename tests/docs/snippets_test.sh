#!/usr/bin/env bash
# docs_snippets: the program in docs/getting-started.md is examples/counter.cc
# (which CTest builds and runs as example_counter), and every line of README's
# first C++ snippet is a line of that program, so neither can drift from code
# that compiles.
#
#   tests/docs/snippets_test.sh SOURCE_DIR
set -euo pipefail
SRC=${1:?usage: snippets_test.sh SOURCE_DIR}
PROGRAM=$SRC/examples/counter.cc

# cpp_block FILE AFTER: the first ```cpp block after the first line matching AFTER.
cpp_block() {
  awk -v after="$2" '
    !seen && $0 ~ after { seen = 1; next }
    seen && !in_block && /^```cpp$/ { in_block = 1; next }
    in_block && /^```$/ { exit }
    in_block { print }' "$1"
}

# The program without its leading comment (which names this test).
want=$(sed '1,/^[^/]/{/^\/\//d}' "$PROGRAM")
got=$(cpp_block "$SRC/docs/getting-started.md" '^`main.cc`')
if [[ $got != "$want" ]]; then
  echo "docs_snippets: docs/getting-started.md's main.cc differs from examples/counter.cc:" >&2
  diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") >&2 || true
  exit 1
fi

# README: each line, trimmed, must be a trimmed line of the program ("// ..."
# marks elided lines).
readme=$(cpp_block "$SRC/README.md" '^A first taste')
[[ -n $readme ]] || { echo "docs_snippets: no C++ snippet after 'A first taste' in README.md" >&2; exit 1; }
trim() { sed 's/^[[:space:]]*//;s/[[:space:]]*$//'; }
missing=$(grep -vxF -f <(printf '%s\n' "$want" | trim | grep -v '^$') \
  <(printf '%s\n' "$readme" | trim | grep -v '^$' | grep -vx '// \.\.\.') || true)
if [[ -n $missing ]]; then
  echo "docs_snippets: README.md's snippet has lines that are not in examples/counter.cc:" >&2
  printf '  %s\n' "$missing" >&2
  exit 1
fi
echo "docs_snippets: ok"
