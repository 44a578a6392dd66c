#!/usr/bin/env bash
# Usage: fuzz/run.sh BUILD_DIR SECONDS_PER_TARGET
#
# For each BUILD_DIR/fuzz/fuzz_<name>: replays the seeds in fuzz/corpus/<name>/ one by one,
# then fuzzes for SECONDS_PER_TARGET seconds on a scratch copy of them in
# fuzz/corpus-work/<name>/ (ignored by git; set CARREL_FUZZ_WORK to put it elsewhere).
# Crash inputs land in <work>/artifacts/<name>/. Prints one summary line per target and
# exits non-zero if any target crashed, leaked, timed out or found no seeds to replay.
#
# Targets run CARREL_FUZZ_JOBS at a time (default: nproc; each libFuzzer run is one
# process on one core), so the whole run takes about ceil(targets / jobs) times
# SECONDS_PER_TARGET. Their summary lines come out in target order once all ended.
set -u -o pipefail

if [ $# -ne 2 ] || ! [[ $2 =~ ^[0-9]+$ ]] || [ "$2" -lt 1 ]; then
  echo "usage: $0 BUILD_DIR SECONDS_PER_TARGET" >&2
  exit 2
fi
build_dir=$1
seconds=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${CARREL_FUZZ_WORK:-$repo/fuzz/corpus-work}
# A single input slower than this is a hang, reported like a crash.
input_timeout_s=10

shopt -s nullglob
binaries=("$build_dir"/fuzz/fuzz_*)
if [ ${#binaries[@]} -eq 0 ]; then
  echo "no fuzz_* binaries in $build_dir/fuzz (configure with -DCARREL_FUZZ=ON and build)" >&2
  exit 2
fi

# The lines of a failed run's log that say what failed and on which input.
explain() {
  grep -E '^Running:' "$1" | tail -n 1 | sed 's/^/  /'
  grep -E 'ERROR:|SUMMARY:|Test unit written to|^cron ' "$1" | head -n 10 | sed 's/^/  /'
}

jobs=${CARREL_FUZZ_JOBS:-$(nproc)}
if ! [[ $jobs =~ ^[0-9]+$ ]] || [ "$jobs" -lt 1 ] || [ "$jobs" -gt 64 ]; then
  echo "CARREL_FUZZ_JOBS must be a whole number from 1 to 64, not '$jobs'" >&2
  exit 2
fi
mkdir -p "$work"
results=$(mktemp -d "${TMPDIR:-/tmp}/carrel-fuzz.XXXXXX")
trap 'rm -rf "$results"' EXIT

# One target: replay its seeds, then fuzz. Its summary goes to $results/<name>.out,
# and $results/<name>.failed exists when it failed.
run_target() {
  local binary=$1
  local name=${binary##*/fuzz_}
  local seeds=("$repo/fuzz/corpus/$name"/*)
  local scratch=$work/$name
  local artifacts=$work/artifacts/$name/
  local replay_log=$work/$name.replay.log
  local log=$work/$name.log
  local result executions corpus
  rm -rf "$scratch"
  mkdir -p "$scratch" "$artifacts"

  if [ ${#seeds[@]} -eq 0 ]; then
    echo "fuzz_$name: FAIL no seeds in fuzz/corpus/$name/"
    touch "$results/$name.failed"
    return
  fi
  # 1. Replay every seed as its own run: a crash names the seed.
  if ! "$binary" -timeout="$input_timeout_s" -artifact_prefix="$artifacts" "${seeds[@]}" \
      >"$replay_log" 2>&1; then
    echo "fuzz_$name: FAIL replaying ${#seeds[@]} seeds (log: $replay_log)"
    explain "$replay_log"
    touch "$results/$name.failed"
    return
  fi
  cp "${seeds[@]}" "$scratch/"

  # 2. Fuzz for the given time, growing the scratch corpus.
  result=ok
  if ! "$binary" -max_total_time="$seconds" -timeout="$input_timeout_s" -print_final_stats=1 \
      -artifact_prefix="$artifacts" "$scratch" >"$log" 2>&1; then
    result=FAIL
    touch "$results/$name.failed"
  fi
  executions=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  corpus=$(find "$scratch" -type f | wc -l)
  echo "fuzz_$name: $result seeds=${#seeds[@]} executions=${executions:-?}" \
    "corpus=$corpus seconds=$seconds log=$log"
  if [ "$result" != ok ]; then
    explain "$log"
  fi
}

names=()
for binary in "${binaries[@]}"; do
  if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then continue; fi
  # At most $jobs targets at once: wait for one to end before starting another.
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  names+=("${binary##*/fuzz_}")
  run_target "$binary" >"$results/${binary##*/fuzz_}.out" 2>&1 &
done
wait
failed=0
for name in "${names[@]}"; do
  cat "$results/$name.out"
  if [ -e "$results/$name.failed" ]; then failed=1; fi
done
exit "$failed"
