#!/usr/bin/env bash
# The durable spool's cost (benches/run.sh spool): `kpl perf` with no
# spool, and with SpoolSync = never, interval and always, side by side in
# one run, three rounds alternating; 1,000,000 records of 100 bytes over
# 1,000 keys, 4 shards, the embedded simulator with its limits off. The
# spool directory is in $SPOOL_BASE (default: a temporary directory on
# the disk /tmp is on). Prints a table of medians: records/s, CPU s per
# million records, p99 put-to-result latency, and bytes the spool wrote to
# disk per user byte (records, segment headers, checkpoints).
set -euo pipefail
KPL="$1"
BASE="${SPOOL_BASE:-$(mktemp -d)}"
trap 'rm -rf "$BASE"' EXIT
for round in 1 2 3; do
    for mode in none never interval always; do
        flags=()
        if [[ $mode != none ]]; then
            rm -rf "$BASE/spool"
            flags=(--spool-dir "$BASE/spool" --spool-sync "$mode")
        fi
        "$KPL" perf --records 1000000 --record-size 100 --partition-keys 1000 --shards 4 \
            --unlimited --no-verify --json --set MetricsLevel=none "${flags[@]}" |
            sed "s/^{/{\"mode\":\"$mode\",/"
    done
done | python3 -c '
import json, statistics, sys
runs = [json.loads(line) for line in sys.stdin if line.startswith("{")]
print("%-9s %5s %12s %10s %9s %8s %16s" % ("spool", "runs", "records/s", "CPU s/1M", "p99 ms", "failed", "disk B/user B"))
base = None
for mode in ("none", "never", "interval", "always"):
    rs = [r for r in runs if r["mode"] == mode]
    med = lambda k: statistics.median(r[k] for r in rs)
    rate = med("records_per_sec")
    base = base or rate
    amp = "-" if mode == "none" else "%.2f" % med("spool_bytes_per_user_byte")
    print("%-9s %5d %12.0f %10.2f %9.1f %8d %16s   (%3.0f%% of no spool)" % (
        mode, len(rs), rate, med("cpu_seconds") / (rs[0]["records"] / 1e6), med("latency_ms_p99"),
        sum(r["failed"] for r in rs), amp, 100 * rate / base))
print()
print("per run (mode, records/s):", [(r["mode"], round(r["records_per_sec"])) for r in runs])
'
