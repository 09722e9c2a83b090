#!/usr/bin/env bash
# End-to-end check of click quality with a real country database: fetches
# the CC0 geo-whois-asn-country mmdb from the npm registry (README, "A
# country database"), starts the binary with geoip_db set behind a trusted
# proxy, and checks a click's country, device and bot flag. `cargo test`
# covers the same paths on a generated database; this catches a real file
# the reader or the record shape does not understand. Skipped with a note
# when npm is missing or the fetch fails (no network is not a code bug).
# Usage: .ci/geoip-e2e.sh [path/to/postbackd]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/debug/postbackd}")
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
PID=
cd "$WORK"
if ! command -v npm >/dev/null 2>&1; then
  echo "geoip e2e skipped: npm not installed"; exit 0
fi
if ! npm pack --silent @ip-location-db/geo-whois-asn-country-mmdb > pack.txt 2> pack.err; then
  echo "geoip e2e skipped: npm pack failed: $(tail -1 pack.err)"; exit 0
fi
tar xzf "$(tail -1 pack.txt)"
DB="$WORK/package/geo-whois-asn-country.mmdb"
PORT=18089
POSTBACKD_ADMIN_TOKEN=ci-geoip-token-0123456789 "$BIN" serve --listen 127.0.0.1:$PORT \
  --data-dir "$WORK/data" --geoip-db "$DB" --trusted-proxies 127.0.0.1 > serve.log 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
API=http://127.0.0.1:$PORT
AUTH="Authorization: Bearer ci-geoip-token-0123456789"
curl -sf -X POST $API/api/v1/links -H "$AUTH" \
  -d '{"slug": "geo", "destination": "https://offer.example/?s={click_id}"}' > /dev/null
click() {
  local id
  id=$(curl -s -o /dev/null -D - "$API/c/geo" -H "X-Forwarded-For: $1" -H "User-Agent: $2" \
    | tr -d '\r' | sed -n 's/^x-postbackd-click-id: //Ip')
  curl -sf "$API/api/v1/clicks/$id" -H "$AUTH"
}
IPHONE='Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1'
check() {
  python3 -c 'import json,sys; c=json.loads(sys.argv[1]); want=json.loads(sys.argv[2]); got={k: c[k] for k in want}; sys.exit(0 if got == want else f"got {got}, want {want}")' "$1" "$2"
}
check "$(click 8.8.8.8 "$IPHONE")" '{"country": "US", "device": "mobile", "bot": false, "unique": true}'
check "$(click 2001:4860:4860::8888 curl/8.5.0)" '{"country": "US", "device": "bot", "bot": true, "unique": false}'
check "$(click 10.0.0.1 "$IPHONE")" '{"country": null}'
grep -q "country database loaded" serve.log || { cat serve.log; exit 1; }
echo "geoip e2e: ok (debug binary, database loaded: peak RSS $(awk '/VmHWM/ {print $2, $3}' /proc/$PID/status))"
