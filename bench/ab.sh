#!/usr/bin/env bash
# Paired send benchmark of two builds, same machine, same run: build A's and
# build B's name server and broker run side by side from the start (ASYNC_FLUSH
# or SYNC_FLUSH, 1 GiB segments), and each build's own mqbench drives its own
# broker (1 KiB messages, N in flight; only SEND_OK counts). Runs alternate
# A, B, A, B... so that load from elsewhere on the machine hits both alike;
# compare the medians, the B/A ratio and the brokers' CPU time per message.
#
#   bench/ab.sh A_BIN_DIR B_BIN_DIR [seconds] [runs] [in-flight] [flush]
#
# A_EXTRA / B_EXTRA add lines to side A's / B's broker configuration, e.g.
# the same build with two settings:
#   B_EXTRA='serverWorkerThreads=2\n' bench/ab.sh target/release target/release
# MODE=tx measures transactional sends (mqbench tx: half message, then
# commit) instead of plain ones.
#
# e.g. the commit before a change against this checkout:
#   git worktree add /tmp/base <rev> && (cd /tmp/base && cargo build --release \
#     --bin mqnamesrv --bin mqbroker --bin mqbench)
#   cargo build --release --bin mqnamesrv --bin mqbroker --bin mqbench
#   bench/ab.sh /tmp/base/target/release target/release 10 5 32 ASYNC_FLUSH
set -euo pipefail
A_BIN=$1
B_BIN=$2
SECONDS_PER_RUN=${3:-10}
RUNS=${4:-5}
INFLIGHT=${5:-32}
FLUSH=${6:-ASYNC_FLUSH}
MODE=${MODE:-producer}
work=$(mktemp -d)
# The servers log into the work folder, not ~/logs/rocketmqlogs.
export ROCKETMQ_LOG_ROOT="$work/logs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

declare -A ns broker
start() { # side bin-dir
    local side=$1 bin=$2 extra
    if [ "$side" = A ]; then extra=${A_EXTRA:-}; else extra=${B_EXTRA:-}; fi
    printf 'listenPort=0\nbindAddress=127.0.0.1\nkvConfigPath=%s/kv-%s.json\n' "$work" "$side" > "$work/ns-$side.properties"
    "$bin/mqnamesrv" -c "$work/ns-$side.properties" > "$work/ns-$side.out" 2>/dev/null &
    pids+=($!)
    for _ in $(seq 50); do grep -q 'boot success' "$work/ns-$side.out" && break; sleep 0.1; done
    ns[$side]=$(sed -n 's/.*address=\([0-9.:]*\).*/\1/p' "$work/ns-$side.out")
    printf 'brokerName=bench-%s\nlistenPort=0\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\nnamesrvAddr=%s\nstorePathRootDir=%s/store-%s\nflushDiskType=%s\nmapedFileSizeCommitLog=1073741824\n%b' \
        "$side" "${ns[$side]}" "$work" "$side" "$FLUSH" "$extra" > "$work/broker-$side.properties"
    "$bin/mqbroker" -c "$work/broker-$side.properties" > "$work/broker-$side.out" 2>/dev/null &
    broker[$side]=$!
    pids+=($!)
    for _ in $(seq 100); do grep -q 'boot success' "$work/broker-$side.out" && break; sleep 0.1; done
}
# The broker's CPU ticks (utime + stime) so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
start A "$A_BIN"
start B "$B_BIN"
sleep 1

echo "# $(date -u +%FT%TZ) $(nproc) cores, ${SECONDS_PER_RUN}s per run, ${INFLIGHT} in flight, 1 KiB, $FLUSH, mqbench $MODE"
echo "# A=$A_BIN ${A_EXTRA:+(+ $A_EXTRA)} B=$B_BIN ${B_EXTRA:+(+ $B_EXTRA)}"
for r in $(seq "$RUNS"); do
    for side in A B; do
        bin=$A_BIN
        [ "$side" = B ] && bin=$B_BIN
        before=$(ticks "${broker[$side]}")
        line=$("$bin/mqbench" "$MODE" -n "${ns[$side]}" -t "Bench$FLUSH" -s 1024 -c "$INFLIGHT" --seconds "$SECONDS_PER_RUN")
        after=$(ticks "${broker[$side]}")
        sent=$(sed -n 's/.* sent=\([0-9]*\).*/\1/p' <<< "$line")
        cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$sent" 'BEGIN {printf "%.1f", t * 1000000 / hz / (n + 0.000001)}')
        echo "$side run $r: $line broker_cpu_us_per_msg=$cpu"
        echo "$line" | sed -n 's/.*msgs\/s=\([0-9]*\).*/\1/p' >> "$work/$side.rates"
        echo "$cpu" >> "$work/$side.cpu"
    done
done
median() { sort -n "$1" | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
a=$(median "$work/A.rates")
b=$(median "$work/B.rates")
echo "median msgs/s: A=$a B=$b B/A=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b/a}')"
echo "median broker CPU us/msg: A=$(median "$work/A.cpu") B=$(median "$work/B.cpu")"
