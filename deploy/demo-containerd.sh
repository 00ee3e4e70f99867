#!/bin/bash
# The second half of `make demo`: one container through containerd with our
# shim, containerd-shim-rs-v2 (runtime io.containerd.rs.v2).
#
# If a containerd answers at /run/containerd/containerd.sock
# ($RS_DEMO_CONTAINERD to use another socket), the demo uses it, in its own
# namespace `rs-demo`, and names the shim by its absolute path (that
# containerd's PATH is not ours to change; containerd >= 1.6 accepts a path
# as the runtime). Otherwise it starts a private containerd (own root, state
# and sockets in a temp dir, CRI off) with the shim's directory first on its
# PATH, and names the runtime io.containerd.rs.v2, which containerd
# resolves to the binary containerd-shim-rs-v2 on its PATH.
#
# The shim keeps its engine state in the temp dir too (runtime option Root,
# passed with --runtime-config-path). At exit everything is undone, by pid
# and by path: the private containerd is stopped, leftover shims of the
# demo are killed, the temp dir is removed. Then the script checks that no
# shim process, shim socket, cgroup or mount of the demo is left, and fails
# if one is.
#
# usage: deploy/demo-containerd.sh SHIM ROOTFS   (as root)
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 SHIM ROOTFS" >&2; exit 2; }
shim=$(realpath "$1")
rootfs=$(realpath "$2")
[ -x "$shim" ] || { echo "$0: $shim is not executable" >&2; exit 1; }
[ -x "$rootfs/bin/sh" ] || { echo "$0: $rootfs has no /bin/sh" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "$0: run as root" >&2; exit 1; }

ns=rs-demo
id=demo-$$
# A top-level cgroup of its own: the engine removes it with the container,
# and no parent directory is left behind.
cgroup=/rs-demo-$$
dir=$(mktemp -d /tmp/rs-demo-ctrd.XXXXXX)
address=${RS_DEMO_CONTAINERD:-/run/containerd/containerd.sock}
ctrd_pid=
created_ns=
ran=

ctr_() { timeout 60 ctr --address "$address" --namespace "$ns" "$@"; }

# Pids of live shims of this demo: our namespace, our containerd address.
demo_shims() {
    local p args
    for p in /proc/[0-9]*; do
        args=$(tr '\0' ' ' 2>/dev/null < "$p/cmdline") || continue
        case "$args" in
            *containerd-shim-rs-v2*"-namespace $ns "*"-address $address "*) echo "${p#/proc/}" ;;
        esac
    done
}

# The shim server's socket, as `start` computes it (no grouping label: the
# container id groups).
shim_socket() {
    local hex
    hex=$(printf %s "$address/$ns/$id" | sha256sum | cut -d' ' -f1)
    echo "/run/containerd/s/$hex"
}

cleanup() {
    local rc=$? p
    set +e
    if [ -n "$ran" ]; then
        ctr_ task kill -s KILL "$id" >/dev/null 2>&1
        ctr_ task rm -f "$id" >/dev/null 2>&1
        ctr_ container rm "$id" >/dev/null 2>&1
    fi
    [ -n "$created_ns" ] && timeout 60 ctr --address "$address" namespaces rm "$ns" >/dev/null
    for p in $(demo_shims); do kill -KILL "$p" 2>/dev/null; done
    if [ -n "$ctrd_pid" ]; then
        kill -TERM "$ctrd_pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$ctrd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$ctrd_pid" 2>/dev/null
        wait "$ctrd_pid" 2>/dev/null
    fi
    rm -rf "$dir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if timeout 5 ctr --address "$address" version >/dev/null 2>&1; then
    echo "# using the containerd at $address, namespace $ns"
    runtime=$shim
    timeout 60 ctr --address "$address" namespaces ls -q | grep -qx "$ns" || created_ns=1
else
    echo "# no containerd at $address: starting a private one in $dir"
    address=$dir/c.sock
    cat > "$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/c.sock"
[ttrpc]
  address = "$dir/c.sock.ttrpc"
EOF
    PATH=$(dirname "$shim"):$PATH containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
    ctrd_pid=$!
    for _ in $(seq 200); do
        ctr_ version >/dev/null 2>&1 && break
        kill -0 "$ctrd_pid" 2>/dev/null || { cat "$dir/containerd.log" >&2; exit 1; }
        sleep 0.1
    done
    ctr_ version >/dev/null || { echo "containerd did not come up:" >&2; cat "$dir/containerd.log" >&2; exit 1; }
    runtime=io.containerd.rs.v2
fi

# Runtime options for the shim, read from this file (runc's key names).
printf 'Root = "%s"\n' "$dir/rs" > "$dir/options.toml"

ran=1
echo "\$ ctr run --rm --runtime $runtime --rootfs $rootfs $id /bin/sh -c 'echo hello from ...'"
ctr_ run --rm --runtime "$runtime" --runtime-config-path "$dir/options.toml" \
    --cgroup "$cgroup" --rootfs "$rootfs" "$id" \
    /bin/sh -c 'echo "hello from containerd-shim-rs-v2: pid $$, uid $(id -u), $(grep -c . /proc/self/mountinfo) mounts"'

# --rm has returned: the shim must be exiting on its own. Give it a moment.
for _ in $(seq 50); do [ -z "$(demo_shims)" ] && break; sleep 0.1; done
left=()
[ -z "$(demo_shims)" ] || left+=("shim processes: $(demo_shims | tr '\n' ' ')")
[ ! -e "$(shim_socket)" ] || left+=("shim socket: $(shim_socket)")
for c in /sys/fs/cgroup/*"$cgroup" /sys/fs/cgroup"$cgroup"; do
    [ ! -d "$c" ] || left+=("cgroup: $c")
done
! grep -q "$dir\|$cgroup" /proc/self/mountinfo || left+=("mounts under $dir")
if [ ${#left[@]} -gt 0 ]; then
    printf 'demo left behind: %s\n' "${left[@]}" >&2
    exit 1
fi
echo "# the shim exited; no shim process, socket, cgroup or mount left"
