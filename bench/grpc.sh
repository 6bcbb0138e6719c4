#!/usr/bin/env bash
# 5.x gRPC sends against 4.x remoting sends (issue 19): one ASYNC_FLUSH
# broker with the gRPC endpoint in its process (--enable-proxy, Local
# mode), and a standalone `mqproxy` in front of it (Cluster mode); 1 KiB
# messages, CONCURRENCY in flight, ROUNDS rounds of three SECONDS runs:
# `mqbench producer` (our 4.x client, remoting), the `send5x` example
# (Apache's 5.x Rust SDK, `rocketmq` 5.0.0) through the broker's endpoint,
# and send5x through the standalone proxy. Printed: each run's line, the
# server side's CPU time per message (utime+stime of the broker, plus the
# standalone proxy's in its run) and the client's, then the median ratio
# of Local-mode 5.x to 4.x msgs/s.
#
#   bench/grpc.sh [rounds] [seconds] [concurrency]
#
# BROKER_EXTRA adds lines to the broker's configuration (A/B runs), e.g.
# BROKER_EXTRA='serverWorkerThreads=1\n'.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECONDS_EACH=${2:-10}
CONCURRENCY=${3:-32}
work=$(mktemp -d)
export ROCKETMQ_LOG_ROOT="$work/logs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release -q --bin mqnamesrv --bin mqbroker --bin mqbench --bin mqproxy
cargo build --release -q -p mq-proxy --example send5x
bin=target/release

printf 'listenPort=0\nbindAddress=127.0.0.1\nkvConfigPath=%s/kv.json\n' "$work" > "$work/ns.properties"
$bin/mqnamesrv -c "$work/ns.properties" > "$work/ns.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do grep -q 'boot success' "$work/ns.out" && break; sleep 0.1; done
ns=$(sed -n 's/.*address=\([0-9.:]*\).*/\1/p' "$work/ns.out")

# A free gRPC port: the kernel's choice for a socket bound and closed.
grpc_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '{"grpcServerPort": %s, "namesrvAddr": "%s", "rocketMQClusterName": "DefaultCluster"}\n' "$grpc_port" "$ns" > "$work/rmq-proxy.json"
printf 'brokerName=bench-grpc\nlistenPort=0\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\nnamesrvAddr=%s\nstorePathRootDir=%s/store\nflushDiskType=ASYNC_FLUSH\n%b' "$ns" "$work" "${BROKER_EXTRA:-}" > "$work/broker.properties"
$bin/mqbroker -c "$work/broker.properties" --enable-proxy -pc "$work/rmq-proxy.json" > "$work/broker.out" 2> "$work/broker.err" &
broker=$!
pids+=($broker)
for _ in $(seq 300); do grep -q 'boot success' "$work/broker.out" && break; sleep 0.05; done
grep -q 'boot success' "$work/broker.out" || { tail -n 20 "$work/broker.err" >&2; exit 1; }

grpc_port2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '{"grpcServerPort": %s, "namesrvAddr": "%s", "rocketMQClusterName": "DefaultCluster"}\n' "$grpc_port2" "$ns" > "$work/standalone.json"
$bin/mqproxy -pc "$work/standalone.json" > "$work/proxy.out" 2> "$work/proxy.err" &
proxy=$!
pids+=($proxy)
for _ in $(seq 300); do grep -q 'gRPC' "$work/proxy.out" && break; sleep 0.05; done

# CPU ticks of the broker, or of the broker and the standalone proxy.
ticks() { awk '{s += $14 + $15} END {print s}' "/proc/$broker/stat" ${server2:+"/proc/$server2/stat"}; }
hz=$(getconf CLK_TCK)
topic=BenchGrpc
# The topic exists before the 5.x SDK asks for its route (4.x sends create it).
$bin/mqbench producer -n "$ns" -t "$topic" --seconds 1 -s 1024 -c 1 > /dev/null

run() { # label command...
    local label=$1; shift
    local before after line n client
    before=$(ticks)
    line=$(/usr/bin/time -f '%U %S' -o "$work/client.time" "$@")
    after=$(ticks)
    n=$(sed -n 's/.* sent=\([0-9]*\).*/\1/p' <<< "$line")
    client=$(awk '{print $1 + $2}' "$work/client.time")
    printf '%s %s server_cpu_us_per_msg=%.1f client_cpu_us_per_msg=%.1f\n' "$label" "$line" \
        "$(echo "($after - $before) * 1000000 / $hz / ($n + 0.000001)" | bc -l)" \
        "$(echo "$client * 1000000 / ($n + 0.000001)" | bc -l)"
}

ratios=()
for r in $(seq "$ROUNDS"); do
    a=$(run "4.x" $bin/mqbench producer -n "$ns" -t "$topic" --seconds "$SECONDS_EACH" -s 1024 -c "$CONCURRENCY")
    echo "$a"
    b=$(run "5.x-local" $bin/examples/send5x "127.0.0.1:$grpc_port" "$topic" 1024 "$CONCURRENCY" "$SECONDS_EACH")
    echo "$b"
    server2=$proxy
    c=$(run "5.x-cluster" $bin/examples/send5x "127.0.0.1:$grpc_port2" "$topic" 1024 "$CONCURRENCY" "$SECONDS_EACH")
    server2=
    echo "$c"
    ra=$(sed -n 's/.*msgs\/s=\([0-9]*\).*/\1/p' <<< "$a")
    rb=$(sed -n 's/.*msgs\/s=\([0-9]*\).*/\1/p' <<< "$b")
    ratios+=("$(echo "$rb / $ra" | bc -l)")
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median 5.x/4.x msgs/s ratio over %d pairs: %.2f\n", NR, a[int((NR+1)/2)]}'
