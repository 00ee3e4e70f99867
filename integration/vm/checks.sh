# Sourced by the VM test scripts (integration/tests/cgroupv2.rs ships it as
# /files/checks.sh): the check helpers, rsrun with the test state root, and
# a busybox bundle maker. Runs under busybox sh inside the VM.
set -u
fails=0
ok()   { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails+1)); }
check() { # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then ok "$1 = $3"; else fail "$1: expected '$2', got '$3'"; fi
}

CG=/sys/fs/cgroup
R="rsrun --root /run/rstest"
command -v rsrun >/dev/null || { echo "FAIL - rsrun not in PATH (put it in BIN_DIR)"; exit 1; }

# make_bundle DIR: a busybox rootfs in DIR/rootfs and `rsrun spec`'s
# config.json in DIR, which becomes the working directory.
make_bundle() {
    mkdir -p "$1"/rootfs/bin "$1"/rootfs/proc "$1"/rootfs/sys "$1"/rootfs/dev "$1"/rootfs/tmp
    cp /bin/busybox "$1"/rootfs/bin/busybox
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$1"/rootfs/bin/$a; done
    cd "$1" || exit 1
    rsrun spec || { echo "FAIL - rsrun spec"; exit 1; }
}
