#!/usr/bin/env bash
# Where a record's cost goes (benches/run.sh profile): `kpl perf` putting
# RECORDS records of 100 bytes over 1,000 keys to a separate `kpl sim
# --unlimited` (so the producer process is measured alone), under
#   - valgrind's callgrind: instructions per user record, in all and in the
#     parts of the hot path (inclusive). Instruction counts do not depend
#     on what else the machine runs, so two builds compare on a busy
#     machine. valgrind has no SHA extensions: SigV4's SHA-256 of each
#     request body runs in software under it and is shown apart.
#   - heaptrack: allocations per user record.
#
#   benches/profile.sh KPL [KPL_BEFORE] [RECORDS]
#
# With KPL_BEFORE (a kpl binary of another build) both are profiled, side
# by side.
set -euo pipefail
KPL="$1" BEFORE="${2:-}" RECORDS="${3:-200000}"
W="$(mktemp -d)"
SIM_PID=""
trap '[[ -n "$SIM_PID" ]] && kill "$SIM_PID" 2>/dev/null; rm -rf "$W"' EXIT
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
command -v heaptrack >/dev/null || { echo "heaptrack is not installed" >&2; exit 1; }

start_sim() {
    "$KPL" sim --port 0 --unlimited --stream bench:4 >"$W/sim.out" 2>"$W/sim.err" &
    SIM_PID=$!
    for _ in $(seq 100); do
        EP="$(grep -o 'http://[0-9.:]*' "$W/sim.out" | head -n1 || true)"
        [[ -n "$EP" ]] && return 0
        sleep 0.1
    done
    echo "kpl sim did not start: $(cat "$W/sim.err")" >&2
    exit 1
}
stop_sim() { kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null || true; SIM_PID=""; }

profile() { # label binary
    local label="$1" bin="$2"
    local args=(perf --stream bench --records "$RECORDS" --record-size 100 --partition-keys 1000
                --unlimited --no-verify --json --set AwsAccessKeyId=x --set AwsSecretAccessKey=y --region us-east-1)
    start_sim
    valgrind --tool=callgrind --callgrind-out-file="$W/$label.cg" "$bin" "${args[@]}" --endpoint "$EP" \
        >/dev/null 2>"$W/$label.cg.err"
    stop_sim
    callgrind_annotate --inclusive=yes "$W/$label.cg" >"$W/$label.cg.txt" 2>/dev/null
    start_sim
    heaptrack -o "$W/$label.ht" "$bin" "${args[@]}" --endpoint "$EP" >/dev/null 2>&1
    stop_sim
    heaptrack_print -f "$W/$label.ht.zst" 2>/dev/null | grep -E '^calls to allocation functions' >"$W/$label.ht.txt" || true
    echo "$label" >>"$W/labels"
}

[[ -n "$BEFORE" ]] && profile before "$BEFORE"
profile after "$KPL"

python3 - "$W" "$RECORDS" <<'PYEOF'
import re, sys
w, records = sys.argv[1], int(sys.argv[2])
labels = open(f"{w}/labels").read().split()
# Inclusive instruction counts of these functions (first match of each).
parts = [
    ("the put (caller's thread: validation, key hash, admission)", "Producer::put_many_indexed::{{closure}} ["),
    ("  of which the driver builds the records", "kpl::perf::payload ["),
    ("routing and aggregation (pipeline)", "flow::<impl kpl_core::pipeline::Engine>::route_in ["),
    ("encoding aggregates", "Aggregator<T>::finish"),
    ("MD5 (keys and trailers; md5-many or md-5)", "md5"),
    ("results (pipeline: one per record)", "Resolution::delivered ["),
    ("  of which the driver's result callback", "kpl::perf::run::{{closure}}::{{closure}} ["),
    ("PutRecords request serialization (SDK, JSON + base64)", "serialize_input ["),
    ("SigV4 SHA-256 of request bodies (software under valgrind)", "CanonicalRequest::from"),
    ("malloc + free + realloc", None),
]
def read(label):
    total, rows = 0, []
    for line in open(f"{w}/{label}.cg.txt"):
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)", line)
        if m:
            rows.append((int(m.group(1).replace(",", "")), m.group(2)))
            if "PROGRAM TOTALS" in m.group(2):
                total = rows[-1][0]
    got = {}
    for name, key in parts:
        if key is None:
            got[name] = sum(next((v for v, n in rows if re.search(rf":{f} \[.*libc", n)), 0)
                            for f in ("malloc", "free", "realloc"))
        elif key == "md5":
            # The leaf functions only: block compressions and SIMD kernels.
            got[name] = sum(v for v, n in rows if "'" not in n and re.search(
                r":(md5::compress::soft::compress|md5_many::\S*(kernel|compress)\S*) \[", n))
        else:
            got[name] = next((v for v, n in rows if key in n), 0)
    allocs = open(f"{w}/{label}.ht.txt").read()
    m = re.search(r"calls to allocation functions: (\d+)", allocs)
    return total, got, int(m.group(1)) if m else None

data = {l: read(l) for l in labels}
print(f"kpl perf, {records:,} records of 100 B over 1,000 keys, to a separate kpl sim --unlimited")
print()
print("| per user record | " + " | ".join(labels) + " |")
print("|---|" + "---:|" * len(labels))
print("| instructions, all | " + " | ".join(f"{data[l][0] / records:,.0f}" for l in labels) + " |")
sha = "SigV4 SHA-256 of request bodies (software under valgrind)"
print("| instructions, without SigV4's SHA-256 | " + " | ".join(f"{(data[l][0] - data[l][1][sha]) / records:,.0f}" for l in labels) + " |")
for name, _ in parts:
    print(f"| {name} | " + " | ".join(f"{data[l][1][name] / records:,.0f}" for l in labels) + " |")
print("| heap allocations (heaptrack) | " + " | ".join(
    f"{data[l][2] / records:.2f}" if data[l][2] else "–" for l in labels) + " |")
PYEOF
