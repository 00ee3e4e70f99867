#!/bin/sh
# Runs INSIDE the VM (busybox sh, pure cgroup v2): blockIO (io.weight, io.max on a
# brd ramdisk), hugepageLimits (hugetlb.<size>.max), memory swappiness /
# disableOOMKiller and network (no v2 equivalent: warned about, not an error), and
# checkBeforeUpdate on `rsrun update`, read back from the host's view of the cgroup.
#   RS_VM_MODULES="overlay brd" integration/vm/run.sh DIR_WITH_RSRUN integration/vm/controllers_v2.sh
# (integration/tests/cgroupv2.rs does this.) Prints one "ok   - NAME = VALUE",
# "skip - ..." or "FAIL - ..." line per check; exits non-zero on any FAIL.
. /files/checks.sh

D=/sys/fs/cgroup/rstest/v2ctl
echo "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"

# ---- a block device for io.max: the first disk in /sys/block (brd's ram0)
DEV=""
for b in /sys/block/*; do [ -r "$b/dev" ] && { DEV=$(cat "$b/dev"); break; }; done
echo "block device: ${DEV:-none}"
MAJ=${DEV%%:*}; MIN=${DEV##*:}
HP=""
[ -d /sys/kernel/mm/hugepages/hugepages-2048kB ] && grep -qw hugetlb /sys/fs/cgroup/cgroup.controllers && HP=2MB
echo "hugetlb 2MB: ${HP:-no}"

RES='"memory": { "swappiness": 10, "disableOOMKiller": true }, "network": { "classID": 42, "priorities": [ { "name": "lo", "priority": 1 } ] }, "blockIO": { "weight": 300'
[ -n "$DEV" ] && RES="$RES"', "throttleReadBpsDevice": [ { "major": '$MAJ', "minor": '$MIN', "rate": 1048576 } ], "throttleWriteIOPSDevice": [ { "major": '$MAJ', "minor": '$MIN', "rate": 77 } ]'
RES="$RES }"
[ -n "$HP" ] && RES="$RES"', "hugepageLimits": [ { "pageSize": "2MB", "limit": 4194304 } ]'

# ---- bundle: busybox rootfs + `rsrun spec` edited with sed; sleep 600
B=/tmp/v2ctl
make_bundle $B
cp config.json config.orig
sed -i -e 's/"terminal": true/"terminal": false/' \
    -e '/"args": \[/,/\]/ s|"sh"|"sleep", "600"|' \
    -e 's|"linux": {|"linux": { "cgroupsPath": "/rstest/v2ctl",|' \
    -e 's/"type": "mount"/"type": "mount" }, { "type": "cgroup"/' \
    -e "s/\"resources\": {/\"resources\": { $RES,/" \
    config.json
grep -q '"weight": 300' config.json || { echo "FAIL - config.json edit"; cat config.json; exit 1; }

$R run -d v2ctl >/tmp/v2ctl.log 2>&1
check "run -d exit code" 0 "$?"
cat /tmp/v2ctl.log
check "swappiness warned about" 1 "$(grep -c 'memory.swappiness' /tmp/v2ctl.log)"
check "network warned about" 1 "$(grep -c 'linux.resources.network' /tmp/v2ctl.log)"
if [ -e $D/io.bfq.weight ]; then
    check "io.bfq.weight" "default 300" "$(head -n1 $D/io.bfq.weight)"
elif [ -e $D/io.weight ]; then
    check "io.weight" "default 2930" "$(head -n1 $D/io.weight)"
else
    echo "skip - io.weight: no weight-based io policy in this kernel"
fi
if [ -n "$DEV" ]; then
    check "io.max" "$DEV rbps=1048576 wbps=max riops=max wiops=77" "$(grep "^$DEV " $D/io.max)"
else
    echo "skip - io.max: no block device in the VM"
fi
if [ -n "$HP" ]; then
    check "hugetlb.2MB.max" 4194304 "$(cat $D/hugetlb.2MB.max)"
else
    echo "skip - hugetlb: no 2MB pages or no hugetlb controller"
fi

# ---- checkBeforeUpdate: a limit at or below memory.current is refused, nothing changes
before=$(cat $D/memory.max)
echo '{"memory":{"limit":4096,"checkBeforeUpdate":true}}' | $R update --resources - v2ctl >/tmp/v2ctl.upd 2>&1
check "checkBeforeUpdate refusal exit code" 1 "$?"
cat /tmp/v2ctl.upd
check "checkBeforeUpdate names the field" 1 "$(grep -c 'linux.resources.memory.limit' /tmp/v2ctl.upd)"
check "memory.max unchanged" "$before" "$(cat $D/memory.max)"
echo '{"memory":{"limit":536870912,"checkBeforeUpdate":true}}' | $R update --resources - v2ctl
check "checkBeforeUpdate above usage exit code" 0 "$?"
check "memory.max updated" 536870912 "$(cat $D/memory.max)"
$R delete -f v2ctl
check "delete -f exit code" 0 "$?"

# ---- a bad value is refused before anything exists
sed -i 's/"weight": 300/"weight": 5/' config.json
err=$($R run -d v2bad 2>&1)
check "bad weight exit code" 1 "$?"
echo "    $err"
check "bad weight names the field" 1 "$(echo "$err" | grep -c 'linux.resources.blockIO.weight: 5 is out of range 10-1000')"
check "bad weight: no state" "" "$(ls /run/rstest)"
check "leftover cgroups" "" "$(find /sys/fs/cgroup -mindepth 1 -type d)"

echo "controllers_v2: $fails failure(s)"
[ $fails -eq 0 ]
