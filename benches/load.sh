#!/usr/bin/env bash
# Quick load run: release binary on a fresh data dir, wrk against clicks and
# matched postbacks, then the writer's commit batching figures.
# Usage: benches/load.sh [connections] [seconds]
# (The full harness with the bare-hyper ceiling is the benchmarks issue.)
set -euo pipefail
cd "$(dirname "$0")/.."
CONN=${1:-32}
SECS=${2:-10}
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet
DIR=$(mktemp -d)
PORT=18931
TOKEN=bench-admin-token-0123456789
POSTBACKD_RATE_LIMIT_CLICK_IP=off POSTBACKD_RATE_LIMIT_POSTBACK_IP=off POSTBACKD_RATE_LIMIT_SOURCE=off POSTBACKD_ADMIN_TOKEN=$TOKEN POSTBACKD_LOG=warn target/release/postbackd serve --listen 127.0.0.1:$PORT --data-dir "$DIR" >/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$DIR"' EXIT
API=http://127.0.0.1:$PORT
for _ in $(seq 50); do curl -sf $API/healthz >/dev/null && break; sleep 0.1; done
H="Authorization: Bearer $TOKEN"
curl -sf -X POST $API/api/v1/sources -H "$H" -d '{"name":"bench"}' >/dev/null
KEY=$(curl -sf $API/api/v1/sources/1 -H "$H" | sed -E 's/.*"key":"([0-9a-f]+)".*/\1/')
curl -sf -X POST $API/api/v1/links -H "$H" -d '{"slug":"b","destination":"https://offer.example/?s={click_id}"}' >/dev/null
CLICK=$(curl -s -o /dev/null -D - $API/c/b | tr -d '\r' | awk -F': ' 'tolower($1)=="x-postbackd-click-id"{print $2}')

stats() { curl -sf $API/api/v1/stats -H "$H"; echo; }
echo "== clicks: wrk -t2 -c$CONN -d${SECS}s $API/c/b"
before=$(stats)
wrk -t2 -c"$CONN" -d"${SECS}s" --latency $API/c/b | grep -E 'Requests/sec|Latency|99%|50%|Non-2xx'
echo "writer before: $before"
echo "writer after:  $(stats)"
echo "== matched postbacks: wrk -t2 -c$CONN -d${SECS}s (unique transaction IDs)"
before=$(stats)
KEY=$KEY CLICK=$CLICK wrk -t2 -c"$CONN" -d"${SECS}s" --latency -s benches/wrk/postback.lua $API | grep -E 'Requests/sec|Latency|99%|50%|Non-2xx'
echo "writer before: $before"
echo "writer after:  $(stats)"
echo "disk: $(du -b "$DIR/postbackd.redb" | cut -f1) bytes"
