# Sourced by benches/load.sh and benches/profile.sh: start a postbackd for
# load (rate limits off: one client IP would be limited, correctly), then
# seed a source, a link and one click.
#
#   start_postbackd BIN PORT DATA_DIR LOG   -> sets SPID, API, H (auth header)
#                                              (EXTRA_ARGS: more serve flags;
#                                              START_TRIES: 0.1 s waits, default 100)
#   seed_postbackd                          -> sets KEY (source key), CLICK
BENCH_TOKEN=bench-admin-token-0123456789

start_postbackd() {
  POSTBACKD_RATE_LIMIT_CLICK_IP=off POSTBACKD_RATE_LIMIT_POSTBACK_IP=off POSTBACKD_RATE_LIMIT_SOURCE=off \
    POSTBACKD_ADMIN_TOKEN=$BENCH_TOKEN POSTBACKD_LOG=warn \
    "$1" serve --listen "127.0.0.1:$2" --data-dir "$3" ${EXTRA_ARGS:-} >"$4" 2>&1 &
  SPID=$!
  API=http://127.0.0.1:$2
  H="Authorization: Bearer $BENCH_TOKEN"
  for _ in $(seq "${START_TRIES:-100}"); do curl -sf "$API/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "postbackd did not start; its log:" >&2
  cat "$4" >&2
  return 1
}

seed_postbackd() {
  curl -sf -X POST "$API/api/v1/sources" -H "$H" -d '{"name":"bench"}' >/dev/null
  KEY=$(curl -sf "$API/api/v1/sources" -H "$H" | sed -E 's/.*"key":"([0-9a-f]+)".*/\1/')
  curl -s -X POST "$API/api/v1/links" -H "$H" -d '{"slug":"b","destination":"https://offer.example/?s={click_id}"}' >/dev/null
  CLICK=$(curl -s -o /dev/null -D - "$API/c/b" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-postbackd-click-id"{print $2}')
}

# One /api/v1/stats request: "clicks conversions commits committed_writes
# busy_µs" (busy: the writer's time in batches, apply + commit + fsync).
server_stats() {
  local j
  j=$(curl -s "$API/api/v1/stats" -H "$H")
  echo "$j" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["clicks"], d["conversions"], d["commits"], d["committed_writes"], round(d["avg_commit_ms"] * d["commits"] * 1000))' ||
    { echo "stats failed: $j" >&2; return 1; }
}
