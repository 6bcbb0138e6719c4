#!/usr/bin/env bash
# Restart after a crash (issue 20): a broker with a fresh store takes
# SECONDS_OF_SENDS of 1 KiB sends (32 in flight; ASYNC_FLUSH takes about
# 30,000-40,000 messages a second here), is killed with SIGKILL, and is
# started again. Printed per round: the messages acknowledged before the
# kill, the milliseconds from the restart to the first answered request
# (mqadmin brokerStatus, GET_BROKER_RUNTIME_INFO, polled; each poll is a
# new mqadmin process, a few ms), the store's own "message store opened"
# figures (elapsed_ms, where the scan and the re-dispatch started, how many
# messages were re-dispatched), and for ASYNC_FLUSH then SYNC_FLUSH, with
# 1 GiB and 64 MiB commit log segments. Then a master and a slave: the
# slave is killed after the sends and restarted, and its store's figures
# show where its re-dispatch started (its checkpoint, not offset 0).
#
#   bench/restart.sh [rounds] [seconds-of-sends]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SENDS=${2:-2}
work=$(mktemp -d)
# The servers log into the work folder, not ~/logs/rocketmqlogs.
export ROCKETMQ_LOG_ROOT="$work/logs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release -q --bin mqnamesrv --bin mqbroker --bin mqbench --bin mqadmin
bin=target/release
broker_bin=${MQBROKER:-$bin/mqbroker} # another build of the broker, for A/B runs

printf 'listenPort=0\nbindAddress=127.0.0.1\nkvConfigPath=%s/kv.json\n' "$work" > "$work/ns.properties"
$bin/mqnamesrv -c "$work/ns.properties" > "$work/ns.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do grep -q 'boot success' "$work/ns.out" && break; sleep 0.1; done
ns=$(sed -n 's/.*address=\([0-9.:]*\).*/\1/p' "$work/ns.out")

now_ms() { date +%s%3N; }

# name port role id flush segment: writes the config, starts the broker,
# sets broker_pid; does not wait.
launch() {
    local conf="$work/$1.properties"
    printf 'brokerName=bench-%s\nbrokerId=%s\nbrokerRole=%s\nlistenPort=%s\nhaListenPort=%s\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\nbrokerIP2=127.0.0.1\nnamesrvAddr=%s\nstorePathRootDir=%s/store-%s\nflushDiskType=%s\nmapedFileSizeCommitLog=%s\nregisterNameServerPeriod=1000\n' \
        "${7:-$1}" "$4" "$3" "$2" "$(($2 + 1))" "$ns" "$work" "$1" "$5" "$6" > "$conf"
    $broker_bin -c "$conf" >> "$work/$1.out" 2>> "$work/$1.err" &
    broker_pid=$!
    pids+=($broker_pid)
}

wait_boot() { # name
    for _ in $(seq 300); do grep -q 'boot success' "$work/$1.out" && return 0; sleep 0.02; done
    echo "$1 did not boot" >&2; tail -n 20 "$work/$1.err" >&2; exit 1
}

# port: polls brokerStatus until it answers; prints the ms it took from $t0.
wait_serving() {
    for _ in $(seq 2000); do
        if $bin/mqadmin brokerStatus -n "$ns" -b "127.0.0.1:$1" > /dev/null 2>&1; then
            echo $(( $(now_ms) - t0 )); return 0
        fi
    done
    echo "never"
}

logs=$ROCKETMQ_LOG_ROOT
opened() { # name: the figures of its store's last "message store opened" line
    cat "$work/$1.err" "$logs"/*.log 2>/dev/null | grep "message store opened root=$work/store-$1 " | tail -n 1 | tr ' ' '\n' \
        | grep -E '^(crashed|scanned_from|commit_log_end|redispatched_from|redispatched|elapsed_ms)=' | tr '\n' ' '
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), ${SENDS}s of sends (32 in flight, 1 KiB) before each kill"
port=21911
for seg in 1073741824 67108864; do
    for flush in ASYNC_FLUSH SYNC_FLUSH; do
        for r in $(seq "$ROUNDS"); do
            name="m-$flush-$seg-$r"
            port=$((port + 10))
            launch "$name" "$port" ASYNC_MASTER 0 "$flush" "$seg"
            wait_boot "$name"
            sent=$($bin/mqbench producer -n "$ns" -t "Restart$r" -s 1024 -c 32 --seconds "$SENDS" | sed -n 's/.*sent=\([0-9]*\).*/\1/p')
            kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null || true
            t0=$(now_ms)
            launch "$name" "$port" ASYNC_MASTER 0 "$flush" "$seg"
            serving=$(wait_serving "$port")
            echo "segment=$((seg >> 20))MiB $flush round $r: acked_before_kill=$sent serving_after_ms=$serving $(opened "$name")"
            kill "$broker_pid"; wait "$broker_pid" 2>/dev/null || true
            rm -rf "$work/store-$name"
        done
    done
done

# A master and a slave; the slave is killed after the sends, restarted.
for r in $(seq "$ROUNDS"); do
    port=$((port + 10))
    master="ha-master-$r"; slave="ha-slave-$r"
    launch "$master" "$port" ASYNC_MASTER 0 ASYNC_FLUSH 1073741824 "ha-$r"
    master_pid=$broker_pid
    wait_boot "$master"
    launch "$slave" "$((port + 5))" SLAVE 1 ASYNC_FLUSH 1073741824 "ha-$r"
    wait_boot "$slave"
    for _ in $(seq 200); do $bin/mqadmin brokerStatus -n "$ns" -b "127.0.0.1:$port" 2>/dev/null | grep -q 'haConnectionCount.*1' && break; sleep 0.05; done
    sent=$($bin/mqbench producer -n "$ns" -t "RestartHa$r" -s 1024 -c 32 --seconds "$SENDS" | sed -n 's/.*sent=\([0-9]*\).*/\1/p')
    sleep 2 # the slave catches up and checkpoints (flushIntervalConsumeQueue=1000)
    kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null || true
    t0=$(now_ms)
    launch "$slave" "$((port + 5))" SLAVE 1 ASYNC_FLUSH 1073741824 "ha-$r"
    serving=$(wait_serving "$((port + 5))")
    echo "slave round $r: acked_before_kill=$sent serving_after_ms=$serving $(opened "$slave")"
    kill "$broker_pid" "$master_pid"; wait "$broker_pid" "$master_pid" 2>/dev/null || true
    rm -rf "$work/store-$master" "$work/store-$slave"
done
echo "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
