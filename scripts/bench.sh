#!/usr/bin/env bash
# The benchmark suite (see BENCHMARKS.md). In one run on one machine:
#   1. a hello-world warp server (examples/hello.rs, same stack, no work) and the engine on the
#      benchmark catalog (config/bench-seed.toml), both driven by `wrk -t2 -c64` with the same
#      requests: GET points, POST charge, POST coupon issue, POST /orders;
#   2. the simulator, embedded (10,000 buyers) and over HTTP against the same engine;
#   3. a table of req/s and p99 per endpoint with the ratio to the hello-world server.
# Usage: scripts/bench.sh            (BENCH_DURATION=10s BENCH_CONNECTIONS=64 by default)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
ENGINE=127.0.0.1:18080
HELLO=127.0.0.1:18081
export BENCH_USERS=100000

if ! command -v wrk >/dev/null; then
  echo "installing wrk from Debian's packages" >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --bin commerce-engine --bin simulate --example hello

snapshots=$(mktemp -d)
logs=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$snapshots"
}
trap cleanup EXIT

COMMERCE__SERVER__ADDR=$ENGINE COMMERCE__SEED__PATH=config/bench-seed.toml \
  COMMERCE__SNAPSHOT__DIR=$snapshots COMMERCE__SNAPSHOT__INTERVAL=1h RUST_LOG=warn \
  target/release/commerce-engine >"$logs/engine.log" 2>&1 &
pids+=($!)
target/release/examples/hello $HELLO >"$logs/hello.log" 2>&1 &
pids+=($!)
for addr in $ENGINE $HELLO; do
  for _ in $(seq 1 300); do
    curl -sf "http://$addr/health" >/dev/null && break
    sleep 0.1
  done
done

# wrk_run ADDR SCRIPT -> "req/s p99 non2xx"
wrk_run() {
  local out
  out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "scripts/wrk/$2.lua" "http://$1")
  local rps p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  echo "$rps $p99 ${non2xx:-0}"
}

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}')"
echo "wrk -t2 -c$CONNECTIONS -d$DURATION, random users of $BENCH_USERS"
printf "\n%-22s %12s %10s %12s %10s %8s %10s\n" endpoint hello_req/s hello_p99 engine_req/s engine_p99 ratio non-2xx
for endpoint in points charge issue order; do
  read -r hello_rps hello_p99 _ < <(wrk_run $HELLO $endpoint)
  read -r engine_rps engine_p99 engine_non2xx < <(wrk_run $ENGINE $endpoint)
  ratio=$(awk -v e="$engine_rps" -v h="$hello_rps" 'BEGIN {printf "%.2f", e / h}')
  printf "%-22s %12s %10s %12s %10s %8s %10s\n" "$endpoint" "$hello_rps" "$hello_p99" "$engine_rps" "$engine_p99" "$ratio" "$engine_non2xx"
done

echo
echo "== simulator, embedded, 10,000 buyers =="
target/release/simulate --buyers 10000 --duration 10s --seed 42 --quiet | sed -n '/operations in/p;/INVARIANT/p'
echo
echo "== simulator, over HTTP against the engine above, 256 buyers =="
target/release/simulate --target "http://$ENGINE" --buyers 256 --duration 10s --seed 42 --users 1000 --coupons 1 --quiet \
  | sed -n '/operations in/p;/INVARIANT/p'
