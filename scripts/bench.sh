#!/usr/bin/env bash
# Benchmarks: release binary sizes, cold start of one HTTP function (process start → first
# served request, through an in-process Lambda Runtime API), and login / JWT / API-key
# authentication p50/p99 over 1,000 requests against local PostgreSQL.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CHATAPP_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CHATAPP_CACHE/target}"

ensure_postgres
step "cargo build --release -p chatapp-functions --bins"
cargo build --release -p chatapp-functions --bins
step "cargo bench -p chatapp-tests --bench cold_start --bench auth"
cargo bench -p chatapp-tests --bench cold_start --bench auth
drop_test_databases 0 || true
