# Helpers for the CLI's shell tests; source it after setting CARREL, DIR and
# WORK. Each check counts in CHECKS; a failed one prints what the command
# wrote and counts in FAILURES.
FAILURES=0
CHECKS=0

OUT=$WORK/out
ERR=$WORK/err
RC=0

# c ARGS...: runs carrel on the test directory; keeps stdout, stderr and exit code.
c() {
  "$CARREL" --dir "$DIR" "$@" >"$OUT" 2>"$ERR" </dev/null
  RC=$?
}
# c_in INPUT ARGS...: the same, with INPUT on stdin.
c_in() {
  local input=$1
  shift
  printf '%s' "$input" | "$CARREL" --dir "$DIR" "$@" >"$OUT" 2>"$ERR"
  RC=$?
}

fail() {
  FAILURES=$((FAILURES + 1))
  echo "FAIL: $*"
  echo "  exit code: $RC"
  echo "  stdout: $(head -c 2000 "$OUT")"
  echo "  stderr: $(head -c 2000 "$ERR")"
}
expect_rc() {
  CHECKS=$((CHECKS + 1))
  [[ "$RC" == "$1" ]] || fail "$2: expected exit code $1"
}
expect_out() {
  CHECKS=$((CHECKS + 1))
  grep -Eq -- "$1" "$OUT" || fail "$2: stdout lacks /$1/"
}
expect_err() {
  CHECKS=$((CHECKS + 1))
  grep -Eq -- "$1" "$ERR" || fail "$2: stderr lacks /$1/"
}
expect_no_out() {
  CHECKS=$((CHECKS + 1))
  ! grep -Eq -- "$1" "$OUT" || fail "$2: stdout has /$1/"
}
expect_no_err() {
  CHECKS=$((CHECKS + 1))
  ! grep -Eq -- "$1" "$ERR" || fail "$2: stderr has /$1/"
}
ok() {
  local what=$1
  shift
  c "$@"
  expect_rc 0 "$what"
}
