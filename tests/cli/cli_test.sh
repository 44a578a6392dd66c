#!/usr/bin/env bash
# End-to-end tests of the carrel CLI: prepares an engine directory with the CLI
# itself, checks every command's human and JSON output, every error path's
# exit code (1 for errors, 2 for usage), and read-only inspection beside a
# process that holds the engine open for writing.
#
# Usage: cli_test.sh PATH/TO/carrel
set -u
CARREL=${1:?usage: cli_test.sh PATH/TO/carrel}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/carrel-cli-test.XXXXXX")
DIR=$WORK/engine

# shellcheck source=tests/cli/expect.sh
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"
trap cleanup EXIT

# ---------------------------------------------------------------- errors before init
c objects
expect_rc 1 "objects on a missing directory"
expect_err "engine directory '$DIR' does not exist" "missing directory is named"

# ---------------------------------------------------------------- prepare
ok "init" init
expect_out "initialized an empty engine in $DIR" "init message"
c init
expect_rc 1 "init twice"
expect_err "already holds a carrel engine" "init twice message"

ok "objects on an empty engine" objects
expect_out "no objects" "empty objects"

ok "kv put" kv put Room:lobby greeting hello
expect_out "put 'greeting' \(5 bytes\) in Room:lobby; bookmark [0-9a-f]{16}-0000000000000001-" "kv put message"
ok "kv put 2" kv put Room:lobby topic "a b c"
printf 'bin\x00\xff\x01' >"$WORK/bin"
ok "kv put from file" kv put Room:lobby blob --value-file "$WORK/bin"
c_in "from stdin" kv put Room:lobby piped --value-file -
expect_rc 0 "kv put from stdin"
ok "kv put other object" kv put Room:attic a 1

ok "sql create" sql Room:lobby "CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT, score REAL)"
ok "sql insert" sql Room:lobby "INSERT INTO people(name, score) VALUES ('ada', 9.5), ('bob', 7); INSERT INTO people(name, score) VALUES ('cy', NULL)"
c_in "SELECT count(*) AS n FROM people;
SELECT name FROM people
  WHERE score > 8;
" sql Room:lobby
expect_rc 0 "sql script from stdin"
expect_out "^ *3$" "script: first statement's rows"
expect_out "^ada" "script: second statement's rows"

ok "alarms set single" alarms set Room:lobby 2099-01-01T00:00:00Z --payload wake
ok "alarms set named every" alarms set Room:lobby +1d --name tick --every 60000
ok "alarms set named cron" alarms set Room:lobby 2099-06-01T00:00:00Z --name nightly --cron "0 3 * * *"
expect_out "set alarm 'nightly' of Room:lobby for 2099-06-01T00:00:00.000Z" "alarm set message"

# ---------------------------------------------------------------- objects / show
ok "objects" objects
expect_out "Room +lobby +4 " "objects row of lobby"
expect_out "Room +attic +1 " "objects row of attic"
ok "objects --json" --json objects
expect_out '"class":"Room","name":"lobby".*"kv_keys":4' "objects json"
ok "objects --limit" objects --limit 1
CHECKS=$((CHECKS + 1))
[[ $(wc -l <"$OUT") == 2 ]] || fail "objects --limit 1 shows one row"
ok "objects --class" objects --class Nope
expect_out "no objects of class Nope" "objects --class filter"

LOBBY_ID=$("$CARREL" --dir "$DIR" --json show Room:lobby | sed -E 's/.*"id":"([0-9a-f]{32})".*/\1/')
ok "show" show Room:lobby
expect_out "^id +$LOBBY_ID" "show id"
expect_out "^kv +4 keys" "show kv"
expect_out "^alarms +3 scheduled, 0 dead letters" "show alarms"
expect_out "^sql +[1-9][0-9]* pages" "show sql"
ok "show by bare id" show "$LOBBY_ID"
expect_out "^object +Room:lobby" "bare id resolves class and name"
ok "show by class:id" show "Room:$LOBBY_ID"
ok "show json" --json show Room:lobby
expect_out '"last_seq":[0-9]+' "show json last_seq"

# ---------------------------------------------------------------- kv get / list
ok "kv get" kv get Room:lobby greeting
expect_out "^hello$" "kv get value"
ok "kv get --json" kv get Room:lobby greeting --json
expect_out '^\{"object":"Room:lobby","id":"[0-9a-f]{32}","key":"greeting","value":"hello","bytes":5\}$' "kv get json"
ok "kv get binary" kv get Room:lobby blob
expect_out '^bin\\x00\\xff\\x01$' "binary value escaped"
ok "kv get binary json" --json kv get Room:lobby blob
expect_out '"value":"YmluAP8B","value_encoding":"base64"' "binary value base64"
ok "kv get --raw" kv get Room:lobby blob --raw
CHECKS=$((CHECKS + 1))
cmp -s "$OUT" "$WORK/bin" || fail "kv get --raw writes the exact bytes"
ok "kv list" kv list Room:lobby
expect_out "^blob +bin\\\\x00" "kv list has blob"
expect_out "^topic +a b c +5$" "kv list has topic"
ok "kv list json" --json kv list Room:lobby
CHECKS=$((CHECKS + 1))
[[ $(wc -l <"$OUT") == 4 ]] || fail "kv list json is NDJSON, 4 lines"
expect_out '^\{"key":"greeting","value":"hello","bytes":5\}$' "kv list json line"
ok "kv list --prefix" --json kv list Room:lobby --prefix p
CHECKS=$((CHECKS + 1))
[[ $(wc -l <"$OUT") == 1 ]] && grep -q '"key":"piped"' "$OUT" || fail "kv list --prefix p gives piped only"
ok "kv list --reverse --limit" --json kv list Room:lobby --reverse --limit 2
CHECKS=$((CHECKS + 1))
[[ $(head -1 "$OUT") == *'"key":"topic"'* && $(wc -l <"$OUT") == 2 ]] || fail "kv list reverse starts at topic, 2 lines"
ok "kv list --start-after --end" --json kv list Room:lobby --start-after blob --end topic
CHECKS=$((CHECKS + 1))
[[ $(cut -c1-20 "$OUT" | tr '\n' ' ') == *greeting*piped* && $(wc -l <"$OUT") == 2 ]] || fail "kv list range (blob, topic)"
ok "kv list --reverse --end" --json kv list Room:lobby --reverse --end piped
CHECKS=$((CHECKS + 1))
[[ $(head -1 "$OUT") == *'"key":"greeting"'* && $(wc -l <"$OUT") == 2 ]] || fail "kv list reverse below piped"

# ---------------------------------------------------------------- sql output
ok "sql select" sql Room:lobby "SELECT id, name, score FROM people ORDER BY id"
expect_out "^id +name +score$" "sql header"
expect_out "^ *1 +ada +9.5$" "sql row aligned"
expect_out "^ *3 +cy +NULL$" "sql null"
expect_out "^\(3 rows\)$" "sql row count"
ok "sql select json" --json sql Room:lobby "SELECT name, score FROM people ORDER BY id"
expect_out '^\{"columns":\["name","score"\],"rows":\[\["ada",9.5\],\["bob",7\],\["cy",null\]\]' "sql json"
ok "sql blob json" --json sql Room:lobby "SELECT x'00ff' AS b"
expect_out '"rows":\[\[\{"base64":"AP8="\}\]\]' "sql blob as base64"
c_in ".tables
.schema people
" sql Room:lobby
expect_rc 0 "dot commands in a script"
expect_out "^people$" ".tables"
expect_out "^CREATE TABLE people" ".schema"
# A failing script keeps the statement's error code (not a bare "Error").
c_in "SELECT 1;
SELECT * FROM no_such_table;
" --json sql Room:lobby
expect_rc 1 "a failing script"
expect_err '"code":"InvalidArgument".*no such table: no_such_table.*statement at line 2' "script error keeps its code"

# ---------------------------------------------------------------- alarms
ok "alarms list" alarms list Room:lobby
expect_out "^Room:lobby +\(single\) +2099-01-01T00:00:00.000Z +- +0 +wake$" "single alarm row"
expect_out "tick .* every 60000 ms" "every alarm row"
expect_out "nightly .* cron 0 3 \* \* \*" "cron alarm row"
ok "alarms list all objects" alarms list
expect_out "nightly" "alarms list without OBJ"
ok "alarms list json" --json alarms list Room:lobby
expect_out '"name":"nightly","due_ms":4083955200000,.*"repeat":\{"kind":"cron","cron":"0 3 \* \* \*"\}' "alarm json"
ok "alarms list --dead" alarms list --dead
expect_out "no dead letters" "no dead letters"
ok "alarms delete named" alarms delete Room:lobby --name tick
c alarms delete Room:lobby --name tick
expect_rc 1 "delete a missing alarm"
expect_err "Room:lobby has no alarm 'tick'" "missing alarm named"

# ---------------------------------------------------------------- history / bookmark / restore
ok "history" history Room:lobby
expect_out "^ *[0-9]+ +20[0-9-]+T[0-9:.]+Z +[0-9a-f]{16}-[0-9a-f]{16}-$LOBBY_ID +" "history row"
expect_out "kv: greeting$" "history says what changed"
expect_out "sql: [0-9]+ pages$" "history shows sql pages"
ok "history json" --json history Room:lobby --limit 2
CHECKS=$((CHECKS + 1))
[[ $(wc -l <"$OUT") == 2 ]] || fail "history --limit 2 gives 2 NDJSON lines"
expect_out '"alarms":\["tick"\]' "history json names the alarm change"

# The bookmark after the two first puts, then change things and restore.
BM_TWO=$("$CARREL" --dir "$DIR" --json history Room:lobby | grep '"seq":2,' | sed -E 's/.*"bookmark":"([^"]+)".*/\1/')
ok "bookmark" bookmark Room:lobby
expect_out "^[0-9a-f]{16}-[0-9a-f]{16}-$LOBBY_ID$" "current bookmark"
ok "bookmark --at now" bookmark Room:lobby --at "$(date -u +%Y-%m-%dT%H:%M:%SZ -d '+1 hour')"
ok "bookmark --at epoch" bookmark Room:lobby --at 1
expect_out "^0000000000000000-0000000000000000-$LOBBY_ID$" "bookmark before the first commit"
ok "restore" restore Room:lobby "$BM_TWO"
expect_out "^restored Room:lobby to $BM_TWO$" "restore message"
expect_out "^to undo this restore: carrel restore Room:lobby [0-9a-f-]{66}$" "restore prints its undo bookmark"
UNDO=$(sed -nE 's/^to undo this restore: carrel restore Room:lobby (.*)$/\1/p' "$OUT")
ok "kv list after restore" --json kv list Room:lobby
CHECKS=$((CHECKS + 1))
[[ $(wc -l <"$OUT") == 2 ]] || fail "restore to seq 2 leaves 2 keys"
ok "alarms after restore" alarms list Room:lobby
expect_out "no alarms" "restore removed the alarms"
ok "undo the restore" --json restore Room:lobby "$UNDO"
expect_out '"undo_bookmark":"[0-9a-f-]{66}"' "restore json"
ok "kv list after undo" --json kv list Room:lobby
CHECKS=$((CHECKS + 1))
[[ $(wc -l <"$OUT") == 4 ]] || fail "undoing the restore brings back 4 keys"

# ---------------------------------------------------------------- kv delete
ok "kv delete" kv delete Room:lobby topic
c kv get Room:lobby topic
expect_rc 1 "kv get of a deleted key"
expect_err "key 'topic' not found in object Room:lobby" "missing key named"
c kv delete Room:lobby topic
expect_rc 1 "kv delete of a missing key"

# ---------------------------------------------------------------- stats / verify / backup
ok "stats" stats
expect_out "^objects +2$" "stats objects"
expect_out "^kv +4 keys" "stats kv keys"
expect_out "^file +[0-9.]+ (B|KiB|MiB) data.mdb" "stats file size"
ok "stats json" --json stats
expect_out '"objects":2,"kv_keys":4' "stats json"
expect_out '"databases":\{"objects":\{"entries":2' "stats json databases"
# The file holds every page LMDB uses (and may run on past them).
USED=$(grep -o '"used_bytes":[0-9]*' "$OUT" | cut -d: -f2)
FILE=$(grep -o '"file_bytes":[0-9]*' "$OUT" | cut -d: -f2)
[[ -n $USED && -n $FILE ]] && ((FILE >= USED)) || fail "stats json: file_bytes '$FILE' below used_bytes '$USED'"
ok "verify" verify
expect_out "^checked the engine: 2 objects, 1 SQL database," "verify counts"
expect_out "^no problems found$" "verify clean"
ok "verify one object json" --json verify Room:lobby
expect_out '"ok":true,"objects_checked":1,"sql_checked":1' "verify json"
ok "backup" backup "$WORK/backup"
expect_out "^backed up $DIR to $WORK/backup" "backup message"
"$CARREL" --dir "$WORK/backup" kv get Room:lobby greeting >"$OUT" 2>"$ERR"
RC=$?
expect_rc 0 "backup is readable"
expect_out "^hello$" "backup holds the data"
c backup "$WORK/backup"
expect_rc 1 "backup into a non-empty directory"
expect_err "is not an empty directory" "backup destination named"

# verify finds damage: on a backup copy, add (with lmdb-utils' mdb_load) a kv
# key the object record does not count, a timetable entry without an alarm,
# and a garbage SQL page; neither value carries a checksum.
if command -v mdb_load >/dev/null; then
  hex() { printf '%s' "$1" | sed 's/../\\&/g'; }
  DAMAGED=$WORK/backup
  # The object's keys start with its number, 8 bytes big-endian (docs/architecture.md).
  LOBBY_NO=$("$CARREL" --dir "$DIR" --json show Room:lobby | sed -E 's/.*"number":([0-9]+).*/\1/')
  LOBBY_PREFIX=$(printf '%016x' "$LOBBY_NO")
  printf '%szzz\nstray\n' "$(hex "$LOBBY_PREFIX")" | mdb_load -T -s kv "$DAMAGED"
  printf '\\00\\00\\00\\00\\00\\00\\00\\01%sghost\n\n' "$(hex "$LOBBY_ID")" |
    mdb_load -T -s schedule "$DAMAGED"
  printf '%s\\00\\00\\00\\01\n%s\n' "$(hex "$LOBBY_PREFIX")" "$(printf '\\ab%.0s' $(seq 1 1024))" |
    mdb_load -T -s pages "$DAMAGED"
  "$CARREL" --dir "$DAMAGED" verify >"$OUT" 2>"$ERR"
  RC=$?
  expect_rc 1 "verify of a damaged copy"
  expect_out "kv_keys is 3 in the record but 4 in the data" "verify: record vs kv"
  expect_out "alarm 'ghost' of Room:lobby .* matches no alarm" "verify: timetable vs alarms"
  expect_out "Room:lobby: KV key 'zzz' of object number $LOBBY_NO is 5 bytes, too short to hold its checksum" \
    "verify: kv value without a checksum"
  expect_out "Room:lobby: SQL page 1 of object number $LOBBY_NO fails its checksum" \
    "verify: page checksum"
  expect_out "sql Room:lobby: integrity_check failed: .*SQL page 1 of object" "verify: SQL integrity"
  expect_out "^6 problems found$" \
    "verify counts problems (2 checksums, kv_keys, kv_bytes, timetable, sql)"
  "$CARREL" --dir "$DAMAGED" --json verify Room:attic >"$OUT" 2>"$ERR"
  RC=$?
  expect_rc 0 "verify of an undamaged object in the damaged copy"
  expect_out '"ok":true' "verify OBJ checks that object only"
else
  echo "note: mdb_load not found; skipping the damaged-copy checks of verify"
fi

# ---------------------------------------------------------------- error paths
c show Room:nobody
expect_rc 1 "unknown object"
expect_err "unknown object 'Room:nobody'" "unknown object named"
c show Hall:lobby
expect_rc 1 "unknown object in another class"
c show "Hall:$LOBBY_ID"
expect_rc 1 "id of another class"
expect_err "belongs to class 'Room'" "wrong class named"
c show nothex
expect_rc 1 "malformed id"
expect_err "object 'nothex' is not an object id" "malformed id named"
c show 0123456789abcdef0123456789abcdef
expect_rc 1 "unknown bare id"
c restore Room:lobby not-a-bookmark
expect_rc 1 "malformed bookmark"
expect_err "bookmark 'not-a-bookmark'" "malformed bookmark named"
c restore Room:lobby "0000000000000001-0000000000000001-0123456789abcdef0123456789abcdef"
expect_rc 1 "bookmark of another object"
expect_err "belongs to object" "foreign bookmark named"
c bookmark Room:lobby --at yesterday
expect_rc 1 "malformed time"
expect_err "time 'yesterday'" "malformed time named"
c bookmark Room:lobby --at 2024-02-30T00:00:00Z
expect_rc 1 "nonexistent day"
c alarms set Room:lobby now --cron "61 * * * *"
expect_rc 1 "malformed cron"
expect_err "cron '61 \* \* \* \*'" "malformed cron named"
c alarms set Room:lobby soon
expect_rc 1 "malformed WHEN"
c kv put Room:lobby k
expect_rc 2 "usage: kv put without a value"
expect_err "VALUE or --value-file" "kv put usage names the value"
c kv put Room:lobby k --value-file "$WORK/no-such-file"
expect_rc 1 "kv put from a missing file"
expect_err "no-such-file" "missing value file named"
c sql Room:lobby "SELECT * FROM nosuchtable"
expect_rc 1 "sql error"
expect_err "nosuchtable" "sql error names the table"
c sql Room:lobby "INSERT INTO people(name) VALUES ('dan'); SELECT * FROM nosuchtable"
expect_rc 1 "failing one-shot sql"
ok "failed sql changed nothing" sql Room:lobby "SELECT count(*) FROM people"
expect_out "^ *3$" "no row from the failed turn"
c sql Room:lobby "BEGIN"
expect_rc 1 "refused sql"
c export
expect_rc 2 "usage: export needs OBJ"
c kv get Room:lobby
expect_rc 2 "usage: missing KEY"
expect_err "KEY is required" "usage error names the argument"
expect_err "Usage:" "usage error shows help"
c frobnicate
expect_rc 2 "usage: unknown command"
c objects --limit 0
expect_rc 2 "usage: --limit 0"
c kv list Room:lobby --start a --start-after b
expect_rc 2 "usage: --start with --start-after"
c alarms set Room:lobby now --every 5 --cron "* * * * *"
expect_rc 2 "usage: --every with --cron"
c --help
expect_rc 0 "--help"
expect_out "Subcommands:" "help lists commands"
# Nothing changed by all those errors:
ok "verify after errors" verify
ok "objects after errors" --json objects
CHECKS=$((CHECKS + 1))
[[ $(wc -l <"$OUT") == 2 ]] || fail "errors created no object"

# export / import round trip (docs/export-format.md)
c export Room:lobby -o "$WORK/lobby.ndjson"
expect_rc 0 "export to a file"
c import Room:copy -i "$WORK/lobby.ndjson"
expect_rc 0 "import into an empty object"
expect_out "imported into Room:copy" "import message"
c kv get Room:copy greeting
expect_out "^hello" "imported KV value"
c import Room:copy -i "$WORK/lobby.ndjson"
expect_rc 1 "import into a non-empty object"
expect_err "empty" "non-empty import refusal names the rule"
expect_no_err ": import:" "the import prefix is printed once"
# An export cut inside its last line, and a file that is no export at all.
head -c $(($(stat -c %s "$WORK/lobby.ndjson") - 5)) "$WORK/lobby.ndjson" >"$WORK/cut.ndjson"
c import Room:cut -i "$WORK/cut.ndjson"
expect_rc 1 "import of an export cut inside a line"
expect_err "import file '.*cut.ndjson' ends inside line [0-9]+, which is not whole \(truncated export\?\)" \
  "a cut line is named as a truncated export"
printf 'hello\n' >"$WORK/hello.txt"
c import Room:cut -i "$WORK/hello.txt"
expect_rc 1 "import of a file that is not an export"
expect_err "import file '.*hello.txt' is not a carrel export: line 1 is not a JSON object" \
  "a file that is not an export is named as such"
printf '{"name":"x"}\n' >"$WORK/other.json"
c import Room:cut -i "$WORK/other.json"
expect_err "import file '.*other.json' is not a carrel export: line 1 lacks the \"carrel_export\" field" \
  "a JSON file without the export header is named as such"
printf '{"carrel_export":1}\nnot json\n' > "$WORK/bad.ndjson"
c import Room:bad -i "$WORK/bad.ndjson"
expect_rc 1 "import of malformed input"
expect_err "line [12]" "malformed import names the line"

# ---------------------------------------------------------------- beside a running engine
# A writer holds the engine open (hold_engine, expect.sh).
hold_engine "$DIR" Room:lobby
printf 'SELECT 41 + 1 AS answer;\n' >&9
c kv put Room:lobby k v
expect_rc 1 "kv put beside a running engine"
expect_err "is open for writing by process $HOLDER_PID" "busy error names the pid"
ok "objects beside a running engine" objects
expect_out "Room +lobby" "objects reads beside a writer"
ok "kv get beside a running engine" kv get Room:lobby greeting
expect_out "^hello$" "kv get beside a writer"
ok "verify beside a running engine" verify
expect_out "no problems found" "verify beside a writer"
ok "backup beside a running engine" backup "$WORK/backup2"
ok "export beside a running engine" export Room:lobby -o "$WORK/beside.ndjson"
CHECKS=$((CHECKS + 1))
head -1 "$WORK/beside.ndjson" | grep -q '"carrel_export":1' || fail "export beside a running engine wrote no export"
ok "read-only sql beside a running engine" sql Room:lobby "SELECT 1"
c sql Room:lobby "CREATE TABLE beside(a)"
expect_rc 1 "writing sql beside a running engine"
expect_err "open for writing by process $HOLDER_PID" "refused sql write names the pid"
release_engine
CHECKS=$((CHECKS + 1))
[[ "$HOLDER_RC" == 0 ]] && grep -q "42" "$WORK/holder.out" || {
  RC=$HOLDER_RC
  fail "the holder ran its script: $(cat "$WORK/holder.out")"
}
ok "kv put after the holder left" kv put Room:lobby k v

# ---------------------------------------------------------------- export | import on one directory
# export reads a snapshot, so it runs beside the import that holds the engine.
"$CARREL" --dir "$DIR" export Room:lobby | "$CARREL" --dir "$DIR" import Room:piped >"$OUT" 2>"$ERR"
RC=$?
expect_rc 0 "export | import on one directory"
ok "the piped copy reads" kv get Room:piped greeting
expect_out "^hello" "the piped copy's value"
"$CARREL" --dir "$DIR" export Room:nobody 2>/dev/null | "$CARREL" --dir "$DIR" import Room:piped2 >"$OUT" 2>"$ERR"
RC=$?
expect_rc 1 "import from a failed export"
expect_err "import Room:piped2: stdin is empty \(the command writing into the pipe wrote nothing: when it is .carrel export., it failed" \
  "an empty pipe says the producer failed"

echo "$CHECKS checks, $FAILURES failures"
[[ "$FAILURES" == 0 ]]
