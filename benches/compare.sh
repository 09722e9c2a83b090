#!/usr/bin/env bash
# Two builds in one session: durable clicks/s and matched postbacks/s (wrk,
# 32 connections) and peak RSS of this build and of a baseline binary (e.g.
# the build before a change, from a `git worktree`), alternating runs so
# both see the same machine, then the ratios. The bar of the reports issue:
# this build within 10% of the baseline.
#
#   benches/compare.sh BASELINE_BIN [seconds per run, default 10] [rounds, default 2]
#   (or BASELINE=... benches/load.sh, which runs this after its table)
#
# Extra server flags for this build only (e.g. a country database):
#   NEW_ARGS="--geoip-db /path/country.mmdb" benches/compare.sh ...
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/bench_server.sh
BASE_BIN=$(realpath "$1")
SECS=${2:-10}
ROUNDS=${3:-2}
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet --bin postbackd
NEW_BIN=$(realpath "${NEW_BIN:-target/release/postbackd}")
PORT=18941
WORK=$(mktemp -d)
SPID=
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

rps() { # conns url [script]
  local out
  if [ -n "${3:-}" ]; then out=$(wrk -t2 -c"$1" -d"${SECS}s" -s "$3" "$2"); else out=$(wrk -t2 -c"$1" -d"${SECS}s" "$2"); fi
  echo "$out" | awk '/Requests\/sec/ {print $2}'
}

one() { # bin label round
  local dir="$WORK/$2-$3"
  # shellcheck disable=SC2086
  EXTRA_ARGS="$([ "$2" = new ] && echo "${NEW_ARGS:-}")" start_postbackd "$1" "$PORT" "$dir" "$WORK/$2.log"
  seed_postbackd
  local c p rss
  c=$(rps 32 "$API/c/b")
  p=$(RUN="$2$3" KEY=$KEY CLICK=$CLICK rps 32 "$API" benches/wrk/postback.lua)
  rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$SPID/status)
  kill "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=
  echo "$2 $3 $c $p $rss" | tee -a "$WORK/results"
}

for r in $(seq "$ROUNDS"); do
  one "$BASE_BIN" base "$r"
  one "$NEW_BIN" new "$r"
done
awk '
  { c[$1]+=$3; p[$1]+=$4; if ($5>rss[$1]) rss[$1]=$5; n[$1]++ }
  END {
    printf "\n| build | clicks/s (mean of %d) | matched postbacks/s | peak RSS MiB |\n|---|---|---|---|\n", n["new"]
    printf "| baseline | %.0f | %.0f | %.1f |\n", c["base"]/n["base"], p["base"]/n["base"], rss["base"]
    printf "| this build | %.0f | %.0f | %.1f |\n", c["new"]/n["new"], p["new"]/n["new"], rss["new"]
    printf "| ratio | %.3f | %.3f | |\n", (c["new"]/n["new"])/(c["base"]/n["base"]), (p["new"]/n["new"])/(p["base"]/n["base"])
  }' "$WORK/results"
