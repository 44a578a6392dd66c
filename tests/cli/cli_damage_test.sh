#!/usr/bin/env bash
# The carrel CLI against damaged files and operator mistakes
# (docs/reliability.md, "Damaged files and operator mistakes").
#
# usage: tests/cli/cli_damage_test.sh PATH/TO/carrel
#
# Every rule below is one `check`: a command that must exit with a given code,
# never die of a signal (exit code > 128) or hang (each run is bounded by
# `timeout`), and print its error on stderr. Damage is deterministic (fixed
# offsets and a fixed seed), so a failure reproduces.
set -u
CARREL=${1:?usage: cli_damage_test.sh PATH/TO/carrel}
CARREL=$(cd "$(dirname "$CARREL")" && pwd)/$(basename "$CARREL")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/carrel-damage-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

FAILURES=0
CASES=0
HELD=0
RUN_TIMEOUT=60

fail() {
  echo "FAIL: $*"
  FAILURES=$((FAILURES + 1))
}

# run DIR ARGS... : runs carrel, leaving rc, out, err.
run() {
  local dir=$1
  shift
  timeout -s KILL "$RUN_TIMEOUT" "$CARREL" --dir "$dir" "$@" >out.txt 2>err.txt </dev/null
  rc=$?
  out=$(cat out.txt)
  err=$(cat err.txt)
}

# expect_error WHAT DIR ARGS... : exit 1, one line on stderr, no signal, no hang.
expect_error() {
  local what=$1
  shift
  CASES=$((CASES + 1))
  run "$@"
  if ((rc > 128)); then
    fail "$what: '$*' died of signal $((rc - 128)) (exit $rc)"
  elif ((rc != 1)); then
    fail "$what: '$*' exited $rc, expected 1; stderr: $err"
  elif [[ $err != carrel:* ]]; then
    fail "$what: '$*' exited 1 without an error line; stderr: $err"
  else
    HELD=$((HELD + 1))
  fi
}

# expect_no_signal WHAT DIR ARGS... : exit 0, or 1 with an error line.
expect_no_signal() {
  local what=$1
  shift
  CASES=$((CASES + 1))
  run "$@"
  if ((rc > 128)); then
    fail "$what: '$*' died of signal $((rc - 128)) (exit $rc)"
  elif ((rc == 1)) && [[ $err != carrel:* ]]; then
    fail "$what: '$*' exited 1 without an error line; stderr: $err"
  elif ((rc != 0 && rc != 1)); then
    fail "$what: '$*' exited $rc; stderr: $err"
  else
    HELD=$((HELD + 1))
  fi
}

expect_ok() {
  local what=$1
  shift
  CASES=$((CASES + 1))
  run "$@"
  if ((rc != 0)); then
    fail "$what: '$*' exited $rc; stderr: $err"
  else
    HELD=$((HELD + 1))
  fi
}

expect_stderr() {
  local what=$1 needle=$2
  if [[ $err != *"$needle"* ]]; then fail "$what: stderr lacks '$needle': $err"; fi
}

# flip FILE OFFSET BYTES : inverts BYTES bytes at OFFSET (perl-base is essential in Debian).
flip() {
  perl -e 'my ($f, $o, $n) = @ARGV; open(my $h, "+<", $f) or die "$f: $!"; binmode $h;
           seek($h, $o, 0); read($h, my $b, $n); seek($h, $o, 0); print $h ($b ^ ("\xff" x length $b));
           close($h) or die' "$1" "$2" "$3"
}

# flip_bits FILE SEED COUNT : flips COUNT random bits past the meta pages.
flip_bits() {
  perl -e 'my ($f, $seed, $n) = @ARGV; srand($seed); my $size = -s $f; open(my $h, "+<", $f) or die;
           binmode $h; for (1 .. $n) { my $o = 8192 + int(rand($size - 8192)); seek($h, $o, 0);
           read($h, my $b, 1); seek($h, $o, 0); print $h chr(ord($b) ^ (1 << int(rand(8)))); }
           close($h) or die' "$1" "$2" "$3"
}

# --- A clean engine: KV, SQL and alarms, a few hundred KiB. -----------------
"$CARREL" --dir clean init >/dev/null || { echo "FAIL: init"; exit 1; }
"$CARREL" --dir clean sql Room:a "CREATE TABLE t(a INTEGER PRIMARY KEY, b)" >/dev/null
for i in $(seq 1 150); do echo "INSERT INTO t(b) VALUES (randomblob(300));"; done |
  "$CARREL" --dir clean sql Room:a >/dev/null || fail "sql script"
"$CARREL" --dir clean sql Room:a "INSERT INTO t(b) VALUES ('$(printf 'sqlmark%.0s' $(seq 1 30))')" >/dev/null
for i in $(seq 1 40); do
  "$CARREL" --dir clean kv put Room:b "k$i" "$(printf 'v%.0s' $(seq 1 400))$i" >/dev/null
done
"$CARREL" --dir clean alarms set Room:a 2030-01-01T00:00:00Z --name nightly >/dev/null
expect_ok "clean engine verifies" clean verify

# The commands every damaged copy is put through.
COMMANDS=(
  "verify"
  "objects"
  "stats"
  "kv list Room:b"
  "kv get Room:b k7"
  "kv put Room:b k v"
  "sql Room:a SELECT_count"
  "history Room:a"
  "alarms list"
  "backup BACKUP"
)

# each_command KIND DIR : every command on DIR must fail cleanly.
each_command() {
  local kind=$1 dir=$2 c
  for c in "${COMMANDS[@]}"; do
    local args
    read -r -a args <<<"$c"
    [[ ${args[*]} == "sql Room:a SELECT_count" ]] && args=(sql Room:a "SELECT count(*) FROM t")
    [[ ${args[0]} == backup ]] && { rm -rf "$dir.bk"; args=(backup "$dir.bk"); }
    "$kind" "$dir: ${args[0]}" "$dir" "${args[@]}"
  done
}

# The bytes of LMDB's pages (data.mdb may run on past them: pages a failed
# commit wrote, a file that does not shrink).
PAGE=4096
SIZE=$(($(mdb_stat -e clean | awk -F': ' '/Number of pages used/ {print $2}') * PAGE))
((SIZE > 0)) || { echo "FAIL: mdb_stat -e clean gave no page count"; exit 1; }

# --- 1. Truncated to half: every command is a Corruption error, no SIGBUS. ---
cp -r clean trunc
truncate -s $((SIZE / 2)) trunc/data.mdb
each_command expect_error trunc
run trunc verify
expect_stderr "truncated verify" "truncated"

# --- 2. 4 KiB of flipped bytes at several pages: no signal, never a hang. ----
# A flipped page that no tree reaches (a free page) harms nothing, so verify
# may pass it; but when verify passes, the read commands must succeed too.
FLIPS_FOUND=0
for page in 2 3 5 $((SIZE / PAGE / 2)) $((SIZE / PAGE - 1)); do
  cp -r clean "flip$page"
  flip "flip$page/data.mdb" $((page * PAGE)) 4096
  expect_no_signal "flip$page" "flip$page" verify
  if ((rc == 0)); then
    for c in objects stats "kv list Room:b" "history Room:a" "alarms list"; do
      read -r -a args <<<"$c"
      expect_ok "flip$page passed verify, so" "flip$page" "${args[@]}"
    done
    expect_ok "flip$page passed verify, so" "flip$page" sql Room:a "SELECT count(*) FROM t"
  else
    FLIPS_FOUND=$((FLIPS_FOUND + 1))
  fi
  each_command expect_no_signal "flip$page"
done
echo "4 KiB flips: verify reported damage in $FLIPS_FOUND of 5 copies"

# --- 2b. A damaged branch page: every command names the file, page and remedy.
# The first child pointer of every branch page (in kv, pages and history, and
# stale copies of them) points past the file, so LMDB reports
# MDB_PAGE_NOTFOUND wherever a read descends; each command words it as the
# page check of verify and backup does, and none lists a partial result.
cp -r clean branch
perl -e 'my ($f) = @ARGV; open(my $h, "+<", $f) or die; binmode $h; my $p = 0;
         while (read($h, my $b, 4096) == 4096) {
           my ($flags, $upper) = unpack("x10 S< x2 S<", $b);
           if ($flags & 1) { seek($h, $p * 4096 + $upper + 3, 0); print $h "\x7f"; }
           seek($h, ++$p * 4096, 0);
         } close($h) or die' branch/data.mdb
for c in objects stats "show Room:a" "kv list Room:b" "kv get Room:b k7" "history Room:a" \
  "bookmark Room:a" "verify Room:a" "alarms list" "alarms list Room:a" "sql Room:a SELECT_count" \
  "kv put Room:b k v" "export Room:a"; do
  read -r -a args <<<"$c"
  [[ ${args[*]} == "sql Room:a SELECT_count" ]] && args=(sql Room:a "SELECT count(*) FROM t")
  expect_error "damaged branch page: $c" branch "${args[@]}"
  [[ $err =~ "'branch/data.mdb': page "[0-9]+" of database '"[a-z]+"' is outside pages 2.."[0-9]+"; restore the directory from a backup" ]] ||
    fail "damaged branch page: $c does not name the file, page and remedy: $err"
  [[ $err == *MDB_* ]] && fail "damaged branch page: $c prints LMDB's bare error: $err"
  [[ -n $out ]] && fail "damaged branch page: $c printed a result: $out"
done
expect_error "damaged branch page: verify" branch verify
[[ $out == *"PROBLEM: 'branch/data.mdb': page "*" (verify stopped here)"* ]] ||
  fail "damaged branch page: verify does not name the page: $out"
expect_stderr "damaged branch page: verify" "restore the directory from a backup"

# --- 3. Random bit flips (fixed seed): verify reports or passes, never crashes.
DETECTED=0
for seed in $(seq 1 30); do
  rm -rf bits
  cp -r clean bits
  flip_bits bits/data.mdb "$seed" 8
  for c in verify "kv list Room:b" "sql Room:a SELECT_count" stats; do
    read -r -a args <<<"$c"
    [[ ${args[*]} == "sql Room:a SELECT_count" ]] && args=(sql Room:a "SELECT count(*) FROM t")
    expect_no_signal "bits seed $seed" bits "${args[@]}"
    [[ ${args[0]} == verify ]] && ((rc != 0)) && DETECTED=$((DETECTED + 1))
  done
done
echo "random bit flips: verify reported damage in $DETECTED of 30 copies"

# --- 3b. A flipped bit inside a stored KV value or SQL page is always found. --
# Values carry checksums (engine/store/checksum.h). The copies are compacted
# (backup), so every run of value bytes found in data.mdb is live: a flip in
# it must make verify name the key or page and every read of it fail.
"$CARREL" --dir clean backup compact >/dev/null || fail "backup of the clean engine"
# flip_in FILE SEED PATTERN : flips one random bit inside a random occurrence of
# PATTERN; prints N when the occurrence follows a key kN (an LMDB node holds
# the key, then the value).
flip_in() {
  perl -e 'my ($f, $seed, $p) = @ARGV; srand($seed); open(my $h, "+<", $f) or die; binmode $h;
           local $/; my $d = <$h>; my @at; my $i = -1;
           while (($i = index($d, $p, $i + 1)) >= 0) { push @at, $i; }
           die "no $p" unless @at; my $s = $at[int(rand(@at))]; my $o = $s + int(rand(length $p));
           my ($n) = substr($d, $s - 3, 3) =~ /k([0-9]+)$/;
           substr($d, $o, 1) = chr(ord(substr($d, $o, 1)) ^ (1 << int(rand(8))));
           seek($h, 0, 0); print $h $d; close($h) or die; print $n // ""' "$@"
}
VALUES_FOUND=0
for seed in $(seq 1 15); do
  rm -rf vbits
  cp -r compact vbits
  n=$(flip_in vbits/data.mdb "$seed" "$(printf 'v%.0s' $(seq 1 400))")
  expect_error "kv value bit, seed $seed: verify" vbits verify
  if [[ $out == *"KV key 'k$n' of object"*"fails its checksum"* ]]; then
    VALUES_FOUND=$((VALUES_FOUND + 1))
  else
    fail "kv value bit, seed $seed: verify did not name key k$n: $out"
  fi
  expect_error "kv value bit, seed $seed: kv get" vbits kv get Room:b "k$n"
  expect_stderr "kv value bit, seed $seed: kv get" "fails its checksum"
  expect_error "kv value bit, seed $seed: kv list" vbits kv list Room:b
  rm -f vbits.ndjson
  expect_error "kv value bit, seed $seed: export" vbits export Room:b -o vbits.ndjson
  expect_stderr "kv value bit, seed $seed: export" "KV key 'k$n'"
  [[ -e vbits.ndjson ]] && fail "export of a damaged object left vbits.ndjson"
done
for seed in $(seq 1 15); do
  rm -rf pbits
  cp -r compact pbits
  flip_in pbits/data.mdb "$seed" "$(printf 'sqlmark%.0s' $(seq 1 30))" >/dev/null
  expect_error "sql page bit, seed $seed: verify" pbits verify
  if [[ $out == *"SQL page "*" of object "*"fails its checksum"* ]]; then
    VALUES_FOUND=$((VALUES_FOUND + 1))
  else
    fail "sql page bit, seed $seed: verify did not name the page: $out"
  fi
  expect_error "sql page bit, seed $seed: sql" pbits sql Room:a "SELECT count(*) FROM t"
  expect_stderr "sql page bit, seed $seed: sql" "fails its checksum"
  expect_error "sql page bit, seed $seed: export" pbits export Room:a -o pbits.ndjson
done
echo "bit flips inside stored values: verify named the damage in $VALUES_FOUND of 30 copies"

# --- 4. 0-byte data.mdb, and another program's LMDB directory. --------------
mkdir empty && : >empty/data.mdb
expect_error "0-byte data.mdb" empty objects
expect_stderr "0-byte data.mdb" "empty (0 bytes)"
expect_error "0-byte data.mdb, write" empty kv put Room:a k v
[[ $(stat -c %s empty/data.mdb) == 0 ]] || fail "a failed write turned a 0-byte data.mdb into $(stat -c %s empty/data.mdb) bytes"
[[ -e empty/writer.lock ]] && fail "a failed write left writer.lock beside a 0-byte data.mdb"
if command -v mdb_load >/dev/null; then
  mkdir foreign
  printf 'k1\nv1\n' | mdb_load -T -s other foreign
  rm -f foreign/writer.lock
  expect_error "foreign LMDB, write" foreign kv put Room:a k v
  expect_stderr "foreign LMDB" "not a carrel engine directory"
  [[ -e foreign/writer.lock ]] && fail "a refused write left writer.lock in another program's LMDB directory"
else
  echo "note: mdb_load not found; skipping the foreign-LMDB checks"
fi

# --- 4b. A damaged history key: Corruption naming the key, never an abort. ---
# One of Room:b's log records loses its key's last byte: the chain finds no
# record there, and the 7-byte key sorts first in the log. lmdb-utils has no
# delete, so the engine is dumped (hex form: the cut is exact) and loaded into
# a new directory.
if command -v mdb_dump >/dev/null && command -v mdb_load >/dev/null; then
  mdb_dump -a clean >all.dump
  # History key lines are " <16 hex digits>"; the fifth from the end is Room:b's.
  awk '/^database=/ { db = substr($0, 10) }
    db == "history" && /^ [0-9a-f]+$/ && length($0) == 17 { print }' all.dump >history.keys
  cut_at=$(($(wc -l <history.keys) - 4))
  awk -v n="$cut_at" '/^database=/ { db = substr($0, 10) }
    db == "history" && /^ [0-9a-f]+$/ && length($0) == 17 && ++seen == n { $0 = substr($0, 1, 15) } { print }' \
    all.dump >all.cut
  mkdir histkey && mdb_load -f all.cut histkey 2>load.err || fail "load the engine with a cut history key"
  expect_error "damaged history key: verify" histkey verify
  [[ $out == *"PROBLEM: history: key 00000000000000 is 7 bytes"* ]] ||
    fail "verify does not name the damaged history key: $out"
  # Each check that reads the log meets the key; the first to report it names
  # it, and the count line counts what is listed.
  named=$(grep -c "key 00000000000000 is 7 bytes" <<<"$out")
  ((named == 1)) || fail "verify names the damaged history key $named times, not once: $out"
  listed=$(grep -c "^PROBLEM: " <<<"$out")
  [[ $out == *"$listed problem"*" found"* ]] ||
    fail "verify's count line does not count its $listed problems: $out"
  expect_stderr "damaged history key: verify's error line" "verify found $listed problem"
  expect_error "damaged history key: history" histkey history Room:b
  expect_stderr "damaged history key: history" "history: key 00000000000000 is 7 bytes"
  expect_ok "damaged history key: the newest record" histkey history Room:b --limit 1
else
  echo "note: mdb_dump or mdb_load not found; skipping the damaged history key checks"
fi

# --- 4c. SQL undo deltas: verify rebuilds every before-image. ----------------
# A row's counter is updated in 40 commits, each an undo delta of one page
# (history/undo.h (7)): the long chain verifies clean. Then the row's marker
# is rewritten in place, so one delta's payload holds the old marker; a byte
# of it flipped in the log (mdb_dump's hex form, loaded into a new directory)
# leaves the record well formed, and verify's rebuild names its log record
# and page.
if command -v mdb_dump >/dev/null && command -v mdb_load >/dev/null; then
  "$CARREL" --dir deltas init >/dev/null || fail "init deltas"
  "$CARREL" --dir deltas sql Doc:d "CREATE TABLE t(a INTEGER PRIMARY KEY, n, b)" >/dev/null
  "$CARREL" --dir deltas sql Doc:d \
    "INSERT INTO t(n, b) VALUES (0, '$(printf 'deltamark%.0s' $(seq 1 20))')" >/dev/null
  for i in $(seq 1 40); do
    "$CARREL" --dir deltas sql Doc:d "UPDATE t SET n = $i" >/dev/null || fail "update $i"
  done
  expect_ok "a long chain of SQL undo deltas verifies" deltas verify
  "$CARREL" --dir deltas sql Doc:d "UPDATE t SET b = replace(b, 'deltamark', 'deltamarQ')" >/dev/null
  for i in 1 2 3; do "$CARREL" --dir deltas sql Doc:d "UPDATE t SET n = -$i" >/dev/null; done
  expect_ok "the rewritten marker verifies" deltas verify
  mdb_dump -a deltas >deltas.dump
  # 'deltamark' is 64656c74616d61726b; only the marker's undo delta holds it.
  awk '/^database=/ { db = substr($0, 10) }
    db == "history" && !done && sub(/64656c74616d61726b/, "64656c74616d61725a") { done = 1 }
    { print } END { if (!done) exit 1 }' deltas.dump >deltas.cut || fail "no undo delta holds the marker"
  mkdir baddelta && mdb_load -f deltas.cut baddelta 2>load.err || fail "load the engine with a flipped delta"
  expect_error "flipped byte in an SQL undo delta: verify" baddelta verify
  [[ $out == *"PROBLEM: Doc:d: history log record 43: the undo delta of SQL page "*" does not rebuild a page whose checksum verifies"* ]] ||
    fail "verify does not name the damaged undo delta: $out"
  expect_ok "flipped byte in an SQL undo delta: the current state reads" baddelta sql Doc:d "SELECT n FROM t"
else
  echo "note: mdb_dump or mdb_load not found; skipping the SQL undo delta checks"
fi

# --- 5. export never replaces the engine's files, nor any file without --force.
cp -r clean ex
cp ex/data.mdb ex.before
expect_error "export into the engine" ex export Room:a -o ex/data.mdb
cmp -s ex/data.mdb ex.before || fail "export replaced the engine's data.mdb"
expect_error "export into the engine (other spelling)" ex export Room:a -o "ex/../ex/lock.mdb"
echo keep >kept.txt
expect_error "export over an existing file" ex export Room:a -o kept.txt
[[ $(cat kept.txt) == keep ]] || fail "export replaced kept.txt without --force"
expect_ok "export --force" ex export Room:a -o kept.txt --force
head -1 kept.txt | grep -q carrel || fail "export --force did not write the export"
ls ./*.partial* >/dev/null 2>&1 && fail "export left a temporary file"
expect_ok "export to a new file" ex export Room:a -o new.ndjson

# --- 6. backup: a partial copy is never an engine, and does not block the next.
mkdir leftover && head -c 12288 /dev/urandom >leftover/data.mdb.partial
expect_error "a partial backup is not an engine" leftover objects
expect_ok "backup over a partial backup" clean backup leftover
[[ -e leftover/data.mdb.partial ]] && fail "backup kept the partial file"
expect_ok "the backup verifies" leftover verify
mkdir busy && echo x >busy/other
expect_error "backup into a non-empty directory" clean backup busy
# A backup into the engine directory itself, or inside it, is refused naming both.
cp -r clean selfbk
for dest in selfbk selfbk/inner ./selfbk/../selfbk/a/b "$TMP/selfbk/inner"; do
  expect_error "backup into the engine directory ($dest)" selfbk backup "$dest"
  expect_stderr "backup into the engine directory ($dest)" "backup destination '$dest' is the engine directory 'selfbk' or lies inside it; back up to a directory outside it"
done
[[ -e selfbk/inner || -e selfbk/a ]] && fail "a refused backup left a directory inside the engine"
expect_ok "backup beside the engine directory" selfbk backup selfbk-copy

# --- 7. value files and bounded inputs. --------------------------------------
cp -r clean inp
expect_error "value file is a directory" inp kv put Room:b k --value-file inp
expect_stderr "value file is a directory" "is a directory"
CASES=$((CASES + 1))
timeout -s KILL "$RUN_TIMEOUT" "$CARREL" --dir inp kv put Room:b k1 --value-file - <&- >/dev/null 2>err.txt
rc=$?
if ((rc != 1)); then fail "closed stdin: kv put exited $rc"; else HELD=$((HELD + 1)); fi
run inp kv get Room:b k1
[[ $out == vvv* ]] || fail "closed stdin replaced k1 with '$out'"
expect_error "value file /dev/zero" inp kv put Room:b k --value-file /dev/zero
expect_stderr "value file /dev/zero" "value_bytes_max"
for what in import sql; do
  CASES=$((CASES + 1))
  timeout -s KILL "$RUN_TIMEOUT" "$CARREL" --dir inp "$what" Room:z </dev/zero >/dev/null 2>err.txt
  rc=$?
  err=$(cat err.txt)
  if ((rc != 1)) || [[ $err != *limit* ]]; then
    fail "$what < /dev/zero: exit $rc, stderr: $err"
  else
    HELD=$((HELD + 1))
  fi
done

# --- 8. Bookmarks and periods out of range. ---------------------------------
run inp bookmark Room:a
expect_error "restore to seq 0 with a time" inp restore Room:a "7fffffffffffffff-0000000000000000-${out:34}"
expect_stderr "restore to seq 0 with a time" "seq 0"
expect_error "restore with the wrong time" inp restore Room:a "0000000000000001-${out:17}"
expect_error "--every past year 9999" inp alarms set Room:a +1m --name n --every 9223372036854775807
expect_stderr "--every past year 9999" "253402300799999"

# --- 9. Signals: no stale LMDB reader slot after SIGPIPE or SIGTERM. --------
# A stale slot matters beside a running engine (the first opener of an idle
# environment resets the reader table), so a holder keeps it open: `carrel
# sql` waiting for its script on a fifo.
if command -v mdb_stat >/dev/null; then
  big=$(printf 'x%.0s' $(seq 1 2000))
  for i in $(seq 1 60); do "$CARREL" --dir inp kv put Room:big "k$i" "$big" >/dev/null; done
  # Some 45 MiB, so a backup lasts long enough for a signal to land in it.
  head -c 1500000 /dev/urandom >value.bin
  for i in $(seq 1 30); do "$CARREL" --dir inp kv put "Room:v$i" k --value-file value.bin >/dev/null; done
  mkfifo script
  "$CARREL" --dir inp sql Room:hold <script >holder.out 2>&1 &
  holder=$!
  exec 8>script
  for _ in $(seq 1 1200); do # up to 60 s on a loaded machine
    [[ "$(cat inp/writer.lock 2>/dev/null)" == "$holder" ]] && break
    sleep 0.05
  done
  # Reader slots of any process but the holder.
  readers() { mdb_stat -r inp | awk -v h="$holder" '$1 ~ /^[0-9]+$/ && $1 != h' | wc -l; }
  CASES=$((CASES + 1))
  "$CARREL" --dir inp --json kv list Room:big 2>err.txt | head -c 10 >/dev/null
  rc=${PIPESTATUS[0]}
  if ((rc > 128)); then
    fail "kv list | head died of signal $((rc - 128))"
  elif (($(readers) != 0)); then
    fail "kv list | head left a reader slot: $(mdb_stat -r inp)"
  else
    HELD=$((HELD + 1))
  fi
  # SIGTERM while blocked writing to a pipe nobody reads.
  CASES=$((CASES + 1))
  mkfifo stalled
  exec 3<>stalled
  "$CARREL" --dir inp --json kv list Room:big >stalled 2>err.txt &
  pid=$!
  for _ in $(seq 1 600); do (($(readers) > 0)) && break; sleep 0.05; done
  kill -TERM "$pid"
  wait "$pid"
  rc=$?
  exec 3<&-
  if ((rc != 1)); then
    fail "SIGTERM of kv list: exit $rc, stderr: $(cat err.txt)"
  elif (($(readers) != 0)); then
    fail "SIGTERM of kv list left a reader slot: $(mdb_stat -r inp)"
  else
    HELD=$((HELD + 1))
  fi
  # SIGTERM of backup, sent once its read transaction shows (or at once):
  # interrupted (exit 1, nothing left in DEST); or complete, when the copy
  # won the race; or, sent before the environment was open, the default
  # death of SIGTERM. In every case no reader slot is left.
  INTERRUPTED=0
  for run_no in 1 2 3; do
    CASES=$((CASES + 1))
    rm -rf termdest
    "$CARREL" --dir inp backup termdest >/dev/null 2>err.txt &
    pid=$!
    for _ in $(seq 1 200); do (($(readers) > 0)) && break; sleep 0.01; done
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    if ((rc == 1)) && grep -q "interrupted by SIGTERM" err.txt && [[ ! -e termdest/data.mdb ]]; then
      INTERRUPTED=$((INTERRUPTED + 1))
    elif ((rc != 0 && rc != 143)); then
      fail "SIGTERM of backup (run $run_no): exit $rc, stderr: $(cat err.txt)"
      continue
    fi
    if (($(readers) != 0)); then
      fail "SIGTERM of backup left a reader slot: $(mdb_stat -r inp)"
    else
      HELD=$((HELD + 1))
    fi
  done
  echo "SIGTERM of backup: $INTERRUPTED of 3 runs interrupted, the rest had finished"
  printf 'SELECT 1;\n' >&8
  exec 8>&-
  wait "$holder" || fail "the holder failed: $(cat holder.out)"
else
  echo "note: mdb_stat not found; skipping the reader-slot checks"
fi

echo "cli damage: $HELD of $CASES cases held"
if ((FAILURES > 0)); then
  echo "$FAILURES failures"
  exit 1
fi
echo "all damage checks passed"
