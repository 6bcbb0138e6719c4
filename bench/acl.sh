#!/usr/bin/env bash
# ACL cost benchmark, same machine: two ASYNC_FLUSH brokers on one name
# server, one with aclEnable=false and one with aclEnable=true (a producer
# account allowed PUB on its topic only), each driven by mqbench (1 KiB
# messages, N in flight; only SEND_OK counts). With ACL on, mqbench signs
# every request (HMAC-SHA1 over the extFields and body) and the broker checks
# the signature and the account's permission. Runs alternate between the two
# brokers (off-on, then on-off, ...) so that load from elsewhere on the
# machine hits both alike; compare medians. Each run also reports the CPU
# time per message of the broker (its utime+stime from /proc/<pid>/stat over
# the run) and of mqbench: on a busy machine that is steadier than msgs/s.
#
#   bench/acl.sh [seconds] [runs] [in-flight]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
RUNS=${2:-5}
INFLIGHT=${3:-32}
work=$(mktemp -d)
# The servers log into the work folder, not ~/logs/rocketmqlogs.
export ROCKETMQ_LOG_ROOT="$work/logs"
pids=()
# The brokers start inside $(...), so their pids come back through files.
cleanup() {
    for p in "${pids[@]}" $(cat "$work"/*.pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q --bin mqnamesrv --bin mqbroker --bin mqbench --bin mqadmin
bin=target/release

# Bench-only accounts, generated for this run.
admin_secret=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
producer_secret=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
cat > "$work/plain_acl.yml" <<EOF
globalWhiteRemoteAddresses: []
accounts:
  - accessKey: bench-admin
    secretKey: $admin_secret
    admin: true
  - accessKey: bench-producer
    secretKey: $producer_secret
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms:
      - BenchAclOn=PUB
EOF
chmod 600 "$work/plain_acl.yml"

printf 'listenPort=0\nbindAddress=127.0.0.1\nkvConfigPath=%s/kv.json\n' "$work" > "$work/ns.properties"
$bin/mqnamesrv -c "$work/ns.properties" > "$work/ns.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do grep -q 'boot success' "$work/ns.out" && break; sleep 0.1; done
ns=$(sed -n 's/.*address=\([0-9.:]*\).*/\1/p' "$work/ns.out")

declare -A broker_pid
start_broker() { # name acl-enable
    local conf="$work/$1.properties"
    printf 'brokerName=%s\nlistenPort=0\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\nnamesrvAddr=%s\nstorePathRootDir=%s/%s\nflushDiskType=ASYNC_FLUSH\nmapedFileSizeCommitLog=1073741824\naclEnable=%s\naclFilePath=%s/plain_acl.yml\n' \
        "$1" "$ns" "$work" "$1" "$2" "$work" > "$conf"
    $bin/mqbroker -c "$conf" > "$work/$1.out" 2> "$work/$1.err" &
    pids+=($!)
    echo $! > "$work/$1.pid"
    for _ in $(seq 100); do grep -q 'boot success' "$work/$1.out" && break; sleep 0.1; done
    grep -q 'boot success' "$work/$1.out" || { echo "broker $1 did not start:" >&2; cat "$work/$1.err" >&2; exit 1; }
    sed -n 's/.*broker\[[^,]*, \([0-9.:]*\)\].*/\1/p' "$work/$1.out" | head -n 1
}

off_addr=$(start_broker acl-off false)
on_addr=$(start_broker acl-on true)
sleep 1
$bin/mqadmin updateTopic -n "$ns" -b "$off_addr" -t BenchAclOff -r 8 -w 8 > /dev/null
ROCKETMQ_ACCESS_KEY=bench-admin ROCKETMQ_SECRET_KEY=$admin_secret \
    $bin/mqadmin updateTopic -n "$ns" -b "$on_addr" -t BenchAclOn -r 8 -w 8 > /dev/null
sleep 1

broker_pid[off]=$(cat "$work/acl-off.pid")
broker_pid[on]=$(cat "$work/acl-on.pid")
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, clock ticks
hz=$(getconf CLK_TCK)

run() { # side topic [env...]: one mqbench run; appends msgs/s and CPU us/msg
    local side=$1 topic=$2; shift 2
    local before after line
    before=$(ticks "${broker_pid[$side]}")
    line=$( (env "$@" $bin/mqbench producer -n "$ns" -t "$topic" -s 1024 -c "$INFLIGHT" --seconds "$SECONDS_PER_RUN"; times) )
    after=$(ticks "${broker_pid[$side]}")
    local result sent client
    result=$(echo "$line" | head -n 1)
    sent=$(echo "$result" | sed -n 's/.*sent=\([0-9]*\).*/\1/p')
    # `times` in the subshell: its second line is mqbench's user and system time.
    client=$(echo "$line" | tail -n 1 | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] } print t }')
    echo "$result" | sed -n 's/.*msgs\/s=\([0-9]*\).*/\1/p' >> "$work/$side.rates"
    awk -v t=$((after - before)) -v hz="$hz" -v n="$sent" 'BEGIN {printf "%.2f\n", t / hz * 1e6 / n}' >> "$work/$side.broker"
    awk -v t="$client" -v n="$sent" 'BEGIN {printf "%.2f\n", t * 1e6 / n}' >> "$work/$side.client"
    echo "$result broker_us/msg=$(tail -n 1 "$work/$side.broker") mqbench_us/msg=$(tail -n 1 "$work/$side.client")"
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), ${SECONDS_PER_RUN}s per run, ${INFLIGHT} in flight, 1 KiB, ASYNC_FLUSH"
off_run() { echo "aclEnable=false run $1: $(run off BenchAclOff)"; }
on_run() { echo "aclEnable=true  run $1: $(run on BenchAclOn ROCKETMQ_ACCESS_KEY=bench-producer ROCKETMQ_SECRET_KEY="$producer_secret")"; }
# Rounds alternate which side goes first (off-on, on-off, ...), so neither
# always runs right after the other.
for r in $(seq "$RUNS"); do
    if (( r % 2 )); then off_run "$r"; on_run "$r"; else on_run "$r"; off_run "$r"; fi
done
median() { sort -n "$1" | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b/a}'; }
off=$(median "$work/off.rates")
on=$(median "$work/on.rates")
echo "median msgs/s: aclEnable=false $off, aclEnable=true $on, on/off=$(ratio "$off" "$on")"
echo "median broker CPU us/msg: aclEnable=false $(median "$work/off.broker"), aclEnable=true $(median "$work/on.broker"), on/off=$(ratio "$(median "$work/off.broker")" "$(median "$work/on.broker")")"
echo "median mqbench CPU us/msg: aclEnable=false $(median "$work/off.client"), aclEnable=true $(median "$work/on.client"), on/off=$(ratio "$(median "$work/off.client")" "$(median "$work/on.client")")"
echo "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
