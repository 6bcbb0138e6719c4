#!/usr/bin/env bash
# Side-by-side send benchmark, 1 KiB messages, N in flight, same machine:
#   our broker (ASYNC_FLUSH and SYNC_FLUSH) driven by mqbench (plain and
#   transactional sends, then a consumer), and NATS JetStream with file
#   storage (nats-server on 127.0.0.1:4222, persistence on) driven by an
#   equivalent client. Each setting runs RUNS times; compare medians.
#
#   The Rust RocketMQ reimplementation from crates.io is measured too when
#   RMQ_RUST_BIN names the folder of its broker binary, e.g. after
#     cargo install --root /tmp/peer rocketmq-broker
#   RMQ_RUST_BIN=/tmp/peer/bin. Its broker (fixed port 30911, and 30909,
#   10912 beside it) registers with our name server: rocketmq-namesrv-rust
#   1.0.0 exits at start on these machines (see BENCHMARKS.md), and the name
#   server only hands out the route; every measured request goes from
#   mqbench to the broker under test.
#
#   bench/side-by-side.sh [seconds] [runs] [in-flight]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
RUNS=${2:-3}
INFLIGHT=${3:-32}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release -q --bin mqnamesrv --bin mqbroker --bin mqbench --bin mqadmin
(cd bench/nats-bench && cargo build --release -q)
bin=target/release

printf 'listenPort=0\nbindAddress=127.0.0.1\nkvConfigPath=%s/kv.json\n' "$work" > "$work/ns.properties"
$bin/mqnamesrv -c "$work/ns.properties" > "$work/ns.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do grep -q 'boot success' "$work/ns.out" && break; sleep 0.1; done
ns=$(sed -n 's/.*address=\([0-9.:]*\).*/\1/p' "$work/ns.out")

run_broker() { # flush type
    local dir="$work/store-$1"
    printf 'brokerName=bench\nlistenPort=0\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\nnamesrvAddr=%s\nstorePathRootDir=%s\nflushDiskType=%s\nmapedFileSizeCommitLog=1073741824\n' "$ns" "$dir" "$1" > "$work/broker-$1.properties"
    $bin/mqbroker -c "$work/broker-$1.properties" > "$work/broker-$1.out" 2>/dev/null &
    broker_pid=$!
    pids+=($broker_pid)
    for _ in $(seq 100); do grep -q 'boot success' "$work/broker-$1.out" && break; sleep 0.1; done
    sleep 1
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, ${SECONDS_PER_RUN}s per run, ${INFLIGHT} in flight, 1 KiB"
for flush in ASYNC_FLUSH SYNC_FLUSH; do
    run_broker "$flush"
    for r in $(seq "$RUNS"); do
        echo -n "rocketshop $flush run $r: "
        $bin/mqbench producer -n "$ns" -t "Bench$flush" -s 1024 -c "$INFLIGHT" --seconds "$SECONDS_PER_RUN"
    done
    if [ "$flush" = ASYNC_FLUSH ]; then
        for r in $(seq "$RUNS"); do
            echo -n "rocketshop $flush tx run $r: "
            $bin/mqbench tx -n "$ns" -t "BenchTx" -s 1024 -c "$INFLIGHT" --seconds "$SECONDS_PER_RUN"
        done
        echo -n "rocketshop $flush consume: "
        $bin/mqbench consumer -n "$ns" -t "Bench$flush" -g bench-consumer --seconds "$SECONDS_PER_RUN"
    fi
    kill "$broker_pid"; wait "$broker_pid" 2>/dev/null || true
done

if [ -n "${RMQ_RUST_BIN:-}" ] && [ -x "$RMQ_RUST_BIN/rocketmq-broker-rust" ]; then
    for flush in ASYNC_FLUSH SYNC_FLUSH; do
        peer="$work/peer-$flush"
        mkdir -p "$peer"
        printf 'brokerClusterName=DefaultCluster\nbrokerName=peer\nbrokerId=0\nbrokerRole=ASYNC_MASTER\nflushDiskType=%s\nlistenPort=30911\nbrokerIP1=127.0.0.1\nnamesrvAddr=%s\nstorePathRootDir=%s/store\nautoCreateTopicEnable=true\n' "$flush" "$ns" "$peer" > "$peer/broker.properties"
        "$RMQ_RUST_BIN/rocketmq-broker-rust" -c "$peer/broker.properties" > "$peer/broker.log" 2>&1 &
        peer_broker=$!
        pids+=($peer_broker)
        for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/30911) 2>/dev/null && break; sleep 0.1; done
        sleep 2
        $bin/mqadmin updateTopic -n "$ns" -b 127.0.0.1:30911 -t "Peer$flush" -r 8 -w 8 > /dev/null
        for r in $(seq "$RUNS"); do
            echo -n "rocketmq-rust $flush run $r: "
            $bin/mqbench producer -n "$ns" -t "Peer$flush" -s 1024 -c "$INFLIGHT" --seconds "$SECONDS_PER_RUN" || echo "failed"
        done
        if [ "$flush" = ASYNC_FLUSH ]; then
            echo -n "rocketmq-rust $flush consume: "
            $bin/mqbench consumer -n "$ns" -t "Peer$flush" -g bench-consumer --seconds "$SECONDS_PER_RUN" || echo "failed"
        fi
        kill "$peer_broker"; wait "$peer_broker" 2>/dev/null || true
    done
fi

if (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
    for r in $(seq "$RUNS"); do
        echo -n "nats-jetstream file run $r: "
        bench/nats-bench/target/release/nats-bench 127.0.0.1:4222 1024 "$INFLIGHT" "$SECONDS_PER_RUN"
    done
else
    echo "nats-server is not running on 127.0.0.1:4222; JetStream peer skipped"
fi
