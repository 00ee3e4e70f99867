#!/bin/sh
# Runs INSIDE the VM (busybox sh, pure cgroup v2): rsrun's cgroup v2 limits
# read back from inside containers, and create/list/start/exec/delete.
#   integration/vm/run.sh DIR_WITH_RSRUN integration/vm/rsrun_v2.sh
# (integration/tests/cgroupv2.rs does this in `make test`.) Prints one
# "ok   - NAME = VALUE" or "FAIL - ..." line per check; exits non-zero on any FAIL.
. /files/checks.sh

# The limits (OCI values) and what cgroup v2 must show for them.
MEM=67108864 RESERVE=33554432 SWAP=134217728 SHARES=1024 QUOTA=50000 PERIOD=100000 PIDS=20
WEIGHT=$((1 + ((SHARES - 2) * 9999) / 262142))   # runc's shares -> cpu.weight
SWAP_MAX=$((SWAP - MEM))                           # OCI swap is memory+swap
CPU=$(($(nproc) - 1))                               # the last CPU

# ---- bundle: busybox rootfs + `rsrun spec` edited with sed
B=/tmp/v2bundle
make_bundle $B
cp config.json spec.json

# make_config ID ARGS: cgroupsPath /rstest/ID, a cgroup namespace, the limits above.
make_config() {
    sed -e 's/"terminal": true/"terminal": false/' \
        -e "/\"args\": \[/,/\]/ s|\"sh\"|$2|" \
        -e "s|\"linux\": {|\"linux\": { \"cgroupsPath\": \"/rstest/$1\",|" \
        -e 's/"type": "mount"/"type": "mount" }, { "type": "cgroup"/' \
        -e "s/\"resources\": {/\"resources\": { \"memory\": { \"limit\": $MEM, \"reservation\": $RESERVE, \"swap\": $SWAP }, \
\"cpu\": { \"shares\": $SHARES, \"quota\": $QUOTA, \"period\": $PERIOD, \"cpus\": \"$CPU\" }, \"pids\": { \"limit\": $PIDS },/" \
        spec.json >config.json
    grep -q "\"limit\": $PIDS" config.json && grep -q '"type": "cgroup"' config.json \
        || { echo "FAIL - config.json edit for $1"; cat config.json; exit 1; }
}

# ---- 1. limits read back inside a container (its cgroup is the root of its cgroupns)
FILES="memory.max memory.low memory.swap.max cpu.weight cpu.max cpuset.cpus pids.max"
make_config v2run "\"sh\", \"-c\", \"for f in $FILES; do echo \$f=\$(cat /sys/fs/cgroup/\$f); done; echo cgroup=\$(cat /proc/self/cgroup)\""
out=$($R run v2run 2>&1)
rc=$?
echo "container output (rc=$rc):"; echo "$out" | sed 's/^/    /'
check "run exit code" 0 "$rc"
val() { echo "$out" | sed -n "s/^$1=//p"; }
check memory.max "$MEM" "$(val memory.max)"
check memory.low "$RESERVE" "$(val memory.low)"
check memory.swap.max "$SWAP_MAX" "$(val memory.swap.max)"
check cpu.weight "$WEIGHT" "$(val cpu.weight)"
check cpu.max "$QUOTA $PERIOD" "$(val cpu.max)"
check cpuset.cpus "$CPU" "$(val cpuset.cpus)"
check pids.max "$PIDS" "$(val pids.max)"
check "/proc/self/cgroup in cgroupns" "0::/" "$(val cgroup)"
check "run: cgroup after exit" "" "$(ls -d $CG/rstest/v2run 2>/dev/null)"

# ---- 2. lifecycle: create, list, start, exec, delete
status() { $R state v2life 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p'; }
make_config v2life '"sleep", "60"'
rsrun --root /run/rstest --debug --log /tmp/v2life-debug.log create v2life >/tmp/v2life.log 2>&1
check "create exit code" 0 "$?"
cat /tmp/v2life.log
check "status after create" created "$(status)"
check "list -q" v2life "$($R list -q)"
pid=$($R state v2life | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
check "init in the container's cgroup" "0::/rstest/v2life" "$(cat /proc/$pid/cgroup 2>&1)"
check "host memory.max" "$MEM" "$(cat $CG/rstest/v2life/memory.max 2>&1)"
check "host pids.max" "$PIDS" "$(cat $CG/rstest/v2life/pids.max 2>&1)"
check "stage 1 born in its cgroup" 1 "$(grep -c 'born in its cgroup' /tmp/v2life-debug.log)"
$R start v2life
check "start exit code" 0 "$?"
check "status after start" running "$(status)"
check "exec reads its pids.max" "$PIDS" "$($R exec v2life cat /sys/fs/cgroup/pids.max 2>&1)"
$R delete -f v2life
check "delete -f exit code" 0 "$?"
check "list after delete" "" "$($R list -q)"
check "delete: cgroup left" "" "$(ls -d $CG/rstest/v2life 2>/dev/null)"
check "leftover cgroups" "" "$(find $CG -mindepth 1 -type d)"

# ---- 3. kill --all through cgroup.kill: every process, background ones too
make_config v2all '"sh", "-c", "sleep 1000 \& sleep 1000 \& exec sleep 1000"'
$R run -d v2all >/tmp/v2all.log 2>&1 </dev/null
check "run -d for kill --all" 0 "$?"
for i in 1 2 3 4 5 6 7 8 9 10; do [ "$(wc -l < $CG/rstest/v2all/cgroup.procs)" -ge 3 ] && break; sleep 0.2; done
check "processes before kill --all" 3 "$(wc -l < $CG/rstest/v2all/cgroup.procs)"
rsrun --root /run/rstest --debug --log /tmp/v2all-debug.log kill --all v2all KILL
check "kill --all exit code" 0 "$?"
check "kill --all used cgroup.kill" 1 "$(grep -c 'cgroup.kill' /tmp/v2all-debug.log)"
for i in 1 2 3 4 5 6 7 8 9 10; do [ "$(grep populated $CG/rstest/v2all/cgroup.events)" = "populated 0" ] && break; sleep 0.2; done
check "populated after kill --all" "populated 0" "$(grep populated $CG/rstest/v2all/cgroup.events)"
$R delete -f v2all
check "leftover cgroups (2)" "" "$(find $CG -mindepth 1 -type d)"

echo "rsrun_v2: $fails failure(s)"
[ $fails -eq 0 ]
