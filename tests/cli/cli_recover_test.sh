#!/usr/bin/env bash
# `carrel recover`, and every other command, on a directory an engine's crash
# left unclean (engine/store/redo.h (5); docs/cli.md "recover").
#
# usage: tests/cli/cli_recover_test.sh PATH/TO/carrel PATH/TO/carrel-test-crashed-writer
set -u
CARREL=${1:?usage: cli_recover_test.sh PATH/TO/carrel PATH/TO/carrel-test-crashed-writer}
WRITER=${2:?usage: cli_recover_test.sh PATH/TO/carrel PATH/TO/carrel-test-crashed-writer}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/carrel-recover-test.XXXXXX")
DIR=
# shellcheck source=tests/cli/expect.sh
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"
trap cleanup EXIT
TURNS=40

has_redo() { [[ -e "$1/redo.ckpt" || -e "$1/redo.0" || -e "$1/redo.1" ]]; }
# fresh NAME: DIR becomes a new copy of the crashed directory.
fresh() {
  DIR=$WORK/$1
  rm -rf "$DIR"
  cp -a "$WORK/crashed" "$DIR"
}

# The crashed directory, made once: the writer runs TURNS turns, every reply
# came, and it kills itself with SIGKILL.
timeout 120 "$WRITER" "$WORK/crashed" "$TURNS" >"$OUT" 2>"$ERR"
RC=$?
expect_rc 137 "the writer kills itself (124: it hung)"
CHECKS=$((CHECKS + 1))
has_redo "$WORK/crashed" || fail "the crashed directory holds redo files"

# An inspection command is refused, naming the remedy.
fresh a
c objects
expect_rc 1 "objects on an unclean directory"
expect_err "was not closed cleanly.*carrel --dir '$DIR' recover" "the refusal names the remedy"
c --json stats
expect_rc 1 "--json stats on an unclean directory"
expect_err '"code":"Busy"' "the refusal is Busy"

# recover replays the log and leaves data.mdb alone; every acknowledged turn is there.
ok "recover" recover
expect_out "^recovered $DIR: replayed [0-9]+ commit record\(s\) .*data.mdb alone now" "recover says what it did"
CHECKS=$((CHECKS + 1))
! has_redo "$DIR" || fail "recover removes the redo files"
for i in 1 "$TURNS"; do
  ok "turn $i after recover" kv get Crash:a "n$i"
  expect_out "^$i$" "turn $i's value"
done
ok "verify after recover" verify
expect_out "no problems found" "verify finds nothing"
ok "recover of a clean directory" recover
expect_out "was closed cleanly: nothing to recover" "a clean directory is left alone"

# --json names what was replayed.
fresh b
ok "--json recover" --json recover
expect_out '^\{"dir":"[^"]*","recovered":true,"checkpoint":[0-9]+,"txnid":[0-9]+,"meta_restored":(true|false),"records_replayed":[0-9]+\}$' \
  "--json recover's fields"

# A command that writes recovers first, then writes.
fresh c
ok "kv put on an unclean directory" kv put Crash:a extra 1
ok "the last turn after a write that recovered" kv get Crash:a "n$TURNS"
expect_out "^$TURNS$" "the last turn's value"

# A power loss may leave data.mdb's meta pages torn (they are written unsynced
# with the log): both zeroed here. That is not damage yet: recovery writes the
# checkpoint's meta page back, and every acknowledged turn is there.
fresh d
dd if=/dev/zero of="$DIR/data.mdb" bs=4096 count=2 conv=notrunc status=none
c objects
expect_rc 1 "objects with torn meta pages"
expect_err "was not closed cleanly.*recover" "torn meta pages: the refusal names recover, not a backup"
ok "recover with torn meta pages" recover
ok "the last turn after recovering torn meta pages" kv get Crash:a "n$TURNS"
expect_out "^$TURNS$" "the last turn's value after torn meta pages"

# redo.h (9): redo files removed by hand are found, not taken for a clean
# directory; recover names the loss and the flag that accepts it.
fresh e
rm -f "$DIR/redo.ckpt" "$DIR/redo.0" "$DIR/redo.1"
c recover
expect_rc 1 "recover with the redo files removed"
expect_err "lost part of its redo log: redo.ckpt is missing.*recover --discard-lost-redo" \
  "the refusal names what is missing and the remedy"
c objects
expect_rc 1 "objects with the redo files removed"
expect_err "lost part of its redo log" "a read-only command is refused too"
c kv put Crash:a extra 1
expect_rc 1 "kv put with the redo files removed"
expect_err "lost part of its redo log" "a command that writes is refused too"
ok "recover --discard-lost-redo" recover --discard-lost-redo
expect_out "^accepted the loss of part of the redo log of $DIR \(redo.ckpt is missing.*data.mdb as it was last written is the state.*verify" \
  "recover --discard-lost-redo says what it gave up"
ok "objects after discarding the lost log" objects
ok "verify after discarding the lost log" verify
expect_out "no problems found" "verify after discarding: nothing found"
ok "recover after discarding" recover
expect_out "was closed cleanly: nothing to recover" "after discarding the directory is clean"

# A damaged redo.ckpt beside records is not taken for an absent one.
fresh f
dd if=/dev/zero of="$DIR/redo.ckpt" bs=4096 count=2 conv=notrunc status=none
c recover
expect_rc 1 "recover with redo.ckpt zeroed"
expect_err "redo.ckpt holds no valid checkpoint while redo.0 or redo.1 holds records" \
  "a zeroed redo.ckpt is named"
ok "recover --discard-lost-redo with redo.ckpt zeroed" recover --discard-lost-redo
expect_out "\(redo.ckpt holds no valid checkpoint" "the report names the damage found, not a missing file"
ok "verify after discarding a zeroed redo.ckpt" verify

# A segment missing beside a valid checkpoint: discarding recovers the
# checkpoint and what the surviving segment holds after it.
fresh g
rm -f "$DIR/redo.1"
c recover
expect_rc 1 "recover with redo.1 removed"
expect_err "redo.1 is missing beside a valid redo.ckpt" "the missing segment is named"
ok "recover --discard-lost-redo with redo.1 removed" recover --discard-lost-redo
expect_out "recovered checkpoint [0-9]+ and [0-9]+ record\(s\) after it" "the checkpoint is recovered"
ok "the last turn after discarding an empty segment" kv get Crash:a "n$TURNS"
expect_out "^$TURNS$" "the records redo.0 held are replayed"

# Beside a running engine, whose redo log is live: nothing to recover, Busy.
DIR=$WORK/a
hold_engine "$DIR" Crash:a
c recover
expect_rc 1 "recover beside a running engine"
expect_err "open for writing by a running engine.*nothing to recover" "recover names the running engine"
release_engine

echo "$CHECKS checks, $FAILURES failures"
[[ "$FAILURES" == 0 ]]
