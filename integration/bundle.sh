#!/bin/bash
# Make an OCI bundle in DIR: DIR/rootfs from rootfs.sh, DIR/config.json from
# `${RUNTIME:-runc} spec`. An existing config.json is replaced, because
# `runc spec` refuses to overwrite one.
set -euo pipefail

[ $# -eq 1 ] && [ -n "$1" ] || { echo "usage: $0 DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
"$here/rootfs.sh" "$1/rootfs"
rm -f "$1/config.json"
"${RUNTIME:-runc}" spec --bundle "$1"
