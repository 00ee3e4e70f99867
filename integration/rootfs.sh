#!/bin/bash
# Build a minimal busybox root filesystem in DIR from Debian's busybox-static:
# bin/busybox plus one bin/<applet> symlink per applet, the usual top-level
# dirs, and /etc/passwd + /etc/group with root, nobody and rs (1000:1000).
# No /etc/hostname on purpose: the runtime sets the hostname from config.json.
# Idempotent and fast (one cp, a few mkdirs, symlinks only where missing).
set -euo pipefail

usage() { echo "usage: $0 DIR" >&2; exit 2; }
[ $# -eq 1 ] && [ -n "$1" ] || usage
dir=$1
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "$0: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)
# A stray "/" would turn the symlink loop into a host-wide overwrite.
[ "$dir" != / ] || { echo "$0: refusing to populate /" >&2; exit 1; }

cd "$dir"
mkdir -p bin sbin usr/bin etc proc sys dev tmp root var run
chmod 1777 tmp
chmod 0700 root
cmp -s "$busybox" bin/busybox || cp "$busybox" bin/busybox
chmod 0755 bin/busybox

# Relative links so the tree works wherever it is mounted.
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || [ -L "bin/$applet" ] || ln -sfn busybox "bin/$applet"
done

cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
rs:x:1000:1000:rs:/tmp:/bin/sh
PASSWD
cat > etc/group <<'GROUP'
root:x:0:
nobody:x:65534:
rs:x:1000:
GROUP
rm -f etc/hostname
