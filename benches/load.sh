#!/usr/bin/env bash
# Load harness (one command): builds the release binaries, measures the
# ceiling (a bare hyper server answering the same 302 without storage,
# benches/ceiling.rs) and the durable ceiling (the same, each 302 after a
# group-committed append + fdatasync, `ceiling --journal`), then postbackd on a fresh data dir (or DATA_DIR, e.g.
# the 10M-click database from benches/scale.rs), with wrk at 8 and 32
# connections against clicks (the /c/ redirect, and the page tag's
# POST /e/click beacon) and against matched postbacks, and paced runs
# at 80% of each measured maximum for their p99 (benches/paced.rs: a
# constant-rate generator, latency corrected for coordinated omission).
# Also probes the disk's own fdatasync latency, alone and beside the
# ceiling under wrk (benches/fsync_probe.rs), to tell a tail postbackd
# causes from one the platform causes. Prints one table.
#
#   benches/load.sh [seconds per run, default 10]
#   BASELINE=/path/to/postbackd benches/load.sh   (also compares two builds)
#
# Needs wrk (Debian: apt-get install wrk). Rate limits are switched off (one
# client IP would be limited, correctly). Figures vary with the machine; the
# README's come from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/bench_server.sh
SECS=${1:-10}
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet --bin postbackd
cargo bench --quiet --no-run --bench ceiling --bench paced --bench fsync_probe 2>/dev/null
CEILING=$(ls -t target/release/deps/ceiling-* | grep -v '\.d$' | head -1)
PACED=$(ls -t target/release/deps/paced-* | grep -v '\.d$' | head -1)
PROBE=$(ls -t target/release/deps/fsync_probe-* | grep -v '\.d$' | head -1)
PORT=18931
CPORT=18932
WORK=$(mktemp -d)
DIR=${DATA_DIR:-$WORK/data}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# wrk one run: prints "rps p50_ms p99_ms non2xx3xx"
run_wrk() { # conns url [script]
  local out
  if [ -n "${3:-}" ]; then
    out=$(wrk -t2 -c"$1" -d"${SECS}s" --latency -s "$3" "$2")
  else
    out=$(wrk -t2 -c"$1" -d"${SECS}s" --latency "$2")
  fi
  local rps p50 p99 bad
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  bad=$(echo "$out" | awk '/Non-2xx or 3xx/ {print $5}')
  local total
  total=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$rps $(to_ms "$p50") $(to_ms "$p99") ${bad:-0} $total"
}
to_ms() { # wrk prints 512.00us / 1.23ms / 2.01s
  case "$1" in
    *us) echo "${1%us}" | awk '{printf "%.3f", $1/1000}' ;;
    *ms) echo "${1%ms}" | awk '{printf "%.3f", $1}' ;;
    *s) echo "${1%s}" | awk '{printf "%.3f", $1*1000}' ;;
    *) echo "$1" ;;
  esac
}

wait_ceiling() { for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$CPORT/c/b" && break; sleep 0.1; done; }

echo "== ceiling: bare hyper, same 302, no storage"
"$CEILING" "127.0.0.1:$CPORT" >/dev/null &
PIDS+=($!)
wait_ceiling
read -r C8 _ _ _ _ < <(run_wrk 8 "http://127.0.0.1:$CPORT/c/b")
read -r C32 C32P50 C32P99 _ _ < <(run_wrk 32 "http://127.0.0.1:$CPORT/c/b")
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true
# The durable ceiling: the same server, but each 302 waits for its record's
# group-committed append + fdatasync on the data dir's file system (no
# index): what the disk leaves any durable design (benches/ceiling.rs).
JDIR=$(dirname "$DIR")/journal
mkdir -p "$JDIR"
"$CEILING" "127.0.0.1:$CPORT" --journal "$JDIR" >/dev/null &
PIDS[0]=$!
wait_ceiling
read -r J32 J32P50 J32P99 _ _ < <(run_wrk 32 "http://127.0.0.1:$CPORT/c/b")
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true
rm -rf "$JDIR"
"$CEILING" "127.0.0.1:$CPORT" >/dev/null &
PIDS[0]=$!
wait_ceiling
# The disk without postbackd: a commit-sized write + fdatasync loop on the
# data dir's file system, alone, then while wrk saturates the CPUs against
# the ceiling. Prints "commits/s p50_us p99_us max_us slow_windows windows".
PROBE_DIR=$(dirname "$DIR")
mkdir -p "$PROBE_DIR"
read -r _ F0P50 F0P99 F0MAX F0SLOW F0WIN < <("$PROBE" "$PROBE_DIR" "$SECS")
wrk -t2 -c32 -d"$((SECS + 1))s" "http://127.0.0.1:$CPORT/c/b" >/dev/null &
WRKPID=$!
read -r _ F1P50 F1P99 F1MAX F1SLOW F1WIN < <("$PROBE" "$PROBE_DIR" "$SECS")
wait $WRKPID
kill "${PIDS[0]}"

echo "== postbackd (data dir $DIR)"
start_postbackd target/release/postbackd "$PORT" "$DIR" "$WORK/server.log"
PIDS+=($SPID)
seed_postbackd
# p99 at 80% of the maximum: a constant-rate generator (benches/paced.rs),
# 32 connections, latency from each request's due time. "Max" is measured
# with that same client, closed-loop: its CPU is not wrk's, and on 2 shared
# cores 80% of wrk's figure can be the paced client's 100%.
# Prints "max target rps p50 p99 non2xx errors".
paced_at_80() { # url for the max run, url for the paced run
  local max target rps p50 p99 bad err
  read -r max _ _ _ _ _ _ _ < <("$PACED" "$1" max 32 "$SECS")
  target=$(awk -v r="$max" 'BEGIN{printf "%d", r*0.8}')
  read -r rps p50 p99 _ _ bad err _ < <("$PACED" "$2" "$target" 32 "$SECS")
  echo "$max $target $rps $p50 $p99 $bad $err"
}

STATS=$(server_stats)
read -r c0 _ k0 j0 _ <<<"$STATS"
read -r P8 P8P50 P8P99 BAD8 N8 < <(run_wrk 8 "$API/c/b")
read -r P32 P32P50 P32P99 BAD32 N32 < <(run_wrk 32 "$API/c/b")
STATS=$(server_stats)
read -r c1 _ k1 j1 _ <<<"$STATS"
CLICKS_SIZE=$(stat -c %s "$DIR/postbackd.redb")
BATCH_CLICKS=$(awk -v j="$((j1-j0))" -v k="$((k1-k0))" 'BEGIN{printf "%.1f", j/k}')
SERVED=$((N8 + N32 - BAD8 - BAD32))
STORED=$((c1 - c0))

read -r PMAX TARGET P80 P80P50 P80P99 P80BAD P80ERR < <(paced_at_80 "$API/c/b" "$API/c/b")

# The page tag's beacon (benches/wrk/tag_click.lua): the click job of /c/
# behind a CORS check and a JSON body, with the same promise (each 200 is
# a stored click).
curl -sf -X PATCH "$API/api/v1/links/b" -H "$H" -d '{"tag_origins":["https://lp.bench.example"]}' >/dev/null
STATS=$(server_stats)
read -r e0 _ k0 j0 _ <<<"$STATS"
read -r T8 T8P50 T8P99 TBAD8 TN8 < <(run_wrk 8 "$API/e/click" benches/wrk/tag_click.lua)
read -r T32 T32P50 T32P99 TBAD32 TN32 < <(run_wrk 32 "$API/e/click" benches/wrk/tag_click.lua)
STATS=$(server_stats)
read -r e1 _ k1 j1 _ <<<"$STATS"
BATCH_TAG=$(awk -v j="$((j1-j0))" -v k="$((k1-k0))" 'BEGIN{printf "%.1f", j/k}')
TSERVED=$((TN8 + TN32 - TBAD8 - TBAD32))
TSTORED=$((e1 - e0))

STATS=$(server_stats)
read -r _ v0 k0 j0 _ <<<"$STATS"
read -r Q8 Q8P50 Q8P99 _ QN8 < <(RUN=a KEY=$KEY CLICK=$CLICK run_wrk 8 "$API" benches/wrk/postback.lua)
read -r Q32 Q32P50 Q32P99 QBAD QN32 < <(RUN=b KEY=$KEY CLICK=$CLICK run_wrk 32 "$API" benches/wrk/postback.lua)
STATS=$(server_stats)
read -r _ v1 k1 j1 _ <<<"$STATS"
PB="$API/p/$KEY?click_id=$CLICK&amount=1.50&transaction_id"
read -r QMAX QTARGET Q80 Q80P50 Q80P99 Q80BAD Q80ERR < <(paced_at_80 "$PB=pacedmax{n}" "$PB=paced{n}")
BATCH_PB=$(awk -v j="$((j1-j0))" -v k="$((k1-k0))" 'BEGIN{printf "%.1f", j/k}')

RSS=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$SPID/status)
STATS=$(server_stats)
read -r TOTAL_CLICKS _ <<<"$STATS"
kill $SPID; wait $SPID 2>/dev/null || true
SIZE=$(stat -c %s "$DIR/postbackd.redb")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
echo
echo "| load (${SECS} s each) | requests/s | p50 ms | p99 ms | ratio to ceiling | writes per commit |"
echo "|---|---|---|---|---|---|"
echo "| ceiling 302, 8 conns | $C8 | | | 1.00 | - |"
echo "| ceiling 302, 32 conns | $C32 | $C32P50 | $C32P99 | 1.00 | - |"
echo "| durable ceiling (group-committed append + fdatasync, no index), 32 conns | $J32 | $J32P50 | $J32P99 | $(ratio "$J32" "$C32") | |"
echo "| clicks, 8 conns | $P8 | $P8P50 | $P8P99 | $(ratio "$P8" "$C8") | |"
echo "| clicks, 32 conns | $P32 | $P32P50 | $P32P99 | $(ratio "$P32" "$C32") | $BATCH_CLICKS (8+32 runs) |"
echo "| clicks at 80% of max (paced: max $PMAX/s, target $TARGET/s) | $P80 | $P80P50 | $P80P99 | | |"
echo "| tag beacons (POST /e/click), 8 conns | $T8 | $T8P50 | $T8P99 | $(ratio "$T8" "$C8") | |"
echo "| tag beacons (POST /e/click), 32 conns | $T32 | $T32P50 | $T32P99 | $(ratio "$T32" "$C32") | $BATCH_TAG (8+32 runs) |"
echo "| matched postbacks, 8 conns | $Q8 | $Q8P50 | $Q8P99 | $(ratio "$Q8" "$C8") | |"
echo "| matched postbacks, 32 conns | $Q32 | $Q32P50 | $Q32P99 | $(ratio "$Q32" "$C32") | $BATCH_PB (8+32 runs) |"
echo "| matched postbacks at 80% of max (paced: max $QMAX/s, target $QTARGET/s) | $Q80 | $Q80P50 | $Q80P99 | | |"
echo
echo "fdatasync of a commit-sized write, no postbackd: alone p50 $F0P50 µs, p99 $F0P99 µs, max $F0MAX µs, $F0SLOW of $F0WIN 100-ms windows slow (mean > 1.5 × median);"
echo "  beside wrk against the ceiling: p50 $F1P50 µs, p99 $F1P99 µs, max $F1MAX µs, $F1SLOW of $F1WIN windows slow"
echo "against the durable ceiling (32 conns): clicks $(ratio "$P32" "$J32"), tag beacons $(ratio "$T32" "$J32"), matched postbacks $(ratio "$Q32" "$J32")"
echo "paced runs: clicks $P80BAD non-2xx/3xx, $P80ERR errors; postbacks $Q80BAD non-2xx, $Q80ERR errors"
echo "302s served $SERVED, clicks stored $STORED (stored may exceed served by requests in flight when wrk stopped)"
echo "tag beacons answered 200 $TSERVED, clicks stored $TSTORED (non-200: $((TBAD8 + TBAD32)))"
echo "conversions stored $((v1 - v0)) for $((QN8 + QN32 - QBAD)) postbacks answered 2xx"
echo "after the click runs: database $CLICKS_SIZE bytes for $c1 clicks: $(awk -v s="$CLICKS_SIZE" -v c="$c1" 'BEGIN{printf "%.0f", s/c}') bytes/click"
echo "peak RSS $RSS MiB; database $SIZE bytes for $TOTAL_CLICKS clicks (+ conversions and events): $(awk -v s="$SIZE" -v c="$TOTAL_CLICKS" 'BEGIN{printf "%.0f", s/c}') bytes/click"
# Two builds in one session (BASELINE=/path/to/old/postbackd): see
# benches/compare.sh.
if [ -n "${BASELINE:-}" ]; then
  kill "${PIDS[@]}" 2>/dev/null || true
  bash benches/compare.sh "$BASELINE" "$SECS"
fi
