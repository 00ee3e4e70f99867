#!/bin/sh
# Runs INSIDE the VM (busybox sh). Proves the harness: pure cgroup v2, a child cgroup
# with limits, and a real container run by a dynamically linked runtime (runc from
# BIN_DIR; rsrun will be tested the same way).
#   integration/vm/run.sh DIR_WITH_RUNC integration/vm/selftest.sh
set -u
fails=0
ok()   { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails+1)); }
check() { # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then ok "$1 = $3"; else fail "$1: expected '$2', got '$3'"; fi
}

CG=/sys/fs/cgroup
# busybox stat has no name for cgroup2 (prints UNKNOWN), so also accept the magic number.
fstype=$(stat -fc %T $CG); magic=$(stat -fc %t $CG)
if [ "$fstype" = cgroup2fs ] || [ "$magic" = 63677270 ]; then
    ok "$CG is cgroup2 (%T=$fstype, magic=0x$magic)"
else
    fail "$CG is not cgroup2 (%T=$fstype, magic=0x$magic)"
fi
grep -q ' cgroup ' /proc/mounts && fail "a cgroup v1 hierarchy is mounted"
echo "cgroup.controllers: $(cat $CG/cgroup.controllers)"
for c in memory pids cpu cpuset; do
    grep -qw $c $CG/cgroup.controllers || fail "controller $c not available"
done

# ---- child cgroup with limits
echo "+memory +pids +cpu +cpuset" >$CG/cgroup.subtree_control || fail "enable subtree_control"
check "root subtree_control" "cpuset cpu memory pids" "$(cat $CG/cgroup.subtree_control)"
mkdir $CG/selftest
check "child controllers" "cpuset cpu memory pids" "$(cat $CG/selftest/cgroup.controllers)"
echo 67108864 >$CG/selftest/memory.max
echo 32 >$CG/selftest/pids.max
echo "50000 100000" >$CG/selftest/cpu.max
echo 0 >$CG/selftest/cpuset.cpus
sleep 300 &
pid=$!
echo $pid >$CG/selftest/cgroup.procs
check "memory.max" 67108864 "$(cat $CG/selftest/memory.max)"
check "pids.max" 32 "$(cat $CG/selftest/pids.max)"
check "cpu.max" "50000 100000" "$(cat $CG/selftest/cpu.max)"
check "cpuset.cpus.effective" 0 "$(cat $CG/selftest/cpuset.cpus.effective)"
check "/proc/$pid/cgroup" "0::/selftest" "$(cat /proc/$pid/cgroup)"
check "cgroup.procs" "$pid" "$(cat $CG/selftest/cgroup.procs)"
check "pids.current" 1 "$(cat $CG/selftest/pids.current)"
kill $pid; wait $pid 2>/dev/null
rmdir $CG/selftest || fail "rmdir child cgroup"

# ---- a real container with a dynamically linked runtime
RUNTIME=${RUNTIME:-runc}
if ! command -v $RUNTIME >/dev/null; then
    fail "$RUNTIME not in PATH (put it in BIN_DIR)"
else
    $RUNTIME --version | head -1
    B=/tmp/b
    mkdir -p $B/rootfs/bin $B/rootfs/proc $B/rootfs/sys $B/rootfs/dev
    cp /bin/busybox $B/rootfs/bin/busybox
    for a in sh cat; do ln -s busybox $B/rootfs/bin/$a; done
    cd $B
    $RUNTIME spec
    # terminal off; run `cat /sys/fs/cgroup/memory.max`; memory + pids limits
    sed -i \
        -e 's/"terminal": true/"terminal": false/' \
        -e '/"args": \[/,/\]/ s|"sh"|"cat", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max"|' \
        -e 's/"resources": {/"resources": { "memory": { "limit": 33554432 }, "pids": { "limit": 16 },/' \
        config.json
    grep -q '"limit": 33554432' config.json || fail "config.json edit"
    out=$($RUNTIME run selftest-ctr 2>&1)
    rc=$?
    echo "container output (rc=$rc):"; echo "$out" | sed 's/^/    /'
    check "container exit code" 0 "$rc"
    check "container memory.max + pids.max" "33554432
16" "$out"
    cd /
    # nothing left behind
    check "runtime state after run" "" "$($RUNTIME list -q 2>/dev/null)"
    left=$(find $CG -mindepth 1 -type d | grep -v '^$' || true)
    check "leftover cgroups" "" "$left"
fi

echo "selftest: $fails failure(s)"
[ $fails -eq 0 ]
