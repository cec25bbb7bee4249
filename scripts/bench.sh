#!/usr/bin/env bash
# Benchmarks: every function's stripped release binary (size, cold start, peak memory, JSON
# logs) beside a minimal lambda_http hello-world, then login / JWT / API-key authentication
# p50/p99 against local PostgreSQL. Each binary is built on its own (`cargo build -p`), as
# cargo-lambda builds it for `sam build`, so no other function's features are unified into it.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CHATAPP_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CHATAPP_CACHE/target}"

ensure_postgres
step "cargo build --release -p chatapp-functions --bins; -p hello-lambda"
cargo build -q --release -p chatapp-functions --bins
cargo build -q --release -p hello-lambda
step "cargo bench -p chatapp-tests --bench cold_start --bench auth"
cargo bench -p chatapp-tests --bench cold_start --bench auth
drop_test_databases 0 || true
