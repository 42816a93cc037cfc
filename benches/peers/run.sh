#!/usr/bin/env bash
# Peer comparison (issue 9): each producer in turn against a fresh
# `kpl sim --unlimited` on loopback, same workload (RECORDS records of 100
# bytes over 1000 partition keys, 4 shards, aggregation on where the peer has
# it). For each: wall time, records/s, CPU s (user+sys) per million records,
# peak RSS (/usr/bin/time -v), put-to-result latency p50/p99 where the peer
# reports results, and the user records the simulator holds afterwards (read
# back from TRIM_HORIZON and deaggregated with `kpl deagg`).
#
#   benches/peers/run.sh [--records N] [--peers a,b,...] [--timeout S] [--no-build]
#
# Peers: rust c node python kpl-java aiokpl agg-boto3 agg-node go
# Writes benches/results/peers-<date>.md, .png and .jsonl (raw rows).
# Third-party peers are installed from their registries into gitignored
# directories here (.venv, node_modules, ~/.m2, the Go module cache).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
KPL="$TARGET_DIR/release/kpl"
RECORDS=1000000 SIZE=100 KEYS=1000 TIMEOUT=900 BUILD=1
PEERS="rust,c,node,python,kpl-java,aiokpl,agg-boto3,agg-node,go"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --records) RECORDS="$2"; shift 2 ;;
        --peers) PEERS="$2"; shift 2 ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
DATE="$(date -u +%Y%m%d-%H%M)"
OUT="$ROOT/benches/results"
W="$(mktemp -d /tmp/kpl-peers.XXXXXX)"
ROWS="$OUT/peers-$DATE.jsonl"
mkdir -p "$OUT"
: >"$ROWS"
SIM_PID=""
cleanup() { [[ -n "$SIM_PID" ]] && kill "$SIM_PID" 2>/dev/null; true; }
trap cleanup EXIT
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
[[ -x /usr/bin/time ]] || { log "installing GNU time"; apt-get install -y -q time >/dev/null; }
setup_err() { # peer, message: the peer cannot run; its row says why
    printf '%s\n' "$2" | tail -c 600 >"$W/setup-$1.err"
    log "setup $1 failed: $(tail -n1 "$W/setup-$1.err")"
}
want() { [[ ",$PEERS," == *",$1,"* ]]; }

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
    e="$(cc -O2 -std=c99 -I"$ROOT/kpl-ffi/include" "$HERE/c/bench.c" -o "$HERE/.build/bench-c" \
        -L"$TARGET_DIR/release" -lkpl -Wl,-rpath,"$TARGET_DIR/release" 2>&1)" || setup_err c "$e"
fi
if want node; then
    if [[ $BUILD == 1 || ! -f "$TARGET_DIR/release/libkpl_node.so" ]]; then
        log "cargo build --release -p kpl-node"
        e="$(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p kpl-node 2>&1)" || setup_err node "$e"
    fi
    [[ -f "$ROOT/bindings/node/index.js" ]] || setup_err node "bindings/node/index.js missing"
    cp "$TARGET_DIR/release/libkpl_node.so" "$W/kpl-rs.node" 2>/dev/null || setup_err node "no libkpl_node.so"
fi
if want python; then
    [[ -d "$ROOT/bindings/python" ]] || setup_err python "not built in this run: bindings/python is not in this worktree"
fi
if want agg-node; then
    log "npm install (aws-kinesis-agg, @aws-sdk/client-kinesis, @smithy/node-http-handler)"
    e="$(cd "$HERE" && npm install --no-audit --no-fund --loglevel=error 2>&1)" || setup_err agg-node "$e"
fi
if want kpl-java; then
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
start_sim() { # [--tls]: a fresh simulator with stream bench (4 shards); sets EP (and EPS)
    local out="$W/sim.out" tls=()
    [[ "${1:-}" == --tls ]] && tls=(--tls --tls-port 0 --ca-out "$W/ca.pem")
    : >"$out"
    "$KPL" sim --port 0 --unlimited --stream bench:4 "${tls[@]}" >"$out" 2>"$W/sim.err" &
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
        python) cmd=("$PY" "$ROOT/bindings/python/bench/peer.py" "$EP" bench "${args[@]}") ;;
        kpl-java) local hp="${EPS#https://}"
                  cmd=(java -Xmx2g -cp "$HERE/kpl-java/target/classes:$(cat "$HERE/kpl-java/target/cp.txt")"
                       bench.Main "${hp%:*}" "${hp##*:}" bench "${args[@]}") ;;
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

IFS=, read -r -a list <<<"$PEERS"
for p in "${list[@]}"; do run_peer "$p"; done

# ---- report ----------------------------------------------------------------
versions="$W/versions.json"
"$PY" - "$versions" "$KPL" "$ROOT" <<'PYEOF'
import json, subprocess, sys
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception as e: return str(e)
out, kpl, root = sys.argv[1:]
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
v = {"nproc": sh("nproc"), "cpu": cpu, "loadavg_before_report": sh("cat /proc/loadavg"),
     "kpl-rs": sh(f"{kpl} --version") + " @ " + sh(f"git -C {root} rev-parse --short HEAD"),
     "node": sh("node --version"), "java": sh("java -version 2>&1 | head -n1"), "go": sh("go version"),
     "python": sh(f"{sys.executable} --version"),
     "amazon-kinesis-producer": sh(f"ls {root}/benches/peers/kpl-java/target/cp.txt >/dev/null && tr ':' '\\n' < {root}/benches/peers/kpl-java/target/cp.txt | grep -o 'amazon-kinesis-producer-[0-9.]*jar'"),
     "pip": sh(f"{sys.executable} -m pip list 2>/dev/null | grep -iE '^(aiokpl|aws-kinesis-agg|boto3|botocore|aiobotocore) '"),
     "npm": sh(f"cd {root}/benches/peers && npm ls --depth=0 2>/dev/null | tail -n +2")}
json.dump(v, open(out, "w"))
PYEOF
"$PY" "$HERE/report.py" --rows "$ROWS" --versions "$versions" --records "$RECORDS" \
    --md "$OUT/peers-$DATE.md" --png "$OUT/peers-$DATE.png"
cat "$OUT/peers-$DATE.md"
log "raw output of each peer kept in $W"
