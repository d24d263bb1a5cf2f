#!/usr/bin/env bash
# Soak (BENCHMARKS.md, "Steady state"): order-and-pay over HTTP at full speed for
# SOAK_WINDOWS one-minute windows against the release server on the benchmark catalog, with
# order.expiry = 2m, the default snapshot interval (30 s) and the default archive_after (1m).
# Per window it prints goodput (paid orders/s), all requests/s, p99, the server's RSS, the
# longest periodic snapshot (a flush of the entity store) in the window, and the sizes on disk
# of the archive and the entity store.
# Only the journal's INFO lines are logged (snapshots): the default data-platform sink logs a
# line per paid order at INFO, which would cost a fifth of the throughput.
#
# Usage: scripts/soak.sh        (SOAK_WINDOWS=8 SOAK_WINDOW=60s SOAK_CONNECTIONS=64)
set -euo pipefail
cd "$(dirname "$0")/.."

WINDOWS=${SOAK_WINDOWS:-8}
WINDOW=${SOAK_WINDOW:-60s}
CONNECTIONS=${SOAK_CONNECTIONS:-64}
ADDR=127.0.0.1:18090
export BENCH_USERS=100000

if ! command -v wrk >/dev/null; then
  echo "installing wrk from Debian's packages" >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --bin commerce-engine

state=$(mktemp -d)
log=$(mktemp)
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$state" "$log"
}
COMMERCE__SERVER__ADDR=$ADDR COMMERCE__SEED__PATH=config/bench-seed.toml \
  COMMERCE__SNAPSHOT__DIR=$state COMMERCE__ORDER__EXPIRY=2m COMMERCE__LOG__FORMAT=json \
  RUST_LOG=warn,commerce_engine::journal=info target/release/commerce-engine >"$log" 2>&1 &
pid=$!
trap cleanup EXIT
for _ in $(seq 1 300); do
  curl -sf "http://$ADDR/health" >/dev/null && break
  sleep 0.1
done

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}')"
echo "wrk -t2 -c$CONNECTIONS -d$WINDOW -s scripts/wrk/order_pay.lua, $BENCH_USERS users, order.expiry 2m"
printf "%-7s %10s %10s %9s %9s %13s %12s %12s\n" \
  window "paid/s" "req/s" "p99" "RSS MiB" "snapshot ms" "archive MiB" "store MiB"
for window in $(seq 1 "$WINDOWS"); do
  lines_before=$(wc -l <"$log")
  out=$(wrk -t2 -c"$CONNECTIONS" -d"$WINDOW" --latency -s scripts/wrk/order_pay.lua "http://$ADDR")
  paid=$(awk '/GOODPUT/ {print $5}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  rss=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$pid/status")
  snapshot=$(tail -n +"$((lines_before + 1))" "$log" | grep -E '"(snapshot written|store flushed)"' |
    grep -o '"took_ms":[0-9]*' | cut -d: -f2 | sort -n | tail -1)
  archive=$(du -sm "$state/archive" | cut -f1)
  snap=$(du -sm "$state/store" | cut -f1)
  printf "%-7s %10s %10s %9s %9s %13s %12s %12s\n" \
    "$window" "$paid" "$rps" "$p99" "$rss" "${snapshot:--}" "$archive" "$snap"
done
