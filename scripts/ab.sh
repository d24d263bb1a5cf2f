#!/usr/bin/env bash
# Before/after: two builds of the server, each on a fresh state directory over the benchmark
# catalog, measured alternately (A B A B ...) with the same wrk script, so drift on the
# machine falls on both. Prints goodput-bearing lines of each run and the medians.
#
# Usage: scripts/ab.sh BINARY_A BINARY_B [wrk script] [rounds]
#   AB_WARMUP=10s: drive the server this long with the same script before measuring (e.g. so
#   the virtual actors of every user have started, as they have on a server that has run a
#   while).
#   AB_CONFIG_A / AB_CONFIG_B: a config file for that build (an older build may refuse keys
#   the current config/default.toml has: pass it the config of its own commit).
#   e.g. git worktree add /tmp/before HEAD~1 && (cd /tmp/before && CARGO_TARGET_DIR=$PWD/target \
#        cargo build --release --bin commerce-engine) && cp target/release/commerce-engine /tmp/a
#        scripts/ab.sh /tmp/a target/release/commerce-engine scripts/wrk/points.lua 5
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1
B=$2
SCRIPT=${3:-scripts/wrk/points.lua}
ROUNDS=${4:-5}
DURATION=${AB_DURATION:-10s}
ADDR=127.0.0.1:18095
export BENCH_USERS=100000

run() {
  local binary=$1 config=${2:-config/default.toml} state
  state=$(mktemp -d)
  COMMERCE__SERVER__ADDR=$ADDR COMMERCE__SEED__PATH=config/bench-seed.toml \
    COMMERCE__SNAPSHOT__DIR=$state COMMERCE__SNAPSHOT__INTERVAL=1h RUST_LOG=warn \
    "$binary" --config "$config" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do
    curl -sf "http://$ADDR/health" >/dev/null && break
    sleep 0.1
  done
  if [ -n "${AB_WARMUP:-}" ]; then
    wrk -t2 -c64 -d"$AB_WARMUP" -s "$SCRIPT" "http://$ADDR" >/dev/null
  fi
  wrk -t2 -c64 -d"$DURATION" -s "$SCRIPT" "http://$ADDR" | awk '/Requests\/sec/ {print $2}'
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$state"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

a_runs=()
b_runs=()
for round in $(seq 1 "$ROUNDS"); do
  a_runs+=("$(run "$A" "${AB_CONFIG_A:-}")")
  b_runs+=("$(run "$B" "${AB_CONFIG_B:-}")")
  echo "round $round: A ${a_runs[-1]} req/s, B ${b_runs[-1]} req/s"
done
echo "median A $(printf '%s\n' "${a_runs[@]}" | median) req/s, B $(printf '%s\n' "${b_runs[@]}" | median) req/s ($SCRIPT, $DURATION each)"
