#!/usr/bin/env bash
# Replication benchmark, same machine: a master and one slave (brokerName
# bench, brokerId 0 and 1), first as ASYNC_MASTER, then as SYNC_MASTER, each
# driven by mqbench (1 KiB messages, N in flight; only SEND_OK counts).
# Each role runs RUNS times; compare medians.
#
#   bench/ha.sh [seconds] [runs] [in-flight]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
RUNS=${2:-3}
INFLIGHT=${3:-32}
work=$(mktemp -d)
# The servers log into the work folder, not ~/logs/rocketmqlogs.
export ROCKETMQ_LOG_ROOT="$work/logs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release -q --bin mqnamesrv --bin mqbroker --bin mqbench
bin=target/release

declare -A ns
start_namesrv() { # name; one per pair, so that each pair is a cluster of its own
    printf 'listenPort=0\nkvConfigPath=%s/kv-%s.json\n' "$work" "$1" > "$work/ns-$1.properties"
    $bin/mqnamesrv -c "$work/ns-$1.properties" > "$work/ns-$1.out" 2>/dev/null &
    pids+=($!)
    for _ in $(seq 50); do grep -q 'boot success' "$work/ns-$1.out" && break; sleep 0.1; done
    ns[$1]=$(sed -n 's/.*address=\([0-9.:]*\).*/\1/p' "$work/ns-$1.out")
}

start_broker() { # name role id namesrv
    local conf="$work/$1.properties"
    printf 'brokerName=bench\nbrokerId=%s\nbrokerRole=%s\nlistenPort=0\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\nbrokerIP2=127.0.0.1\nnamesrvAddr=%s\nstorePathRootDir=%s/%s\nflushDiskType=ASYNC_FLUSH\nmapedFileSizeCommitLog=1073741824\nregisterNameServerPeriod=1000\n' \
        "$3" "$2" "$4" "$work" "$1" > "$conf"
    ROCKETMQ_LOG_ROOT="$work/logs-$1" $bin/mqbroker -c "$conf" > "$work/$1.out" 2> "$work/$1.err" &
    pids+=($!)
    for _ in $(seq 100); do grep -q 'boot success' "$work/$1.out" && break; sleep 0.1; done
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, ${SECONDS_PER_RUN}s per run, ${INFLIGHT} in flight, 1 KiB, master + 1 slave"
# Both pairs run from the start, idle when not measured; runs alternate
# between them so that load from elsewhere on the machine hits both alike.
for role in ASYNC_MASTER SYNC_MASTER; do
    start_namesrv "$role"
    start_broker "master-$role" "$role" 0 "${ns[$role]}"
    start_broker "slave-$role" SLAVE 1 "${ns[$role]}"
done
for role in ASYNC_MASTER SYNC_MASTER; do
    # The slave learns its master from the name server, then connects.
    for _ in $(seq 200); do grep -q 'slave connected' "$work/logs-master-$role/broker.log" && break; sleep 0.1; done
    grep -q 'slave connected' "$work/logs-master-$role/broker.log" || { echo "$role: the slave never connected" >&2; exit 1; }
done
for r in $(seq "$RUNS"); do
    for role in ASYNC_MASTER SYNC_MASTER; do
        line=$($bin/mqbench producer -n "${ns[$role]}" -t "Bench$role" -s 1024 -c "$INFLIGHT" --seconds "$SECONDS_PER_RUN")
        echo "$role run $r: $line"
        echo "$line" | sed -n 's/.*msgs\/s=\([0-9]*\).*/\1/p' >> "$work/$role.rates"
    done
done
median() { sort -n "$1" | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
async=$(median "$work/ASYNC_MASTER.rates")
sync=$(median "$work/SYNC_MASTER.rates")
echo "median msgs/s: ASYNC_MASTER=$async SYNC_MASTER=$sync SYNC/ASYNC=$(awk -v a="$async" -v s="$sync" 'BEGIN {printf "%.2f", s/a}')"
