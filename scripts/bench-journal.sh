#!/usr/bin/env bash
# Durability benchmarks (BENCHMARKS.md, "The journal"). In one run on one machine:
#   1. a hello-world warp server (examples/hello.rs), the ceiling of HTTP on this machine;
#   2. the engine on config/bench-seed.toml with journal.fsync = always, interval and off:
#      POST charge, POST coupon issue, POST /orders and order-then-pay, under wrk -t2 -c64;
#   3. Redis running the coupon-issue Lua script (scripts/bench/coupon.lua) with
#      appendonly yes + appendfsync always, and without AOF (redis-benchmark -c64);
#   4. PostgreSQL's durable order transaction (scripts/bench/order.sql, pgbench -c64 -j2).
# Usage: scripts/bench-journal.sh      (BENCH_DURATION=10s BENCH_CONNECTIONS=64 by default)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
ENGINE=127.0.0.1:18080
HELLO=127.0.0.1:18081
export BENCH_USERS=100000

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian's packages" >&2
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo build --release --bin commerce-engine --example hello

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -d "$work/pg" ] && runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() {
  for _ in $(seq 1 300); do
    curl -sf "http://$1/health" >/dev/null && return 0
    sleep 0.1
  done
  echo "$1 did not come up" >&2
  exit 1
}

# wrk_run ADDR SCRIPT -> "req/s p99 non2xx goodput-line"
wrk_run() {
  local out rps p99 non2xx goodput
  out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "scripts/wrk/$2.lua" "http://$1")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  goodput=$(awk '/^GOODPUT/ {print "placed/s " $3 ", paid/s " $5}' <<<"$out")
  echo "$rps $p99 ${non2xx:-0} ${goodput}"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}')"
echo "wrk -t2 -c$CONNECTIONS -d$DURATION, random users of $BENCH_USERS"
echo

target/release/examples/hello $HELLO >"$work/hello.log" 2>&1 &
pids+=($!)
wait_for $HELLO
printf "%-28s %12s %10s %8s  %s\n" "server / endpoint" "req/s" "p99" "non-2xx" "goodput"
for endpoint in charge issue order; do
  read -r rps p99 non2xx _ < <(wrk_run $HELLO $endpoint)
  printf "%-28s %12s %10s %8s\n" "hello / $endpoint" "$rps" "$p99" "$non2xx"
done
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'

for policy in always interval off; do
  dir="$work/engine-$policy"
  COMMERCE__SERVER__ADDR=$ENGINE COMMERCE__SEED__PATH=config/bench-seed.toml \
    COMMERCE__SNAPSHOT__DIR="$dir" COMMERCE__SNAPSHOT__INTERVAL=1h \
    COMMERCE__JOURNAL__FSYNC=$policy RUST_LOG=warn \
    target/release/commerce-engine >"$work/engine-$policy.log" 2>&1 &
  pids+=($!)
  wait_for $ENGINE
  for endpoint in charge issue order order_pay; do
    read -r rps p99 non2xx goodput < <(wrk_run $ENGINE $endpoint)
    printf "%-28s %12s %10s %8s  %s\n" "engine fsync=$policy / $endpoint" "$rps" "$p99" "$non2xx" "$goodput"
  done
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'
done

script=$(cat scripts/bench/coupon.lua)
for aof in always none; do
  mkdir -p "$work/redis"
  case $aof in
    always) persistence=(--appendonly yes --appendfsync always) ;;
    none) persistence=(--appendonly no) ;;
  esac
  redis-server --port 16379 --dir "$work/redis" --save "" "${persistence[@]}" >"$work/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do redis-cli -p 16379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p 16379 set coupon:1:remaining 1000000000 >/dev/null
  # Users drawn from 100 million, so nearly every call issues (the engine's run issues to
  # distinct users too).
  result=$(redis-benchmark -p 16379 -c "$CONNECTIONS" -n 600000 -r 100000000 -q \
    EVAL "$script" 2 coupon:1:remaining coupon:1:holders __rand_int__ | tr '\r' '\n' | grep 'requests per second' | tail -1)
  printf "%-28s %s\n" "redis aof=$aof / coupon issue" "$result"
  redis-cli -p 16379 shutdown nosave >/dev/null 2>&1 || true
  wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'
  rm -rf "$work/redis"
done

pg=/usr/lib/postgresql/15/bin
mkdir -p "$work/pg" && chown postgres "$work/pg"
runuser -u postgres -- $pg/initdb -D "$work/pg" -A trust >/dev/null
runuser -u postgres -- $pg/pg_ctl -D "$work/pg" -o "-p 15432 -k $work/pg -c max_connections=200" -l "$work/pg/log" -w start >/dev/null
psql -q -h "$work/pg" -p 15432 -U postgres <<'SQL'
CREATE TABLE stock (option_id bigint PRIMARY KEY, available bigint NOT NULL CHECK (available >= 0));
INSERT INTO stock SELECT g, 1000000000000 FROM generate_series(1, 10) g;
CREATE TABLE orders (order_id bigserial PRIMARY KEY, user_id bigint NOT NULL, status text NOT NULL,
  total_amount bigint NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE order_items (order_id bigint NOT NULL REFERENCES orders, option_id bigint NOT NULL,
  quantity int NOT NULL, unit_price bigint NOT NULL);
SQL
tps=$(pgbench -n -h "$work/pg" -p 15432 -U postgres -c "$CONNECTIONS" -j 2 -T "${DURATION%s}" \
  -f scripts/bench/order.sql postgres 2>/dev/null | awk '/^tps/ {print $3}')
printf "%-28s %s\n" "postgresql / order txn" "$tps tps (synchronous_commit on)"
