#!/usr/bin/env bash
# Where the server's CPU goes, per request: a sampling profile (perf,
# cpu-clock, frame-pointer call graphs) of the release server under wrk at
# 32 connections, for clicks and for matched postbacks, folded by
# benches/fold_profile.py into writer phases (jobs, commit, fsync) and
# handler phases (HTTP read/write, request code, scheduling).
#
#   benches/profile.sh [seconds per run, default 8]
#
# Needs wrk and perf (Debian: apt-get install wrk linux-perf). cpu-clock
# works on VMs without hardware counters. The build goes to
# target/profile-build (frame pointers + line tables: a different binary
# from the release one, so its own cache).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/bench_server.sh
SECS=${1:-8}
for t in wrk perf; do command -v $t >/dev/null || { echo "install $t (apt-get install wrk linux-perf)" >&2; exit 1; }; done
export CARGO_TARGET_DIR=target/profile-build
RUSTFLAGS="-C force-frame-pointers=yes" CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  cargo build --release --quiet --bin postbackd
BIN=$CARGO_TARGET_DIR/release/postbackd
PORT=18951
WORK=$(mktemp -d)
SPID=
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
start_postbackd "$BIN" "$PORT" "$WORK/data" "$WORK/server.log"
seed_postbackd
wrk -t2 -c32 -d2s $API/c/b >/dev/null # warm up

profile() { # name, then the wrk arguments
  local name=$1; shift
  perf record -q -e cpu-clock -F 2000 -g -o "$WORK/$name.data" -p "$SPID" -- sleep "$SECS" 2>/dev/null &
  local pp=$!
  local out n w0 w1
  w0=$(server_stats)
  out=$(wrk -t2 -c32 -d"${SECS}s" "$@")
  wait $pp
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  echo
  echo "== $name: $(echo "$out" | awk '/Requests\/sec/ {print $2}') requests/s, $n requests while sampled"
  w1=$(server_stats)
  echo "$w0 $w1" | awk -v s="$SECS" '{c=$8-$3; w=$9-$4; u=$10-$5; printf "writer: %d commits/s, %.1f writes per commit, %.0f µs per batch (apply + commit + fsync), busy %.0f%% of the time\n", c/s, w/c, u/c, u/(s*1e4)}'
  perf script -i "$WORK/$name.data" 2>/dev/null | python3 benches/fold_profile.py "$n" 12
}
profile clicks "$API/c/b"
RUN=prof KEY=$KEY CLICK=$CLICK profile postbacks -s benches/wrk/postback.lua "$API"
echo
