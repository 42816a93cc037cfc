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

ALL_STEPS=(lint build rust python node python_binding)
FAILED=()
PASSED=()

banner() {
    printf '\n==================== %s ====================\n' "$*"
}

# ---------------------------------------------------------------- steps --

step_lint() {
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
}

step_build() {
    cargo build --workspace --all-targets --locked
}

step_rust() {
    cargo test --workspace --locked
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

# ----------------------------------------------------------------- main --

run_step() {
    local name="$1"
    banner "step $name"
    local start=$SECONDS
    # A subshell with errexit, so one failing command fails the step and
    # the remaining steps still run.
    if (set -euo pipefail; "step_$name") </dev/null; then
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
