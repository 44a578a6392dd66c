#!/usr/bin/env bash
# The carrel CLI as an operator meets it: every label it prints is accepted
# back as OBJ, usage errors in words with the nearest command, --json errors
# as JSON, non-UTF-8 names in their base64 form, read-only SQL beside a
# running engine, plural forms, alarms list --limit, the pager, and the SQL
# REPL on a terminal (line editing, Ctrl-C, history, .quit).
#
# Usage: cli_ux_test.sh PATH/TO/carrel [PATH/TO/carrel-bench]
set -u
CARREL=${1:?usage: cli_ux_test.sh PATH/TO/carrel [PATH/TO/carrel-bench]}
BENCH=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/carrel-cli-ux.XXXXXX")
DIR=$WORK/engine

# shellcheck source=tests/cli/expect.sh
source "$HERE/expect.sh"
trap cleanup EXIT
# json_check FILE PYTHON-EXPR WHAT: every line of FILE is JSON and EXPR holds for the last (as d).
json_check() {
  CHECKS=$((CHECKS + 1))
  python3 - "$1" "$2" <<'PY' || fail "$3: JSON check '$2' failed"
import json, sys
lines = [l for l in open(sys.argv[1], encoding="utf-8").read().splitlines() if l]
docs = [json.loads(l) for l in lines]
d = docs[-1]
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

ok "init" init
HEXNAME=63b4cc970000000000000000000000aa
RAWNAME=$(printf 'caf\xff')
LONGNAME=aVeryLongNameThatTheTableCutsBecauseItIsLongerThanFortyCharacters
ok "a name of 32 hex digits" kv put "Thread:$HEXNAME" k v
ok "a non-UTF-8 name" kv put "Room:$RAWNAME" k v
ok "a long name" kv put "Room:$LONGNAME" k v
ok "an object by id" kv put "Room:#0123456789abcdef0123456789abcdef" k v
ok "lobby" kv put Room:lobby greeting hello

# ---------------------------------------------------------------- labels are accepted back
ok "objects" objects
expect_out "Thread +$HEXNAME" "hex-looking name listed as a name"
# Every label objects prints (CLASS:NAME, as the table shows it) resolves.
while read -r id class name _; do
  [[ "$id" == ID ]] && continue
  label="$class:$name"
  [[ "$name" =~ ^[0-9]+$ ]] && label="$class:#$id"  # no name: the NAME column is empty
  c show "$label"
  expect_rc 0 "show of the printed label '$label'"
  expect_out "^id +$id$" "printed label '$label' names its own object"
done < <("$CARREL" --dir "$DIR" objects)
ok "show of a hex-looking name" show "Thread:$HEXNAME"
expect_out "^name +$HEXNAME$" "a 32-hex-digit name is a name first"
ok "show of an escaped label" show 'Room:caf\xff'
expect_out '^name +caf\\xff$' "escaped label resolves to the raw name"
ok "show of a cut name" show "Room:${LONGNAME:0:40}..."
expect_out "^name +$LONGNAME$" "a name cut with ... is a unique prefix"
ok "show by id prefix" show "Room:#0123"
expect_out "^id +0123456789abcdef0123456789abcdef$" "CLASS:#PREFIX"
ok "show by bare id prefix" show "0123456789ab"
ok "show of the unnamed object's label" show "Room:0123456789abcdef0123456789abcdef"
c show "Room:..."
expect_rc 1 "an empty prefix"
c show "Room:#"
expect_rc 1 "an empty id"
c show "Room:lobyy"
expect_rc 1 "a misspelled object"
expect_err "unknown object 'Room:lobyy'.*did you mean 'Room:lobby'\?" "nearest object suggested"
ok "JSON label" --json objects --class Thread
json_check "$OUT" "d['label'] == 'Thread:$HEXNAME'" "JSON label of a hex-looking name"
c show "$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['label'])" "$OUT")"
expect_rc 0 "the JSON label resolves"

# ---------------------------------------------------------------- usage errors in words
for bad in 0 abc -1 1.5; do
  c objects --limit "$bad"
  expect_rc 2 "--limit $bad"
  expect_err "'$bad' is not a whole number of 1 or more" "--limit $bad in words"
  expect_no_err "not in range|1797693" "--limit $bad without CLI11's range"
done
c history Room:lobby --limit 0
expect_err "'0' is not a whole number of 1 or more" "history --limit 0 in words"
c alarms set Room:lobby now --every abc
expect_rc 2 "--every abc"
expect_err "'abc' is not a whole number of milliseconds" "--every in words"
c frobnicate
expect_rc 2 "unknown command"
expect_err "unknown command 'frobnicate'" "unknown command named"
expect_no_err "A subcommand is required" "no CLI11 wording"
c objcts
expect_err "did you mean 'objects'\?" "nearest command suggested"
c kv gte Room:lobby greeting
expect_rc 2 "unknown kv command"
expect_err "unknown command 'gte' for 'carrel kv'; did you mean 'get'\?" "nearest kv command"
c alarms
expect_rc 2 "alarms without a command"
expect_err "'carrel alarms' needs a command: list, set or delete" "missing command named"
if [[ -n "$BENCH" ]]; then
  "$BENCH" >"$OUT" 2>"$ERR" </dev/null
  RC=$?
  expect_rc 2 "carrel-bench without a workload"
  expect_err "no workload given; name one of: .*kv-write" "carrel-bench lists the workloads"
  "$BENCH" kv-wrte >"$OUT" 2>"$ERR" </dev/null
  RC=$?
  expect_err "unknown workload 'kv-wrte'; did you mean 'kv-write'\?" "carrel-bench suggests"
fi

# ---------------------------------------------------------------- --json: errors and raw names
c --json show Room:nobody
expect_rc 1 "--json error"
json_check "$ERR" "d['error']['code'] == 'NotFound' and 'Room:nobody' in d['error']['message']" \
  "error as a JSON object"
c show Room:nobody --json
json_check "$ERR" "d['error']['code'] == 'NotFound'" "--json after the command"
c --json objects --limit 0
expect_rc 2 "--json usage error"
json_check "$ERR" "d['error']['code'] == 'Usage' and d['error']['exit_code'] == 2" "usage error as JSON"
c --json frobnicate
json_check "$ERR" "'frobnicate' in d['error']['message']" "unknown command as JSON"
ok "JSON of a non-UTF-8 name" --json show 'Room:caf\xff'
json_check "$OUT" "d['name'] == 'Y2Fm/w==' and d['name_encoding'] == 'base64'" "name in base64"
expect_no_out 'ufffd' "no U+FFFD for a raw name"

# ---------------------------------------------------------------- plural forms, alarms list --limit
ok "show lobby" show Room:lobby
expect_out "^kv +1 key, " "one key, singular"
expect_out "^history +1 commit retained" "one commit, singular"
ok "alarm 1" alarms set Room:lobby 2030-01-01T00:00:00Z --name a
ok "alarm 2" alarms set Room:lobby 2030-01-02T00:00:00Z --name b
ok "alarm 3" alarms set Room:lobby 2030-01-03T00:00:00Z --name c
ok "alarms list --limit 2" alarms list --limit 2
expect_out "^Room:lobby +a " "the soonest alarm first"
expect_out "^Room:lobby +b " "the second"
CHECKS=$((CHECKS + 1))
[[ $(wc -l <"$OUT") == 3 ]] || fail "alarms list --limit 2 prints a header and 2 rows"

# ---------------------------------------------------------------- sql: unknown object, beside a running engine
ok "sql table" sql Room:lobby "CREATE TABLE t(a); INSERT INTO t VALUES (1), (2)"
c sql Room:lobyy "SELECT * FROM t"
expect_rc 1 "sql on a misspelled object"
expect_err "unknown object 'Room:lobyy'.*did you mean 'Room:lobby'\?" "sql names the unknown object"
hold_engine "$DIR" Room:holder
printf 'SELECT 1;\n' >&9
ok "SELECT beside a running engine" sql Room:lobby "SELECT sum(a) AS total FROM t"
expect_out "^ +3$" "the snapshot's rows"
ok "EXPLAIN beside a running engine" sql Room:lobby "EXPLAIN QUERY PLAN SELECT * FROM t"
ok "read-only pragma beside a running engine" sql Room:lobby "PRAGMA table_info(t)"
expect_out "^ +0 +a " "pragma rows"
printf 'SELECT count(*) FROM t;\n.tables\n' | "$CARREL" --dir "$DIR" sql Room:lobby >"$OUT" 2>"$ERR"
RC=$?
expect_rc 0 "a read-only script beside a running engine"
expect_out "^t$" ".tables on the snapshot"
for write in "INSERT INTO t VALUES (3)" "CREATE TABLE u(a)" "DELETE FROM t" "CREATE TEMP TABLE x(a)"; do
  c sql Room:lobby "$write"
  expect_rc 1 "'$write' beside a running engine"
  expect_err "only read-only statements .* open for writing by process $HOLDER_PID" \
    "'$write' refused naming the pid"
done
c sql Room:lobby "SELECT 1; INSERT INTO t VALUES (4)"
expect_rc 1 "a script that writes beside a running engine"
python3 "$HERE/tty_driver.py" repl "$CARREL" "$DIR" Room:lobby "$WORK/history-ro" >"$OUT" 2>"$ERR"
RC=$?
expect_rc 0 "the REPL beside a running engine (read-only)"
release_engine
ok "nothing was written beside the engine" sql Room:lobby "SELECT count(*) AS n FROM t"
expect_out "^ *2$" "still two rows"

# ---------------------------------------------------------------- counts beside a running engine
# A writer commits for 4 s; the CLI reads its records as stored at the last
# checkpoint plus the log tail after it (engine/history/tail.h), and verify
# checks every count against the data of the same snapshot.
if [[ -n "$BENCH" ]]; then
  "$BENCH" kv-write --engines carrel --objects 50 --clients 4 --value-bytes 100 \
    --durability nosync --seconds 4 --dir "$WORK/bench" >"$WORK/bench.out" 2>&1 &
  BENCH_PID=$!
  for _ in $(seq 1 1200); do  # up to 60 s on a loaded machine
    [[ "$(cat "$WORK/bench/writer.lock" 2>/dev/null)" == "$BENCH_PID" ]] && break
    sleep 0.05
  done
  sleep 1
  SAVED_DIR=$DIR
  DIR=$WORK/bench
  ok "verify beside a running engine" verify
  expect_out "^checked the engine: [0-9]+ objects" "verify's summary"
  ok "objects beside a running engine" --json objects --limit 1
  json_check "$OUT" "d['last_seq'] >= 1 and d['kv_keys'] >= 1" "a record with its commits"
  wait "$BENCH_PID"
  RC=$?
  expect_rc 0 "the writer beside the CLI"
  ok "verify after the writer closed" verify
  DIR=$SAVED_DIR
fi

# ---------------------------------------------------------------- the pager (a terminal 5 rows high)
for i in 1 2 3 4 5 6; do "$CARREL" --dir "$DIR" kv put "Page:p$i" k v >/dev/null; done
rm -f "$WORK/paged"
python3 "$HERE/tty_driver.py" pager "$CARREL" "$DIR" "$WORK/paged" >"$OUT" 2>"$ERR"
RC=$?
expect_rc 0 "objects on a terminal"
CHECKS=$((CHECKS + 1))
grep -q "Page" "$WORK/paged" 2>/dev/null || fail "long output on a terminal goes through the pager"
rm -f "$WORK/paged"
python3 "$HERE/tty_driver.py" pager "$CARREL" "$DIR" "$WORK/paged" --no-pager >"$OUT" 2>"$ERR"
RC=$?
expect_out "Page +p1" "--no-pager writes to the terminal"
CHECKS=$((CHECKS + 1))
[[ ! -e "$WORK/paged" ]] || fail "--no-pager starts no pager"
python3 "$HERE/tty_driver.py" pager "$CARREL" "$DIR" "$WORK/paged" --limit 2 >"$OUT" 2>"$ERR"
expect_out "ID +CLASS" "short output is written directly"
CHECKS=$((CHECKS + 1))
[[ ! -e "$WORK/paged" ]] || fail "output that fits the terminal starts no pager"
CARREL_PAGER="cat > '$WORK/paged'" "$CARREL" --dir "$DIR" objects >"$OUT" 2>"$ERR"
CHECKS=$((CHECKS + 1))
[[ ! -e "$WORK/paged" ]] || fail "no pager when stdout is not a terminal"

# ---------------------------------------------------------------- the REPL on a terminal
python3 "$HERE/tty_driver.py" repl "$CARREL" "$DIR" Room:lobby "$WORK/history" >"$OUT" 2>"$ERR"
RC=$?
expect_rc 0 "REPL: Ctrl-C drops the typed statement, history is kept, .quit leaves"
printf 'SELECT 40 + 2 AS x;\n.quit\nSELECT 1;\n' | "$CARREL" --dir "$DIR" sql Room:lobby >"$OUT" 2>"$ERR"
RC=$?
expect_rc 0 "a script from a pipe"
expect_out "^ *42$" "a script from a pipe runs"

# ---------------------------------------------------------------- errors name the input, the limit, the remedy
ok "stats" stats
expect_out "^lmdb .*, 1 reader slot used " "one reader slot, singular"
printf '.help\n' | "$CARREL" --dir "$DIR" sql Room:lobby >"$OUT" 2>"$ERR"
RC=$?
expect_out "the statements of the script \(or QUERY\) run as one turn" ".help in a piped script says one turn"
expect_no_out "each runs" ".help in a piped script does not speak of a turn per statement"
SAVED_DIR=$DIR
DIR=$WORK/missing
c objects
expect_rc 1 "a missing directory"
expect_err "engine directory '$DIR' does not exist; make one with .carrel --dir $DIR init." \
  "a missing directory suggests init"
: >"$WORK/afile"
DIR=$WORK/afile
c objects
expect_err "'$DIR' is a file, not an engine directory; --dir" "a file where a directory is expected"
expect_no_err "Not a directory" "no raw errno text for a file as --dir"
c init
expect_err "'$DIR' is a file; init makes an engine in a new or empty directory" "init on a file"
mkdir -p "$WORK/nodata"
DIR=$WORK/nodata
: >"$WORK/nodata/other"
c objects
expect_err "is not a carrel engine directory \(it has no data.mdb\); .carrel --dir $DIR init." \
  "a directory without data.mdb suggests init"
c init
expect_err "exists and is not an empty directory; init makes an engine only in a new or empty directory" \
  "init in a non-empty directory says what to do"
DIR=$SAVED_DIR
c init
expect_err "already holds a carrel engine; use it as it is \(.carrel --dir $DIR objects.\)" \
  "init on an engine says what to do instead"
mkdir -p "$WORK/full" && : >"$WORK/full/x"
c backup "$WORK/full"
expect_err "exists and is not an empty directory; name a new or empty directory" \
  "backup into a non-empty directory says what to do"
c show 0123456789abcdef0123456789abcdef00
expect_err "is not an object id: it has 34 hex digits; an id is 32 hex digits" "an id too long names its length"
c show 'Room:#01x'
expect_err "is not an object id: 'x' is not a hex digit" "an id with a non-hex digit names it"
RANGE="from 0 \(1970-01-01T00:00:00Z\) to 253402300799999 \(9999-12-31T23:59:59.999Z\)"
for t in 253402300800000 99999999999999999999 -5 9999-12-31T23:59:59-01:00; do
  c bookmark Room:lobby --at "$t"
  expect_rc 1 "--at $t"
  expect_err "time '$t' is out of range.*; expected RFC 3339 .* or epoch milliseconds, $RANGE" \
    "--at $t gives the accepted range"
done
c alarms set Room:lobby 253402300800000
expect_err "time '253402300800000' is out of range.*$RANGE" "an epoch WHEN past the range gives the range"
for when in +99999999999d +9999999999999999999999999d; do
  c alarms set Room:lobby "$when"
  expect_rc 1 "alarms set $when"
  expect_err "time '\\$when' reaches past 9999-12-31T23:59:59.999Z, the latest time; from now the offset is at most \+[0-9]+d" \
    "a huge offset gives the largest"
done
c alarms set Room:lobby tomorrow
expect_err "time 'tomorrow' is not a valid time; expected RFC 3339 .*, epoch milliseconds, .now., or \+N with unit ms, s, m, h or d" \
  "an unknown WHEN lists the accepted forms"
c restore Room:lobby "ffffffffffffffff-0000000000000001-$(printf '0%.0s' $(seq 1 32))"
expect_err "has time ffffffffffffffff, out of range: a bookmark's time .* is at most 7fffffffffffffff" \
  "a bookmark time out of range gives the range"
"$CARREL" --dir "$DIR" kv put Room:other k v >/dev/null
c restore Room:lobby "$("$CARREL" --dir "$DIR" bookmark Room:other)"
expect_rc 1 "restore with another object's bookmark"
expect_err "belongs to object Room:other, not Room:lobby; .carrel history Room:lobby. lists" \
  "another object's bookmark is named by its label"

echo "$CHECKS checks, $FAILURES failures"
[[ "$FAILURES" == 0 ]]
