#!/usr/bin/env bash
# Peer comparison (issues 9 and 18): each producer in turn against a fresh
# `kpl sim --unlimited` on loopback (4 shards, aggregation on where the peer
# has it), driven as its documentation advises, plus the KPL's naive run.
# For each: wall time, records/s, CPU s (user+sys, the whole process: for the
# KPL its JVM and native daemon) per million records, peak RSS, put-to-result
# latency p50/p99 where the peer reports results, and the user records the
# simulator holds afterwards (read back from TRIM_HORIZON, `kpl deagg`).
#
# Workload cells: 100b (100 B, 1000 keys, RECORDS records), 1kb (1000 B,
# RECORDS/5), 10kb (10,000 B, RECORDS/50: about the same bytes), keys1 and
# keys100k (100 B over 1 and 100,000 keys, RECORDS). Every peer at one cell
# gets the same count. The matrix peers (rust c go kpl-pooled
# kpl-per-request) run every cell; the others the 100b cell only.
#
# Sections after the peers: memory (per buffered record, against a black
# hole), latency (half a 1-shard stream's sustainable rate), embedded (`kpl
# perf --unlimited` with its own simulator, EMB_RUNS times), paced (`kpl perf
# --rate 15000` and `kpl perf` at full speed, alternating PACED_RUNS times,
# each against a fresh simulator; the driver alone at both paces if kpl has
# `--driver-only`).
#
#   benches/peers/run.sh [--records N] [--peers a,b,...] [--cells c,...] [--timeout S]
#       [--no-build] [--no-idle-wait] [--bin-dir DIR] [--out DIR] [--sections peers,memory,latency,embedded,paced]
#       [--mem-records N] [--embedded-records N] [--embedded-runs N]
#       [--paced-records N] [--paced-rate R] [--paced-full-records N] [--paced-runs N] [--kpl-cap N]
#
# Peers: rust c go kpl-pooled kpl-per-request kpl-java (the naive KPL run)
#        node node-many python python-put python-async aiokpl agg-boto3 agg-node
# Writes OUT/peers-<date>.md, .png and .jsonl (raw rows) (OUT: benches/results).
# --bin-dir: where `kpl`, libkpl.so, libkpl_node.so and lib_kpl.so are
# (default $CARGO_TARGET_DIR/release, built here unless --no-build).
# Third-party peers are installed from their registries into gitignored
# directories here (.venv, node_modules, ~/.m2, the Go module cache).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET_DIR/release"
OUT="$ROOT/benches/results"
RECORDS=1000000 TIMEOUT=900 BUILD=1 IDLE_TRIES=60
PEERS="rust,c,go,kpl-pooled,kpl-per-request,kpl-java,node,node-many,python,python-put,python-async,aiokpl,agg-boto3,agg-node"
MATRIX_PEERS=",rust,c,go,kpl-pooled,kpl-per-request,"
CELLS="100b,1kb,10kb,keys1,keys100k"
SECTIONS="peers,memory,latency,embedded,paced" MEM_RECORDS=1000000
EMB_RECORDS=1000000 EMB_RUNS=3
# Paced: a gateway's modest rate, 30 s of it.
PACED_RATE=15000 PACED_RECORDS=450000 PACED_FULL_RECORDS=1000000 PACED_RUNS=3
# The KPL's README asks for back-pressure on getOutstandingRecordsCount().
KPL_CAP=10000
# Latency: 1 shard with limits on sustains ~9,000 aggregated 100-byte records/s
# (1 MiB/s over ~115 bytes a record in an aggregate); half of that, for 20 s.
LAT_RATE=4500 LAT_RECORDS=90000
while [[ $# -gt 0 ]]; do
    case "$1" in
        --records) RECORDS="$2"; shift 2 ;;
        --peers) PEERS="$2"; shift 2 ;;
        --cells) CELLS="$2"; shift 2 ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --no-idle-wait) IDLE_TRIES=1; shift ;;
        --bin-dir) BIN_DIR="$(cd "$2" && pwd)"; shift 2 ;;
        --out) mkdir -p "$2"; OUT="$(cd "$2" && pwd)"; shift 2 ;;
        --sections) SECTIONS="$2"; shift 2 ;;
        --mem-records) MEM_RECORDS="$2"; shift 2 ;;
        --embedded-records) EMB_RECORDS="$2"; shift 2 ;;
        --embedded-runs) EMB_RUNS="$2"; shift 2 ;;
        --paced-records) PACED_RECORDS="$2"; shift 2 ;;
        --paced-rate) PACED_RATE="$2"; shift 2 ;;
        --paced-full-records) PACED_FULL_RECORDS="$2"; shift 2 ;;
        --paced-runs) PACED_RUNS="$2"; shift 2 ;;
        --kpl-cap) KPL_CAP="$2"; shift 2 ;;
        -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
KPL="$BIN_DIR/kpl"
DATE="$(date -u +%Y%m%d-%H%M)"
W="$(mktemp -d /tmp/kpl-peers.XXXXXX)"
ROWS="$OUT/peers-$DATE.jsonl"
MEM_ROWS="$W/memory.jsonl" LAT_ROWS="$W/latency.jsonl" EMB_ROWS="$W/embedded.jsonl" PACED_ROWS="$W/paced.jsonl"
mkdir -p "$OUT"
: >"$ROWS"; : >"$MEM_ROWS"; : >"$LAT_ROWS"; : >"$EMB_ROWS"; : >"$PACED_ROWS"
SIM_PID="" HOLE_PID=""
cleanup() {
    [[ -n "$SIM_PID" ]] && kill "$SIM_PID" 2>/dev/null
    [[ -n "$HOLE_PID" ]] && kill "$HOLE_PID" 2>/dev/null
    true
}
trap cleanup EXIT
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
if [[ ! -x /usr/bin/time ]]; then
    log "installing GNU time (apt)"
    sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
    { $sudo apt-get update -qq && $sudo apt-get install -y -qq time; } >/dev/null || { log "cannot install GNU time"; exit 1; }
fi
setup_err() { # peer, message: the peer cannot run; its row says why
    printf '%s\n' "$2" | tail -c 600 >"$W/setup-$1.err"
    log "setup $1 failed: $(tail -n1 "$W/setup-$1.err")"
}
want() { [[ ",$PEERS," == *",$1,"* ]]; }
section() { [[ ",$SECTIONS," == *",$1,"* ]]; }
# The KPL also gets the memory and latency sections when any KPL row is wanted.
want_kpl() { want kpl-java || want kpl-pooled || want kpl-per-request; }
CREDS=(--set AwsAccessKeyId=x --set AwsSecretAccessKey=y --region us-east-1)

# ---- setup: build ours, install the peers ---------------------------------
if [[ $BUILD == 1 ]]; then
    log "cargo build --release -p kpl-cli -p kpl-ffi (CARGO_TARGET_DIR=$TARGET_DIR)"
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p kpl-cli -p kpl-ffi) >&2 || { log "cargo build failed"; exit 1; }
fi
[[ -x "$KPL" ]] || { log "$KPL missing (build kpl-cli, or pass --bin-dir)"; exit 1; }
# The Python peers (and the chart's matplotlib) live in .venv; without them
# the harness itself needs only the standard library.
PY=python3
[[ -x "$HERE/.venv/bin/python" ]] && PY="$HERE/.venv/bin/python"
if want python || want python-put || want python-async || want aiokpl || want agg-boto3; then
    PY="$HERE/.venv/bin/python"
    [[ -x "$PY" ]] || python3 -m venv "$HERE/.venv"
    log "pip install -r python/requirements.txt"
    if ! e="$("$PY" -m pip install -q -r "$HERE/python/requirements.txt" 2>&1)"; then
        setup_err aiokpl "$e"; setup_err agg-boto3 "$e"
    fi
fi
if want c; then
    mkdir -p "$HERE/.build"
    e="$(cc -O2 -std=c99 -I"$ROOT/kpl-ffi/include" "$ROOT/examples/c/bench.c" -o "$HERE/.build/bench-c" \
        -L"$BIN_DIR" -lkpl -Wl,-rpath,"$BIN_DIR" 2>&1)" || setup_err c "$e"
fi
if want node || want node-many; then
    if [[ $BUILD == 1 || ! -f "$BIN_DIR/libkpl_node.so" ]]; then
        log "cargo build --release -p kpl-node"
        e="$(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p kpl-node 2>&1)" || setup_err node "$e"
    fi
    [[ -f "$ROOT/bindings/node/index.js" ]] || setup_err node "bindings/node/index.js missing"
    cp "$BIN_DIR/libkpl_node.so" "$W/kpl-rs.node" 2>/dev/null || setup_err node "no libkpl_node.so in $BIN_DIR"
    [[ -f "$W/setup-node.err" ]] && cp "$W/setup-node.err" "$W/setup-node-many.err"
fi
if want python || want python-put || want python-async; then
    log "maturin develop --release (bindings/python into $HERE/.venv)"
    e="$("$PY" -m pip install -q maturin==1.16.0 2>&1 &&
        cd "$ROOT" && VIRTUAL_ENV="$HERE/.venv" CARGO_TARGET_DIR="$TARGET_DIR" \
        "$HERE/.venv/bin/maturin" develop --release -q -m bindings/python/Cargo.toml 2>&1)" || setup_err python "$e"
    [[ -f "$W/setup-python.err" ]] && cp "$W/setup-python.err" "$W/setup-python-put.err" &&
        cp "$W/setup-python.err" "$W/setup-python-async.err"
fi
if want agg-node; then
    log "npm install (aws-kinesis-agg, @aws-sdk/client-kinesis, @smithy/node-http-handler)"
    e="$(cd "$HERE" && npm install --no-audit --no-fund --loglevel=error 2>&1)" || setup_err agg-node "$e"
fi
if want_kpl; then
    log "mvn compile (software.amazon.kinesis:amazon-kinesis-producer)"
    if ! e="$(cd "$HERE/kpl-java" && timeout 600 mvn -q -B compile dependency:build-classpath \
        -Dmdep.outputFile=target/cp.txt 2>&1)"; then
        setup_err kpl-java "$e"
        cp "$W/setup-kpl-java.err" "$W/setup-kpl-pooled.err"; cp "$W/setup-kpl-java.err" "$W/setup-kpl-per-request.err"
    fi
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
    # No retention cap: one shard holds the whole keys1 cell (~115 MiB).
    "$KPL" sim --port 0 "${limits[@]}" "${tls[@]}" --retain-records-per-shard 0 --retain-mib-per-shard 0 \
        >"$out" 2>"$W/sim.err" &
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
java_cp() { echo "$HERE/kpl-java/target/classes:$(cat "$HERE/kpl-java/target/cp.txt")"; }

cell_of() { # cell id -> "size keys count"
    case "$1" in
        100b) echo "100 1000 $RECORDS" ;;
        1kb) echo "1000 1000 $((RECORDS / 5))" ;;
        10kb) echo "10000 1000 $((RECORDS / 50))" ;;
        keys1) echo "100 1 $RECORDS" ;;
        keys100k) echo "100 100000 $RECORDS" ;;
        *) return 1 ;;
    esac
}

run_peer() { # name cell
    local name="$1" cell="$2" cmd=() tls="" size keys n
    read -r size keys n <<<"$(cell_of "$cell")"
    local tag="$name-$cell"
    local row=(--name "$name" --cell "$cell" --size "$size" --keys "$keys" --records "$n")
    if [[ -f "$W/setup-$name.err" ]]; then
        "$PY" "$HERE/collect.py" "${row[@]}" --setup-error "$W/setup-$name.err" >>"$ROWS"; return
    fi
    [[ $name == kpl-* ]] && tls=--tls
    start_sim $tls || { echo "{\"peer\":\"$name\",\"cell\":\"$cell\",\"status\":\"sim did not start\"}" >>"$ROWS"; return; }
    local args=("$n" "$size" "$keys") hp="${EPS#https://}"
    local node_env=(env KPL_NODE_INDEX="$ROOT/bindings/node/index.js" NAPI_RS_NATIVE_LIBRARY_PATH="$W/kpl-rs.node")
    case "$name" in
        rust) cmd=("$KPL" perf --endpoint "$EP" --stream bench --records "$n" --record-size "$size"
                   --partition-keys "$keys" --unlimited --no-verify --json "${CREDS[@]}") ;;
        c) cmd=("$HERE/.build/bench-c" "$EP" bench "${args[@]}") ;;
        node) cmd=("${node_env[@]}" node "$HERE/node/ours.mjs" "$EP" bench "${args[@]}") ;;
        node-many) cmd=("${node_env[@]}" node "$HERE/node/ours.mjs" "$EP" bench "${args[@]}" --many) ;;
        python) cmd=("$PY" "$HERE/python/ours.py" "$EP" bench "${args[@]}" --mode put_many) ;;
        python-put) cmd=("$PY" "$HERE/python/ours.py" "$EP" bench "${args[@]}" --mode put) ;;
        python-async) cmd=("$PY" "$HERE/python/ours.py" "$EP" bench "${args[@]}" --mode async) ;;
        kpl-java) cmd=(java -Xmx2g -cp "$(java_cp)" bench.Main throughput "${hp%:*}" "${hp##*:}" bench "${args[@]}") ;;
        kpl-pooled) cmd=(java -Xmx2g -cp "$(java_cp)" bench.Main advised "${hp%:*}" "${hp##*:}" bench "${args[@]}"
                         POOLED "$KPL_CAP") ;;
        kpl-per-request) cmd=(java -Xmx2g -cp "$(java_cp)" bench.Main advised "${hp%:*}" "${hp##*:}" bench "${args[@]}"
                              PER_REQUEST "$KPL_CAP") ;;
        aiokpl) cmd=("$PY" "$HERE/python/aiokpl_peer.py" "$EP" bench "${args[@]}") ;;
        agg-boto3) cmd=("$PY" "$HERE/python/agg_boto3.py" "$EP" bench "${args[@]}") ;;
        agg-node) cmd=(node "$HERE/node/agg-sdk.mjs" "$EP" bench "${args[@]}") ;;
        go) cmd=("$HERE/go/bin/peer" "$EP" bench "${args[@]}") ;;
        *) log "unknown peer $name"; stop_sim; return ;;
    esac
    log "$name @ $cell: $n records of $size B over $keys keys"
    (cd "$HERE" && timeout "$TIMEOUT" /usr/bin/time -v -o "$W/$tag.time" "${cmd[@]}" >"$W/$tag.out" 2>"$W/$tag.err")
    local rc=$?
    curl -s "$EP/_sim/stats" >"$W/$tag.stats"
    timeout 600 "$PY" "$HERE/readback.py" "$EP" bench "$KPL" >"$W/$tag.readback" 2>>"$W/$tag.err"
    stop_sim
    "$PY" "$HERE/collect.py" "${row[@]}" --rc "$rc" --time "$W/$tag.time" --out "$W/$tag.out" --err "$W/$tag.err" \
        --stats "$W/$tag.stats" --readback "$W/$tag.readback" >>"$ROWS"
    log "$name @ $cell: $(tail -n1 "$ROWS" | cut -c1-300)"
}

# A labelled JSON line from a run's stdout (its last JSON line) and, when
# given, its /usr/bin/time -v file (whole-process CPU and peak RSS); or its error.
extra_row() { # label rc out err [time]
    "$PY" - "$@" <<'PYEOF'
import json, sys
label, rc, out, err = sys.argv[1:5]
tfile = sys.argv[5] if len(sys.argv) > 5 else None
j = None
for line in reversed(open(out).read().splitlines()):
    if line.strip().startswith("{"):
        j = json.loads(line); break
row = {"peer": label, **(j or {})}
if tfile:
    fields = {}
    for line in open(tfile):
        k, _, v = line.strip().rpartition(": ")
        fields[k] = v
    try:
        cpu = float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])
        row["process_cpu_s"] = round(cpu, 3)
        if j and j.get("records"):
            row["process_cpu_s_per_M"] = round(cpu / j["records"] * 1e6, 3)
        row["peak_rss_mb"] = round(int(fields["Maximum resident set size (kbytes)"]) / 1024, 1)
    except (KeyError, ValueError):
        pass
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
# most 2 minutes, unless --no-idle-wait) until it is at least 90% idle, and
# record how idle it was.
for _ in $(seq "$IDLE_TRIES"); do
    IDLE_AT_START="$(idle_percent)"
    [[ $IDLE_AT_START -ge 90 ]] && break
done
log "CPU idle before the first run: $IDLE_AT_START%"

if section peers; then
    IFS=, read -r -a peer_list <<<"$PEERS"
    IFS=, read -r -a cell_list <<<"$CELLS"
    for c in "${cell_list[@]}"; do
        cell_of "$c" >/dev/null || { log "unknown cell $c (known: 100b 1kb 10kb keys1 keys100k)"; exit 2; }
        for p in "${peer_list[@]}"; do
            [[ $c == 100b || $MATRIX_PEERS == *",$p,"* ]] && run_peer "$p" "$c"
        done
    done
fi

if section memory; then
    : >"$W/hole.out"
    "$PY" "$HERE/blackhole.py" --seconds 1800 >"$W/hole.out" 2>&1 &
    HOLE_PID=$!
    for _ in $(seq 50); do grep -q listening "$W/hole.out" && break; sleep 0.1; done
    port="$(sed -n 's/^blackhole listening on //p' "$W/hole.out")"
    log "memory: $MEM_RECORDS records buffered against a black hole at 127.0.0.1:$port"
    timeout "$TIMEOUT" "$KPL" perf --buffer-only --endpoint "http://127.0.0.1:$port" --stream bench \
        --records "$MEM_RECORDS" --record-size 100 --partition-keys 1000 --json "${CREDS[@]}" \
        >"$W/mem-rust.out" 2>"$W/mem-rust.err"
    extra_row rust $? "$W/mem-rust.out" "$W/mem-rust.err" >>"$MEM_ROWS"
    if ! want_kpl; then
        : # no KPL row wanted (--peers)
    elif [[ -f "$W/setup-kpl-java.err" || ! -f "$HERE/kpl-java/target/cp.txt" ]]; then
        echo "{\"peer\":\"kpl-java\",\"status\":\"not run: the KPL's setup failed\"}" >>"$MEM_ROWS"
    else
        timeout "$TIMEOUT" java -Xmx4g -cp "$(java_cp)" bench.Main memory 127.0.0.1 "$port" bench \
            "$MEM_RECORDS" 100 1000 >"$W/mem-kpl.out" 2>"$W/mem-kpl.err"
        extra_row kpl-java $? "$W/mem-kpl.out" "$W/mem-kpl.err" >>"$MEM_ROWS"
    fi
    kill "$HOLE_PID" 2>/dev/null; wait "$HOLE_PID" 2>/dev/null; HOLE_PID=""
    log "memory: $(cut -c1-300 "$MEM_ROWS")"
fi

if section latency; then
    log "latency: $LAT_RECORDS records at $LAT_RATE/s into 1 shard, limits on"
    start_sim --limits && {
        timeout "$TIMEOUT" "$KPL" perf --endpoint "$EP" --stream bench --records "$LAT_RECORDS" --rate "$LAT_RATE" \
            --record-size 100 --partition-keys 1000 --no-verify --json --set RecordMaxBufferedTime=100 \
            "${CREDS[@]}" >"$W/lat-rust.out" 2>"$W/lat-rust.err"
        extra_row rust $? "$W/lat-rust.out" "$W/lat-rust.err" >>"$LAT_ROWS"
        stop_sim
    }
    if ! want_kpl; then
        : # no KPL row wanted (--peers)
    elif [[ -f "$W/setup-kpl-java.err" || ! -f "$HERE/kpl-java/target/cp.txt" ]]; then
        echo "{\"peer\":\"kpl-java\",\"status\":\"not run: the KPL's setup failed\"}" >>"$LAT_ROWS"
    elif start_sim --tls --limits; then
        hp="${EPS#https://}"
        timeout "$TIMEOUT" java -Xmx2g -cp "$(java_cp)" bench.Main latency "${hp%:*}" "${hp##*:}" bench \
            "$LAT_RECORDS" 100 1000 "$LAT_RATE" >"$W/lat-kpl.out" 2>"$W/lat-kpl.err"
        extra_row kpl-java $? "$W/lat-kpl.out" "$W/lat-kpl.err" >>"$LAT_ROWS"
        stop_sim
    fi
    log "latency: $(cut -c1-400 "$LAT_ROWS")"
fi

if section embedded; then
    # Exactly the quickstart's command (embedded simulator, read-back on).
    for i in $(seq "$EMB_RUNS"); do
        log "embedded $i/$EMB_RUNS: kpl perf --unlimited --records $EMB_RECORDS"
        (cd "$W" && timeout "$TIMEOUT" /usr/bin/time -v -o "$W/emb-$i.time" "$KPL" perf --unlimited \
            --records "$EMB_RECORDS" --json >"$W/emb-$i.out" 2>"$W/emb-$i.err")
        extra_row "embedded-$i" $? "$W/emb-$i.out" "$W/emb-$i.err" "$W/emb-$i.time" >>"$EMB_ROWS"
    done
    log "embedded: $(cut -c1-200 "$EMB_ROWS")"
fi

if section paced; then
    # Paced and full-speed runs alternate (PACED_RUNS rounds, each against a
    # fresh simulator), so both medians see the same machine; the drivers
    # alone (paced and full speed) once each.
    common=(--stream bench --record-size 100 --partition-keys 1000 --unlimited --no-verify --json "${CREDS[@]}")
    log "paced: $PACED_RUNS rounds of $PACED_RECORDS records at $PACED_RATE/s and $PACED_FULL_RECORDS at full speed"
    for i in $(seq "$PACED_RUNS"); do
        for mode in full paced; do
            if [[ $mode == paced ]]; then args=(--records "$PACED_RECORDS" --rate "$PACED_RATE")
            else args=(--records "$PACED_FULL_RECORDS"); fi
            if start_sim; then
                timeout "$TIMEOUT" /usr/bin/time -v -o "$W/$mode-$i.time" "$KPL" perf --endpoint "$EP" "${common[@]}" \
                    "${args[@]}" >"$W/$mode-$i.out" 2>"$W/$mode-$i.err"
                extra_row "$mode-$i" $? "$W/$mode-$i.out" "$W/$mode-$i.err" "$W/$mode-$i.time" >>"$PACED_ROWS"
                stop_sim
            else
                echo "{\"peer\":\"$mode-$i\",\"status\":\"sim did not start\"}" >>"$PACED_ROWS"
            fi
        done
    done
    if "$KPL" perf --help | grep -q -- '--driver-only'; then
        for mode in paced full; do
            if [[ $mode == paced ]]; then args=(--records "$PACED_RECORDS" --rate "$PACED_RATE") label=driver-only
            else args=(--records "$PACED_FULL_RECORDS") label=driver-only-full; fi
            # The driver puts nothing; the endpoint is never called.
            timeout "$TIMEOUT" /usr/bin/time -v -o "$W/$label.time" "$KPL" perf --driver-only --endpoint http://127.0.0.1:9 \
                "${common[@]}" "${args[@]}" >"$W/$label.out" 2>"$W/$label.err"
            extra_row "$label" $? "$W/$label.out" "$W/$label.err" "$W/$label.time" >>"$PACED_ROWS"
        done
    else
        echo '{"peer":"driver-only","status":"driver-only not available (kpl perf --help does not list --driver-only)"}' \
            >>"$PACED_ROWS"
    fi
    log "paced: $(cut -c1-300 "$PACED_ROWS")"
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
     "a8m/kinesis-producer": sh(f"grep -E '^[[:space:]]*(require )?github.com/a8m/kinesis-producer ' {root}/benches/peers/go/go.mod"),
     "pip": sh(f"{sys.executable} -m pip list 2>/dev/null | grep -iE '^(aiokpl|aws-kinesis-agg|boto3|botocore|aiobotocore) '"),
     "npm": sh(f"cd {root}/benches/peers && npm ls --depth=0 2>/dev/null | tail -n +2")}
json.dump(v, open(out, "w"))
PYEOF
for s in memory latency embedded paced; do
    section "$s" && cp "$W/$s.jsonl" "$OUT/peers-$DATE-$s.jsonl"
done
"$PY" "$HERE/report.py" --rows "$ROWS" --versions "$versions" --base-records "$RECORDS" \
    --memory "$MEM_ROWS" --latency "$LAT_ROWS" --lat-rate "$LAT_RATE" --embedded "$EMB_ROWS" \
    --paced "$PACED_ROWS" --paced-rate "$PACED_RATE" --kpl-cap "$KPL_CAP" \
    --md "$OUT/peers-$DATE.md" --png "$OUT/peers-$DATE.png"
cat "$OUT/peers-$DATE.md"
log "report: $OUT/peers-$DATE.md; raw output of each peer kept in $W"
