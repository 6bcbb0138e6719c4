#!/usr/bin/env bash
# ACL cost benchmark, same machine: two ASYNC_FLUSH brokers on one name
# server, one with aclEnable=false and one with aclEnable=true (a producer
# account allowed PUB on its topic only), each driven by mqbench (1 KiB
# messages, N in flight; only SEND_OK counts). With ACL on, mqbench signs
# every request (HMAC-SHA1 over the extFields and body) and the broker checks
# the signature and the account's permission. Runs alternate between the two
# brokers so that load from elsewhere on the machine hits both alike; compare
# medians.
#
#   bench/acl.sh [seconds] [runs] [in-flight]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
RUNS=${2:-5}
INFLIGHT=${3:-32}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
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

start_broker() { # name acl-enable
    local conf="$work/$1.properties"
    printf 'brokerName=%s\nlistenPort=0\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\nnamesrvAddr=%s\nstorePathRootDir=%s/%s\nflushDiskType=ASYNC_FLUSH\nmapedFileSizeCommitLog=1073741824\naclEnable=%s\naclFilePath=%s/plain_acl.yml\n' \
        "$1" "$ns" "$work" "$1" "$2" "$work" > "$conf"
    $bin/mqbroker -c "$conf" > "$work/$1.out" 2> "$work/$1.err" &
    pids+=($!)
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

echo "# $(date -u +%FT%TZ) $(nproc) cores, ${SECONDS_PER_RUN}s per run, ${INFLIGHT} in flight, 1 KiB, ASYNC_FLUSH"
for r in $(seq "$RUNS"); do
    line=$($bin/mqbench producer -n "$ns" -t BenchAclOff -s 1024 -c "$INFLIGHT" --seconds "$SECONDS_PER_RUN")
    echo "aclEnable=false run $r: $line"
    echo "$line" | sed -n 's/.*msgs\/s=\([0-9]*\).*/\1/p' >> "$work/off.rates"
    line=$(ROCKETMQ_ACCESS_KEY=bench-producer ROCKETMQ_SECRET_KEY=$producer_secret \
        $bin/mqbench producer -n "$ns" -t BenchAclOn -s 1024 -c "$INFLIGHT" --seconds "$SECONDS_PER_RUN")
    echo "aclEnable=true  run $r: $line"
    echo "$line" | sed -n 's/.*msgs\/s=\([0-9]*\).*/\1/p' >> "$work/on.rates"
done
median() { sort -n "$1" | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
off=$(median "$work/off.rates")
on=$(median "$work/on.rates")
echo "median msgs/s: aclEnable=false $off, aclEnable=true $on, on/off=$(awk -v a="$off" -v b="$on" 'BEGIN {printf "%.3f", b/a}')"
