#!/bin/sh
# Runs INSIDE the VM (busybox sh, pure cgroup v2): linux.resources.devices
# enforced by rsrun's eBPF device filter. Containers get CAP_MKNOD so they can
# make nodes the filter must refuse to open: with the default rules mknod of
# any node is allowed (runc's "c *:* m", "b *:* m") but opening b 8:0 or
# c 1:11 (kmsg) is EPERM, while /dev/null and /dev/zero work. Extra rules: a
# later deny overrides an earlier allow per access bit; wildcards. The filter
# covers processes that join later (exec). CAP_SYSLOG too: without it opening
# /dev/kmsg is EPERM whatever the filter says (dmesg_restrict).
#   integration/vm/run.sh DIR_WITH_RSRUN integration/vm/devices_v2.sh
# (integration/tests/cgroupv2.rs does this.) Prints one "ok   - NAME = VALUE"
# or "FAIL - ..." line per check; exits non-zero on any FAIL.
. /files/checks.sh

EPERM="Operation not permitted"

# ---- bundle: busybox rootfs + `rsrun spec` with CAP_MKNOD and test scripts
B=/tmp/devbundle
make_bundle $B
cp config.json spec.json

# e CMD...: "ok" when CMD succeeds, else the end of its error message.
cat >rootfs/lib.sh <<'EOF'
e() { out=$("$@" 2>&1 >/dev/null) && echo ok || echo "${out##*: }"; }
EOF
cat >rootfs/defaults.sh <<'EOF'
. /lib.sh
echo zero=$(head -c4 /dev/zero | wc -c)
echo null-write=$(e sh -c 'echo x >/dev/null')
echo null-read=$(e cat /dev/null)
echo mknod-b=$(e mknod /dev/sda b 8 0)
echo read-b=$(e head -c1 /dev/sda)
echo mknod-c=$(e mknod /dev/kmsg2 c 1 11)
echo read-c=$(e dd if=/dev/kmsg2 of=/dev/null bs=8192 count=1)
EOF
cat >rootfs/rules.sh <<'EOF'
. /lib.sh
mknod /dev/kmsg2 c 1 11; mknod /dev/sda b 8 0; mknod /dev/sdb1 b 8 17
echo read-c=$(e dd if=/dev/kmsg2 of=/dev/null bs=8192 count=1)
echo write-c=$(e sh -c 'echo x >/dev/kmsg2')
echo read-b=$(e head -c1 /dev/sda)
echo read-b2=$(e head -c1 /dev/sdb1)
echo write-b=$(e sh -c 'echo x >/dev/sda')
echo null-read=$(e cat /dev/null)
EOF

# make_config ID ARGS [RULES]: cgroupsPath /rstest/ID, CAP_MKNOD/SYSLOG, RULES (", {...}"
# JSON objects) appended after the spec's deny-all device rule.
make_config() {
    sed -e 's/"terminal": true/"terminal": false/' \
        -e 's/"CAP_KILL",/"CAP_KILL", "CAP_MKNOD", "CAP_SYSLOG",/' \
        -e "/\"args\": \[/,/\]/ s|\"sh\"|$2|" \
        -e "s|\"linux\": {|\"linux\": { \"cgroupsPath\": \"/rstest/$1\",|" \
        -e "/\"devices\": \[/,/\]/ s|^\([[:space:]]*\)}\$|\1}${3:-}|" \
        spec.json >config.json
    grep -q CAP_MKNOD config.json && grep -q "/rstest/$1" config.json \
        || { echo "FAIL - config.json edit for $1"; cat config.json; exit 1; }
}
val() { echo "$out" | sed -n "s/^$1=//p"; }

# ---- 1. default rules: the standard nodes work, others cannot be opened
make_config devdef '"sh", "/defaults.sh"'
out=$($R run devdef 2>&1)
check "defaults: run exit code" 0 "$?"
echo "$out" | sed 's/^/    /'
check "defaults: /dev/zero read" 4 "$(val zero)"
check "defaults: /dev/null write" ok "$(val null-write)"
check "defaults: /dev/null read" ok "$(val null-read)"
check "defaults: mknod b 8:0" ok "$(val mknod-b)"
check "defaults: read b 8:0" "$EPERM" "$(val read-b)"
check "defaults: mknod c 1:11" ok "$(val mknod-c)"
check "defaults: read c 1:11" "$EPERM" "$(val read-c)"

# ---- 2. rules: allow c 1:11 rw then deny c 1:11 w; allow b 8:* r
RULES=', {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw"}'
RULES="$RULES"', {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "w"}'
RULES="$RULES"', {"allow": true, "type": "b", "major": 8, "access": "r"}'
make_config devrules '"sh", "/rules.sh"' "$RULES"
grep -q '"minor": 11, "access": "w"' config.json || { echo "FAIL - rules not in config.json"; cat config.json; }
out=$($R run devrules 2>&1)
check "rules: run exit code" 0 "$?"
echo "$out" | sed 's/^/    /'
check "rules: read c 1:11 (allowed)" ok "$(val read-c)"
check "rules: write c 1:11 (later deny)" "$EPERM" "$(val write-c)"
# No disk in the VM: the filter lets the open through and the driver says ENXIO.
check "rules: read b 8:0 (b 8:* r)" "No such device or address" "$(val read-b)"
check "rules: read b 8:17 (b 8:* r)" "No such device or address" "$(val read-b2)"
check "rules: write b 8:0 (r only)" "$EPERM" "$(val write-b)"
check "rules: /dev/null still works" ok "$(val null-read)"

# ---- 3. a process that joins later (exec) is filtered too
make_config devexec '"sh", "-c", "mknod /dev/sda b 8 0 \&\& exec sleep 1000"'
$R run -d devexec >/tmp/devexec.log 2>&1 </dev/null
check "exec: run -d exit code" 0 "$?"
check "exec: /dev/zero" 4 "$($R exec devexec sh -c 'head -c4 /dev/zero | wc -c' 2>&1)"
msg=$($R exec devexec head -c1 /dev/sda 2>&1)
check "exec: read b 8:0" "$EPERM" "${msg##*: }"
$R delete -f devexec
check "exec: delete -f exit code" 0 "$?"

check "leftover cgroups" "" "$(find $CG -mindepth 1 -type d)"
echo "devices_v2: $fails failure(s)"
[ $fails -eq 0 ]
