#!/usr/bin/env bash
# The project's test command: `scripts/test.sh` (CI runs it through .ci/run).
#
# Installs what the tests need into the repo (a .venv, tests/node/node_modules),
# builds the workspace once, then runs every step even if an earlier one
# failed, and exits non-zero if any step failed.
#
#   scripts/test.sh                 all steps
#   scripts/test.sh rust python     only the named steps (lint rust python node)
#
# Needs: cargo (with rustfmt and clippy), python3 (with venv), node >= 20, npm.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# The `kpl` binary the Python and Node tests drive.
export KPL_BIN="${KPL_BIN:-$TARGET_DIR/debug/kpl}"
VENV="$ROOT/.venv"

ALL_STEPS=(lint build rust sim python node c node_binding python_binding docs package bench_smoke)
FAILED=()
PASSED=()

banner() {
    printf '\n==================== %s ====================\n' "$*"
}

# ---------------------------------------------------------------- steps --

step_lint() {
    # One version: the npm manifests and napi's loader agree with Cargo.toml.
    python3 scripts/version.py
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    cargo clippy -p kpl-core --all-targets --locked --features metrics-facade -- -D warnings
}

step_build() {
    cargo build --workspace --all-targets --locked
}

step_rust() {
    # kinesalite, a Kinesis implementation we did not write, for the
    # producer's protocol-fidelity tests; stopped when the step ends.
    setup_node
    local log="$TARGET_DIR/kinesalite.log"
    mkdir -p "$TARGET_DIR"
    node tests/node/kinesalite-server.mjs >"$log" 2>&1 &
    KINESALITE_PID=$!
    local pid=$KINESALITE_PID
    # The step runs in a subshell: this trap fires when it ends, however.
    trap 'kill "$KINESALITE_PID" 2>/dev/null || true' EXIT
    local endpoint=""
    for _ in $(seq 1 100); do
        endpoint="$(sed -n 's/^kinesalite listening on //p' "$log")"
        [[ -n "$endpoint" ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z "$endpoint" ]]; then
        echo "kinesalite did not start:" >&2
        cat "$log" >&2
        return 1
    fi
    echo "kinesalite at $endpoint (pid $pid)"
    # tinyproxy, the HTTP CONNECT proxy the proxy tests start themselves
    # (kpl-cli/tests/service_cli.rs), each with its own config on loopback.
    if ! command -v tinyproxy >/dev/null; then
        echo "installing tinyproxy"
        local sudo=""
        [[ $(id -u) -eq 0 ]] || sudo="sudo"
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq tinyproxy
    fi
    # The seeded simulation runs in its own step (below), not twice.
    KPL_KINESALITE_ENDPOINT="$endpoint" cargo test --workspace --locked -- \
        --skip seeded_runs_keep_every_invariant
    # The `metrics` crate facade, an optional feature the workspace run leaves off.
    cargo test -p kpl-core --locked --features metrics-facade --lib metrics::
}

step_sim() {
    # The deterministic simulation suite: the producer over kpl-sim's state
    # model on tokio's paused clock, KPL_SIM_RUNS seeded runs (default
    # 1,000; dense and long), every invariant checked after each. It prints
    # the runs, simulated hours and records it checked. Nightly: raise
    # KPL_SIM_RUNS and set KPL_SIM_FIRST_SEED to cover new seeds.
    cargo test --locked -p kpl-core --test simulation -- --nocapture seeded_runs_keep_every_invariant
}

setup_python() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        python3 -m venv "$VENV"
    fi
    # Reinstall only when the requirements changed.
    local stamp="$VENV/.requirements.sha256"
    local want
    want="$(sha256sum tests/requirements.txt | cut -d' ' -f1)"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            --no-input -r tests/requirements.txt
        echo "$want" >"$stamp"
    fi
}

step_python() {
    setup_python
    "$VENV/bin/python" -m pytest tests/python -p no:cacheprovider
}

step_python_binding() {
    setup_python
    # The native module in the dev profile, in the shared target dir.
    CARGO_TARGET_DIR="$TARGET_DIR" "$VENV/bin/maturin" develop --quiet \
        -m bindings/python/Cargo.toml --profile dev
    # The simulator the tests start (KPL_BIN).
    [[ -x "$KPL_BIN" ]] || cargo build -p kpl-cli
    "$VENV/bin/python" -m mypy --config-file bindings/python/mypy.ini \
        bindings/python/python/kpl bindings/python/tests examples/python bindings/python/bench
    "$VENV/bin/python" -m pytest bindings/python/tests -p no:cacheprovider
}

setup_node() {
    # npm ci wipes and reinstalls node_modules; skip it when the lockfile
    # has not changed since the last install.
    local stamp="tests/node/node_modules/.package-lock.sha256"
    local want
    want="$(sha256sum tests/node/package-lock.json | cut -d' ' -f1)"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
        echo "$want" >"$stamp"
    fi
}

step_node() {
    setup_node
    node --test tests/node/
}

step_node_binding() {
    # The kpl-rs npm package (bindings/node): npm ci when its lockfile
    # changed; the addon is the workspace build's libkpl_node.so (the same
    # build and features as every other step, so nothing recompiles) copied
    # to the name native.cjs loads on this platform; then tsc over the types
    # and examples, and node --test against kpl-sim (target/debug/kpl).
    # `npm run build` (napi build) does the same copy and also regenerates
    # native.cjs / native.d.ts; the tests do not need napi's CLI.
    local dir="bindings/node"
    local stamp="$dir/node_modules/.package-lock.sha256"
    local want
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        # npm 11 leaves other platforms' optional packages of optional
        # dependencies (@napi-rs/cli's) out of the lock and then `npm ci`
        # refuses it; `npm install` installs the locked versions all the same.
        (cd "$dir" && { npm ci --no-audit --no-fund --loglevel=error ||
            npm install --no-audit --no-fund --loglevel=error; })
        echo "$want" >"$stamp"
    fi
    step_build
    if [[ "$(uname -s)" != Linux ]]; then
        echo "node_binding: this step knows Linux's library name only; use 'npm run build' in $dir" >&2
        return 1
    fi
    local addon
    addon="$dir/kpl-rs.linux-$(node -p process.arch)-gnu.node"
    cp "$TARGET_DIR/debug/libkpl_node.so" "$addon"
    echo "addon: $addon ($(stat -c %s "$addon") bytes)"
    # Local binaries only: `npx tsc` would fetch an unrelated package from
    # the registry if the install above had gone wrong.
    (cd "$dir" && node_modules/.bin/tsc --noEmit -p .)
    (cd "$dir" && node --test test/*.test.mjs)
}

setup_c_tools() {
    local missing=() tool
    for tool in cc make pkg-config cmake; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "installing build tools (missing: ${missing[*]})"
        local sudo=""
        [[ $(id -u) -eq 0 ]] || sudo="sudo"
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq build-essential pkg-config cmake
    fi
}

step_c() {
    # The C ABI (kpl-ffi): header up to date, C tests against `kpl sim`
    # plain and under AddressSanitizer (LeakSanitizer on), the conformance
    # cases (tests/conformance), CMake examples.
    setup_c_tools
    # The workspace build holds libkpl_ffi and `kpl` already (a no-op after
    # the build step; building `-p kpl-ffi` alone would recompile shared
    # crates with other features). kpl-ffi's Rust tests, the header check
    # among them, run in the rust step.
    step_build
    make -C tests/c TARGET_DIR="$TARGET_DIR" PROFILE=debug KPL_BIN="$KPL_BIN" test asan conformance
    cmake -S examples/c -B "$TARGET_DIR/kpl-c-examples-debug" -DKPL_LIB_DIR="$TARGET_DIR/debug" >/dev/null
    cmake --build "$TARGET_DIR/kpl-c-examples-debug"
}

step_docs() {
    # What crates.io and docs.rs would say: rustdoc with warnings as errors
    # (broken links, missing docs), the kpl-core examples run, and
    # `cargo publish --dry-run` of every publishable crate, packaged
    # together so their dependencies on each other resolve. Verifying the
    # packages compiles each crate alone, with its own features: three more
    # debug builds of the AWS SDK (~15 min on 2 cores), so CI skips that part
    # (the workspace build compiles the same sources; no public crate reads
    # files outside its own directory). Before a release:
    # KPL_PUBLISH_VERIFY=1 scripts/test.sh docs
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
    step_build
    "$TARGET_DIR/debug/examples/deaggregate"
    "$TARGET_DIR/debug/examples/produce"
    local args=(--workspace --dry-run --locked --allow-dirty)
    [[ "${KPL_PUBLISH_VERIFY:-}" == 1 ]] || args+=(--no-verify)
    cargo publish "${args[@]}"
}

step_package() {
    # scripts/package.sh builds every artifact into dist/ (the run's one
    # release build, zig-linked for glibc 2.17) and prints their sizes and
    # glibc needs. Then each is installed and used where no cargo is on
    # PATH, against dist/kpl's `kpl sim`: the wheel in a fresh venv (no
    # index), the npm tarball in an empty project (offline), the C SDK
    # through find_package(kpl) (shared and static) and pkg-config.
    setup_c_tools
    scripts/package.sh
    local version work sdk
    version="$(python3 scripts/version.py)"
    work="$TARGET_DIR/package-test"
    rm -rf "$work"
    mkdir -p "$work/npm"
    export KPL_BIN="$ROOT/dist/kpl"
    PATH="$(tr ':' '\n' <<<"$PATH" | grep -v -e '/\.cargo/bin' -e '/\.rustup/' | paste -sd:)"
    export PATH
    if command -v cargo >/dev/null || command -v rustc >/dev/null; then
        echo "package: cargo/rustc still on PATH ($(command -v cargo rustc))" >&2
        return 1
    fi

    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install --quiet --disable-pip-version-check --no-index \
        "$ROOT"/dist/kpl_rs-"$version"-*.whl
    (cd "$work" && venv/bin/python "$ROOT/tests/package/produce.py")

    cp tests/package/produce.mjs "$work/npm/"
    echo '{ "name": "kpl-rs-package-test", "private": true }' >"$work/npm/package.json"
    (cd "$work/npm" && npm install --offline --no-audit --no-fund --loglevel=error \
        "$ROOT/dist/kpl-rs-$version.tgz" && node produce.mjs)
    # The napi-rs layout: without its own addon the package loads the one of
    # the per-platform package (dist/npm/), at the same version.
    local platform_tgz
    platform_tgz="$(echo "$ROOT"/dist/npm/kpl-rs-linux-*-"$version".tgz)"
    (cd "$work/npm" && npm install --offline --no-audit --no-fund --loglevel=error "$platform_tgz" &&
        rm node_modules/kpl-rs/kpl-rs.*.node &&
        NAPI_RS_ENFORCE_VERSION_CHECK=1 node produce.mjs)

    tar -C "$work" -xzf "$ROOT"/dist/kpl-c-sdk-"$version"-*.tar.gz
    sdk="$(echo "$work"/kpl-c-sdk-"$version"-*)"
    cmake -S tests/package/c -B "$work/cmake" -DCMAKE_PREFIX_PATH="$sdk" >/dev/null
    cmake --build "$work/cmake" >/dev/null
    echo "consumer loads $(ldd "$work/cmake/consumer" | grep -o 'libkpl.so => [^ ]*')"
    "$work/cmake/consumer"
    "$work/cmake/consumer_static"
    # shellcheck disable=SC2046 # pkg-config's flags are words
    cc -std=c99 -Wall -Wextra -Werror -Wno-unused-function -Itests/c tests/package/c/consumer.c \
        $(PKG_CONFIG_PATH="$sdk/lib/pkgconfig" pkg-config --cflags --libs kpl) -o "$work/consumer-pc"
    "$work/consumer-pc"
}

step_bench_smoke() {
    # benches/peers end to end with tiny counts, so the benchmark keeps
    # working: ours from Rust and C against kpl-sim (two workload cells),
    # the memory, embedded and paced sections, and the report. It reuses the
    # package step's release build (profile dist), else target/release; no
    # JVM, Go or PyPI installs. No timed assertions: it checks the report was
    # written and every row ran (status ok, every record read back once).
    setup_c_tools
    local bin="" dir
    for dir in "$TARGET_DIR/$(uname -m)-unknown-linux-gnu/dist" "$TARGET_DIR/release"; do
        if [[ -x "$dir/kpl" && -f "$dir/libkpl.so" ]]; then
            bin="$dir"
            break
        fi
    done
    if [[ -z "$bin" ]]; then
        echo "bench_smoke: no release build of kpl and libkpl.so; run the package step first" >&2
        return 1
    fi
    local out="$TARGET_DIR/bench-smoke"
    rm -rf "$out"
    benches/peers/run.sh --no-build --no-idle-wait --bin-dir "$bin" --out "$out" --timeout 60 \
        --records 2000 --peers rust,c --cells 100b,1kb --sections peers,memory,embedded,paced \
        --mem-records 2000 --embedded-records 2000 --embedded-runs 1 --paced-records 1500 \
        --paced-runs 1 --paced-full-records 2000
    python3 scripts/bench_smoke_check.py "$out"
}

# ----------------------------------------------------------------- main --

run_step() {
    local name="$1"
    banner "step $name"
    local start=$SECONDS
    # A subshell with errexit, so one failing command fails the step and
    # the remaining steps still run. Not inside `if`: bash ignores errexit
    # in anything run as an `if` condition, which would let a step go on
    # after a failed command and report only its last command's status.
    local rc=0
    set +e
    (set -euo pipefail; "step_$name") </dev/null
    rc=$?
    set -e
    if [[ $rc -eq 0 ]]; then
        PASSED+=("$name")
        banner "step $name passed ($((SECONDS - start)) s)"
    else
        FAILED+=("$name")
        banner "step $name FAILED ($((SECONDS - start)) s)"
    fi
}

main() {
    local steps=("$@")
    if [[ ${#steps[@]} -eq 0 ]]; then
        steps=("${ALL_STEPS[@]}")
    fi
    for step in "${steps[@]}"; do
        if ! declare -F "step_$step" >/dev/null; then
            echo "unknown step: $step (known: ${ALL_STEPS[*]})" >&2
            exit 2
        fi
    done
    echo "kpl-rs tests: steps ${steps[*]}; KPL_BIN=$KPL_BIN; CI=${CI:-}"
    for step in "${steps[@]}"; do
        run_step "$step"
    done
    banner "summary"
    echo "passed steps: ${PASSED[*]:-none}"
    echo "failed steps: ${FAILED[*]:-none}"
    if [[ ${#FAILED[@]} -gt 0 ]]; then
        exit 1
    fi
}

main "$@"
