#!/usr/bin/env bash
# Chat-turn platform overhead (everything but generation and query embedding): 1,000 turns
# through the widget handler with 10,000 conversations and 100,000 chunks in the tenant, on
# local PostgreSQL and qdrant-edge. The knowledge and questions are real: SciFact's sentences
# and queries (../shared/data/scifact) with the local model's embeddings (embedding them takes
# about 10 minutes the first time, then they are kept under the target directory). Options:
# --turns N --chunks N --conversations N; --random-vectors for synthetic texts with
# pseudo-random vectors (the searches' worst case) instead.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CHATAPP_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CHATAPP_CACHE/target}"

ensure_postgres
vectors=() args=() random=0
for a in "$@"; do
    if [ "$a" = --random-vectors ]; then random=1; else args+=("$a"); fi
done
if [ "$random" = 0 ]; then
    data="$CHATAPP_ROOT/../shared/data/scifact"
    [ -f "$data/corpus.jsonl" ] || die "no SciFact corpus at $data (or pass --random-vectors)"
    ensure_model
    vectors=(--corpus "$data/corpus.jsonl" --query-texts "$data/queries.jsonl")
fi
step "cargo bench -p chatapp-tests --bench chat_turn -- ${vectors[*]} ${args[*]}"
cargo bench -p chatapp-tests --bench chat_turn -- "${vectors[@]}" "${args[@]}"
drop_test_databases 0 || true
