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
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release -q --bin mqnamesrv --bin mqbroker --bin mqbench
bin=target/release

printf 'listenPort=0\nkvConfigPath=%s/kv.json\n' "$work" > "$work/ns.properties"
$bin/mqnamesrv -c "$work/ns.properties" > "$work/ns.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do grep -q 'boot success' "$work/ns.out" && break; sleep 0.1; done
ns=$(sed -n 's/.*address=\([0-9.:]*\).*/\1/p' "$work/ns.out")

start_broker() { # name role id
    local conf="$work/$1.properties"
    printf 'brokerName=bench\nbrokerId=%s\nbrokerRole=%s\nlistenPort=0\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\nbrokerIP2=127.0.0.1\nnamesrvAddr=%s\nstorePathRootDir=%s/%s\nflushDiskType=ASYNC_FLUSH\nmapedFileSizeCommitLog=1073741824\nregisterNameServerPeriod=1000\n' \
        "$3" "$2" "$ns" "$work" "$1" > "$conf"
    $bin/mqbroker -c "$conf" > "$work/$1.out" 2> "$work/$1.err" &
    pids+=($!)
    for _ in $(seq 100); do grep -q 'boot success' "$work/$1.out" && break; sleep 0.1; done
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, ${SECONDS_PER_RUN}s per run, ${INFLIGHT} in flight, 1 KiB, master + 1 slave"
for role in ASYNC_MASTER SYNC_MASTER; do
    start_broker "master-$role" "$role" 0
    master_pid=${pids[-1]}
    start_broker "slave-$role" SLAVE 1
    slave_pid=${pids[-1]}
    # The slave learns the master from the name server, then connects.
    for _ in $(seq 200); do grep -q 'slave connected' "$work/master-$role.err" && break; sleep 0.1; done
    grep -q 'slave connected' "$work/master-$role.err" || { echo "the slave never connected" >&2; exit 1; }
    for r in $(seq "$RUNS"); do
        echo -n "$role run $r: "
        $bin/mqbench producer -n "$ns" -t "Bench$role" -s 1024 -c "$INFLIGHT" --seconds "$SECONDS_PER_RUN"
    done
    kill "$master_pid" "$slave_pid"; wait "$master_pid" "$slave_pid" 2>/dev/null || true
done
