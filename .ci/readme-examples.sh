#!/usr/bin/env bash
# Runs the README's walkthrough, reports and signing examples verbatim against a
# fresh server on the embedded defaults (127.0.0.1:8080), and checks every
# postback in them is matched. Languages whose interpreter is missing are
# skipped with a note. Usage: .ci/readme-examples.sh [path/to/postbackd]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/debug/postbackd}")
README=$(realpath README.md)
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
"$BIN" serve > serve.log 2>&1 &
PID=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:8080/healthz >/dev/null && break; sleep 0.1; done
python3 - "$README" "$WORK" <<'PY'
import re, shutil, sys
readme, work = open(sys.argv[1]).read(), sys.argv[2]
blocks = re.findall(r"```(\w+)\n(.*?)```", readme, re.S)
walk = next(b for l, b in blocks if l == "sh" and "TOKEN=$(cat postbackd-data/admin_token)" in b)
sec = readme[readme.index("## Security"):readme.index("## Configuration")]
sblocks = re.findall(r"```(\w+)\n(.*?)```", sec, re.S)
rep = readme[readme.index("## Reports and costs"):readme.index("## Security")]
reports = next(b for l, b in re.findall(r"```(\w+)\n(.*?)```", rep, re.S) if l == "sh")
script = "set -e\n" + walk + "\n" + reports + "\nprintf '\\nREPORTS-DONE\\n'\n" + sblocks[0][1] + "\n"
runners = {"python": "python3", "php": "php", "js": "node"}
for i, (lang, code) in enumerate(sblocks[1:]):
    if lang == "sh" and "MSG=" in code:
        script += code + "\necho\n"
    elif lang in runners:
        if not shutil.which(runners[lang]):
            print(f"skipped: {lang} example ({runners[lang]} not installed)", file=sys.stderr)
            continue
        path = f"{work}/example_{i}.{lang}"
        open(path, "w").write(code)
        script += f"{runners[lang]} {path}\n"
open(f"{work}/run.sh", "w").write(script)
# One matched postback from the walkthrough, one per example that runs.
open(f"{work}/expected", "w").write(str(1 + script.count("\necho\n") + sum(script.count(r + " ") for r in runners.values())))
PY
bash "$WORK/run.sh" > out.txt 2>&1 || { cat out.txt; exit 1; }
matched=$(grep -c '"result":"matched"' out.txt || true)
# The reports examples answered reports (JSON rows, a CSV header) before the signing part ran.
grep -q '"rows":\[' out.txt && grep -q '^campaign,day,clicks' out.txt && grep -q REPORTS-DONE out.txt \
  || { cat out.txt; echo "README report examples failed" >&2; exit 1; }
expected=$(cat expected)
echo "README examples: $matched of $expected postbacks matched"
if grep -qE '"error"' out.txt || [ "$matched" -ne "$expected" ]; then
  cat out.txt
  echo "README examples failed" >&2
  exit 1
fi
