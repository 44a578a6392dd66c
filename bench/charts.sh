#!/usr/bin/env bash
# bench/charts.sh — charts (PNG and SVG, gnuplot) from carrel-bench JSON results.
#
# Usage: bench/charts.sh RESULTS_DIR OUT_DIR
#   RESULTS_DIR  the *.json files of `carrel-bench ... --json FILE` (bench/run_all.sh keeps
#                them in CARREL_BENCH_OUT); a file's name without .json labels its run
#   OUT_DIR      created if missing; receives, for the results present:
#     ycsb-throughput.{png,svg}  YCSB A-F: operations per second per engine
#     ycsb-latency.{png,svg}     YCSB A-F: p50, p99 and p99.9 latency per engine
#     throughput.{png,svg}       the other workloads: operations per second per engine
#     latency.{png,svg}          the other workloads: p50, p99 and p99.9 latency per engine
# Every chart names the command (or the runs) and the date it was measured.
# Environment: CARREL_CHARTS_SOURCE  where the commands are listed, when the runs
#   have different commands (default: "their commands are in the JSON results").
#   CARREL_CHARTS_NOTE    one more line under each title (e.g. the machine and its load).
# Needs gnuplot (Debian gnuplot-nox) and jq.
set -euo pipefail

if [[ $# -ne 2 || ! -d $1 ]]; then
  echo "usage: bench/charts.sh RESULTS_DIR OUT_DIR (RESULTS_DIR: carrel-bench --json files)" >&2
  exit 2
fi
RESULTS=$1
OUT=$2
for tool in gnuplot jq; do
  command -v "$tool" >/dev/null || { echo "charts.sh: $tool not found (scripts/bootstrap installs it)" >&2; exit 2; }
done
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/carrel-charts.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

ENGINES=(carrel sqlite-files lmdb-raw rocksdb)
COLORS=('#d62728' '#1f77b4' '#7f7f7f' '#2ca02c')

# One line per engine result: tag workload engine ops/s p50 p99 p999 date command
# shape. Rows of a variant (cold-wake, pitr), alarms (its latency is a delivery
# lag) and skipped engines are left out.
shopt -s nullglob
files=("$RESULTS"/*.json)
if [[ ${#files[@]} -eq 0 ]]; then
  echo "charts.sh: no *.json results in $RESULTS" >&2
  exit 1
fi
for f in "${files[@]}"; do
  jq -r --arg tag "$(basename "$f" .json)" '. as $run | .results[]
    | select(.skipped == null and .variant == null and $run.workload != "alarms")
    | [$tag, $run.workload, .engine, .ops_per_s, .latency_us.p50, .latency_us.p99,
       .latency_us.p999, ($run.date // "undated")[0:10], ($run.command // ""),
       ($run.params | "\(.objects) objects, \(.records // "-") records, \(.clients) clients, \(.value_bytes) B values, \(.durability), \(.popularity), " +
        (if .ops > 0 then "\(.ops) ops" else "\(.seconds) s" end) + " per engine")] | @tsv' "$f"
done >"$WORK/all.tsv"

# The label of a YCSB workload on the x axis (the \n are gnuplot's line breaks).
# shellcheck disable=SC2028
ycsb_label() {
  case $1 in
    ycsb-a) echo 'A\n50% read\n50% update' ;;
    ycsb-b) echo 'B\n95% read\n5% update' ;;
    ycsb-c) echo 'C\nread only' ;;
    ycsb-d) echo 'D\n95% read latest\n5% insert' ;;
    ycsb-e) echo 'E\n95% scan\n5% insert' ;;
    ycsb-f) echo 'F\n50% read\n50% read-mod-write' ;;
    *) echo "$1" ;;
  esac
}

# table SELECT COLUMN > file: one row per run (label, then one value per engine).
# SELECT is ycsb or other; COLUMN is the all.tsv column (4 ops/s, 5 p50, 6 p99, 7 p999).
table() {
  local select=$1 col=$2 tag
  for tag in $(awk -F'\t' -v s="$select" '(s == "ycsb") == ($2 ~ /^ycsb-/) {print $1}' "$WORK/all.tsv" | sort -u); do
    local workload label row
    workload=$(awk -F'\t' -v t="$tag" '$1 == t {print $2; exit}' "$WORK/all.tsv")
    # Other runs: the durability on a line of its own, so labels do not run together.
    if [[ $select == ycsb ]]; then label=$(ycsb_label "$workload"); else label=$(sed -E 's/-(sync|nosync)$/\\n\1/' <<<"$tag"); fi
    row="\"$label\""
    for e in "${ENGINES[@]}"; do
      # A latency below the 1 us resolution (0) is drawn as 0.5 and labelled "<1".
      row+=" $(awk -F'\t' -v t="$tag" -v e="$e" -v c="$col" '$1 == t && $3 == e {v = $c}
        END {print v == "" || (c == 4 && v <= 0) ? "NaN" : (v < 1 ? 0.5 : v)}' "$WORK/all.tsv")"
    done
    echo "$row"
  done
}

# What the runs were: the command when there is one run shape (YCSB: the
# workload letter and the output paths left out), and the dates.
provenance() {
  local select=$1 dates cmds shapes
  dates=$(awk -F'\t' -v s="$select" '(s == "ycsb") == ($2 ~ /^ycsb-/) {print $8}' "$WORK/all.tsv" | sort -u | paste -sd, -)
  cmds=$(awk -F'\t' -v s="$select" '(s == "ycsb") == ($2 ~ /^ycsb-/) {print $9}' "$WORK/all.tsv" |
    sed -E 's/ycsb-[a-f]/ycsb-{a..f}/; s/ --(json|tsv|tag|dir|ack-log) [^ ]+//g; s/ --(no-legend|progress)//g' | sort -u)
  shapes=$(awk -F'\t' -v s="$select" '(s == "ycsb") == ($2 ~ /^ycsb-/) {print $10}' "$WORK/all.tsv" | sort -u)
  if [[ $(wc -l <<<"$cmds") -eq 1 && -n $cmds ]]; then
    # A long command on lines of its own (gnuplot's \n), then the date.
    printf '%s\\nmeasured %s' "$(fold -s -w 110 <<<"$cmds" | awk '{sub(/ +$/, ""); printf "%s%s", (NR > 1 ? "\\n" : ""), $0}')" "$dates"
  elif [[ $(wc -l <<<"$shapes") -eq 1 ]]; then
    printf '%s\\nmeasured %s' "$shapes" "$dates"
  else
    printf '%s carrel-bench runs (%s)\\nmeasured %s' \
      "$(awk -F'\t' -v s="$select" '(s == "ycsb") == ($2 ~ /^ycsb-/) {print $1}' "$WORK/all.tsv" | sort -u | wc -l)" \
      "${CARREL_CHARTS_SOURCE:-their commands are in the JSON results}" "$dates"
  fi
}

# bars NAME TITLE SUBTITLE YLABEL DATA... : clustered bars, one per engine, log y;
# several DATA files stack as panels (their panel titles in PANELS).
PANELS=()
bars() {
  local name=$1 title=$2 subtitle=$3 ylabel=$4
  shift 4
  local n=$# rows height lo hi
  rows=$(wc -l <"$1")
  height=$((n == 1 ? 640 : 120 + 380 * n))
  # Whole decades below the lowest bar, room above the highest for its label.
  # The values are each row's last ${#ENGINES[@]} fields (the label may hold spaces).
  read -r lo hi < <(cat "$@" | awk -v k="${#ENGINES[@]}" '{for (i = NF - k + 1; i <= NF; i++) if ($i != "NaN") {
      if (min == "" || $i < min) min = $i; if ($i > max) max = $i } }
    END { printf "%g %g\n", min < 2 ? 0.3 : 10 ^ int(log(min) / log(10)), max * 4 }')
  local width=$((rows > 8 ? 1500 : 1100))
  for term in png svg; do
    {
      if [[ $term == png ]]; then
        echo "set terminal pngcairo size $width,$height font 'sans,11' noenhanced"
      else
        echo "set terminal svg size $width,$height font 'sans,11' noenhanced background rgb 'white'"
      fi
      echo "set output '$OUT/$name.$term'"
      echo "set datafile missing 'NaN'"
      echo "set style data histograms"
      echo "set style histogram clustered gap 1"
      echo "set style fill solid 0.9 border rgb '#333333'"
      echo "set boxwidth 0.95 relative"
      echo "set logscale y"
      echo "set format y '%.0s%c'"
      echo "set grid ytics mytics lc rgb '#dddddd'"
      echo "set key at graph 1.0, graph 1.01 right bottom horizontal samplen 2"
      echo "set xtics nomirror scale 0"
      echo "set ytics nomirror"
      echo "set yrange [$lo:$hi]"
      echo "set bmargin 4.5"
      echo "set tmargin 3.5"
      echo "lbl(v) = v < 1 ? '<1' : v >= 1e6 ? sprintf('%.2fM', v / 1e6) : v >= 1e4 ? sprintf('%.0fk', v / 1e3) : sprintf('%.0f', v)"
      echo "set multiplot layout $n,1 title \"$title\\n$subtitle\" font ',13'"
      local i=0
      for data in "$@"; do
        local panel=${PANELS[$i]:-}
        echo "set title \"$panel\" font ',12'"
        echo "set ylabel \"$ylabel\""
        [[ $i -gt 0 ]] && echo "unset key"
        local plot="plot"
        # One bar per engine; a cluster of k bars and a gap of one bar puts
        # bar j at (j - (k - 1) / 2) / (k + 1) from the cluster's centre.
        local k=${#ENGINES[@]}
        for ((j = 0; j < k; j++)); do
          local c=$((j + 2)) off
          off=$(awk -v j="$j" -v k="$k" 'BEGIN { printf "%.3f", (j - (k - 1) / 2) / (k + 1) }')
          plot+=" '$data' using $c:xtic(1) title '${ENGINES[$j]}' lc rgb '${COLORS[$j]}',"
          plot+=" '' using (\$0 + $off):$c:(lbl(column($c))) notitle with labels offset 0,0.6 font ',8',"
        done
        echo "${plot%,}"
        i=$((i + 1))
      done
      echo "unset multiplot"
    } >"$WORK/$name.$term.gp"
    gnuplot "$WORK/$name.$term.gp"
  done
  echo "wrote $OUT/$name.png and $OUT/$name.svg" >&2
}

for select in ycsb other; do
  prefix=$([[ $select == ycsb ]] && echo "ycsb-" || echo "")
  table "$select" 4 >"$WORK/$select-ops.dat"
  [[ -s $WORK/$select-ops.dat ]] || continue
  what=$([[ $select == ycsb ]] && echo "YCSB core workloads" || echo "carrel-bench workloads")
  from=$(provenance "$select")
  [[ -n ${CARREL_CHARTS_NOTE:-} ]] && from+="\\n$CARREL_CHARTS_NOTE"
  if [[ $select == other ]]; then
    from+="\\nno bar: that engine did not run that workload (lmdb-raw and rocksdb run the KV ones only)"
  fi
  PANELS=("")
  bars "${prefix}throughput" "$what: throughput per engine (higher is better)" "$from" \
    "operations per second (log scale)" "$WORK/$select-ops.dat"
  table "$select" 5 >"$WORK/$select-p50.dat"
  table "$select" 6 >"$WORK/$select-p99.dat"
  table "$select" 7 >"$WORK/$select-p999.dat"
  PANELS=("median (p50)" "p99" "p99.9")
  bars "${prefix}latency" "$what: latency per engine, issue to acknowledgement (lower is better)" "$from" \
    "microseconds (log scale)" "$WORK/$select-p50.dat" "$WORK/$select-p99.dat" "$WORK/$select-p999.dat"
done
