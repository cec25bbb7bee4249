#!/usr/bin/env bash
# Chat-turn platform overhead (everything but generation and query embedding): 1,000 turns
# through the widget handler with 10,000 conversations and 100,000 chunks in the tenant, on
# local PostgreSQL and qdrant-edge. Options: --turns N --chunks N --conversations N
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CHATAPP_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CHATAPP_CACHE/target}"

ensure_postgres
step "cargo bench -p chatapp-tests --bench chat_turn -- $*"
cargo bench -p chatapp-tests --bench chat_turn -- "$@"
drop_test_databases 0 || true
