#!/usr/bin/env bash
# Runs the vector-index contract against a Qdrant server (the backend template.yaml deploys).
# Usage: QDRANT_URL=http://127.0.0.1:6334 [QDRANT_API_KEY=...] scripts/test-qdrant.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CHATAPP_ROOT"
: "${QDRANT_URL:?set QDRANT_URL to a Qdrant server gRPC URL, e.g. http://127.0.0.1:6334}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CHATAPP_CACHE/target}"
exec cargo nextest run -p chatapp-tests --test qdrant_server --run-ignored only
