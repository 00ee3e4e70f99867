#!/bin/bash
# containerd with our shim vs containerd's Go shim + runc, side by side:
#   1. `ctr run --rm /bin/true` (whole task lifecycle through the shim)
#   2. `ctr task exec /bin/true` into a running task
#   3. shim PSS (/proc/PID/smaps_rollup) with 1 and with 20 running `sleep`
#      containers (one shim per container: total and per added container)
# Prints medians and ratios rs/runc.v2.
#
#   bench/shim.sh [RUNS]        RUNS (default 30) timed runs of each, the two
#                               runtimes alternating
#   SHIM=path                   default: target/x86_64-unknown-linux-gnu/shim/containerd-shim-rs-v2 (make release)
#
# Root only. A private containerd (own root, state, sockets) under one
# mktemp dir is started and stopped here; containers use the namespace
# `rsbench` and cgroups under /rsbench; everything is removed on exit.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-30}
shim=${SHIM:-$repo/target/x86_64-unknown-linux-gnu/shim/containerd-shim-rs-v2}
[ "$(id -u)" = 0 ] || { echo "$0: must run as root" >&2; exit 1; }
[ -x "$shim" ] || { echo "$0: $shim missing (make release)" >&2; exit 1; }
for tool in containerd ctr; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done

work=$(mktemp -d /run/rs-shim-bench.XXXXXX)
ctrd_pid=
ctr() { command ctr --address "$work/c.sock" --namespace rsbench "$@"; }
cleanup() {
    set +e
    for id in $(ctr task ls -q 2>/dev/null); do ctr task kill -s KILL "$id"; done
    sleep 0.5
    for id in $(ctr task ls -q 2>/dev/null); do ctr task rm -f "$id" >/dev/null; done
    for id in $(ctr container ls -q 2>/dev/null); do ctr container rm "$id" >/dev/null; done
    [ -n "$ctrd_pid" ] && kill "$ctrd_pid" && wait "$ctrd_pid" 2>/dev/null
    for d in /sys/fs/cgroup/*/rsbench /sys/fs/cgroup/rsbench; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    umount -R "$work/state" 2>/dev/null
    rm -rf "$work"
    # Empty state roots the shims made for our namespace.
    rmdir /run/containerd/rs/rsbench /run/containerd/runc/rsbench 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$repo/integration/rootfs.sh" "$work/rootfs" >/dev/null
cat >"$work/config.toml" <<CONF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/c.sock"
[ttrpc]
  address = "$work/c.sock.ttrpc"
CONF
containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
ctrd_pid=$!
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done

declare -A rt=([rs]="$shim" [runc]=io.containerd.runc.v2)

# Wall time of one command, in ms (EPOCHREALTIME: no fork for the clock).
elapsed_ms() {
    local t0=$EPOCHREALTIME
    "$@" >/dev/null
    local t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'
}
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The two runtimes alternate run by run (and swap who goes first), so a
# change in the machine's load hits both alike: this 2-core VM's timings
# drift by ±20 % over a minute, which skews back-to-back batches.
for name in rs runc; do
    r=${rt[$name]}
    ctr run -d --runtime "$r" --cgroup "/rsbench/x-$name" --rootfs "$work/rootfs" "x-$name" /bin/sleep 3600 >/dev/null
done
n=0
for i in $(seq $((runs + 3))); do
    order="rs runc"; [ $((i % 2)) = 0 ] && order="runc rs"
    for name in $order; do
        r=${rt[$name]}
        id="$name-$i"
        t_run=$(elapsed_ms ctr run --rm --runtime "$r" --cgroup "/rsbench/$id" --rootfs "$work/rootfs" "$id" /bin/true)
        t_exec=$(elapsed_ms ctr task exec --exec-id "e$i" "x-$name" /bin/true)
        # The first 3 rounds warm caches up and are not counted.
        if [ "$i" -gt 3 ]; then
            echo "$t_run" >>"$work/run-$name.txt"
            echo "$t_exec" >>"$work/exec-$name.txt"
        fi
    done
done
for name in rs runc; do
    ctr task kill -s KILL "x-$name"; sleep 0.3; ctr task rm -f "x-$name" >/dev/null; ctr container rm "x-$name"
done

# PSS of the shim processes serving N sleep containers of one runtime.
shim_pss_kb() { # runtime-binary-pattern
    local total=0 pid
    for pid in $(pgrep -f -- "$1 .*-namespace rsbench" || true); do
        total=$((total + $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")))
    done
    echo "$total"
}
declare -A pss1 pss20
for name in rs runc; do
    r=${rt[$name]}
    pat=$([ "$name" = rs ] && echo "containerd-shim-rs-v2" || echo "containerd-shim-runc-v2")
    for i in $(seq 20); do
        ctr run -d --runtime "$r" --cgroup "/rsbench/p-$name-$i" --rootfs "$work/rootfs" "p-$name-$i" /bin/sleep 3600 >/dev/null
        [ "$i" = 1 ] && { sleep 1; pss1[$name]=$(shim_pss_kb "$pat"); }
    done
    sleep 1
    pss20[$name]=$(shim_pss_kb "$pat")
    for i in $(seq 20); do ctr task kill -s KILL "p-$name-$i"; done
    sleep 0.5
    for i in $(seq 20); do ctr task rm -f "p-$name-$i" >/dev/null; ctr container rm "p-$name-$i"; done
done

printf '\n%-28s %12s %12s %8s\n' "" "rs shim" "runc.v2" "rs/runc"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
for what in run exec; do
    a=$(median "$work/$what-rs.txt"); b=$(median "$work/$what-runc.txt")
    printf '%-28s %9.2f ms %9.2f ms %8s\n' "ctr $what (median)" "$a" "$b" "$(ratio "$a" "$b")"
done
printf '%-28s %9d kB %9d kB %8s\n' "shim PSS, 1 container" "${pss1[rs]}" "${pss1[runc]}" "$(ratio "${pss1[rs]}" "${pss1[runc]}")"
per_rs=$(( (pss20[rs] - pss1[rs]) / 19 )); per_runc=$(( (pss20[runc] - pss1[runc]) / 19 ))
printf '%-28s %9d kB %9d kB %8s\n' "PSS per added container" "$per_rs" "$per_runc" "$(ratio "$per_rs" "$per_runc")"
