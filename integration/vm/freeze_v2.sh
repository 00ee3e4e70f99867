#!/bin/sh
# Runs INSIDE the VM (busybox sh, pure cgroup v2): rsrun pause/resume through
# cgroup.freeze. A counter loop in the container writes /tmp/c (root made
# writable); it must not advance while paused and must advance after resume.
# Then a paused container is killed (SIGKILL works on a frozen v2 task) and
# deleted, and another is deleted with -f; no cgroup may be left.
#   integration/vm/run.sh DIR_WITH_RSRUN integration/vm/freeze_v2.sh
# (integration/tests/cgroupv2.rs does this in `make test`.) Prints one
# "ok   - NAME = VALUE" or "FAIL - ..." line per check; exits non-zero on any FAIL.
. /files/checks.sh

# ---- bundle: busybox rootfs + `rsrun spec` with a writable root and the counter loop
B=/tmp/fzbundle
make_bundle $B
cp config.json spec.json
COUNTER="\"sh\", \"-c\", \"i=0; while true; do i=\$((i+1)); echo \$i > /tmp/c; done\""

# make_config ID: cgroupsPath /rstest/ID, writable root, the counter loop.
make_config() {
    sed -e 's/"terminal": true/"terminal": false/' \
        -e 's/"readonly": true/"readonly": false/' \
        -e "/\"args\": \[/,/\]/ s|\"sh\"|$COUNTER|" \
        -e "s|\"linux\": {|\"linux\": { \"cgroupsPath\": \"/rstest/$1\",|" \
        spec.json >config.json
    grep -q 'while true' config.json && grep -q '"readonly": false' config.json \
        || { echo "FAIL - config.json edit for $1"; cat config.json; exit 1; }
}
status() { $R state "$1" 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p'; }
counter() { cat $B/rootfs/tmp/c 2>/dev/null; }
frozen_event() { sed -n 's/^frozen //p' "$CG/rstest/$1/cgroup.events" 2>&1; }
# advanced FROM: whether the counter passes FROM within ~10 s.
advanced() {
    n=0
    while [ $n -lt 100 ]; do
        c=$(counter)
        [ -n "$c" ] && [ "$c" -gt "$1" ] && { echo yes; return; }
        sleep 0.1; n=$((n+1))
    done
    echo "no (at '$c')"
}

# ---- 1. pause / resume of a running counter
make_config fzrun
rm -f $B/rootfs/tmp/c
$R run -d fzrun >/tmp/fzrun.log 2>&1 </dev/null
check "run -d exit code" 0 "$?"
cat /tmp/fzrun.log
check "counter runs" yes "$(advanced 0)"
check "cgroup.freeze before pause" 0 "$(cat $CG/rstest/fzrun/cgroup.freeze 2>&1)"
$R pause fzrun
check "pause exit code" 0 "$?"
check "status after pause" paused "$(status fzrun)"
check "list after pause" paused "$($R list | sed -n 's/^fzrun *[0-9]* *\([a-z]*\).*/\1/p')"
check "cgroup.freeze after pause" 1 "$(cat $CG/rstest/fzrun/cgroup.freeze 2>&1)"
check "cgroup.events frozen after pause" 1 "$(frozen_event fzrun)"
# (A freeze can land between echo's truncation and its write: empty is a value too.)
c1=$(counter); sleep 1; c2=$(counter)
if [ -f $B/rootfs/tmp/c ] && [ "$c1" = "$c2" ]; then ok "counter still while paused = $c1"; else fail "counter moved while paused: '$c1' -> '$c2'"; fi
err=$($R pause fzrun 2>&1); rc=$?
check "second pause exit code" 1 "$rc"
check "second pause message" "rsrun: container not running" "$err"
$R resume fzrun
check "resume exit code" 0 "$?"
check "status after resume" running "$(status fzrun)"
check "cgroup.freeze after resume" 0 "$(cat $CG/rstest/fzrun/cgroup.freeze 2>&1)"
check "cgroup.events frozen after resume" 0 "$(frozen_event fzrun)"
check "counter advances after resume" yes "$(advanced "${c2:-0}")"
err=$($R resume fzrun 2>&1); rc=$?
check "second resume exit code" 1 "$rc"
check "second resume message" "rsrun: container not paused" "$err"

# ---- 2. kill of a paused container, then delete
$R pause fzrun
check "pause again exit code" 0 "$?"
$R kill fzrun KILL
check "kill of paused exit code" 0 "$?"
n=0; while [ "$(status fzrun)" != stopped ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done
check "status after kill" stopped "$(status fzrun)"
$R delete fzrun
check "delete exit code" 0 "$?"
check "delete: cgroup left" "" "$(ls -d $CG/rstest/fzrun 2>/dev/null)"

# ---- 3. delete -f of a paused container
make_config fzdel
rm -f $B/rootfs/tmp/c
$R run -d fzdel >/tmp/fzdel.log 2>&1 </dev/null
check "run -d (2) exit code" 0 "$?"
check "counter (2) runs" yes "$(advanced 0)"
$R pause fzdel
check "pause (2) exit code" 0 "$?"
check "status (2) after pause" paused "$(status fzdel)"
$R delete -f fzdel
check "delete -f of paused exit code" 0 "$?"
check "list after delete -f" "" "$($R list -q)"
check "delete -f: cgroup left" "" "$(ls -d $CG/rstest/fzdel 2>/dev/null)"
check "leftover cgroups" "" "$(find $CG -mindepth 1 -type d)"

echo "freeze_v2: $fails failure(s)"
[ $fails -eq 0 ]
