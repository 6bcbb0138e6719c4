#!/usr/bin/env bash
# Side-by-side send benchmark, 1 KiB messages, same machine, same run:
#   our broker (ASYNC_FLUSH and SYNC_FLUSH, 1 GiB segments) driven by
#   mqbench (plain and transactional sends, then a consumer), NATS
#   JetStream with file storage (nats-server on 127.0.0.1:4222, persistence
#   on) driven by bench/nats-bench, and RabbitMQ (127.0.0.1:5672,
#   guest/guest; a durable quorum queue, persistent messages, publisher
#   confirms) driven by bench/rabbit-bench. Each client keeps N sends in
#   flight and counts a send when it is acknowledged.
#
#   For every in-flight count and every round, the settings run one after
#   the other, in an order that rotates from round to round (so that no
#   side always follows another on this shared box); each run also reports
#   the server's CPU time per message (utime + stime of its process from
#   /proc over the run: mqbroker, nats-server, RabbitMQ's beam.smp). The
#   summary gives medians and the ratios the issue asks about.
#
#   Last, end-to-end latency: mqbench e2e sends at a fixed rate
#   (E2E_RATE, default 10,000 msgs/s) to a push consumer in the same process
#   and times each message from the start of its send to its delivery
#   (p50/p99/p999), on both brokers, each with a topic of its own.
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
#   bench/side-by-side.sh [seconds] [rounds] [in-flight counts, e.g. "1 32 128"]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
RUNS=${2:-3}
INFLIGHTS=${3:-32}
INFLIGHT=${INFLIGHTS%% *}
work=$(mktemp -d)
# The servers log into the work folder, not ~/logs/rocketmqlogs.
export ROCKETMQ_LOG_ROOT="$work/logs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release -q --bin mqnamesrv --bin mqbroker --bin mqbench --bin mqadmin
(cd bench/nats-bench && cargo build --release -q)
(cd bench/rabbit-bench && cargo build --release -q) || echo "rabbit-bench did not build; RabbitMQ skipped"
bin=target/release
broker_bin=${MQBROKER:-$bin/mqbroker} # another build of the broker, for A/B runs
nats_up=false; (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && nats_up=true
rabbit_up=false
if [ -x bench/rabbit-bench/target/release/rabbit-bench ] && (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then rabbit_up=true; fi
nats_pid=$(pgrep -x nats-server | head -n 1 || true)
rabbit_pid=$(pgrep -f beam.smp | head -n 1 || true)

printf 'listenPort=0\nbindAddress=127.0.0.1\nkvConfigPath=%s/kv.json\n' "$work" > "$work/ns.properties"
$bin/mqnamesrv -c "$work/ns.properties" > "$work/ns.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do grep -q 'boot success' "$work/ns.out" && break; sleep 0.1; done
ns=$(sed -n 's/.*address=\([0-9.:]*\).*/\1/p' "$work/ns.out")

# Both brokers run at once, so topics are created on one broker each (no
# auto-creation: a send to a new topic could land on either).
# BROKER_EXTRA adds lines to both brokers' configurations (A/B runs).
declare -A broker_pid broker_addr
run_broker() { # flush type, topics...
    local flush=$1 dir="$work/store-$1"; shift
    printf 'brokerName=bench-%s\nlistenPort=0\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\nnamesrvAddr=%s\nstorePathRootDir=%s\nflushDiskType=%s\nmapedFileSizeCommitLog=1073741824\nautoCreateTopicEnable=false\n%b' "$flush" "$ns" "$dir" "$flush" "${BROKER_EXTRA:-}" > "$work/broker-$flush.properties"
    $broker_bin -c "$work/broker-$flush.properties" > "$work/broker-$flush.out" 2>/dev/null &
    broker_pid[$flush]=$!
    pids+=($!)
    for _ in $(seq 100); do grep -q 'boot success' "$work/broker-$flush.out" && break; sleep 0.1; done
    broker_addr[$flush]=$(sed -n 's/.*broker\[[^,]*, \([0-9.:]*\)\] boot success.*/\1/p' "$work/broker-$flush.out")
    for t in "$@"; do
        $bin/mqadmin updateTopic -n "$ns" -b "${broker_addr[$flush]}" -t "$t" -r 8 -w 8 > /dev/null
        for _ in $(seq 100); do $bin/mqadmin topicRoute -n "$ns" -t "$t" > /dev/null 2>&1 && break; sleep 0.1; done
    done
}
ticks() { if [ -n "$1" ] && [ -r "/proc/$1/stat" ]; then awk '{print $14 + $15}' "/proc/$1/stat"; else echo 0; fi; }
hz=$(getconf CLK_TCK)
field() { echo "$1" | sed -n "s|.* $2=\([0-9.]*\).*|\1|p"; }

# key pid command...: one run; prints its line with the server's CPU us/msg
# and files msgs/s, p999 and CPU per message under the setting's key.
measure() {
    local key=$1 pid=$2; shift 2
    local before after line sent cpu
    before=$(ticks "$pid")
    line=$("$@" 2>&1 | tail -n 1) || true
    after=$(ticks "$pid")
    sent=$(echo "$line" | sed -n 's/.*\(sent\|consumed\)=\([0-9]*\).*/\2/p')
    cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v n="${sent:-0}" 'BEGIN {if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print "nan"}')
    echo "$key: $line server_cpu_us/msg=$cpu"
    echo "$(field " $line" 'msgs/s')" >> "$work/$key.rate"
    echo "$(field " $line" p999)" >> "$work/$key.p999"
    echo "$(field " $line" p99)" >> "$work/$key.p99"
    echo "$(field " $line" p50)" >> "$work/$key.p50"
    echo "$cpu" >> "$work/$key.cpu"
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), ${SECONDS_PER_RUN}s per run, ${RUNS} rounds, in flight: ${INFLIGHTS}, 1 KiB"
run_broker ASYNC_FLUSH BenchASYNC BenchTx BenchE2E
run_broker SYNC_FLUSH BenchSYNC BenchE2ESync
for r in $(seq "$RUNS"); do
    for c in $INFLIGHTS; do
        settings=(ours-async ours-sync ours-tx)
        $nats_up && settings+=(jetstream)
        $rabbit_up && settings+=(rabbitmq)
        n=${#settings[@]}
        for i in $(seq 0 $((n - 1))); do
            s=${settings[$(( (i + r) % n ))]}
            case $s in
                ours-async) measure "ours-async-c$c" "${broker_pid[ASYNC_FLUSH]}" $bin/mqbench producer -n "$ns" -t BenchASYNC -s 1024 -c "$c" --seconds "$SECONDS_PER_RUN" ;;
                ours-sync) measure "ours-sync-c$c" "${broker_pid[SYNC_FLUSH]}" $bin/mqbench producer -n "$ns" -t BenchSYNC -s 1024 -c "$c" --seconds "$SECONDS_PER_RUN" ;;
                ours-tx) measure "ours-tx-c$c" "${broker_pid[ASYNC_FLUSH]}" $bin/mqbench tx -n "$ns" -t BenchTx -s 1024 -c "$c" --seconds "$SECONDS_PER_RUN" ;;
                jetstream) measure "jetstream-c$c" "$nats_pid" bench/nats-bench/target/release/nats-bench 127.0.0.1:4222 1024 "$c" "$SECONDS_PER_RUN" ;;
                rabbitmq) measure "rabbitmq-c$c" "$rabbit_pid" bench/rabbit-bench/target/release/rabbit-bench amqp://guest:guest@127.0.0.1:5672/%2f 1024 "$c" "$SECONDS_PER_RUN" quorum ;;
            esac
        done
    done
done
# Consumption: what the ASYNC_FLUSH sends above left in the topic, from the start.
for r in $(seq "$RUNS"); do
    measure ours-consume "${broker_pid[ASYNC_FLUSH]}" $bin/mqbench consumer -n "$ns" -t BenchASYNC -g "bench-consumer-$r" --seconds "$SECONDS_PER_RUN"
done
# End to end at a fixed rate, send start to delivery at a push consumer.
E2E_RATE=${E2E_RATE:-10000}
for r in $(seq "$RUNS"); do
    measure ours-e2e-async "${broker_pid[ASYNC_FLUSH]}" $bin/mqbench e2e -n "$ns" -t BenchE2E -s 1024 -r "$E2E_RATE" --seconds "$SECONDS_PER_RUN" -g "bench-e2e-$r"
    measure ours-e2e-sync "${broker_pid[SYNC_FLUSH]}" $bin/mqbench e2e -n "$ns" -t BenchE2ESync -s 1024 -r "$E2E_RATE" --seconds "$SECONDS_PER_RUN" -g "bench-e2e-sync-$r"
done

median() { [ -s "$1" ] || { echo nan; return; }; grep -v nan "$1" | sort -n | awk '{v[NR]=$1} END {if (NR == 0) print "nan"; else print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "nan" || b == "nan" || b == 0) print "-"; else printf "%.2f", a/b}'; }
echo "# medians over ${RUNS} rounds (msgs/s, p999 ms, server CPU us/msg)"
for c in $INFLIGHTS; do
    for s in ours-async ours-sync ours-tx jetstream rabbitmq; do
        [ -s "$work/$s-c$c.rate" ] || continue
        echo "median $s c=$c: msgs/s=$(median "$work/$s-c$c.rate") p999=$(median "$work/$s-c$c.p999")ms cpu_us/msg=$(median "$work/$s-c$c.cpu")"
    done
    a=$(median "$work/ours-async-c$c.rate")
    echo "ratio c=$c: async/jetstream=$(ratio "$a" "$(median "$work/jetstream-c$c.rate")") async/rabbitmq=$(ratio "$a" "$(median "$work/rabbitmq-c$c.rate")") p999 async/jetstream=$(ratio "$(median "$work/ours-async-c$c.p999")" "$(median "$work/jetstream-c$c.p999")") sync/async=$(ratio "$(median "$work/ours-sync-c$c.rate")" "$a") tx/async=$(ratio "$(median "$work/ours-tx-c$c.rate")" "$a")"
done
echo "median ours-consume: msgs/s=$(median "$work/ours-consume.rate") cpu_us/msg=$(median "$work/ours-consume.cpu")"
for s in async sync; do
    echo "median ours-e2e-$s at $E2E_RATE msgs/s: p50=$(median "$work/ours-e2e-$s.p50")ms p99=$(median "$work/ours-e2e-$s.p99")ms p999=$(median "$work/ours-e2e-$s.p999")ms cpu_us/msg=$(median "$work/ours-e2e-$s.cpu")"
done
kill "${broker_pid[ASYNC_FLUSH]}" "${broker_pid[SYNC_FLUSH]}"; wait "${broker_pid[ASYNC_FLUSH]}" "${broker_pid[SYNC_FLUSH]}" 2>/dev/null || true

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

echo "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
