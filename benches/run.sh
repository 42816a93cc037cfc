#!/usr/bin/env bash
# Runs the benchmarks that print figures and keeps their output in
# benches/results/<date>-<name>.txt. Release builds; a few minutes each.
#
#   benches/run.sh            all of them
#   benches/run.sh perf       only the named ones (aggregation sim perf throttling metrics ordering spool profile)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
KPL="$TARGET_DIR/release/kpl"
OUT="$ROOT/benches/results"
STAMP="$(date -u +%Y%m%d-%H%M)"
mkdir -p "$OUT"

record() { # name, command...
    local name="$1"; shift
    echo "== $name: $*"
    { echo "# $(date -u) on $(nproc) cores: $*"; "$@" 2>&1; } | tee "$OUT/$STAMP-$name.txt"
}

bench_aggregation() { # format layer, one core: aggregation and deaggregation throughput
    record aggregation cargo bench -p kpl-core --bench aggregation -- --warm-up-time 1 --measurement-time 5
}

bench_sim() { # PutRecords traffic kpl-sim takes, beside kinesalite's, in one run
    cargo build --release -p kpl-sim --example sim_bench
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
    local log="$TARGET_DIR/kinesalite-bench.log"
    node tests/node/kinesalite-server.mjs >"$log" 2>&1 &
    local pid=$!
    local endpoint=""
    for _ in $(seq 1 100); do
        endpoint="$(sed -n 's/^kinesalite listening on //p' "$log")"
        [[ -n "$endpoint" ]] && break
        sleep 0.1
    done
    record sim-kinesalite "$TARGET_DIR/release/examples/sim_bench" --secs 5 --endpoint "$endpoint"
    kill "$pid"
    record sim "$TARGET_DIR/release/examples/sim_bench" --secs 5
}

bench_perf() { # end to end, simulator in process, limits off: aggregation on and off
    cargo build --release -p kpl-cli
    record perf-aggregated "$KPL" perf --records 1000000 --record-size 100 --partition-keys 1000 --shards 4 --unlimited
    record perf-plain "$KPL" perf --records 1000000 --record-size 100 --partition-keys 1000 --shards 4 --unlimited --no-aggregation
}

bench_throttling() { # offered load at 3x a 2-shard stream's capacity, the service's limits on
    cargo build --release -p kpl-cli
    record throttling "$KPL" perf --shards 2 --no-aggregation --rate 6000 --records 30000
}

bench_metrics() { # CloudWatch metrics' cost: detailed/shard (uploading every second to the embedded simulator) beside none, alternating, one run
    cargo build --release -p kpl-cli
    record metrics bash -c '
        for round in 1 2 3; do
            for level in none detailed; do
                "$0" perf --records 1000000 --record-size 100 --partition-keys 1000 --shards 4 --unlimited --no-verify --json \
                    --set MetricsLevel=$level --set MetricsGranularity=shard --set MetricsUploadDelay=1000
            done
        done | python3 -c "
import json, statistics, sys
runs = [json.loads(line) for line in sys.stdin if line.startswith(\"{\")]
print(\"%-16s %6s %14s %12s %12s %10s %8s\" % (\"metrics\", \"runs\", \"records/s\", \"CPU s/1M\", \"p99 ms\", \"datums\", \"failed\"))
for level in (\"none/shard\", \"detailed/shard\"):
    rs = [r for r in runs if r[\"metrics\"] == level]
    med = lambda k: statistics.median(r[k] for r in rs)
    print(\"%-16s %6d %14.0f %12.2f %12.1f %10d %8d\" % (level, len(rs), med(\"records_per_sec\"), med(\"cpu_seconds\") / (rs[0][\"records\"] / 1e6), med(\"latency_ms_p99\"), max(r[\"metrics_datums_uploaded\"] for r in rs), sum(r[\"failed\"] for r in rs)))
"' "$KPL"
}

bench_pipeline() { # the pipeline in parts beside the engine before it (KPL_OLD=<kpl binary built at 0150c35>), alternating, one run
    cargo build --release -p kpl-cli
    : "${KPL_OLD:?set KPL_OLD to a kpl binary built from the commit to compare with}"
    record pipeline bash -c '
        for round in 1 2 3 4 5; do
            for which in before after after-metrics-none; do
                case $which in
                    before) bin=$1; extra=() ;;
                    after) bin=$2; extra=() ;;
                    after-metrics-none) bin=$2; extra=(--set MetricsLevel=none) ;;
                esac
                "$bin" perf --records 1000000 --record-size 100 --partition-keys 1000 --shards 4 --unlimited --no-verify --json "${extra[@]}" |
                    python3 -c "import json, sys; r = json.loads(sys.stdin.read().strip().splitlines()[-1]); r[\"which\"] = \"$which\"; print(json.dumps(r))"
            done
        done | python3 -c "
import json, statistics, sys
runs = [json.loads(line) for line in sys.stdin if line.startswith(\"{\")]
print(\"%-20s %5s %12s %10s %10s %10s %7s\" % (\"build\", \"runs\", \"records/s\", \"CPU s/1M\", \"p50 ms\", \"p99 ms\", \"failed\"))
for which in (\"before\", \"after\", \"after-metrics-none\"):
    rs = [r for r in runs if r[\"which\"] == which]
    med = lambda k: statistics.median(r[k] for r in rs)
    print(\"%-20s %5d %12.0f %10.2f %10.1f %10.1f %7d\" % (which, len(rs), med(\"records_per_sec\"), med(\"cpu_seconds\"), med(\"latency_ms_p50\"), med(\"latency_ms_p99\"), sum(r[\"failed\"] for r in rs)))
print()
print(\"per run (records/s, CPU s):\", [(r[\"which\"], round(r[\"records_per_sec\"]), round(r[\"cpu_seconds\"], 2)) for r in runs])
"' pipeline "$KPL_OLD" "$KPL"
}

bench_ordering() { # StrictOrdering's cost at half, full and 3x capacity, aggregation on and off (benches/ordering.sh)
    cargo build --release -p kpl-cli
    record ordering benches/ordering.sh "$KPL"
}

bench_spool() { # the durable spool's cost: no spool, SpoolSync never / interval / always, alternating (benches/spool.sh)
    cargo build --release -p kpl-cli
    record spool benches/spool.sh "$KPL"
}

bench_profile() { # where a record's cost goes: callgrind instructions and heaptrack allocations per record (benches/profile.sh); KPL_BEFORE=<kpl binary> profiles another build beside it
    cargo build --release -p kpl-cli
    record profile benches/profile.sh "$KPL" "${KPL_BEFORE:-}"
}

ALL=(aggregation sim perf throttling metrics ordering spool profile)
for name in "${@:-${ALL[@]}}"; do
    "bench_$name"
done
