#!/usr/bin/env bash
# Retrieval benchmark on SciFact (BEIR format) through the real ingestion pipeline and search
# service: nDCG@10 and Recall@100 for dense, lexical and hybrid retrieval, ingestion throughput
# with and without the local embedding model, search latency p50/p99.
#
#   scripts/bench-scifact.sh [corpus.jsonl queries.jsonl qrels.tsv] [--limit N] [--chunk-size N] [--overlap N]
#
# Without paths it uses ../shared/data/scifact beside the checkout.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CHATAPP_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CHATAPP_CACHE/target}"

data="$CHATAPP_ROOT/../shared/data/scifact"
if [ $# -ge 3 ] && [ "${1#--}" = "$1" ]; then
    paths=("$1" "$2" "$3")
    shift 3
else
    paths=("$data/corpus.jsonl" "$data/queries.jsonl" "$data/qrels/train.tsv")
fi
for p in "${paths[@]}"; do [ -f "$p" ] || die "no such file: $p"; done

ensure_postgres
ensure_model
step "cargo bench -p chatapp-tests --bench scifact -- ${paths[*]} $*"
cargo bench -p chatapp-tests --bench scifact -- "${paths[@]}" "$@"
drop_test_databases 0 || true
