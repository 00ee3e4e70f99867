#!/bin/bash
# Boot Debian's kernel under qemu (TCG) with a pure cgroup v2 hierarchy and run a
# test script inside it.
#
#   run.sh BIN_DIR TEST_SCRIPT [EXTRA_FILES...]
#
# BIN_DIR      every regular file in it lands in /usr/local/bin in the VM (first on
#              PATH); shared libraries reported by ldd plus the loader come along.
# TEST_SCRIPT  copied to /test.sh and run with busybox sh as root; its exit code
#              becomes run.sh's exit code.
# EXTRA_FILES  SRC or SRC:DEST (file or directory). Default DEST is /files/<name>.
#              Dynamically linked ELF files get their libraries copied too.
#
# Environment: RS_VM_TIMEOUT (s, default 240), RS_VM_CACHE (default /var/cache/rs-vm,
# filled by setup.sh), RS_VM_MODULES (kernel modules to insmod, default "overlay";
# dependencies are resolved), RS_VM_APPEND (extra kernel command line),
# RS_VM_MEM (MiB, default 1024), RS_VM_SMP (default 2), RS_VM_LOG (copy serial log here),
# RS_VM_PVH (1: boot the extracted vmlinux via PVH if present; 0: boot the bzImage).
set -euo pipefail

since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
die() { echo "run.sh: $*" >&2; exit 2; }

[ $# -ge 2 ] || die "usage: $0 BIN_DIR TEST_SCRIPT [EXTRA_FILES...]"
BIN_DIR=$1; TEST_SCRIPT=$2; shift 2
[ -d "$BIN_DIR" ] || die "BIN_DIR '$BIN_DIR' is not a directory"
[ -f "$TEST_SCRIPT" ] || die "TEST_SCRIPT '$TEST_SCRIPT' not found"

CACHE=${RS_VM_CACHE:-/var/cache/rs-vm}
TIMEOUT=${RS_VM_TIMEOUT:-240}
MODULES=${RS_VM_MODULES-overlay}
KROOT=$CACHE/current/root
KERNEL=$(ls "$KROOT"/boot/vmlinuz-* 2>/dev/null | head -1 || true)
[ -n "$KERNEL" ] || die "no kernel in $KROOT; run integration/vm/setup.sh first"
KVER=${KERNEL##*/vmlinuz-}
# Prefer the uncompressed vmlinux setup.sh extracted: PVH direct boot, ~4 s faster.
if [ "${RS_VM_PVH:-1}" = 1 ] && [ -f "$CACHE/current/vmlinux" ]; then KERNEL=$CACHE/current/vmlinux; fi
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1 \
    || die "$BUSYBOX is not busybox-static; run integration/vm/setup.sh"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing; run setup.sh"
command -v cpio >/dev/null || die "cpio missing; run setup.sh"

T=$(mktemp -d /tmp/rs-vm.XXXXXX)
QPID=
cleanup() {
    if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then kill "$QPID" 2>/dev/null || true; fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
R=$T/root
t0=$(date +%s.%N)

# ---------------------------------------------------------------- initramfs
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,lib,lib64,etc,proc,sys,dev,tmp,run,root,files,newroot,lib/modules}
cp "$BUSYBOX" "$R/bin/busybox"
for applet in $("$BUSYBOX" --list-full); do
    [ -e "$R/$applet" ] || ln -s /bin/busybox "$R/$applet"
done
mknod -m 600 "$R/dev/console" c 5 1
mknod -m 666 "$R/dev/null" c 1 3
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
echo 'root:x:0:' >"$R/etc/group"

# copy the libraries (and the loader) a dynamically linked ELF needs
copy_libs() {
    local f=$1 lib
    head -c4 "$f" 2>/dev/null | grep -q 'ELF' || return 0
    ldd "$f" >/dev/null 2>&1 || return 0   # static or not an executable
    for lib in $(ldd "$f" | grep -o '/[^ ]*'); do
        [ -e "$R$lib" ] && continue
        mkdir -p "$R$(dirname "$lib")"
        cp -L "$lib" "$R$lib"
    done
}

n=0
for f in "$BIN_DIR"/*; do
    [ -f "$f" ] || continue
    cp -L "$f" "$R/usr/local/bin/"; chmod +x "$R/usr/local/bin/${f##*/}"
    copy_libs "$f"; n=$((n+1))
done
[ "$n" -gt 0 ] || echo "run.sh: warning: no files in $BIN_DIR" >&2

for spec in "$@"; do
    src=${spec%%:*}; dest=/files/${src##*/}
    [ "$spec" != "$src" ] && dest=${spec#*:}
    [ -e "$src" ] || die "extra file '$src' not found"
    mkdir -p "$R$(dirname "$dest")"
    cp -aL "$src" "$R$dest"
    if [ -d "$src" ]; then
        while IFS= read -r -d '' g; do copy_libs "$g"; done < <(find "$src" -type f -print0)
    else
        copy_libs "$src"
    fi
done

cp "$TEST_SCRIPT" "$R/test.sh"

# kernel modules (with dependencies from each module's .modinfo)
declare -A seen=()
add_module() {
    local m=${1//-/_} ko dep
    [ -n "${seen[$m]:-}" ] && return 0
    seen[$m]=1
    ko=$(find "$KROOT/lib/modules/$KVER/kernel" -name "$m.ko" -o -name "${1//_/-}.ko" | head -1)
    [ -n "$ko" ] || die "kernel module '$1' not found in $KVER"
    for dep in $(tr '\0' '\n' <"$ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
        add_module "$dep"
    done
    cp "$ko" "$R/lib/modules/"
    echo "${ko##*/}" >>"$R/lib/modules/load-order"
}
for m in $MODULES; do add_module "$m"; done

cat >"$R/init" <<'INIT'
#!/bin/sh
export PATH=/usr/local/bin:/usr/local/sbin:/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
if [ "$1" != stage2 ]; then
    # The initramfs root cannot be pivot_root'ed away from, which container runtimes
    # need: copy everything onto a real tmpfs and switch_root to it.
    mount -t tmpfs -o mode=755 tmpfs /newroot
    for f in /* /.[!.]*; do
        case $f in /newroot|/proc|/sys|/dev|'/.[!.]*') ;; *) cp -a "$f" /newroot/ ;; esac
    done
    mkdir -p /newroot/proc /newroot/sys /newroot/dev
    exec switch_root /newroot /init stage2
fi
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
[ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t mqueue mqueue /dev/mqueue
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
ln -sf /proc/self/fd /dev/fd
hostname vmtest
ip link set lo up 2>/dev/null
if [ -f /lib/modules/load-order ]; then
    while read -r m; do insmod "/lib/modules/$m" || echo "init: insmod $m failed"; done </lib/modules/load-order
fi
echo "VMTEST-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)s kernel=$(uname -r)"
cd /
sh /test.sh
rc=$?
sync
echo
echo "VMTEST-EXIT=$rc uptime=$(cut -d' ' -f1 /proc/uptime)s"
poweroff -f
sleep 5
INIT
chmod +x "$R/init" "$R/test.sh"

(cd "$R" && find . | cpio -o -H newc -R 0:0 --quiet) >"$T/initrd.cpio"
t1=$(date +%s.%N)
echo "run.sh: initramfs $(du -h "$T/initrd.cpio" | cut -f1) built in $(since "$t0" "$t1")s; booting $KVER (TCG, timeout ${TIMEOUT}s)" >&2

# ---------------------------------------------------------------- boot
LOG=$T/serial.log
mkfifo "$T/fifo"
tr -d '\r' <"$T/fifo" | tee "$LOG" &
TPID=$!
set +e
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
    -accel tcg -M pc -cpu max -smp "${RS_VM_SMP:-2}" -m "${RS_VM_MEM:-1024}" \
    -nodefaults -no-user-config -display none -monitor none -nic none \
    -serial stdio -no-reboot \
    -kernel "$KERNEL" -initrd "$T/initrd.cpio" \
    -append "console=ttyS0 quiet panic=-1 rdinit=/init cgroup_no_v1=all mitigations=off ${RS_VM_APPEND:-}" \
    </dev/null >"$T/fifo" 2>&1 &
QPID=$!
wait "$QPID"
qrc=$?
QPID=
wait "$TPID"
set -e
t2=$(date +%s.%N)
[ -n "${RS_VM_LOG:-}" ] && cp "$LOG" "$RS_VM_LOG"

elapsed=$(since "$t0" "$t2")
marker=$(grep -a -o 'VMTEST-EXIT=[0-9]*' "$LOG" | tail -1 || true)
if [ -z "$marker" ]; then
    if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
        echo "run.sh: FAIL: VM timed out after ${TIMEOUT}s without an exit marker" >&2
    else
        echo "run.sh: FAIL: VM stopped (qemu exit $qrc) without printing VMTEST-EXIT" >&2
    fi
    exit 3
fi
rc=${marker#VMTEST-EXIT=}
echo "run.sh: test exit code $rc, total ${elapsed}s" >&2
exit "$rc"
