#!/usr/bin/env bash
# Paired order-flow benchmark of two builds of the all-in-one shop on
# PostgreSQL: each run starts build A's or build B's `shop` on fresh
# databases (rocketshop_* dropped before each run) and a fresh data folder,
# drives it with that build's own shop-loadgen, and stops it. Runs alternate
# A, B, A, B... so that load from elsewhere on the machine hits both alike;
# compare the medians and the B/A ratio, and the shop's CPU time per
# confirmed order (payments included), which a shared machine disturbs less
# than the rate. A build whose loadgen knows
# --secrets (authentication on) is given the run's secrets file.
#
#   bench/shop_ab.sh A_BIN_DIR B_BIN_DIR [seconds] [runs] [concurrency] [postgres-url]
#
# e.g. the commit before a change against this checkout:
#   git worktree add /tmp/base <rev> && (cd /tmp/base && CARGO_TARGET_DIR=/tmp/base-target \
#     cargo build --release --bin shop --bin shop-loadgen)
#   cargo build --release --bin shop --bin shop-loadgen
#   bench/shop_ab.sh /tmp/base-target/release target/release 20 3 32
set -euo pipefail
A_BIN=$1
B_BIN=$2
SECONDS_PER_RUN=${3:-20}
RUNS=${4:-3}
CONCURRENCY=${5:-32}
PG=${6:-postgres://postgres@127.0.0.1:5432}
OFFSET=100
work=$(mktemp -d)
# The servers log into the work folder, not ~/logs/rocketmqlogs.
export ROCKETMQ_LOG_ROOT="$work/logs"
shop_pid=
cleanup() { [ -n "$shop_pid" ] && kill "$shop_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

drop_databases() {
    for name in order goods coupon user pay log points; do
        psql "$PG/postgres" -q -c "DROP DATABASE IF EXISTS rocketshop_$name WITH (FORCE)" 2>/dev/null
    done
}

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

url() { echo "http://127.0.0.1:$((8080 + $1 + OFFSET))"; }

run() { # side bin-dir n
    local side=$1 bin=$2 n=$3 data="$work/data-$1-$3"
    drop_databases
    "$bin/shop" --data "$data" --postgres "$PG" --port-offset $OFFSET --no-seed > "$work/shop.out" 2>"$work/shop.err" &
    shop_pid=$!
    for _ in $(seq 300); do grep -q 'shop ready' "$work/shop.out" && break; sleep 0.1; done
    grep -q 'shop ready' "$work/shop.out" || { echo "shop $side did not start" >&2; tail "$work/shop.err" >&2; exit 1; }
    local extra=()
    if "$bin/shop-loadgen" --help | grep -q -- '--secrets'; then extra=(--secrets "$data/secrets.properties"); fi
    local line cpu_before cpu_after
    cpu_before=$(cpu_ticks "$shop_pid")
    line=$("$bin/shop-loadgen" --order "$(url 1)" --goods "$(url 2)" --user "$(url 4)" --pay "$(url 5)" \
        --points "$(url 7)" --gateway "$(url 8)" --concurrency "$CONCURRENCY" --seconds "$SECONDS_PER_RUN" \
        --payments 200 "${extra[@]}" | tr '\n' ' ')
    cpu_after=$(cpu_ticks "$shop_pid")
    local confirmed
    confirmed=$(echo "$line" | sed -n 's/.*confirmed=\([0-9]*\).*/\1/p')
    # The shop's CPU time (all its threads) per confirmed order, in ms: less
    # noisy than the rate when the machine is shared.
    line="$line cpu_ms_per_order=$(awk -v t=$((cpu_after - cpu_before)) -v hz="$(getconf CLK_TCK)" -v n="$confirmed" 'BEGIN {printf "%.2f", t * 1000 / hz / n}')"
    kill -INT "$shop_pid"; wait "$shop_pid" 2>/dev/null || true; shop_pid=
    echo "$side run $n: $line"
}

for n in $(seq "$RUNS"); do
    run A "$A_BIN" "$n"
    run B "$B_BIN" "$n"
done | tee "$work/results"

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# The placement figures come before the payments' on each line.
field() { grep "^$1 " "$work/results" | sed -n "s/.* $2=\([0-9.]*\).*payments.*/\1/p" | median; }
for side in A B; do
    cpu=$(grep "^$side " "$work/results" | sed -n 's/.*cpu_ms_per_order=\([0-9.]*\).*/\1/p' | median)
    echo "$side median: orders/s=$(field $side 'orders\/s') p50=$(field $side p50)ms p99=$(field $side p99)ms cpu_ms_per_order=$cpu"
done
a=$(field A 'orders\/s'); b=$(field B 'orders\/s')
echo "B/A orders/s ratio: $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b / a}')"
