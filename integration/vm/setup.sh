#!/bin/bash
# Install what integration/vm/run.sh needs on the host (Debian bookworm), and
# download + extract Debian's kernel into a cache dir WITHOUT installing it.
# Idempotent; safe to re-run.
set -euo pipefail

CACHE="${RS_VM_CACHE:-/var/cache/rs-vm}"
export DEBIAN_FRONTEND=noninteractive

[ "$(id -u)" = 0 ] || { echo "setup.sh: must run as root" >&2; exit 1; }

# qemu-system-x86 must match the backports qemu-utils already on this machine,
# so add bookworm-backports on the same mirror as the main suite.
BPO=/etc/apt/sources.list.d/bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    cat >"$BPO" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

apt-get update -qq
need=()
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
dpkg -s cpio >/dev/null 2>&1 || need+=(cpio)
dpkg -s xz-utils >/dev/null 2>&1 || need+=(xz-utils)
quiet() { "$@" >/dev/null 2> >(grep -v '^debconf:' >&2); }
[ ${#need[@]} -eq 0 ] || quiet apt-get install -y -qq --no-install-recommends "${need[@]}"
if ! command -v qemu-system-x86_64 >/dev/null; then
    # from backports, like the qemu-utils already installed here
    quiet apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86
fi

# Kernel: resolve linux-image-<ver>-amd64 from the metapackage, download the .deb
# into the cache and extract it there (nothing lands in /boot, no hooks run).
pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$pkg" ] || { echo "setup.sh: cannot resolve linux-image-*-amd64" >&2; exit 1; }
kdir="$CACHE/$pkg"
if [ ! -e "$kdir/.done" ]; then
    rm -rf "$kdir"; mkdir -p "$kdir/deb"
    chown _apt "$kdir/deb" 2>/dev/null || true   # apt downloads as _apt
    (cd "$kdir/deb" && apt-get download -qq "$pkg" 2>&1 | grep -v '^debconf:' || true)
    ls "$kdir"/deb/*.deb >/dev/null
    dpkg-deb -x "$kdir"/deb/*.deb "$kdir/root"
    rm -rf "$kdir/deb"
    # Uncompressed ELF vmlinux (has a PVH entry note): qemu boots it directly and
    # skips ~4 s of xz decompression under TCG. The payload starts at "\xfd7zXZ".
    vmlinuz=$(ls "$kdir"/root/boot/vmlinuz-*)
    off=$(grep -obUa '7zXZ' "$vmlinuz" | head -1 | cut -d: -f1)
    if [ -n "$off" ] && xz -dc --single-stream <(tail -c +"$off" "$vmlinuz") >"$kdir/vmlinux" 2>/dev/null \
        && [ "$(head -c4 "$kdir/vmlinux" | tail -c3)" = ELF ]; then :; else
        echo "setup.sh: warning: could not extract vmlinux; run.sh will boot the bzImage (slower)" >&2
        rm -f "$kdir/vmlinux"
    fi
    touch "$kdir/.done"
fi
ln -sfn "$pkg" "$CACHE/current"
echo "setup.sh: ok (kernel $(ls "$kdir"/root/boot/vmlinuz-* | xargs -n1 basename), qemu $(qemu-system-x86_64 --version | head -1 | awk '{print $4}'))"
