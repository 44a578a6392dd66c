#!/usr/bin/env bash
# install_tools: install a build tree into a scratch prefix, move the prefix
# elsewhere, and use what a user gets from there only — the installed tools,
# pkg-config, the man pages and the bash completion. CTest runs it (see
# tests/CMakeLists.txt); by hand:
#
#   tests/install/install_test.sh BUILD_DIR WORK_DIR VERSION CXX BENCH MAN [CXX_FLAGS]
#
# BENCH and MAN are ON or OFF: whether the tree builds carrel-bench and the
# man pages. CXX_FLAGS go to the pkg-config test program's compile and link
# (sanitizer trees pass their -fsanitize flags).
set -euo pipefail

if [[ $# -lt 6 ]]; then
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
  exit 2
fi
BUILD=$1 WORK=$2 VERSION=$3 CXX=$4 BENCH=$5 MAN=$6
read -r -a CXX_FLAGS <<<"${7:-}"

step() { printf 'install_tools: %s\n' "$*"; }
fail() {
  printf 'install_tools: FAILED: %s\n' "$*" >&2
  exit 1
}
# expect WHAT WANT GOT: GOT must contain WANT.
expect() {
  [[ $3 == *"$2"* ]] || fail "$1: want '$2' in: $3"
}

rm -rf "$WORK"
mkdir -p "$WORK"
step "cmake --install into a scratch prefix"
cmake --install "$BUILD" --prefix "$WORK/staging" >"$WORK/install.log"
# Moved after installing: nothing may depend on the path it was installed to.
mv "$WORK/staging" "$WORK/prefix"
PREFIX=$WORK/prefix
# Only the prefix's own RUNPATH may find libcarrel.
unset LD_LIBRARY_PATH

step "carrel --version"
expect "carrel --version" "carrel $VERSION" "$("$PREFIX/bin/carrel" --version)"

step "carrel on a fresh directory"
DATA=$WORK/data
"$PREFIX/bin/carrel" --dir "$DATA" init >/dev/null
expect "objects on an empty engine" "no objects" "$("$PREFIX/bin/carrel" --dir "$DATA" objects)"
"$PREFIX/bin/carrel" --dir "$DATA" kv put Counter:home n 41 >/dev/null
expect "kv get after kv put" "41" "$("$PREFIX/bin/carrel" --dir "$DATA" kv get Counter:home n)"
expect "objects after kv put" "Counter" "$("$PREFIX/bin/carrel" --dir "$DATA" objects)"

if [[ $BENCH == ON ]]; then
  step "carrel-bench --version, --list"
  expect "carrel-bench --version" "carrel-bench $VERSION" "$("$PREFIX/bin/carrel-bench" --version)"
  expect "carrel-bench --list" "kv-write" "$("$PREFIX/bin/carrel-bench" --list)"
fi

step "pkg-config --cflags --libs carrel builds a program"
PC=$(find "$PREFIX" -name carrel.pc -print -quit)
[[ -n $PC ]] || fail "no carrel.pc under $PREFIX"
export PKG_CONFIG_PATH=${PC%/*}
expect "pkg-config --modversion" "$VERSION" "$(pkg-config --modversion carrel)"
read -r -a PC_FLAGS <<<"$(pkg-config --cflags --libs carrel)"
cat >"$WORK/hello.cc" <<'EOF'
#include <carrel/carrel.h>

#include <cstdio>

int main() {
  std::printf("%s %s\n", CARREL_VERSION_STRING,
              carrel::id_from_name("Workspace", "acme").to_hex().c_str());
}
EOF
"$CXX" -std=c++20 "${CXX_FLAGS[@]}" "$WORK/hello.cc" -o "$WORK/hello" "${PC_FLAGS[@]}" \
  -Wl,-rpath,"$(pkg-config --variable=libdir carrel)"
expect "the pkg-config program" "$VERSION c012dbc7a89195dce46f41d5df184c2e" "$("$WORK/hello")"

if [[ $MAN == ON ]]; then
  step "man carrel"
  pages=(carrel)
  [[ $BENCH == ON ]] && pages+=(carrel-bench)
  for page in "${pages[@]}"; do
    text=$(MANPATH=$PREFIX/share/man MANWIDTH=80 man -P cat "$page" 2>&1) || fail "man $page: $text"
    expect "man $page" "$page - " "$text"
    expect "man $page" "--version" "$text"
  done
fi

step "bash completion"
COMPLETIONS=$PREFIX/share/bash-completion/completions
got=$(PATH=$PREFIX/bin:$PATH bash --norc --noprofile -c '
  . "$1/carrel"
  COMP_WORDS=(carrel --dir /tmp kv l) COMP_CWORD=4
  _carrel
  echo "${COMPREPLY[*]}"' _ "$COMPLETIONS")
[[ $got == list ]] || fail "completion of 'carrel --dir /tmp kv l': want 'list', got '$got'"
if [[ $BENCH == ON ]]; then
  got=$(PATH=$PREFIX/bin:$PATH bash --norc --noprofile -c '
    . "$1/carrel-bench"
    COMP_WORDS=(carrel-bench --durability no) COMP_CWORD=2
    _carrel_bench
    echo "${COMPREPLY[*]}"' _ "$COMPLETIONS")
  [[ $got == nosync ]] || fail "completion of 'carrel-bench --durability no': want 'nosync', got '$got'"
fi

[[ -s $PREFIX/share/doc/carrel/LICENSE ]] || fail "no share/doc/carrel/LICENSE"
step "ok"
rm -rf "$WORK"
