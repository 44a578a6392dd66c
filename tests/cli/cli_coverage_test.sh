#!/usr/bin/env bash
# The carrel CLI's documented behaviour that cli_test.sh leaves out
# (docs/cli.md): $CARREL_DIR, `kv list --start`, keys starting with '-', the
# REPL with .help/.quit, WHEN forms (now, +N), `alarms delete` of the single
# alarm, `alarms list --dead` with real dead letters, export to stdout and
# import from stdin, and names that are not UTF-8.
#
# Usage: cli_coverage_test.sh PATH/TO/carrel PATH/TO/carrel-test-dead-letters
set -u
CARREL=${1:?usage: cli_coverage_test.sh PATH/TO/carrel PATH/TO/carrel-test-dead-letters}
DEAD_LETTERS=${2:?usage: cli_coverage_test.sh PATH/TO/carrel PATH/TO/carrel-test-dead-letters}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/carrel-cli-coverage.XXXXXX")
DIR=$WORK/engine
trap 'rm -rf "$WORK"' EXIT

# shellcheck source=tests/cli/expect.sh
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"

# json_number FIELD: the value of "FIELD":<number> on the last output's first line.
json_number() { sed -n "1s/.*\"$1\":\([0-9-]*\).*/\1/p" "$OUT"; }
now_ms() { date +%s%3N; }

# ------------------------------------------------- real dead letters (also inits DIR)
"$DEAD_LETTERS" "$DIR" >"$OUT" 2>"$ERR"
RC=$?
expect_rc 0 "carrel-test-dead-letters made a dead letter"
ok "alarms list --dead" alarms list --dead
expect_out "^Flaky:f +job .*flaky: failed on purpose" "the dead letter is listed with its error"
expect_no_out "no dead letters" "--dead with a dead letter"
ok "--json alarms list --dead" --json alarms list --dead
expect_out '"object":"Flaky:f".*"name":"job".*"payload":"p".*"failed_ms":[0-9]+.*"last_error":"[^"]*flaky: failed on purpose"' \
  "the JSON dead letter has its payload, failure time and last error"
ok "alarms list (live) after the alarm died" alarms list Flaky:f
expect_no_out "job" "a dead entry is no longer scheduled"
ok "show counts the dead letter" show Flaky:f
expect_out "0 scheduled, 1 dead letters?$" "show counts the dead letter"

# ------------------------------------------------- $CARREL_DIR
CARREL_DIR=$DIR "$CARREL" objects >"$OUT" 2>"$ERR" </dev/null
RC=$?
expect_rc 0 "objects with \$CARREL_DIR and no --dir"
expect_out "Flaky +f" "\$CARREL_DIR names the directory"
CARREL_DIR=$WORK/nowhere "$CARREL" --dir "$DIR" objects >"$OUT" 2>"$ERR" </dev/null
RC=$?
expect_rc 0 "--dir overrides \$CARREL_DIR"
expect_out "Flaky +f" "--dir wins over \$CARREL_DIR"
CARREL_DIR=$WORK/nowhere "$CARREL" objects >"$OUT" 2>"$ERR" </dev/null
RC=$?
expect_rc 1 "\$CARREL_DIR naming a missing directory"
expect_err "$WORK/nowhere" "the error names \$CARREL_DIR's directory"

# ------------------------------------------------- kv list --start, keys starting with '-'
for k in a b c d; do ok "kv put $k" kv put Room:keys "$k" "v$k"; done
ok "kv list --start" kv list Room:keys --start b
expect_no_out "^a " "--start excludes keys before it"
expect_out "^b +vb" "--start is inclusive"
expect_out "^d +vd" "--start runs to the end"
ok "kv list --start --end" --json kv list Room:keys --start b --end d
CHECKS=$((CHECKS + 1))
[[ "$(grep -c '"key"' "$OUT")" == 2 ]] || fail "--start b --end d lists exactly b and c"
ok "kv put -- -k" kv put Room:keys -- -k dash
ok "kv get -- -k" kv get Room:keys -- -k
expect_out "^dash$" "a key starting with '-' reads back after --"
c kv get Room:keys -k
expect_rc 2 "kv get with -k as an option is a usage error"

# ------------------------------------------------- the REPL (stdin a terminal, via script(1))
printf '%s\n' 'CREATE TABLE r(a);' '.help' 'INSERT INTO r' ' VALUES (1);' 'SELECT * FROM nope;' \
  '.quit' 'INSERT INTO r VALUES (2);' |
  timeout 60 script -qec "'$CARREL' --dir '$DIR' sql Room:repl" /dev/null >"$OUT" 2>"$ERR"
RC=$?
expect_rc 0 "the REPL exits 0 at .quit"
expect_out "carrel> " "the REPL prompts"
expect_out '\.quit +leave' ".help lists the dot commands"
expect_out "Statements end with ';'; each runs as its own turn \(one commit\)" \
  ".help in the REPL says each statement is a turn"
CHECKS=$((CHECKS + 1))  # the continuation prompt, then the statement's result
tr -d '\r' <"$OUT" | grep -A1 -E '\.\.\.> ' | grep -Eq 'ok \(1 row changed\)' ||
  fail "a statement spans lines until ';'"
expect_out "error: .*no such table: nope" "an error is shown and the REPL goes on"
ok "the REPL's statements committed one by one" sql Room:repl "SELECT count(*) AS n FROM r"
expect_out "^ *1$" "the insert before the error committed; nothing after .quit ran"

# ------------------------------------------------- WHEN forms
before=$(now_ms)
ok "alarms set now" alarms set Room:when now
after=$(now_ms)
ok "alarms set +10m" alarms set Room:when +10m --name ten
ok "alarms set +2h" alarms set Room:when +2h --name two
ok "alarms set +1d" alarms set Room:when +1d --name day
ok "alarms set +1500ms" alarms set Room:when +1500ms --name ms
ok "alarms set +30s" alarms set Room:when +30s --name sec
late=$(now_ms)
# expect_due NAME OFFSET_MS: the entry is due OFFSET_MS after a time within the run.
expect_due() {
  "$CARREL" --dir "$DIR" --json alarms list Room:when 2>"$ERR" </dev/null |
    grep "\"name\":\"$1\"" >"$OUT"
  local due
  due=$(json_number due_ms)
  CHECKS=$((CHECKS + 1))
  [[ -n "$due" && "$due" -ge $((before + $2)) && "$due" -le $((late + $2)) ]] ||
    fail "alarm '$1' due $due, expected $2 ms after a time in [$before, $late]"
}
expect_due "" 0
CHECKS=$((CHECKS + 1))
due=$(
  "$CARREL" --dir "$DIR" --json alarms list Room:when </dev/null | grep '"name":""' |
    sed -n 's/.*"due_ms":\([0-9]*\).*/\1/p'
)
[[ -n "$due" && "$due" -le "$after" ]] || fail "'now' is due by the time the command returned"
expect_due ten 600000
expect_due two 7200000
expect_due day 86400000
expect_due ms 1500
expect_due sec 30000
c alarms set Room:when +5x --name bad
expect_rc 1 "an unknown unit is refused"
expect_err "\+5x" "the refusal names the input"
c alarms set Room:when soon --name bad
expect_rc 1 "a word that is no WHEN is refused"

# ------------------------------------------------- alarms delete of the single alarm
ok "alarms delete (the single alarm)" alarms delete Room:when
ok "alarms list after deleting the single alarm" --json alarms list Room:when
expect_no_out '"name":""' "the single alarm is gone"
expect_out '"name":"ten"' "named alarms stay"
c alarms delete Room:when
expect_rc 1 "deleting the single alarm again"
expect_err "single alarm" "the error names the single alarm"

# ------------------------------------------------- export to stdout, import from stdin
ok "kv put a binary value" kv put Room:src raw "$(printf 'x\ty')"
ok "sql in the source" sql Room:src "CREATE TABLE t(a); INSERT INTO t VALUES (42)"
ok "export to stdout" export Room:src
cp "$OUT" "$WORK/src.ndjson"
expect_out '^\{"carrel_export":1' "stdout holds the export's header line"
"$CARREL" --dir "$DIR" import Room:dst <"$WORK/src.ndjson" >"$OUT" 2>"$ERR"
RC=$?
expect_rc 0 "import from stdin"
expect_out "imported into Room:dst" "import from stdin reports"
ok "the import's SQL" sql Room:dst "SELECT a FROM t"
expect_out "^ *42$" "the imported SQL row"
ok "the import's KV" kv get Room:dst raw --raw
CHECKS=$((CHECKS + 1))
[[ "$(cat "$OUT")" == "$(printf 'x\ty')" ]] || fail "the imported KV value is byte-exact"
ok "export the copy to stdout" export Room:dst
CHECKS=$((CHECKS + 1))
# The copy exports the same state (header lines name the object and differ).
diff <(grep -v carrel_export "$WORK/src.ndjson") <(grep -v carrel_export "$OUT") >/dev/null ||
  fail "the imported object exports the same state"
"$CARREL" --dir "$DIR" import Room:empty </dev/null >"$OUT" 2>"$ERR"
RC=$?
expect_rc 1 "import of an empty stdin"

# ------------------------------------------------- names that are not UTF-8
OBJ=$'Room:\xff\x01'
KEY=$'\xfek'
ok "kv put with non-UTF-8 object name, key and value" kv put "$OBJ" "$KEY" $'v\xff'
expect_out 'Room:\\xff\\x01' "the put message escapes the object name"
ok "objects escapes a non-UTF-8 name" objects
expect_out 'Room +\\xff\\x01 ' "the NAME column is escaped"
ok "kv list escapes a non-UTF-8 key and value" kv list "$OBJ"
expect_out '^\\xfek +v\\xff +2$' "key and value are escaped"
ok "kv get --raw gives the exact bytes" kv get "$OBJ" "$KEY" --raw
CHECKS=$((CHECKS + 1))
[[ "$(od -An -tx1 "$OUT" | tr -d ' \n')" == "76ff" ]] || fail "--raw prints the bytes 76 ff"
ok "--json kv list" --json kv list "$OBJ"
expect_out '"key":"/ms=","key_encoding":"base64"' "a non-UTF-8 key is base64 in JSON"
expect_out '"value":"dv8=","value_encoding":"base64"' "a non-UTF-8 value is base64 in JSON"
ok "show with a non-UTF-8 name" show "$OBJ"
expect_out 'object +Room:\\xff\\x01' "show escapes the name"
# In --json output a name that is not UTF-8 is base64 with a "<field>_encoding"
# companion (docs/cli.md, Output conventions), never U+FFFD.
ok "--json objects with a non-UTF-8 name" --json objects --class Room
expect_out '"name":"/wE=","name_encoding":"base64"' "a non-UTF-8 object name is base64 in JSON"
expect_no_out $'\xef\xbf\xbd|\\\\ufffd' "no U+FFFD replaces the name's bytes"

echo "$CHECKS checks, $FAILURES failures"
[[ "$FAILURES" == 0 ]]
