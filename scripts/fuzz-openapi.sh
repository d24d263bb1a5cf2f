#!/usr/bin/env bash
# OpenAPI-driven fuzzing (BENCHMARKS.md, "The API description"): schemathesis (from PyPI)
# generates requests from GET /openapi.json, valid and invalid, for every route, against the
# server on the demo catalog with the admin API on, and checks every response: no 5xx, and
# status, headers and body as the document says.
#
# Usage: scripts/fuzz-openapi.sh        (FUZZ_EXAMPLES=100 per operation)
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLES=${FUZZ_EXAMPLES:-100}
ADDR=127.0.0.1:18097
TOKEN=fuzz-admin-token

if ! command -v schemathesis >/dev/null; then
  echo "installing schemathesis from PyPI" >&2
  pip install -q schemathesis
fi
cargo build --release --bin commerce-engine
state=$(mktemp -d)
COMMERCE__SERVER__ADDR=$ADDR COMMERCE__SNAPSHOT__DIR=$state COMMERCE__ADMIN__TOKEN=$TOKEN \
  RUST_LOG=warn target/release/commerce-engine >"$state/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$state"' EXIT
for _ in $(seq 1 300); do
  curl -sf "http://$ADDR/health" >/dev/null && break
  sleep 0.1
done
schemathesis run "http://$ADDR/openapi.json" --checks all -n "$EXAMPLES" \
  -H "Authorization: Bearer $TOKEN" --seed 1
