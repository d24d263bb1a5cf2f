#!/usr/bin/env bash
# Scale: the real server on a large catalog (issue 10's benchmark). For USERS users, 100,000
# products (2 options each) and 10,000 coupons:
#   1. start from the seed (a fresh state directory; three times, as the kernel's memory state
#      after the previous process moves the time by seconds): seconds until /health answers,
#      and the idle RSS once the first snapshot is written and the server has settled;
#   2. activation under load: wrk charges 1 point to random users of all USERS (nearly every
#      request finds its user passive and starts its actor), then to 1,000 users only (their
#      actors stay running), with latency percentiles; activations from /metrics;
#   3. restore: kill -9, start again on the same directory (the snapshot written at the first
#      start plus every charge above in the journal), three times: seconds until /health
#      answers, idle RSS.
# Usage: scripts/scale.sh [USERS]      (default 10000000; needs wrk, installed if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${1:-10000000}
PRODUCTS=${SCALE_PRODUCTS:-100000}
COUPONS=${SCALE_COUPONS:-10000}
DURATION=${SCALE_DURATION:-10s}
ADDR=127.0.0.1:18097

if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --bin commerce-engine

work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

awk -v users="$USERS" -v products="$PRODUCTS" -v coupons="$COUPONS" 'BEGIN {
  printf "[users]\ncount = %d\ninitial_balance = 1000000\n", users
  for (id = 1; id <= products; id++)
    printf "\n[[products]]\nid = %d\nname = \"Product %d\"\ncategory = \"c%d\"\nprice = %d\noptions = [{ id = %d, name = \"A\", stock = 1000000 }, { id = %d, name = \"B\", stock = 1000000 }]\n", id, id, id % 10, 1000 + id, 2 * id - 1, 2 * id
  for (id = 1; id <= coupons; id++)
    printf "\n[[coupons]]\nid = %d\nname = \"Coupon %d\"\ndiscount = { type = \"FIXED\", amount = 1000 }\nquantity = 1000000\n", id, id
}' >"$work/seed.toml"

rss_mib() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

# start: sets $pid, and $took to the seconds until /health answers
start() {
  local began
  began=$(date +%s.%N)
  COMMERCE__SERVER__ADDR=$ADDR COMMERCE__SEED__PATH=$work/seed.toml \
    COMMERCE__SNAPSHOT__DIR=$work/state COMMERCE__SNAPSHOT__INTERVAL=1h RUST_LOG=warn \
    target/release/commerce-engine >>"$work/server.log" 2>&1 &
  pid=$!
  until curl -sf "http://$ADDR/health" >/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
    sleep 0.05
  done
  took=$(awk -v b="$began" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - b}')
}

metric() { curl -sf "http://$ADDR/metrics" | awk -v name="$1" '$1 == name {print $2}'; }

charges() {
  BENCH_USERS=$1 wrk -t2 -c64 -d"$DURATION" --latency -s scripts/wrk/charge.lua "http://$ADDR" |
    awk '/Requests\/sec/ {rps = $2} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2} /Non-2xx/ {bad = $5}
         END {printf "%s req/s, p50 %s, p99 %s, non-2xx %d\n", rps, p50, p99, bad}'
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}')"
echo "catalog: $USERS users, $PRODUCTS products x 2 options, $COUPONS coupons"
stop() {
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  sleep 2 # let the kernel take the memory back
}

for round in 1 2 3; do
  [ "$round" -gt 1 ] && stop
  rm -rf "$work/state"
  start
  echo "start from the seed: $took s"
done
until [ -n "$(metric commerce_snapshot_age_seconds)" ]; do sleep 0.5; done
sleep 10
echo "idle RSS after start (first snapshot written): $(rss_mib "$pid") MiB; running actors $(metric commerce_running_actors)"
echo "charges to random users of all $USERS (cold): $(charges "$USERS")"
echo "  activations $(metric commerce_actor_activations_total), running actors $(metric commerce_running_actors), RSS $(rss_mib "$pid") MiB"
echo "  activation latency: $(curl -sf "http://$ADDR/metrics" | awk '
  /^commerce_actor_activation_seconds_bucket\{le="0.0001"\}/ {a = $2}
  /^commerce_actor_activation_seconds_bucket\{le="0.001"\}/ {b = $2}
  /^commerce_actor_activation_seconds_count/ {n = $2}
  END {printf "%.2f%% within 100 us, %.2f%% within 1 ms, of %d", 100 * a / n, 100 * b / n, n}')"
echo "charges to random users of 1000 (hot):      $(charges 1000)"
for round in 1 2 3; do
  stop
  start
  echo "restore from snapshot + journal after kill -9: $took s"
done
sleep 10
echo "idle RSS after restore: $(rss_mib "$pid") MiB"
