#!/usr/bin/env bash
# Instructions per request: a figure that does not move with the machine's
# load. The real server runs under callgrind (valgrind) on a loopback port
# with a fresh data dir; a fixed client (benches/icount.py: one keep-alive
# connection, one request at a time, every status checked) sends N clicks
# (GET /c/b), N matched postbacks on those clicks (unique transaction IDs)
# and R report queries (group_by=campaign,day over the last 7 days).
# Start-up, seeding and a warm-up of each workload are not counted: the
# server starts with instrumentation off (--instr-atstart=no), and each
# workload is measured between a zero and a dump of callgrind's counters
# (callgrind_control -z / -d). Prints instructions per request by phase
# (how each phase is defined: benches/icount.py, at the top), and writes
# the figures as `name value` lines.
#
#   benches/icount.sh [BIN [N]]                 # print the table
#   benches/icount.sh --check BASELINE [BIN]    # and fail when a figure grew > 10%
#   benches/icount.sh --update-baseline [BIN]   # rewrite benches/icount-baseline.txt
#
# BIN (or ICOUNT_BIN): the postbackd binary; by default this builds the one
# the baseline is taken from: the release-lto musl build (the shipped
# binary) with its symbols kept (profile.release-lto.strip=false: stripping
# removes the symbol table, not one instruction, and the phases need names;
# the build needs musl-gcc and the musl target, README "Install").
# N (or ICOUNT_N): requests per write workload, default 2000; the figures
# move by 1-4% between 1000 and 5000 (a B-tree gains a level), so --check
# measures with the baseline's N. ICOUNT_REPORTS: report queries, default
# 200. ICOUNT_CONNS=C: C client connections at once instead of one, so
# writes share commits as under load (the figures then depend on how the
# batches fall, which timing decides: an A/B aid, not what --check uses;
# the writes per commit are printed and recorded). ICOUNT_OUT: where the figures go (default $CARGO_TARGET_DIR/icount.txt).
# ICOUNT_KEEP=DIR keeps the per-thread callgrind dumps there (read them with
# callgrind_annotate --inclusive=yes FILE). Needs valgrind (apt-get install
# valgrind), curl, python3, file and readelf. About a minute at the
# defaults (callgrind runs the server some 50-100 times slower).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/bench_server.sh

MODE=print
BASELINE=
case "${1:-}" in
  --check) MODE=check; BASELINE=$(realpath "$2"); shift 2 ;;
  --update-baseline) MODE=update; BASELINE=$(realpath benches/icount-baseline.txt); shift ;;
esac
BIN=${1:-${ICOUNT_BIN:-}}
N=${2:-${ICOUNT_N:-}}
REPORTS=${ICOUNT_REPORTS:-}
if [ "$MODE" = check ]; then
  # Measure what the baseline measured.
  read -r base_n base_reports < <(sed -n \
    's/^# n: \([0-9]*\) clicks, [0-9]* postbacks, \([0-9]*\) reports$/\1 \2/p' "$BASELINE") || true
  N=${N:-${base_n:-}}
  REPORTS=${REPORTS:-${base_reports:-}}
fi
N=${N:-2000}
CONNS=${ICOUNT_CONNS:-1}
# The baseline is the sequential client's (one write per commit).
[ "$MODE" = print ] || CONNS=1
REPORTS=${REPORTS:-200}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${ICOUNT_OUT:-$TARGET/icount.txt}
for t in valgrind callgrind_control curl python3 file readelf; do
  command -v $t >/dev/null ||
    { echo "icount: $t is needed (apt-get install valgrind curl python3 file binutils)" >&2; exit 1; }
done
if [ -z "$BIN" ]; then
  cargo build --quiet --config 'profile.release-lto.strip=false' \
    --profile release-lto --target x86_64-unknown-linux-musl --bin postbackd
  BIN=$TARGET/x86_64-unknown-linux-musl/release-lto/postbackd
fi
BIN=$(realpath "$BIN")
# What kind of binary this is: the toolchain (rustc's .comment), static or
# not, symbols or not. Instruction counts depend on all three, so the
# baseline records it and --check warns when it differs.
rustc_of=$(readelf -p .comment "$BIN" 2>/dev/null | sed -n 's/.*\(rustc version [^)]*)\).*/\1/p' | head -1)
case "$(file -b "$BIN")" in *static*) linkage=static ;; *) linkage=dynamic ;; esac
case "$(file -b "$BIN")" in *"not stripped"*) syms=symbols ;; *) syms=stripped ;; esac
KIND="${rustc_of:-rustc unknown}, $linkage, $syms"

PORT=18971
WORK=$(mktemp -d)
SPID=
cleanup() {
  if [ -n "$SPID" ]; then kill "$SPID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
# start_postbackd runs "$1 serve ...": a wrapper puts valgrind in front
# (exec: the server keeps the PID, which callgrind_control needs).
cat >"$WORK/postbackd-callgrind" <<WRAPPER
#!/bin/sh
exec valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes \
  --callgrind-out-file="\$CALLGRIND_OUT" "$BIN" "\$@"
WRAPPER
chmod +x "$WORK/postbackd-callgrind"

measure() { # FILE: one server, one client run; its figures go to FILE
  local run start=$SECONDS
  run=$(mktemp -d -p "$WORK")
  mkdir "$run/cg"
  # Upkeep once an hour: its sweeps would otherwise land in a measured
  # window. The other timers (the replay runner's 5 s poll, the
  # forwarder's 30 s idle poll) cost a few thousand instructions a
  # minute: below 0.01%. ICOUNT_SERVER_ARGS replaces the flag (a build
  # from before it existed: ICOUNT_SERVER_ARGS=).
  CALLGRIND_OUT="$run/cg/callgrind.out" EXTRA_ARGS="${ICOUNT_SERVER_ARGS---upkeep-interval-secs 3600}" START_TRIES=600 \
    start_postbackd "$WORK/postbackd-callgrind" "$PORT" "$run/data" "$run/server.log"
  seed_postbackd
  curl -sf -X PATCH "$API/api/v1/links/b" -H "$H" -d '{"campaign":"bench"}' >/dev/null
  python3 benches/icount.py drive --port "$PORT" --pid "$SPID" --key "$KEY" \
    --token "$BENCH_TOKEN" --n "$N" --reports "$REPORTS" --conns "$CONNS" \
    --batches "$run/batches" ||
    { echo "icount: the client failed; the server's log:" >&2; tail -30 "$run/server.log" >&2; exit 1; }
  kill "$SPID"
  wait "$SPID" 2>/dev/null || true
  SPID=
  if [ -n "${ICOUNT_KEEP:-}" ]; then
    mkdir -p "$ICOUNT_KEEP" && cp "$run"/cg/callgrind.out.* "$ICOUNT_KEEP"/
  fi
  python3 benches/icount.py fold --dir "$run/cg" --n "$N" --reports "$REPORTS" --out "$run/figures"
  mkdir -p "$(dirname "$1")"
  {
    echo "# kind: $KIND"
    echo "# n: $N clicks, $N postbacks, $REPORTS reports"
    [ "$CONNS" = 1 ] || echo "# conns: $CONNS"
    cat "$run/figures"
    [ "$CONNS" = 1 ] || cat "$run/batches"
  } >"$1"
  rm -rf "$run"
  echo "icount: figures in $1 ($((SECONDS - start)) s)" >&2
}

echo "icount: $BIN ($KIND), $N clicks, $N postbacks, $REPORTS reports" >&2
measure "$OUT"

case $MODE in
  check)
    base_kind=$(sed -n 's/^# kind: //p' "$BASELINE")
    if [ "$base_kind" != "$KIND" ]; then
      echo "icount: warning: the baseline was taken with \"$base_kind\", this binary is" \
        "\"$KIND\": the figures can differ for that reason alone" >&2
    fi
    echo
    if ! python3 benches/icount.py check "$BASELINE" "$OUT"; then
      # Chance only adds instructions (a wake-up that finds nothing to do,
      # a lock that spins): before failing, measure once more and compare
      # the smaller of the two.
      echo "icount: over the limit; measuring once more before failing" >&2
      measure "$OUT.2"
      echo
      python3 benches/icount.py check "$BASELINE" "$OUT" "$OUT.2"
    fi
    ;;
  update)
    {
      cat <<HEADER
# Instructions per request (callgrind Ir), the baseline of
# benches/icount.sh --check, which .ci/run runs: CI fails when a checked
# figure (each workload's total, tokio workers, writer thread, blocking pool)
# grows more than 10% over this file. Per request; the phases are defined at
# the top of benches/icount.py (printed for information, not checked).
#
# Taken with the release-lto musl build with its symbols (the shipped
# binary's code; CI measures the same build, before packaging strips it):
#   cargo build --config 'profile.release-lto.strip=false' --profile release-lto --target x86_64-unknown-linux-musl
#   benches/icount.sh --update-baseline
# $KIND; $(valgrind --version); $(date -u +%F), commit $(git rev-parse --short HEAD).
#
# Update it deliberately, in a commit of its own whose message says why (the
# change that moved the figures, or a new toolchain): run the two commands
# above and commit this file alone. Never just to make a failing check pass.
HEADER
      cat "$OUT"
    } >"$BASELINE"
    echo "icount: wrote $BASELINE" >&2
    ;;
esac
