#!/usr/bin/env bash
# StrictOrdering's cost (benches/run.sh ordering): `kpl perf` with and
# without it, 2 shards (1,000 records/s and 1 MiB/s each), 1000-byte
# records over 100 keys, 10 s offered at half, full and 3x the stream's
# capacity, aggregation on and off. Twice: against the embedded simulator
# (loopback, no added latency), and against `kpl sim` answering 30 ms late
# with 1% of records failing InternalFailure (closer to the service's
# round trips, where one record per key per round trip shows).
# Prints one table; every run reads the stream back and counts records out
# of put order for their key.
set -euo pipefail
KPL="$1"
runs() { # label, extra perf args...
    local label="$1"; shift
    local rate agg strict flags
    for rate in 1000 2000 6000; do
        for agg in on off; do
            for strict in false true; do
                flags=(); [[ $agg == off ]] && flags=(--no-aggregation)
                "$KPL" perf --shards 2 --record-size 1000 --partition-keys 100 --rate "$rate" \
                    --records $((rate * 10)) --json --set StrictOrdering="$strict" \
                    --set RecordTtl=300000 --stream "ordering-$rate-$agg-$strict" "${flags[@]}" "$@" |
                    sed "s/^{/{\"setting\":\"$label\",\"strict\":$strict,\"rate\":$rate,/"
            done
        done
    done
}
{
    runs "embedded"
    out="$(mktemp)"
    "$KPL" sim --port 0 --latency-ms 30 --fault-record-internal-failure 0.01 >"$out" 2>/dev/null &
    pid=$!
    trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
    endpoint=""
    for _ in $(seq 1 100); do
        endpoint="$(grep -o 'http://[0-9.:]*' "$out" | head -n1 || true)"
        [[ -n "$endpoint" ]] && break
        sleep 0.1
    done
    runs "30ms+1%" --endpoint "$endpoint" --verify \
        --set AwsAccessKeyId=x --set AwsSecretAccessKey=y --region us-east-1
} | python3 -c '
import json, sys
runs = [json.loads(line) for line in sys.stdin if line.startswith("{")]
load = {1000: "half", 2000: "full", 6000: "3x"}
head = ("service", "load", "aggregation", "strict", "offered/s", "records/s", "p50 ms", "p99 ms", "throttled", "failed", "out of order")
print("%-9s %-5s %-11s %-6s %9s %9s %9s %9s %9s %6s %12s" % head)
for r in runs:
    print("%-9s %-5s %-11s %-6s %9d %9.0f %9.1f %9.1f %9d %6d %12s" % (
        r["setting"], load[r["rate"]], "on" if r["aggregation"] else "off", "on" if r["strict"] else "off",
        r["rate"], r["records_per_sec"], r["latency_ms_p50"], r["latency_ms_p99"],
        r["throttled"], r["failed"], r["out_of_order"]))
'
