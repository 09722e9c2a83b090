#!/usr/bin/env bash
# Regenerate the README's dashboard screenshots (docs/screenshots/*.png):
# the browser test, walked with SCREENSHOTS set, against a debug build.
#   bash tests/browser/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build
out="$PWD/docs/screenshots"
mkdir -p "$out"
SCREENSHOTS="$out" bash tests/browser/run.sh target/debug/postbackd dashboard.test.mjs
ls -l "$out"
