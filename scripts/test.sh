#!/usr/bin/env bash
# The test command: PostgreSQL, tool venv and moto_server as needed, then fmt, clippy,
# the test suite, schemathesis over the OpenAPI document, and the SAM template lint. Runnable from any directory.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CHATAPP_ROOT"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CHATAPP_CACHE/target}"

cleanup() {
    local rc=$?
    stop_moto
    if command -v psql >/dev/null; then
        step "cleanup"
        drop_test_databases 10 || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_postgres
step "leftover test databases"
drop_test_databases 60
ensure_venv
ensure_e2e
ensure_docs_ui
start_moto

for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 && command -v rustup >/dev/null; then
        rustup component add "$component"
    fi
done

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings  (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
cargo clippy --workspace --all-targets -- -D warnings

if cargo nextest --version >/dev/null 2>&1; then
    step "cargo nextest run --workspace --no-fail-fast"
    cargo nextest run --workspace --no-fail-fast
else
    step "cargo test --workspace  (cargo-nextest not installed)"
    cargo test --workspace
fi

# The API against its own OpenAPI document: company admin, support agent and API key.
stop_moto
"$CHATAPP_ROOT/scripts/fuzz-api.sh"

step "sam validate --lint --template template.yaml"
sam validate --lint --template template.yaml

step "all checks passed"
