#!/bin/bash
# Run after the integration suite: fails if any test left a container state
# root, a cgroup, a mount, a process, a network namespace or a bundle behind.
# The suite's cgroup parent (/rstest) is removed here once it is empty; it is
# ours (every test container's cgroupsPath is under it).
set -uo pipefail

leaks=()
shopt -s nullglob

for d in /run/rstest/*; do leaks+=("state root: $d ($(ls "$d" | tr '\n' ' '))"); done
for d in /tmp/rstest-bundle-* /tmp/rstest-ctrd-*; do leaks+=("test dir: $d"); done
# The shim's engine root of a test namespace (containerd namespace rstest-*).
for d in /run/containerd/rs/rstest-*; do leaks+=("shim engine root: $d ($(ls "$d" | tr '\n' ' '))"); done

for h in /sys/fs/cgroup/*/rstest /sys/fs/cgroup/rstest; do
    [ -d "$h" ] || continue
    kids=$(find "$h" -mindepth 1 -type d 2>/dev/null)
    if [ -n "$kids" ]; then
        leaks+=("cgroups: $(echo "$kids" | tr '\n' ' ')")
    else
        rmdir "$h" 2>/dev/null || leaks+=("cgroup parent not removable: $h")
    fi
done

m=$(grep -E 'rstest|/run/rsrun' /proc/self/mountinfo | awk '{print $5}')
[ -n "$m" ] && leaks+=("mounts: $(echo "$m" | tr '\n' ' ')")

p=$(ps -eo pid=,args= | grep -E 'rs:\[[12]:|target/.*/rsrun|containerd --config /tmp/rstest|shim-r(unc|s)-v2 -namespace rstest' | grep -v grep)
[ -n "$p" ] && leaks+=("processes: $p")

n=$(ip netns list 2>/dev/null | grep rstest)
[ -n "$n" ] && leaks+=("netns: $n")

if [ ${#leaks[@]} -gt 0 ]; then
    echo "leakcheck: the integration run left resources behind:" >&2
    printf '  %s\n' "${leaks[@]}" >&2
    exit 1
fi
rmdir /run/rstest 2>/dev/null || true
echo "leakcheck: nothing left behind (state roots, cgroups, mounts, processes, netns, bundles)"
