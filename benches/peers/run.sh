#!/usr/bin/env bash
# Peer comparison (issue 9): each producer in turn against a fresh
# `kpl sim --unlimited` on loopback, same workload (RECORDS records of 100
# bytes over 1000 partition keys, 4 shards, aggregation on where the peer has
# it). For each: wall time, records/s, CPU s (user+sys) per million records,
# peak RSS (/usr/bin/time -v), put-to-result latency p50/p99 where the peer
# reports results, and the user records the simulator holds afterwards (read
# back from TRIM_HORIZON and deaggregated with `kpl deagg`).
#
# Then, for ours (Rust) and the KPL: memory per buffered record (--mem-records
# records put against an endpoint that never answers, RSS growth per record)
# and put-to-result latency at 50% of a 1-shard stream's sustainable rate
# (limits on, RecordMaxBufferedTime 100 ms).
#
#   benches/peers/run.sh [--records N] [--peers a,b,...] [--timeout S] [--no-build]
#                        [--sections peers,memory,latency] [--mem-records N]
#
# Peers: rust c node node-many python kpl-java aiokpl agg-boto3 agg-node go
# Writes benches/results/peers-<date>.md, .png and .jsonl (raw rows).
# Third-party peers are installed from their registries into gitignored
# directories here (.venv, node_modules, ~/.m2, the Go module cache).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
KPL="$TARGET_DIR/release/kpl"
RECORDS=1000000 SIZE=100 KEYS=1000 TIMEOUT=900 BUILD=1
PEERS="rust,c,node,node-many,python,kpl-java,aiokpl,agg-boto3,agg-node,go"
SECTIONS="peers,memory,latency" MEM_RECORDS=1000000
# Latency: 1 shard with limits on sustains ~9,000 aggregated 100-byte records/s
# (1 MiB/s over ~115 bytes a record in an aggregate); half of that, for 20 s.
LAT_RATE=4500 LAT_RECORDS=90000
while [[ $# -gt 0 ]]; do
    case "$1" in
        --records) RECORDS="$2"; shift 2 ;;
        --peers) PEERS="$2"; shift 2 ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --sections) SECTIONS="$2"; shift 2 ;;
        --mem-records) MEM_RECORDS="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
DATE="$(date -u +%Y%m%d-%H%M)"
OUT="$ROOT/benches/results"
W="$(mktemp -d /tmp/kpl-peers.XXXXXX)"
ROWS="$OUT/peers-$DATE.jsonl"
MEM_ROWS="$W/memory.jsonl" LAT_ROWS="$W/latency.jsonl"
mkdir -p "$OUT"
: >"$ROWS"; : >"$MEM_ROWS"; : >"$LAT_ROWS"
SIM_PID="" HOLE_PID=""
cleanup() {
    [[ -n "$SIM_PID" ]] && kill "$SIM_PID" 2>/dev/null
    [[ -n "$HOLE_PID" ]] && kill "$HOLE_PID" 2>/dev/null
    true
}
trap cleanup EXIT
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
[[ -x /usr/bin/time ]] || { log "installing GNU time"; apt-get install -y -q time >/dev/null; }
setup_err() { # peer, message: the peer cannot run; its row says why
    printf '%s\n' "$2" | tail -c 600 >"$W/setup-$1.err"
    log "setup $1 failed: $(tail -n1 "$W/setup-$1.err")"
}
want() { [[ ",$PEERS," == *",$1,"* ]]; }
section() { [[ ",$SECTIONS," == *",$1,"* ]]; }

# ---- setup: build ours, install the peers ---------------------------------
if [[ $BUILD == 1 ]]; then
    log "cargo build --release -p kpl-cli -p kpl-ffi (CARGO_TARGET_DIR=$TARGET_DIR)"
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p kpl-cli -p kpl-ffi) >&2 || { log "cargo build failed"; exit 1; }
fi
[[ -x "$KPL" ]] || { log "$KPL missing (build kpl-cli)"; exit 1; }
PY="$HERE/.venv/bin/python"
if [[ ! -x "$PY" ]]; then python3 -m venv "$HERE/.venv"; fi
log "pip install -r python/requirements.txt"
if ! e="$("$PY" -m pip install -q -r "$HERE/python/requirements.txt" 2>&1)"; then
    setup_err aiokpl "$e"; setup_err agg-boto3 "$e"
fi
if want c; then
    mkdir -p "$HERE/.build"
    e="$(cc -O2 -std=c99 -I"$ROOT/kpl-ffi/include" "$ROOT/examples/c/bench.c" -o "$HERE/.build/bench-c" \
        -L"$TARGET_DIR/release" -lkpl -Wl,-rpath,"$TARGET_DIR/release" 2>&1)" || setup_err c "$e"
fi
if want node || want node-many; then
    if [[ $BUILD == 1 || ! -f "$TARGET_DIR/release/libkpl_node.so" ]]; then
        log "cargo build --release -p kpl-node"
        e="$(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p kpl-node 2>&1)" || setup_err node "$e"
    fi
    [[ -f "$ROOT/bindings/node/index.js" ]] || setup_err node "bindings/node/index.js missing"
    cp "$TARGET_DIR/release/libkpl_node.so" "$W/kpl-rs.node" 2>/dev/null || setup_err node "no libkpl_node.so"
    [[ -f "$W/setup-node.err" ]] && cp "$W/setup-node.err" "$W/setup-node-many.err"
fi
if want python; then
    log "maturin develop --release (bindings/python into $HERE/.venv)"
    e="$("$PY" -m pip install -q maturin==1.16.0 2>&1 &&
        cd "$ROOT" && VIRTUAL_ENV="$HERE/.venv" CARGO_TARGET_DIR="$TARGET_DIR" \
        "$HERE/.venv/bin/maturin" develop --release -q -m bindings/python/Cargo.toml 2>&1)" || setup_err python "$e"
fi
if want agg-node; then
    log "npm install (aws-kinesis-agg, @aws-sdk/client-kinesis, @smithy/node-http-handler)"
    e="$(cd "$HERE" && npm install --no-audit --no-fund --loglevel=error 2>&1)" || setup_err agg-node "$e"
fi
if want kpl-java || section memory || section latency; then
    log "mvn compile (software.amazon.kinesis:amazon-kinesis-producer)"
    e="$(cd "$HERE/kpl-java" && timeout 600 mvn -q -B compile dependency:build-classpath \
        -Dmdep.outputFile=target/cp.txt 2>&1)" || setup_err kpl-java "$e"
fi
if want go; then
    log "go build (github.com/a8m/kinesis-producer v0.2.0 via the Go module proxy)"
    e="$(cd "$HERE/go" && GOFLAGS=-mod=mod timeout 300 go mod tidy 2>&1 && GOFLAGS=-mod=mod timeout 300 go build -o bin/peer . 2>&1)" \
        || setup_err go "$e"
fi

# ---- one peer -------------------------------------------------------------
start_sim() { # [--tls] [--limits]: a fresh simulator with stream bench (4 shards,
    # limits off; 1 shard with --limits); sets EP (and EPS)
    local out="$W/sim.out" tls=() limits=(--unlimited --stream bench:4)
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --tls) tls=(--tls --tls-port 0 --ca-out "$W/ca.pem") ;;
            --limits) limits=(--stream bench:1) ;;
        esac
        shift
    done
    : >"$out"
    "$KPL" sim --port 0 "${limits[@]}" "${tls[@]}" >"$out" 2>"$W/sim.err" &
    SIM_PID=$!
    for _ in $(seq 100); do
        EP="$(grep -o 'http://[0-9.:]*' "$out" | head -n1)"
        EPS="$(grep -o 'https://[0-9.:]*' "$out" | head -n1)"
        [[ -n "$EP" && ( ${#tls[@]} == 0 || -n "$EPS" ) ]] && return 0
        sleep 0.1
    done
    log "sim did not start: $(cat "$W/sim.err")"; return 1
}
stop_sim() { kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null; SIM_PID=""; }

run_peer() { # name
    local name="$1" cmd=() tls=""
    local row=(--name "$name" --records "$RECORDS")
    if [[ -f "$W/setup-$name.err" ]]; then
        "$PY" "$HERE/collect.py" "${row[@]}" --setup-error "$W/setup-$name.err" >>"$ROWS"; return
    fi
    [[ $name == kpl-java ]] && tls=--tls
    start_sim $tls || { echo "{\"peer\":\"$name\",\"status\":\"sim did not start\"}" >>"$ROWS"; return; }
    local args=("$RECORDS" "$SIZE" "$KEYS")
    case "$name" in
        rust) cmd=("$KPL" perf --endpoint "$EP" --stream bench --records "$RECORDS" --record-size "$SIZE"
                   --partition-keys "$KEYS" --unlimited --no-verify --json
                   --set AwsAccessKeyId=x --set AwsSecretAccessKey=y --region us-east-1) ;;
        c) cmd=("$HERE/.build/bench-c" "$EP" bench "${args[@]}") ;;
        node) cmd=(env KPL_NODE_INDEX="$ROOT/bindings/node/index.js" NAPI_RS_NATIVE_LIBRARY_PATH="$W/kpl-rs.node"
                   node "$HERE/node/ours.mjs" "$EP" bench "${args[@]}") ;;
        node-many) cmd=(env KPL_NODE_INDEX="$ROOT/bindings/node/index.js" NAPI_RS_NATIVE_LIBRARY_PATH="$W/kpl-rs.node"
                   node "$HERE/node/ours.mjs" "$EP" bench "${args[@]}" --many) ;;
        python) cmd=("$PY" "$HERE/python/ours.py" "$EP" bench "${args[@]}") ;;
        kpl-java) local hp="${EPS#https://}"
                  cmd=(java -Xmx2g -cp "$(java_cp)" bench.Main throughput "${hp%:*}" "${hp##*:}" bench "${args[@]}") ;;
        aiokpl) cmd=("$PY" "$HERE/python/aiokpl_peer.py" "$EP" bench "${args[@]}") ;;
        agg-boto3) cmd=("$PY" "$HERE/python/agg_boto3.py" "$EP" bench "${args[@]}") ;;
        agg-node) cmd=(node "$HERE/node/agg-sdk.mjs" "$EP" bench "${args[@]}") ;;
        go) cmd=("$HERE/go/bin/peer" "$EP" bench "${args[@]}") ;;
        *) log "unknown peer $name"; stop_sim; return ;;
    esac
    log "$name: ${cmd[*]:0:3} ... ($RECORDS records)"
    (cd "$HERE" && timeout "$TIMEOUT" /usr/bin/time -v -o "$W/$name.time" "${cmd[@]}" >"$W/$name.out" 2>"$W/$name.err")
    local rc=$?
    curl -s "$EP/_sim/stats" >"$W/$name.stats"
    timeout 600 "$PY" "$HERE/readback.py" "$EP" bench "$KPL" >"$W/$name.readback" 2>>"$W/$name.err"
    stop_sim
    "$PY" "$HERE/collect.py" "${row[@]}" --rc "$rc" --time "$W/$name.time" --out "$W/$name.out" --err "$W/$name.err" \
        --stats "$W/$name.stats" --readback "$W/$name.readback" >>"$ROWS"
    log "$name: $(tail -n1 "$ROWS" | cut -c1-300)"
}

java_cp() { echo "$HERE/kpl-java/target/classes:$(cat "$HERE/kpl-java/target/cp.txt")"; }

# A labelled JSON line from a run's stdout (its last JSON line), or its error.
extra_row() { # section label rc out err
    "$PY" - "$@" <<'PYEOF'
import json, sys
label, rc, out, err = sys.argv[2:6]
j = None
for line in reversed(open(out).read().splitlines()):
    if line.strip().startswith("{"):
        j = json.loads(line); break
row = {"peer": label, **(j or {})}
if rc != "0" or j is None:
    row["status"] = f"failed (exit {rc}): " + " ".join(open(err).read().split())[-300:]
else:
    row["status"] = "ok"
print(json.dumps(row))
PYEOF
}

# Idle share of the CPUs over 2 s, in percent (from /proc/stat).
idle_percent() {
    local a b
    a=($(head -n1 /proc/stat)); sleep 2; b=($(head -n1 /proc/stat))
    local total=0 i
    for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
    echo $(( total > 0 ? 100 * (b[4] - a[4]) / total : 0 ))
}
# Builds and installs above leave the machine busy for a while: wait (at
# most 2 minutes) until it is at least 90% idle, and record how idle it was.
for _ in $(seq 60); do
    IDLE_AT_START="$(idle_percent)"
    [[ $IDLE_AT_START -ge 90 ]] && break
done
log "CPU idle before the first run: $IDLE_AT_START%"

if section peers; then
    IFS=, read -r -a list <<<"$PEERS"
    for p in "${list[@]}"; do run_peer "$p"; done
fi

if section memory; then
    : >"$W/hole.out"
    "$PY" "$HERE/blackhole.py" --seconds 1800 >"$W/hole.out" 2>&1 &
    HOLE_PID=$!
    for _ in $(seq 50); do grep -q listening "$W/hole.out" && break; sleep 0.1; done
    port="$(sed -n 's/^blackhole listening on //p' "$W/hole.out")"
    log "memory: $MEM_RECORDS records buffered against a black hole at 127.0.0.1:$port"
    timeout "$TIMEOUT" "$KPL" perf --buffer-only --endpoint "http://127.0.0.1:$port" --stream bench \
        --records "$MEM_RECORDS" --record-size "$SIZE" --partition-keys "$KEYS" --json \
        --set AwsAccessKeyId=x --set AwsSecretAccessKey=y --region us-east-1 >"$W/mem-rust.out" 2>"$W/mem-rust.err"
    extra_row memory rust $? "$W/mem-rust.out" "$W/mem-rust.err" >>"$MEM_ROWS"
    if [[ -f "$W/setup-kpl-java.err" ]]; then
        echo "{\"peer\":\"kpl-java\",\"status\":\"not run: setup failed\"}" >>"$MEM_ROWS"
    else
        timeout "$TIMEOUT" java -Xmx4g -cp "$(java_cp)" bench.Main memory 127.0.0.1 "$port" bench \
            "$MEM_RECORDS" "$SIZE" "$KEYS" >"$W/mem-kpl.out" 2>"$W/mem-kpl.err"
        extra_row memory kpl-java $? "$W/mem-kpl.out" "$W/mem-kpl.err" >>"$MEM_ROWS"
    fi
    kill "$HOLE_PID" 2>/dev/null; wait "$HOLE_PID" 2>/dev/null; HOLE_PID=""
    log "memory: $(cat "$MEM_ROWS" | cut -c1-300)"
fi

if section latency; then
    log "latency: $LAT_RECORDS records at $LAT_RATE/s into 1 shard, limits on"
    start_sim --limits && {
        timeout "$TIMEOUT" "$KPL" perf --endpoint "$EP" --stream bench --records "$LAT_RECORDS" --rate "$LAT_RATE" \
            --record-size "$SIZE" --partition-keys "$KEYS" --no-verify --json --set RecordMaxBufferedTime=100 \
            --set AwsAccessKeyId=x --set AwsSecretAccessKey=y --region us-east-1 >"$W/lat-rust.out" 2>"$W/lat-rust.err"
        extra_row latency rust $? "$W/lat-rust.out" "$W/lat-rust.err" >>"$LAT_ROWS"
        stop_sim
    }
    if [[ -f "$W/setup-kpl-java.err" ]]; then
        echo "{\"peer\":\"kpl-java\",\"status\":\"not run: setup failed\"}" >>"$LAT_ROWS"
    elif start_sim --tls --limits; then
        hp="${EPS#https://}"
        timeout "$TIMEOUT" java -Xmx2g -cp "$(java_cp)" bench.Main latency "${hp%:*}" "${hp##*:}" bench \
            "$LAT_RECORDS" "$SIZE" "$KEYS" "$LAT_RATE" >"$W/lat-kpl.out" 2>"$W/lat-kpl.err"
        extra_row latency kpl-java $? "$W/lat-kpl.out" "$W/lat-kpl.err" >>"$LAT_ROWS"
        stop_sim
    fi
    log "latency: $(cat "$LAT_ROWS" | cut -c1-400)"
fi

# ---- report ----------------------------------------------------------------
versions="$W/versions.json"
"$PY" - "$versions" "$KPL" "$ROOT" "$IDLE_AT_START" <<'PYEOF'
import json, subprocess, sys
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception as e: return str(e)
out, kpl, root, idle_at_start = sys.argv[1:]
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
v = {"idle_percent_at_start": int(idle_at_start), "nproc": sh("nproc"), "cpu": cpu, "loadavg_before_report": sh("cat /proc/loadavg"),
     "kpl-rs": sh(f"{kpl} --version") + " @ " + sh(f"git -C {root} rev-parse --short HEAD"),
     "node": sh("node --version"), "java": sh("java -version 2>&1 | head -n1"), "go": sh("go version"),
     "python": sh(f"{sys.executable} --version"),
     "amazon-kinesis-producer": sh(f"ls {root}/benches/peers/kpl-java/target/cp.txt >/dev/null && tr ':' '\\n' < {root}/benches/peers/kpl-java/target/cp.txt | grep -o 'amazon-kinesis-producer-[0-9.]*jar'"),
     "pip": sh(f"{sys.executable} -m pip list 2>/dev/null | grep -iE '^(aiokpl|aws-kinesis-agg|boto3|botocore|aiobotocore) '"),
     "npm": sh(f"cd {root}/benches/peers && npm ls --depth=0 2>/dev/null | tail -n +2")}
json.dump(v, open(out, "w"))
PYEOF
cp "$MEM_ROWS" "$OUT/peers-$DATE-memory.jsonl"; cp "$LAT_ROWS" "$OUT/peers-$DATE-latency.jsonl"
"$PY" "$HERE/report.py" --rows "$ROWS" --versions "$versions" --records "$RECORDS" \
    --memory "$MEM_ROWS" --latency "$LAT_ROWS" --lat-rate "$LAT_RATE" \
    --md "$OUT/peers-$DATE.md" --png "$OUT/peers-$DATE.png"
cat "$OUT/peers-$DATE.md"
log "raw output of each peer kept in $W"
