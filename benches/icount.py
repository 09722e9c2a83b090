#!/usr/bin/env python3
"""Instructions per request (callgrind), for benches/icount.sh.

    icount.py drive --port P --pid PID --key KEY --token T --n N --reports R
        The fixed client: one keep-alive HTTP/1.1 connection, one request at
        a time, every status checked. For each workload it warms up, zeroes
        callgrind's counters (callgrind_control -z), sends the measured
        requests and dumps the counters (callgrind_control -d WORKLOAD), so a
        dump holds that workload's requests and nothing else the client did.
    icount.py fold --dir DIR --n N --reports R [--out FILE]
        Reads the per-thread dumps (callgrind --separate-threads=yes), prints
        the Markdown table of instructions per request by phase and writes
        `name value` lines to FILE.
    icount.py check BASELINE RESULT [RESULT...]
        Compares the smallest value of each figure over the RESULTs with
        BASELINE (all `name value` files); exits 1, naming the figure, when
        a checked figure (each workload's total and thread groups: tokio
        workers, writer, blocking pool) grew more than 10%.

How the phases are defined (all counts are user-space instructions of the
server process, `Ir`, divided by the workload's request count; the kernel's
work in system calls, e.g. the disk flush itself, is not counted):

  Each dump file is one thread (--separate-threads=yes), classified by what
  ran in it: the writer thread is the one that ran redb's
  WriteTransaction::commit; tokio workers ran tokio's multi_thread worker;
  the blocking pool (spawn_blocking: Store::read, the reports' read
  transactions) ran tokio tasks outside a worker; anything else (the main
  thread, the user-agent warm-up thread) is "other threads".

  On the tokio workers:
    HTTP      hyper-util's Connection::poll, inclusive (reading and parsing
              the request, encoding and writing the response, the socket
              calls), minus what hyper calls in postbackd (the handler).
    handler   every call from a hyper function into a postbackd function
              (the service future: routing, the request code), inclusive,
              minus the hand-off calls below.
    hand-off  (handler side) calls from postbackd code into tokio's mpsc
              and oneshot channels (queueing the job for the writer,
              dropping the reply receiver). Polling the reply is inlined
              into the handler's future and stays in "handler".
    runtime   the rest of the workers' instructions: tokio's scheduler,
              park/unpark, the epoll driver, timers, the accept loop.
  On the writer thread:
    fsync     inclusive cost of redb's FileBackend::sync_data (fdatasync):
              only the system call wrapper; the flush is kernel time.
    commit    inclusive cost of WriteTransaction::commit(_with), minus fsync:
              redb's page writes, freed-page bookkeeping, checksums.
    hand-off  (writer side) what the writer loop calls in tokio (waiting on
              the job queue, returning permits) and Job::complete (sending
              each reply, which wakes the handler's task).
    apply     the rest of the writer thread: begin_write, opening tables,
              the jobs themselves, the roll-up flush, the batch loop; "of
              which the roll-up flush" is rollup::levels::Pending::flush,
              inclusive (the batch's merged roll-up rows written to redb).

  The sequential client makes every write its own batch: commit and fsync
  are per request here, where under load a commit is shared by 8-16
  requests (README, Performance). The report reads the day rows of the
  UTC day the run happens on (a run across midnight UTC would read two).
  Phases need symbols (an unstripped binary); on a stripped one only the
  totals are printed.
"""

import argparse
import datetime
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict

WARMUP = 200
WARMUP_REPORTS = 20
# Checked by `check`: a figure that grows by more than LIMIT fails. Phases
# move between rows when inlining changes, so only the totals and the
# thread groups (tokio workers, writer, blocking pool: they depend on
# symbol names only for the thread's identity) are checked; the phase rows
# are printed for information.
CHECKED = ("total", "workers", "writer", "blocking")
LIMIT = 0.10
# Below this a figure is noise (e.g. the writer's share of a report).
FLOOR = 1000


# ---------------------------------------------------------------- drive


def drive(a):
    auth = {"Authorization": f"Bearer {a.token}"}
    local = threading.local()

    def get(path, headers=None, want=(200,)):
        # One keep-alive connection per client thread.
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=300)
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        body = r.read()
        if r.status not in want:
            sys.exit(f"icount: GET {path} answered {r.status}, wanted {want}: {body[:300]!r}")
        return r, body

    def click():
        r, _ = get("/c/b", want=(302,))
        cid = r.getheader("x-postbackd-click-id")
        if not cid:
            sys.exit("icount: a click's 302 has no x-postbackd-click-id")
        return cid

    def postback(cid, txn):
        _, body = get(f"/p/{a.key}?click_id={cid}&amount=1.50&transaction_id={txn}")
        if json.loads(body).get("result") != "matched":
            sys.exit(f"icount: the postback for click {cid} was not matched: {body[:300]!r}")

    today = datetime.datetime.now(datetime.timezone.utc).date()
    week = (today - datetime.timedelta(days=6)).isoformat()
    report_path = f"/api/v1/reports?group_by=campaign,day&from={week}&to={today.isoformat()}"

    def report():
        _, body = get(report_path, headers=auth)
        rows = json.loads(body).get("rows")
        if not rows:
            sys.exit(f"icount: the report has no rows: {body[:300]!r}")

    def cg(*args):
        subprocess.run(["callgrind_control", *args, str(a.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def batches():
        """(commits, writes) so far, from the server's batch-size histogram."""
        _, body = get("/metrics", headers=auth)
        text = body.decode()
        def one(name):
            m = re.search(rf"^{name} (\d+)", text, re.M)
            return int(m.group(1)) if m else 0
        return one("postbackd_commit_batch_size_count"), one("postbackd_commit_batch_size_sum")

    def run(count, fn):
        """fn(0..count) from `conns` client threads, each its own connection."""
        if a.conns == 1:
            for i in range(count):
                fn(i)
            return
        failed = []

        def worker(k):
            try:
                for i in range(k, count, a.conns):
                    fn(i)
            except BaseException as e:  # sys.exit in a thread: report it
                failed.append(e)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failed:
            sys.exit(str(failed[0]))

    def measured(name, count, fn):
        before = batches()
        cg("-z")
        t = time.monotonic()
        run(count, fn)
        cg("-d", name)
        took = time.monotonic() - t
        commits, writes = (x - y for x, y in zip(batches(), before))
        per = f", {writes / commits:.1f} writes per commit" if commits else ""
        print(f"  {name}: {count} requests in {took:.1f} s{per}", file=sys.stderr)
        if a.batches and commits:
            with open(a.batches, "a") as f:
                f.write(f"{name}.writes_per_commit {writes / commits:.2f}\n")

    cg("-i", "on")
    warm = [None] * WARMUP
    run(WARMUP, lambda i: warm.__setitem__(i, click()))
    clicks = [None] * a.n
    measured("clicks", a.n, lambda i: clicks.__setitem__(i, click()))
    run(WARMUP, lambda i: postback(warm[i], f"warm{i}"))
    measured("postbacks", a.n, lambda i: postback(clicks[i], f"txn{i}"))
    if a.reports:
        run(WARMUP_REPORTS, lambda i: report())
        measured("reports", a.reports, lambda i: report())
    cg("-i", "off")


# ----------------------------------------------------------------- fold


def parse(path):
    """One callgrind dump: (header, self cost per function, call arcs
    {(caller, callee): inclusive cost of those calls})."""
    names, head = {}, {}
    selfc, arcs = defaultdict(int), defaultdict(int)
    fn = cfn = None
    in_call = False

    def name(v):
        m = re.match(r"\((\d+)\)(?: (.*))?$", v)
        if not m:
            return v
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names[m.group(1)]

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                v = int(parts[1]) if len(parts) > 1 else 0
                if in_call:
                    arcs[(fn, cfn)] += v
                    in_call = False
                else:
                    selfc[fn] += v
            elif line.startswith("fn="):
                fn = name(line[3:])
            elif line.startswith("cfn="):
                cfn = name(line[4:])
            elif line.startswith("calls="):
                in_call = True
            elif line.startswith(("fl=", "fi=", "fe=", "cfi=", "cfl=", "ob=", "cob=")):
                pass
            elif ":" in line:
                k, _, v = line.partition(":")
                if k == "desc":
                    k, _, v = v.partition(":")
                head[k.strip()] = v.strip()
    return head, selfc, arcs


class Thread:
    def __init__(self, path):
        self.head, self.selfc, self.arcs = parse(path)
        self.total = sum(self.selfc.values())
        inc = defaultdict(int)
        for f, v in self.selfc.items():
            inc[f] += v
        for (f, c), v in self.arcs.items():
            if f != c:
                inc[f] += v
        self.inc = inc
        fns = set(self.selfc) | {c for _, c in self.arcs}
        self.fns = fns
        if any("WriteTransaction::commit" in f for f in fns):
            self.kind = "writer"
        elif any("multi_thread::worker::Context::" in f for f in fns):
            self.kind = "worker"
        elif any(f.startswith("tokio::runtime::task::raw::poll") for f in fns):
            self.kind = "blocking"
        else:
            self.kind = "other"

    def inclusive(self, pattern):
        rx = re.compile(pattern)
        return sum(v for f, v in self.inc.items() if rx.search(f))

    def outermost(self, pattern):
        """Inclusive cost of the outermost of the functions matching
        pattern (the largest: one calls the other, e.g. commit and
        commit_with)."""
        rx = re.compile(pattern)
        return max((v for f, v in self.inc.items() if rx.search(f)), default=0)

    def calls(self, caller, callee):
        """Summed inclusive cost of the calls from functions matching
        caller into functions matching callee."""
        a, b = re.compile(caller), re.compile(callee)
        return sum(v for (f, c), v in self.arcs.items() if a.search(f) and b.search(c) and not a.search(c))

    def root(self):
        return max(self.inc.items(), key=lambda x: x[1])[0] if self.inc else None


HYPER = r"^<?hyper(_util)?::"
POSTBACKD = r"^<?postbackd::"
HANDOFF_H = r"^<?tokio::sync::(mpsc|oneshot)|drop_in_place<tokio::sync::(mpsc|oneshot)|drop_in_place<postbackd::store::Store::write"


CONN = r"^<hyper_util::server::conn::auto::Connection<.*as core::future::future::Future>::poll$"
COMMIT = r"^redb::transactions::WriteTransaction::commit(_with)?$"
FSYNC = r"StorageBackend>::sync_data$"
ROLLUP_FLUSH = r"^postbackd::store::rollup::.*Pending::flush$"


def phases(threads):
    """Instructions by phase (absolute) for one workload's threads, and the
    markers that were not found (their phases are left out)."""
    p, missing = defaultdict(int), set()
    for key, _ in ROWS:
        p[key] = 0
    for t in threads:
        p["total"] += t.total
        if t.kind == "worker":
            p["workers"] += t.total
            conn = t.inclusive(CONN)
            handler = t.calls(HYPER, POSTBACKD)
            handoff = t.calls(POSTBACKD, HANDOFF_H)
            if t.total > 100_000 and not (conn and handler):
                missing.add("hyper-util Connection::poll" if not conn else "hyper -> postbackd calls")
            p["http"] += conn - handler
            p["handler"] += handler - handoff
            p["handoff"] += handoff
            p["runtime"] += t.total - conn
        elif t.kind == "writer":
            p["writer"] += t.total
            fsync = t.inclusive(FSYNC)
            commit = t.outermost(COMMIT)
            if t.total > 100_000 and not fsync:
                missing.add("FileBackend::sync_data")
            root = t.root()
            handoff = t.inclusive(r"Job>::complete$") + sum(
                v for (f, c), v in t.arcs.items() if f == root and c.startswith("tokio::"))
            p["fsync"] += fsync
            p["commit"] += commit - fsync
            p["writer_handoff"] += handoff
            p["apply"] += t.total - commit - handoff
            p["rollup_flush"] += t.inclusive(ROLLUP_FLUSH)
        elif t.kind == "blocking":
            p["blocking"] += t.total
        else:
            p["other"] += t.total
    return p, missing


ROWS = [
    ("http", "HTTP: hyper (parse, encode, socket reads and writes)"),
    ("handler", "handler: postbackd's request code"),
    ("handoff", "hand-off, handler side: queue the job to the writer"),
    ("runtime", "runtime: tokio scheduler, epoll, timers"),
    ("workers", "**tokio workers**"),
    ("writer_handoff", "hand-off, writer side: take jobs, send replies, wake handlers"),
    ("apply", "writer apply: begin, open tables, jobs, roll-up flush"),
    ("rollup_flush", "of which the roll-up flush (rows merged per batch)"),
    ("commit", "commit: redb (page writes, freed pages, checksums)"),
    ("fsync", "fsync: the fdatasync call (user space only)"),
    ("writer", "**writer thread**"),
    ("blocking", "blocking pool: read transactions"),
    ("other", "other threads"),
    ("total", "**total**"),
]
WORKER_PHASES = ("http", "handler", "handoff", "runtime")
WRITER_PHASES = ("writer_handoff", "apply", "rollup_flush", "commit", "fsync")
WORKLOADS = ("clicks", "postbacks", "reports")


def fold(a):
    dumps = defaultdict(list)
    for fname in sorted(os.listdir(a.dir)):
        if not re.search(r"\.\d+-\d+$", fname):
            continue
        t = Thread(os.path.join(a.dir, fname))
        m = re.match(r"dump (\w+)$", t.head.get("Trigger", ""))
        if m and m.group(1) in WORKLOADS:
            dumps[m.group(1)].append(t)
    counts = {"clicks": a.n, "postbacks": a.n, "reports": a.reports}
    # --reports 0 (e.g. a build from before reports existed): no report column.
    workloads = [w for w in WORKLOADS if counts[w]]
    absent = [w for w in workloads if w not in dumps]
    if absent:
        sys.exit(f"icount: no callgrind dump for {', '.join(absent)} in {a.dir}")
    symbols = any(f.startswith(("postbackd::", "<postbackd::"))
                  for ts in dumps.values() for t in ts for f in t.fns)
    table, problems = {}, set()
    for w in workloads:
        p, missing = phases(dumps[w])
        kinds = {t.kind for t in dumps[w]}
        if symbols and "worker" not in kinds:
            missing.add("the tokio worker threads (multi_thread::worker::Context)")
        if symbols and w != "reports" and "writer" not in kinds:
            missing.add("the writer thread (WriteTransaction::commit)")
        row = {k: v / counts[w] for k, v in p.items()}
        if not symbols:
            row = {"total": row["total"]}
        elif missing:
            problems |= missing
            # Thread totals stay (they need only the thread's identity);
            # the phases of a thread kind whose marker is gone are dropped.
            for k in WORKER_PHASES + WRITER_PHASES:
                row.pop(k, None)
            if any("worker threads" in m for m in missing):
                row.pop("workers", None)
            if any("writer thread" in m for m in missing):
                row.pop("writer", None)
        table[w] = row
    heads = [f"click (of {a.n})", f"matched postback (of {a.n})",
             f"report `campaign,day` (of {a.reports})"][:len(workloads)]
    print("| instructions per request | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(heads))
    for key, label in ROWS:
        if not any(key in table[w] for w in workloads):
            continue
        cells = []
        for w in workloads:
            v = table[w].get(key)
            cell = "n/a" if v is None else f"{v:,.0f}"
            cells.append(f"**{cell}**" if label.startswith("**") else cell)
        print(f"| {label} | " + " | ".join(cells) + " |")
    if not symbols:
        print("\n(no symbols in this binary: the phases need an unstripped build; totals only)")
    for m in sorted(problems):
        print(f"icount: warning: {m} not found in the profile (renamed or inlined?): its phases "
              "are left out; update the patterns at the top of benches/icount.py's fold",
              file=sys.stderr)
    if a.out:
        with open(a.out, "w") as f:
            for w in workloads:
                for key, _ in ROWS:
                    if key in table[w]:
                        f.write(f"{w}.{key} {table[w][key]:.0f}\n")


# ---------------------------------------------------------------- check


def read_figures(path):
    """`name value` lines; `# kind: ...` is returned under "#kind"."""
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("# kind:"):
                out["#kind"] = line.split(":", 1)[1].strip()
            line = line.split("#", 1)[0].strip()
            if line:
                k, v = line.split()
                out[k] = float(v)
    return out


def order(k):
    w = k.split(".")[0]
    return (WORKLOADS.index(w) if w in WORKLOADS else 9, [r[0] for r in ROWS].index(k.split(".", 1)[1])
            if k.split(".", 1)[1] in [r[0] for r in ROWS] else 99)


def check(a):
    """Compare the baseline with the smallest value of each figure over the
    results given (.ci/run measures again when the first run fails: chance
    can only add instructions, e.g. a wake-up that found no work, so the
    smaller of two runs is the better estimate of the build's cost)."""
    base = read_figures(a.baseline)
    runs = [read_figures(r) for r in a.results]
    new = {}
    for r in runs:
        for k, v in r.items():
            if not k.startswith("#"):
                new[k] = min(v, new.get(k, v))
    stripped = any("stripped" in r.get("#kind", "") for r in runs)
    failed, shrunk = [], []
    runs_note = f" (smallest of {len(runs)} runs)" if len(runs) > 1 else ""
    print(f"| instructions per request | baseline | this build{runs_note} | change | |")
    print("|---|---|---|---|---|")
    for k in sorted((k for k in base if not k.startswith("#")), key=order):
        checked = k.split(".", 1)[1] in CHECKED and base[k] >= FLOOR
        if k not in new:
            if stripped:
                note = "not measured (a stripped binary has no thread names)"
            elif checked:
                note = "**FAIL: missing from this run**"
                failed.append(k)
            else:
                note = "missing from this run"
            print(f"| {k} | {base[k]:,.0f} | - | - | {note} |")
            continue
        b, n = base[k], new[k]
        change = (n - b) / b if b else 0.0
        note = ""
        if checked:
            if change > LIMIT:
                note = f"**FAIL: over +{LIMIT:.0%}**"
                failed.append(k)
            elif change < -LIMIT:
                note = "much smaller: update the baseline"
                shrunk.append(k)
            else:
                note = "ok"
        print(f"| {k} | {b:,.0f} | {n:,.0f} | {change:+.1%} | {note} |")
    if shrunk:
        print(f"\nicount: {', '.join(shrunk)} shrank by more than {LIMIT:.0%}: if that is a real "
              f"improvement, run benches/icount.sh --update-baseline and commit {a.baseline} "
              "alone, saying why, so the guard holds the gain")
    if failed:
        print(f"\nicount: FAILED: {', '.join(failed)} grew more than {LIMIT:.0%} over {a.baseline} "
              "(benches/icount.py describes each phase; ICOUNT_KEEP=DIR benches/icount.sh keeps "
              "the dumps for callgrind_annotate)", file=sys.stderr)
        sys.exit(1)
    print(f"\nicount: every checked figure within +{LIMIT:.0%} of {a.baseline}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("drive")
    d.add_argument("--port", type=int, required=True)
    d.add_argument("--pid", type=int, required=True)
    d.add_argument("--key", required=True)
    d.add_argument("--token", required=True)
    d.add_argument("--n", type=int, required=True)
    d.add_argument("--reports", type=int, required=True)
    d.add_argument("--conns", type=int, default=1)
    d.add_argument("--batches", help="append each workload's writes per commit here")
    f = sub.add_parser("fold")
    f.add_argument("--dir", required=True)
    f.add_argument("--n", type=int, required=True)
    f.add_argument("--reports", type=int, required=True)
    f.add_argument("--out")
    c = sub.add_parser("check")
    c.add_argument("baseline")
    c.add_argument("results", nargs="+")
    a = ap.parse_args()
    {"drive": drive, "fold": fold, "check": check}[a.cmd](a)


main()
