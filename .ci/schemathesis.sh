#!/usr/bin/env bash
# schemathesis (PyPI) against every shop service's /openapi.json (issue 18
# part 5): the all-in-one `shop` on random ports with fresh data, requests as
# the demo operator (whose token opens the customer and operator routes),
# and these checks: no 5xx, every status, content type and body as the
# document says. Exits non-zero on the first service with a failure.
#
#   .ci/schemathesis.sh              every service
#   .ci/schemathesis.sh goods order  some
#   SHOP_BIN=target/debug/shop .ci/schemathesis.sh   on a built binary
set -euo pipefail
cd "$(dirname "$0")/.."

venv=$(realpath -m "${SCHEMATHESIS_VENV:-target/schemathesis-venv}")
if [ ! -x "$venv/bin/schemathesis" ]; then
    echo "schemathesis: installing it into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q schemathesis
fi
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-25}
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(order goods coupon user pay log points gateway)

# SHOP_BIN: a shop binary already built (CI passes the one `cargo test` built).
shop=${SHOP_BIN:-}
if [ -z "$shop" ]; then
    cargo build -q --bin shop
    shop=target/debug/shop
fi
[ -x "$shop" ] || { echo "schemathesis: no shop binary at $shop" >&2; exit 1; }
work=$(mktemp -d)
banner=$work/banner
"$shop" --random-ports --data "$work/data" >"$banner" 2>"$work/stderr" &
pid=$!
stop() {
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap stop EXIT
for _ in $(seq 1 600); do
    grep -q '^shop ready' "$banner" && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/stderr" >&2; exit 1; }
    sleep 0.1
done
grep -q '^shop ready' "$banner" || { echo "schemathesis: the shop did not start" >&2; cat "$work/stderr" >&2; exit 1; }
url() { awk -v name="$1" '$1 == name { print $2 }' "$banner"; }
login=$(awk '$1 == "operator" { print $2 }' "$banner")
password=$(awk '$1 == "operator" { print $3 }' "$banner")
# A fresh token per service: the user service's run logs its token out.
token() {
    curl -sf -X POST "$(url user)/auth/login" -H 'content-type: application/json' \
        -d "{\"login\":\"$login\",\"password\":\"$password\"}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}

failed=()
for service in "${services[@]}"; do
    base=$(url "$service")
    echo "schemathesis: $service at $base"
    # (run from the scratch folder: schemathesis writes .schemathesis/ there)
    if ! (cd "$work" && "$venv/bin/schemathesis" run "$base/openapi.json" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --max-examples "$max_examples" \
        --header "Authorization: Bearer $(token)" \
        --request-timeout 30 \
        --no-color); then
        failed+=("$service")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "schemathesis: failures in ${failed[*]}" >&2
    exit 1
fi
echo "schemathesis: ${services[*]}: no failures"
