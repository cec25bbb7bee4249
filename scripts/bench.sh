#!/usr/bin/env bash
# Benchmarks: every function's stripped release binary (size, cold start, peak memory, JSON
# logs) beside a minimal lambda_http hello-world; then, with --auth, login / JWT / API-key
# authentication p50/p99 against local PostgreSQL. The measuring program itself is a test-profile
# build (it only spawns the release binaries and times them), so no second optimised build of
# the whole workspace is needed.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CHATAPP_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CHATAPP_CACHE/target}"

ensure_postgres
# -p chatapp-functions alone, as cargo-lambda builds a function: features that only the local
# runner and the tests enable (the embedded backends) stay out of these binaries.
step "cargo build --release -p chatapp-functions --bins; -p hello-lambda"
cargo build -q --release -p chatapp-functions --bins
cargo build -q --release -p hello-lambda
step "cold starts (cargo test -p chatapp-tests --bench cold_start)"
BENCH_BIN_DIR="$CARGO_TARGET_DIR/release" cargo test -q -p chatapp-tests --bench cold_start
if [ "${1:-}" = "--auth" ]; then
    step "cargo bench -p chatapp-tests --bench auth"
    cargo bench -p chatapp-tests --bench auth
fi
drop_test_databases 0 || true
