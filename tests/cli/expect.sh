# Helpers for the CLI's shell tests; source it after setting CARREL, DIR and
# WORK, then `trap cleanup EXIT`. Each check counts in CHECKS; a failed one
# prints what the command wrote and counts in FAILURES.
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

# A process that holds a directory open for writing: `carrel sql OBJ` reading
# a script from a fifo keeps the engine open until the fifo closes.
# hold_engine DIR OBJ starts it (fd 9 writes its script) and returns once it
# took the writer lock (it writes its pid into writer.lock after taking it;
# reading that file never competes for the lock), bounded: 60 s on a loaded
# machine, and a failed check when it never did. release_engine closes the script and waits: HOLDER_RC is its exit
# code, WORK/holder.out what it printed.
HOLDER_PID=
HOLDER_RC=
hold_engine() {
  rm -f "$WORK/fifo"
  mkfifo "$WORK/fifo"
  "$CARREL" --dir "$1" sql "$2" <"$WORK/fifo" >"$WORK/holder.out" 2>&1 &
  HOLDER_PID=$!
  exec 9>"$WORK/fifo"
  for _ in $(seq 1 1200); do
    [[ "$(cat "$1/writer.lock" 2>/dev/null)" == "$HOLDER_PID" ]] && return
    kill -0 "$HOLDER_PID" 2>/dev/null || break
    sleep 0.05
  done
  fail "hold_engine: the holder never took $1's writer lock: $(cat "$WORK/holder.out")"
}
release_engine() {
  exec 9>&-
  wait "$HOLDER_PID"
  HOLDER_RC=$?
  HOLDER_PID=
}
# The EXIT trap: stops a holder left running, removes WORK.
cleanup() {
  if [[ -n "$HOLDER_PID" ]]; then
    kill "$HOLDER_PID" 2>/dev/null
    wait "$HOLDER_PID" 2>/dev/null
  fi
  exec 9>&- 2>/dev/null
  rm -rf "$WORK"
}
