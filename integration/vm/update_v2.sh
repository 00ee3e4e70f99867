#!/bin/sh
# Runs INSIDE the VM (busybox sh, pure cgroup v2): `rsrun update` of a
# running container, read back from the host's view of its cgroup.
#   integration/vm/run.sh DIR_WITH_RSRUN integration/vm/update_v2.sh
# (integration/tests/cgroupv2.rs does this in `make test`.) Prints one
# "ok   - NAME = VALUE" or "FAIL - ..." line per check; exits non-zero on any FAIL.
. /files/checks.sh

D=/sys/fs/cgroup/rstest/v2upd

# ---- bundle: busybox rootfs + `rsrun spec` edited with sed; sleep 600,
# cgroup /rstest/v2upd, 128 MiB and 100 pids to start with.
B=/tmp/v2upd
make_bundle $B
sed -i -e 's/"terminal": true/"terminal": false/' \
    -e '/"args": \[/,/\]/ s|"sh"|"sleep", "600"|' \
    -e 's|"linux": {|"linux": { "cgroupsPath": "/rstest/v2upd",|' \
    -e 's/"type": "mount"/"type": "mount" }, { "type": "cgroup"/' \
    -e 's/"resources": {/"resources": { "memory": { "limit": 134217728 }, "pids": { "limit": 100 },/' \
    config.json
grep -q '"limit": 100' config.json || { echo "FAIL - config.json edit"; cat config.json; exit 1; }

$R run -d v2upd >/tmp/v2upd.log 2>&1
check "run -d exit code" 0 "$?"
cat /tmp/v2upd.log
check "memory.max before" 134217728 "$(cat $D/memory.max)"

# ---- 1. runc's flags
$R update --memory 64m --cpu-quota 20000 --cpu-period 100000 --pids-limit 7 v2upd
check "update flags exit code" 0 "$?"
check "memory.max" 67108864 "$(cat $D/memory.max)"
check "cpu.max" "20000 100000" "$(cat $D/cpu.max)"
check "pids.max" 7 "$(cat $D/pids.max)"

# ---- 2. --resources - (OCI swap is memory+swap; v2 swap.max is swap alone)
echo '{"memory":{"limit":33554432,"swap":67108864},"cpu":{"shares":1024}}' \
    | $R update --resources - v2upd
check "update --resources - exit code" 0 "$?"
check "memory.max after json" 33554432 "$(cat $D/memory.max)"
if [ -e $D/memory.swap.max ]; then
    check "memory.swap.max after json" 33554432 "$(cat $D/memory.swap.max)"
fi
check "cpu.weight after json" 39 "$(cat $D/cpu.weight)"
check "cpu.max kept" "20000 100000" "$(cat $D/cpu.max)"
check "pids.max kept" 7 "$(cat $D/pids.max)"
$R update --cpu-quota -1 v2upd
check "cpu.max unlimited" "max 100000" "$(cat $D/cpu.max)"

# ---- 3. bad values change nothing
err=$($R update --memory 16m --cpuset-cpus x v2upd 2>&1)
check "invalid cpus exit code" 1 "$?"
echo "    $err"
check "invalid cpus: memory.max unchanged" 33554432 "$(cat $D/memory.max)"
err=$($R update --memory 16m --cpuset-cpus 99 v2upd 2>&1)
check "refused cpus exit code" 1 "$?"
echo "    $err"
check "refused cpus: memory.max restored" 33554432 "$(cat $D/memory.max)"
$R update --cpu-rt-runtime 1000 v2upd >/dev/null 2>&1
check "realtime on v2 exit code" 1 "$?"

# ---- 4. the pids limit holds: init + sh + 5 sleeps = 7; the 6th sleep
# cannot be forked and busybox sh gives up (exit 2, nothing echoed)
out=$($R exec v2upd sh -c 'for i in $(seq 10); do sleep 600 >/dev/null 2>&1 & done; echo done' 2>&1)
check "fork loop exit code" 2 "$?"
echo "    $out"
check "fork loop hit the limit" "can't fork" "$(echo "$out" | grep -o "can't fork")"
check "pids.current after fork loop" 6 "$(cat $D/pids.current)"

$R delete -f v2upd
check "delete -f exit code" 0 "$?"
check "update after delete exit code" 1 "$($R update --memory 64m v2upd >/dev/null 2>&1; echo $?)"
check "leftover cgroups" "" "$(find /sys/fs/cgroup -mindepth 1 -type d)"

echo "update_v2: $fails failure(s)"
[ $fails -eq 0 ]
