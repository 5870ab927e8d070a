#!/usr/bin/env bash
# Fuzzes the API against its own OpenAPI document with schemathesis (every
# check: server errors, status codes, content types, response schemas,
# schema-valid requests accepted and invalid ones refused, authentication,
# stateful links): a server from ./target/debug/ignis on a free port with a
# fresh data directory, the first admin key. Exits non-zero on any failure.
#
#   scripts/schemathesis.sh                 # after cargo build --bin ignis
#   MAX_EXAMPLES=50 scripts/schemathesis.sh # a longer run
#   scripts/schemathesis.sh --seed 123      # extra arguments go to schemathesis
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned in .venv-aws by scripts/test-deps.sh.
st="${SCHEMATHESIS:-.venv-aws/bin/schemathesis}"
if [ ! -x "$st" ]; then
    bash scripts/test-deps.sh
fi
bin=./target/debug/ignis
[ -x "$bin" ] || { echo "schemathesis: build $bin first (cargo build --bin ignis)" >&2; exit 2; }

data=$(mktemp -d)
out="$data/schemathesis.txt"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# No microVMs (QEMU boots are slow); Docker when it runs, else invoke
# answers 503, which the document states. The failed-authentication
# limiter is loosened: schemathesis sends bad credentials on purpose.
"$bin" serve --listen "127.0.0.1:$port" --data-dir "$data/data" --no-microvm \
    --auth-fail-burst 100000 --auth-fail-per-minute 100000 >"$data/server.log" 2>&1 &
server=$!
cleanup() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT

for _ in $(seq 100); do
    curl -sf "$base/api/v1/health" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat "$data/server.log" >&2; exit 1; }
    sleep 0.1
done

status=0
"$st" --config-file scripts/schemathesis.toml --no-color run "$base/api/v1/openapi.json" \
    -H "Authorization: Bearer $(cat "$data/data/admin.key")" \
    --checks all \
    --max-examples "${MAX_EXAMPLES:-10}" \
    --workers 1 \
    "$@" >"$out" 2>&1 || status=$?

if [ "$status" -ne 0 ]; then
    cat "$out"
else
    # The failures' details are in the full output; on success the summary says it all.
    sed -n '/^=* SUMMARY =*$/,$p' "$out"
fi
operations=$(awk '/^  Tested:/ {print $2; exit}' "$out")
cases=$(awk '/^  [0-9]+ generated/ {print $1; exit}' "$out")
failures=$(grep -oE '[0-9]+ failures?' "$out" | tail -1 | grep -oE '[0-9]+' || echo 0)
echo "schemathesis: operations ${operations:-?}, test cases ${cases:-?}, failures ${failures}, exit ${status}"
exit "$status"
