#!/usr/bin/env python3
"""Fold `perf script` output (cpu-clock samples with call graphs) into the
table of where the server's CPU goes. Used by benches/profile.sh.

Each sample is charged to the first rule (in order) whose pattern matches a
frame of its stack; rules are per thread kind (the writer thread is named
postbackd-writer, shown by perf as "postbackd-write"). Prints a Markdown
table: share of all server samples, and µs of CPU per request when the
request count is given.

    perf script -i perf.data | benches/fold_profile.py [requests] [top-N]
"""
import re
import sys
from collections import Counter

WRITER = [
    ("writer: fsync (fdatasync)", r"fdatasync|do_fsync"),
    ("writer: commit, page writes (pwrite)", r"__libc_pwrite|FileBackend as redb::db::StorageBackend>::write"),
    ("writer: commit, redb bookkeeping", r"WriteTransaction::commit"),
    ("writer: jobs, B-tree inserts", r"redb::table::Table<K,V>::insert|retain_in|::remove"),
    ("writer: jobs, B-tree lookups", r"ReadableTable<K,V>>::get"),
    ("writer: jobs, record encode/decode", r"records::(encode|decode)|rmp_serde"),
    ("writer: jobs, other (logic, JSON, allocation)", r"Job>::apply|record_postback|apply_conversion"),
    ("writer: begin transaction, open tables", r"begin_write|open_table"),
    ("writer: hand-off (queue, wake handlers)", r"oneshot|mpsc|blocking_recv|futex|Job>::complete|wake"),
    ("writer: other", r"."),
]
HANDLER = [
    ("handlers: postbackd request code", r"postbackd::api::"),
    ("handlers: HTTP write (writev)", r"poll_write|writev|poll_flush"),
    ("handlers: HTTP read + parse", r"poll_read|recv|role::Server as hyper::proto::h1::Http1Transaction>::parse"),
    ("handlers: scheduler, epoll, wake-ups", r"park|epoll|Driver::turn|wake|schedule"),
    ("handlers: connection accept/close", r"accept|close|drop_in_place<hyper"),
    ("handlers: other", r"."),
]


def samples(lines):
    comm, stack = None, []
    for line in lines:
        if not line.strip():
            if comm is not None:
                yield comm, stack
            comm, stack = None, []
        elif not line[0].isspace():
            comm = line.split()[0]
        else:
            parts = line.strip().split(None, 1)
            stack.append(parts[1] if len(parts) > 1 else parts[0])
    if comm is not None:
        yield comm, stack


def main():
    requests = float(sys.argv[1]) if len(sys.argv) > 1 else 0
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    rules = {
        k: [(label, re.compile(p)) for label, p in v]
        for k, v in (("writer", WRITER), ("handler", HANDLER))
    }
    counts, leaves, total, freq = Counter(), Counter(), 0, 0
    for comm, stack in samples(sys.stdin):
        if not comm.startswith(("postbackd", "tokio")):
            continue
        total += 1
        kind = "writer" if comm.startswith("postbackd-wr") else "handler"
        for label, rx in rules[kind]:
            if any(rx.search(f) for f in stack):
                counts[label] += 1
                break
        if stack:
            leaves[re.sub(r"\+0x[0-9a-f]+ .*$", "", stack[0])] += 1
    if total == 0:
        print("no samples")
        return
    # perf record -F 2000 (benches/profile.sh): one sample = 0.5 ms of CPU.
    per_req = f" | µs CPU per request" if requests else ""
    print(f"| where the server's CPU goes | share{per_req} |")
    print("|---|---|" + ("---|" if requests else ""))
    order = [label for label, _ in WRITER + HANDLER]
    for label in order:
        if counts[label]:
            share = 100.0 * counts[label] / total
            extra = f" | {counts[label] * 500.0 / requests:.2f}" if requests else ""
            print(f"| {label} | {share:.1f}%{extra} |")
    extra = f" | {total * 500.0 / requests:.2f}" if requests else ""
    print(f"| **all server threads** | 100% ({total} samples){extra} |")
    if top:
        print()
        print("| hottest functions (self) | share |")
        print("|---|---|")
        for name, n in leaves.most_common(top):
            print(f"| `{name[:90]}` | {100.0 * n / total:.1f}% |")


main()
