#!/bin/bash
# Sums cargo test's "test result:" lines in LOG into one closing line
# ("total: N passed, M failed, K ignored"); exits non-zero if any failed or
# if no test ran at all.
set -euo pipefail
log=${1:?usage: summary.sh LOG}
read -r passed failed ignored < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) {
        if ($(i+1) ~ /^passed;?$/) p += $i
        if ($(i+1) ~ /^failed;?$/) f += $i
        if ($(i+1) ~ /^ignored;?$/) g += $i
    }
} END { print p+0, f+0, g+0 }' "$log")
echo "total: $passed passed, $failed failed, $ignored skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
