#!/usr/bin/env bash
# Like-for-like race: workerd (../shared/peer-workerd, from npm) and carrel-serve,
# same machine, same wrk settings, sync durability on both, in one go.
# Usage: bench/http/run.sh [seconds] [carrel-serve binary]
#   default binary: build-release/tools/serve/carrel-serve
# Rows: kv put across 1000 objects, one hot object (wrk -t2 -c64 --latency);
# chat post over WebSocket and bytes per idle hibernated socket (carrel-serve only:
# the peer's worker.js has no WebSocket).
set -eu
S=${1:-10}
repo=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${2:-$repo/build-release/tools/serve/carrel-serve}
# The peer's files: PEER_SRC, else ../shared/peer-workerd beside the repository
# (or beside its worktree folder).
peer=${PEER_SRC:-}
for c in "$repo/../shared/peer-workerd" "$repo/../../shared/peer-workerd"; do
  [ -z "$peer" ] && [ -f "$c/worker.js" ] && peer=$c
done
[ -n "$peer" ] || { echo "run.sh: set PEER_SRC to the peer-workerd folder" >&2; exit 2; }
W=${PEER_DIR:-${TMPDIR:-/tmp}/peer-workerd}
WRK="wrk -t2 -c64 -d${S}s --latency"
summary() { grep -E "Requests/sec|  50%|  99%" | tr -s ' ' | paste -sd' '; }

mkdir -p "$W/data"
( cd "$W"
  if [ ! -x node_modules/@cloudflare/workerd-linux-64/bin/workerd ]; then
    npm init -y >/dev/null 2>&1; npm install workerd >/dev/null 2>&1
  fi
  cp "$peer"/worker.js "$peer"/rnd.lua "$peer"/hot.lua .
  sed "s|DATA_DIR|$W/data|" "$peer"/config.capnp > config.capnp
  rm -rf data/* )

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "== workerd $("$W"/node_modules/@cloudflare/workerd-linux-64/bin/workerd --version)"
( cd "$W" && exec setsid node_modules/@cloudflare/workerd-linux-64/bin/workerd serve config.capnp >wd.log 2>&1 ) &
wpid=$!; pids+=($wpid); sleep 3
echo "workerd kv put, 1000 objects: $($WRK -s "$W"/rnd.lua http://127.0.0.1:18787 | summary)"
echo "workerd kv put, one hot object: $($WRK -s "$W"/hot.lua http://127.0.0.1:18787 | summary)"
kill $wpid; wait $wpid 2>/dev/null || true

D=$(mktemp -d "${TMPDIR:-/tmp}/carrel-serve-bench.XXXXXX")
"$BIN" --dir "$D" --listen 127.0.0.1:0 --idle-timeout-ms 1000 > "$D.out" 2>&1 &
cpid=$!; pids+=($cpid)
for _ in $(seq 100); do grep -q listening "$D.out" && break; sleep 0.1; done
port=$(grep -o '127.0.0.1:[0-9]*' "$D.out" | head -1 | cut -d: -f2)
echo "== carrel-serve ($BIN, sync durability) on port $port"
echo "carrel-serve kv put, 1000 objects: $($WRK -s "$repo"/bench/http/put_rnd.lua http://127.0.0.1:$port | summary)"
echo "carrel-serve kv put, one hot object: $($WRK -s "$repo"/bench/http/put_hot.lua http://127.0.0.1:$port | summary)"
python3 "$repo"/bench/http/ws_chat.py "$port" "$cpid" "$S" 64 1000
kill -TERM $cpid; wait $cpid 2>/dev/null || true
rm -rf "$D" "$D.out"
