#!/bin/bash
# Time `RUNTIME run` of /bin/true in a busybox bundle for runc, crun and rsrun
# with hyperfine, and print the medians plus rs/runc and rs/crun.
#
#   bench/run.sh [RUNS]          RUNS defaults to 30 (after 3 warmup runs)
#   RSRUN=path/to/rsrun          default: the static release build (make release)
#   BENCH_JSON=file              keep hyperfine's JSON export there
#
# Must run as root. Everything lives in one mktemp dir that is removed on exit;
# each runtime gets its own --root state dir inside it. See bench/README.md.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-30}
rsrun=${RSRUN:-$repo/target/x86_64-unknown-linux-gnu/release/rsrun}
id=rsbench
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [RUNS]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: must run as root" >&2; exit 1; }
for tool in hyperfine jq unshare; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done

# crun (1.8.1) refuses to create any container on a hybrid host whose cgroup2
# mount has controllers enabled ("cgroups in hybrid mode not supported"): it
# reads /sys/fs/cgroup/unified/cgroup.controllers before looking at the cgroup
# manager or cgroupsPath, so no flag or config avoids it. We re-run ourselves
# in a private mount namespace and bind an empty file over that one file. The
# host's hierarchies and controller bindings are untouched, and all runtimes
# are measured inside the same namespace so the comparison stays fair.
controllers=/sys/fs/cgroup/unified/cgroup.controllers
# (cgroupfs files stat as size 0, so read the file rather than test -s.)
if [ -z "${RS_BENCH_IN_NS:-}" ] && [ -n "$(cat "$controllers" 2>/dev/null)" ] &&
    [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ]; then
    RS_BENCH_IN_NS=1 exec unshare --mount --propagation private -- "$0" "$@"
fi

# State roots on tmpfs, where every runtime keeps them by default (/run).
work=$(mktemp -d /run/rs-bench.XXXXXX)
names=() cmds=()
cleanup() {
    local i
    for i in "${!names[@]}"; do
        "${cmds[$i]}" --root "$work/state-${names[$i]}" delete -f "$id" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${RS_BENCH_IN_NS:-}" ]; then
    : >"$work/empty"
    mount --bind "$work/empty" "$controllers"
fi

# One bundle for everyone: runc's default spec, non-interactive /bin/true.
bundle=$work/bundle
"$repo/integration/rootfs.sh" "$bundle/rootfs"
runc spec --bundle "$bundle"
jq '.process.terminal = false | .process.args = ["/bin/true"]' \
    "$bundle/config.json" >"$work/config.json"
mv "$work/config.json" "$bundle/config.json"

add() { # name binary
    if command -v "$2" >/dev/null; then
        names+=("$1") cmds+=("$(command -v "$2")")
        mkdir "$work/state-$1"
    else
        echo "note: $1 skipped ($2 not found)" >&2
    fi
}
add runc runc
add crun crun
add rsrun "$rsrun"

# `run` deletes the container when its process exits, so one ID per runtime
# is reused across iterations; a leftover is caught by the `list` check below.
args=(--warmup 3 --runs "$runs" -N --export-json "$work/results.json")
for i in "${!names[@]}"; do
    args+=(-n "${names[$i]}"
        "${cmds[$i]} --root $work/state-${names[$i]} run --bundle $bundle $id")
done
hyperfine "${args[@]}" >&2

for i in "${!names[@]}"; do
    left=$("${cmds[$i]}" --root "$work/state-${names[$i]}" list -q)
    [ -z "$left" ] || echo "warning: ${names[$i]} left containers: $left" >&2
done
[ -z "${BENCH_JSON:-}" ] || cp "$work/results.json" "$BENCH_JSON"

echo
printf '%-8s %10s %10s %10s\n' runtime 'median ms' 'mean ms' 'stddev ms'
jq -r '.results[] | [.command, (.median, .mean, .stddev | . * 1000)] | @tsv' \
    "$work/results.json" | xargs -L1 printf '%-8s %10.2f %10.2f %10.2f\n'
median() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .median' "$work/results.json"; }
rs=$(median rsrun)
if [ -z "$rs" ]; then
    echo "rsrun not benchmarked (build it: cargo build --release -p rsrun, or set RSRUN)"
    exit 0
fi
for base in runc crun; do
    b=$(median "$base")
    [ -z "$b" ] || printf 'rs/%s    %.2f\n' "$base" "$(jq -n "$rs / $b")"
done
