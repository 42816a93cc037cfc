#!/usr/bin/env bash
# C put throughput beside Rust's, same run, same workload: RECORDS records
# of 100 bytes over 1000 partition keys, 4 shards, aggregation on, against
# one `kpl sim --unlimited` subprocess (a fresh stream each). The Rust figure
# is `kpl perf` (batches of puts with a callback per record). Both lift the
# producer's per-shard rate limiter (RateLimit), as the simulator's are off.
#
#   cargo build --release -p kpl-ffi -p kpl-cli
#   examples/c/bench.sh [RECORDS]          (default 1000000)
#
# PROFILE=debug to use the debug build; CARGO_TARGET_DIR is honoured.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PROFILE="${PROFILE:-release}"
RECORDS="${1:-1000000}"
LIB="$TARGET_DIR/$PROFILE"
KPL_BIN="${KPL_BIN:-$LIB/kpl}"
BUILD="$TARGET_DIR/kpl-c-examples-$PROFILE"

cmake -S "$ROOT/examples/c" -B "$BUILD" -DKPL_LIB_DIR="$LIB" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" >/dev/null

out="$(mktemp)"
"$KPL_BIN" sim --port 0 --unlimited --stream bench-c:4 --stream bench-rust:4 >"$out" 2>&1 &
sim=$!
trap 'kill "$sim" 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
endpoint="$(head -n1 "$out" | grep -o 'http://[0-9.:]*')"
echo "sim at $endpoint; $RECORDS records of 100 bytes, 1000 keys, 4 shards, aggregation on ($PROFILE)"

c_line="$("$BUILD/bench" "$endpoint" bench-c "$RECORDS" 100 1000 | head -n1)"
echo "$c_line"
c_rate="$(sed -n 's/.*= \([0-9]*\) records\/s.*/\1/p' <<<"$c_line")"

rust_json="$(AWS_ACCESS_KEY_ID=AKIDLOCALTEST AWS_SECRET_ACCESS_KEY=local-test-secret AWS_REGION=us-east-1 \
    "$KPL_BIN" perf --records "$RECORDS" --record-size 100 --partition-keys 1000 --shards 4 \
    --endpoint "$endpoint" --stream bench-rust --unlimited --no-verify --json 2>/dev/null | tail -n1)"
rust_rate="$(sed -n 's/.*"records_per_sec":\([0-9]*\).*/\1/p' <<<"$rust_json")"
rust_failed="$(sed -n 's/.*"failed":\([0-9]*\).*/\1/p' <<<"$rust_json")"
echo "rust: $RECORDS records = $rust_rate records/s (failed $rust_failed)"
awk -v c="$c_rate" -v r="$rust_rate" 'BEGIN { printf "c/rust: %.1f%%\n", 100 * c / r }'
