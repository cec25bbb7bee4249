#!/usr/bin/env bash
# Runs the whole platform on this machine (functions/local): ensures PostgreSQL on
# 127.0.0.1:5432 with trust auth, then builds and starts chatapp-local. Environment variables
# (DATABASE_URL, LOCAL_BIND, DEMO_ADMIN_PASSWORD, ...) pass through; see shared/src/config.rs.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CHATAPP_ROOT"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CHATAPP_CACHE/target}"

ensure_postgres
ensure_model
ensure_docs_ui
# A dev build starts sooner than the LTO release build and is fast enough on one machine.
step "cargo run -p chatapp-local"
exec cargo run -p chatapp-local "$@"
