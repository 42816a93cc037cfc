#!/usr/bin/env python3
"""Checks a benches/peers/run.sh smoke run (scripts/test.sh bench_smoke):
the report was written, every peer row ran with every record read back
exactly once, and the extra sections' rows ran. No figure is judged.

    bench_smoke_check.py OUT_DIR"""
import glob, json, sys

out = sys.argv[1]
problems = []
reports = glob.glob(f"{out}/peers-*[0-9].md")
if len(reports) != 1:
    sys.exit(f"bench_smoke: expected one report in {out}, found {reports}")
md = reports[0]
stem = md[: -len(".md")]
text = open(md).read()
for heading in ("## 100 B, 1000 keys: every peer", "## Workload matrix", "## Issue 18 targets"):
    if heading not in text:
        problems.append(f"{md} lacks '{heading}'")


def rows(path):
    try:
        return [json.loads(line) for line in open(path) if line.strip()]
    except OSError as e:
        problems.append(str(e))
        return []


peers = rows(stem + ".jsonl")
seen = {(r.get("peer"), r.get("cell")) for r in peers}
for want in (("rust", "100b"), ("c", "100b"), ("rust", "1kb"), ("c", "1kb")):
    if want not in seen:
        problems.append(f"no row for {want[0]} @ {want[1]}")
for r in peers:
    if r.get("status") != "ok" or r.get("delivery") != "exact":
        problems.append(f"{r.get('peer')} @ {r.get('cell')}: status {r.get('status')!r}, delivery {r.get('delivery')!r}")
for section in ("memory", "embedded", "paced"):
    got = rows(f"{stem}-{section}.jsonl")
    if not got:
        problems.append(f"no {section} rows")
    for r in got:
        # --driver-only may not exist in this kpl; the row then says so.
        if r.get("status") != "ok" and not (r.get("peer") == "driver-only" and "not available" in r.get("status", "")):
            problems.append(f"{section} {r.get('peer')}: {r.get('status')}")
if problems:
    sys.exit("bench_smoke:\n  " + "\n  ".join(problems))
print(f"bench_smoke: {md} written; {len(peers)} peer rows ok, every record read back once")
