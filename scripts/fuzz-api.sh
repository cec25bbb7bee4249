#!/usr/bin/env bash
# Fuzzes the API against its own OpenAPI document: starts the local runner on a fresh database,
# signs in as a company admin, a support agent and an API key, and runs schemathesis over every
# operation as each of them. Fails on any 5xx, any response that does not match its documented
# schema or status codes, and any error body that is not {"error":{"code","message"}}.
# Usage: scripts/fuzz-api.sh [max examples per operation, default 25]
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CHATAPP_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CHATAPP_CACHE/target}"
MAX_EXAMPLES="${1:-25}"

ensure_postgres
ensure_venv

step "cargo build -p chatapp-local"
cargo build -q -p chatapp-local

db="chatapp_fuzz_$(date +%s)_$$"
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
log="$CHATAPP_CACHE/fuzz-runner.log"
demo_password="fuzz-demo-password-1"
DATABASE_URL="postgres://chatapp_app@127.0.0.1:5432/$db" \
MIGRATION_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" \
LOCAL_BIND="127.0.0.1:$port" DEMO_ADMIN_PASSWORD="$demo_password" DATA_DIR="$CHATAPP_CACHE/fuzz-data/$db" \
RUST_LOG=warn "$CARGO_TARGET_DIR/debug/chatapp-local" >"$log" 2>&1 &
runner=$!
finish() {
    kill "$runner" 2>/dev/null || true
    wait "$runner" 2>/dev/null || true
    pg_psql -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$CHATAPP_CACHE/fuzz-data/$db"
}
trap finish EXIT

for _ in $(seq 1 120); do
    curl -sf "$base/openapi.json" >/dev/null 2>&1 && break
    kill -0 "$runner" 2>/dev/null || { cat "$log"; die "the local runner exited"; }
    sleep 1
done
curl -sf "$base/openapi.json" >/dev/null || { cat "$log"; die "the local runner did not answer on $base"; }

json() { "$CHATAPP_VENV/bin/python" -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { curl -sf -X POST "$base$1" -H 'content-type: application/json' ${3:+-H "authorization: Bearer $3"} -d "$2"; }

admin=$(post /auth/login "{\"email\":\"admin@demo.chatapp.local\",\"password\":\"$demo_password\"}" | json '["access_token"]')
invite=$(post /admin/invitations '{"email":"agent@fuzz.local","role":"support_agent"}' "$admin" | json '["token"]')
post /invitations/accept "{\"token\":\"$invite\",\"password\":\"a-good-password-1\",\"name\":\"Agent\"}" >/dev/null
agent=$(post /auth/login '{"email":"agent@fuzz.local","password":"a-good-password-1"}' | json '["access_token"]')
key=$(post /admin/api-keys '{"name":"fuzz","scopes":["read:conversations","write:messages","read:analytics","read:team","read:knowledge","write:knowledge"]}' "$admin" | json '["key"]')

total=0
for who in company_admin support_agent api_key; do
    case "$who" in
        company_admin) token="$admin" ;;
        support_agent) token="$agent" ;;
        api_key) token="$key" ;;
    esac
    step "schemathesis as $who ($MAX_EXAMPLES examples per operation)"
    out="$CHATAPP_CACHE/fuzz-$who.log"
    set +e
    "$CHATAPP_VENV/bin/schemathesis" run "$base/openapi.json" \
        --header "Authorization: Bearer $token" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --max-examples "$MAX_EXAMPLES" --phases examples,coverage,fuzzing \
        --seed 1 --no-color >"$out" 2>&1
    rc=$?
    set -e
    tail -n 25 "$out"
    [ "$rc" -eq 0 ] || die "schemathesis found failures as $who (full log: $out; runner log: $log)"
    n=$(grep -Eo '[0-9]+ generated' "$out" | tail -1 | grep -Eo '[0-9]+' || echo 0)
    total=$((total + n))
done
step "schemathesis: $total generated test cases, no failures"
