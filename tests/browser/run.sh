#!/usr/bin/env bash
# Browser tests: every tests/browser/*.test.mjs under node's test runner,
# against the postbackd binary given, in the system's Chromium
# (/usr/bin/chromium, or $CHROMIUM; never a downloaded browser).
#   tests/browser/run.sh target/debug/postbackd [dashboard.test.mjs ...]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 POSTBACKD_BINARY [TEST_FILE...]" >&2; exit 2; }
bin=$(realpath "$1")
shift
[ -x "$bin" ] || { echo "$bin is not an executable" >&2; exit 2; }
cd "$(dirname "$0")"
# npm ci only when node_modules is not the locked install: offline-safe
# once installed, and playwright-core downloads no browser on install.
locked_ok() {
  node -e '
    const lock = require("./package-lock.json").packages;
    for (const [path, meta] of Object.entries(lock)) {
      if (!path) continue;
      const have = require("./" + path + "/package.json").version;
      if (have !== meta.version) process.exit(1);
    }' 2>/dev/null
}
if ! locked_ok; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --prefer-offline
fi
export POSTBACKD_BIN="$bin"
if [ $# -gt 0 ]; then exec node --test "$@"; fi
exec node --test ./*.test.mjs
