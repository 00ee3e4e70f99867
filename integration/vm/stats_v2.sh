#!/bin/sh
# Runs INSIDE the VM (busybox sh, pure cgroup v2): `rsrun events --stats` of a
# running container with memory, swap, cpu and pids limits, each figure
# compared with the container's cgroup v2 files read directly; the stream
# ends when the container stops; a stopped container is an error.
#   integration/vm/run.sh DIR_WITH_RSRUN integration/vm/stats_v2.sh
# (integration/tests/cgroupv2.rs does this in `make test`.) Prints one
# "ok   - NAME = VALUE" or "FAIL - ..." line per check; exits non-zero on any FAIL.
. /files/checks.sh
check_le() { # check_le NAME LOW VALUE HIGH: LOW <= VALUE <= HIGH, all numbers
    if [ -n "$3" ] && [ "$2" -le "$3" ] && [ "$3" -le "$4" ]; then ok "$1 in range"
    else fail "$1: expected $2 <= '$3' <= $4"; fi
}

MEM=67108864 SWAP=134217728 QUOTA=50000 PERIOD=100000 PIDS=20 SHM_MIB=16

# ---- bundle: busybox rootfs + `rsrun spec` edited with sed
B=/tmp/statsbundle
make_bundle $B
cp config.json spec.json

# A busy loop (CPU time, throttled by the quota), 16 MiB in /dev/shm (memory), then sleep.
ARGS="\"sh\", \"-c\", \"i=0; while [ \$i -lt 20000 ]; do i=\$((i+1)); done; \
dd if=/dev/zero of=/dev/shm/fill bs=1M count=$SHM_MIB 2>/dev/null; exec sleep 1000\""
sed -e 's/"terminal": true/"terminal": false/' \
    -e "/\"args\": \[/,/\]/ s|\"sh\"|$ARGS|" \
    -e 's|"linux": {|"linux": { "cgroupsPath": "/rstest/v2stats",|' \
    -e "s/\"resources\": {/\"resources\": { \"memory\": { \"limit\": $MEM, \"swap\": $SWAP }, \
\"cpu\": { \"quota\": $QUOTA, \"period\": $PERIOD }, \"pids\": { \"limit\": $PIDS },/" \
    spec.json >config.json
grep -q "\"limit\": $PIDS" config.json || { echo "FAIL - config.json edit"; cat config.json; exit 1; }

D=$CG/rstest/v2stats
$R create v2stats >/tmp/v2stats.log 2>&1
check "create exit code" 0 "$?"
$R start v2stats
check "start exit code" 0 "$?"
# Settled: the 16 MiB are in memory.stat's shmem and only `sleep` is left.
i=0
while [ $i -lt 600 ]; do
    shmem=$(sed -n 's/^shmem //p' $D/memory.stat 2>/dev/null)
    [ "${shmem:-0}" -ge $((SHM_MIB << 20)) ] && [ "$(cat $D/pids.current)" = 1 ] && break
    sleep 0.1; i=$((i+1))
done
check "container settled (shmem >= 16 MiB, 1 pid)" 1 "$(cat $D/pids.current)"

usec_before=$(sed -n 's/^usage_usec //p' $D/cpu.stat)
periods_before=$(sed -n 's/^nr_periods //p' $D/cpu.stat)
ev=$($R events --stats v2stats)
check "events --stats exit code" 0 "$?"
usec_after=$(sed -n 's/^usage_usec //p' $D/cpu.stat)
periods_after=$(sed -n 's/^nr_periods //p' $D/cpu.stat)
echo "event: $ev" | cut -c1-600
# Field extractors over the one-line JSON (our key order: runc's types.Stats).
j() { echo "$ev" | sed -n "s/$1/\1/p"; }
MEMOBJ='.*"memory":{"cache":[0-9]*,'
check "type and id" 1 "$(echo "$ev" | grep -c '^{"type":"stats","id":"v2stats","data":{')"
check "memory.usage.limit = memory.max" "$(cat $D/memory.max)" \
    "$(j "$MEMOBJ\"usage\":{\"limit\":\([0-9]*\).*")"
check "memory.usage.limit" "$MEM" "$(j "$MEMOBJ\"usage\":{\"limit\":\([0-9]*\).*")"
check "memory.cache = memory.stat file" "$(sed -n 's/^file //p' $D/memory.stat)" \
    "$(j '.*"memory":{"cache":\([0-9]*\).*')"
check "memory.raw.shmem = memory.stat shmem" "$(sed -n 's/^shmem //p' $D/memory.stat)" \
    "$(j '.*"raw":{[^}]*"shmem":\([0-9]*\).*')"
usage=$(j "$MEMOBJ\"usage\":{\"limit\":[0-9]*,\"usage\":\([0-9]*\).*")
check_le "memory.usage.usage (>= 16 MiB, <= limit)" $((SHM_MIB << 20)) "$usage" $MEM
peak=$(j "$MEMOBJ\"usage\":{[^}]*\"max\":\([0-9]*\).*")
check_le "memory.usage.max (memory.peak) >= usage" "${usage:-0}" "$peak" $MEM
check "memory.usage.failcnt = memory.events max" "$(sed -n 's/^max //p' $D/memory.events)" \
    "$(j "$MEMOBJ\"usage\":{[^}]*\"failcnt\":\([0-9]*\).*")"
# runc reports v2 swap as v1's memory+swap.
check "memory.swap.limit = swap.max + memory.max" \
    "$(( $(cat $D/memory.swap.max) + $(cat $D/memory.max) ))" \
    "$(j '.*"swap":{"limit":\([0-9]*\).*')"
check "memory.swap.limit" "$SWAP" "$(j '.*"swap":{"limit":\([0-9]*\).*')"
check "pids.current = pids.current file" "$(cat $D/pids.current)" \
    "$(j '.*"pids":{"current":\([0-9]*\).*')"
check "pids.limit = pids.max" "$(cat $D/pids.max)" "$(j '.*"pids":{[^}]*"limit":\([0-9]*\).*')"
check "pids.limit" "$PIDS" "$(j '.*"pids":{[^}]*"limit":\([0-9]*\).*')"
total=$(j '.*"cpu":{"usage":{"total":\([0-9]*\).*')
check_le "cpu.usage.total (ns) between two reads of usage_usec" \
    $((usec_before * 1000)) "$total" $((usec_after * 1000))
check "cpu.usage.total > 0" yes "$([ "${total:-0}" -gt 0 ] && echo yes || echo no)"
check "cpu.usage.user = user_usec * 1000" "$(( $(sed -n 's/^user_usec //p' $D/cpu.stat) * 1000 ))" \
    "$(j '.*"cpu":{"usage":{[^}]*"user":\([0-9]*\).*')"
check_le "cpu.throttling.periods between two reads of nr_periods" "$periods_before" \
    "$(j '.*"throttling":{"periods":\([0-9]*\).*')" "$periods_after"
check "cpu.throttling.throttledPeriods > 0 (50% quota)" yes \
    "$([ "$(j '.*"throttledPeriods":\([0-9]*\).*')" -gt 0 ] && echo yes || echo no)"
check "no per-cpu figures on v2" "" "$(echo "$ev" | grep -o '"cpu":{"usage":{[^}]*"percpu')"

# ---- the stream: samples every 200ms until the container stops, then exit 0
$R events --interval 200ms v2stats >/tmp/v2stream.out 2>&1 &
epid=$!
sleep 1
$R kill v2stats KILL
i=0
while kill -0 $epid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
kill -0 $epid 2>/dev/null && { fail "events still running after the container stopped"; kill $epid; }
wait $epid
check "events stream exit code" 0 "$?"
n=$(grep -c '^{"type":"stats","id":"v2stats"' /tmp/v2stream.out)
check "stream printed samples" yes "$([ "$n" -ge 2 ] && echo yes || echo "no ($n)")"
err=$($R events --stats v2stats 2>&1)
check "stopped: events --stats exit code" 1 "$?"
check "stopped: error" "rsrun: container with id v2stats is not running" "$err"

$R delete -f v2stats
check "delete -f exit code" 0 "$?"

# ---- an OOM kill (a child outgrowing memory.max; init lives on) is streamed
# as {"type":"oom"} (memory.events oom_kill, through inotify)
HOG="\"sh\", \"-c\", \"sleep 1; dd if=/dev/zero of=/dev/null bs=256M count=1; exec sleep 1000\""
sed -e 's/"terminal": true/"terminal": false/' \
    -e "/\"args\": \[/,/\]/ s|\"sh\"|$HOG|" \
    -e 's|"linux": {|"linux": { "cgroupsPath": "/rstest/v2oom",|' \
    -e "s/\"resources\": {/\"resources\": { \"memory\": { \"limit\": 33554432, \"swap\": 33554432 },/" \
    spec.json >config.json
$R create v2oom >/tmp/v2oom.log 2>&1
check "oom: create exit code" 0 "$?"
$R events --interval 60s v2oom >/tmp/v2oom.out 2>&1 &
epid=$!
$R start v2oom
i=0
while ! grep -q '"oom"' /tmp/v2oom.out && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
check "oom event" '{"type":"oom","id":"v2oom"}' "$(grep '"oom"' /tmp/v2oom.out)"
check "oom_kill in memory.events" 1 "$(sed -n 's/^oom_kill //p' $CG/rstest/v2oom/memory.events)"
$R kill v2oom KILL
i=0
while kill -0 $epid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
kill -0 $epid 2>/dev/null && { fail "oom: events still running after the container stopped"; kill $epid; }
$R delete -f v2oom
check "leftover cgroups" "" "$(find $CG -mindepth 1 -type d)"

echo "stats_v2: $fails failure(s)"
[ $fails -eq 0 ]
