#!/usr/bin/env bash
# Prints what phase N adds to phase N-1 as a unified diff, build outputs
# excluded:   tools/phase_diff.sh N      (make diff-phaseN)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:?usage: tools/phase_diff.sh N}
new=$(ls -d "phase$n"-* 2>/dev/null | head -n1 || true)
old=$(ls -d "phase$((n - 1))"-* 2>/dev/null | head -n1 || true)
[ -n "$new" ] || { echo "no phase $n folder (phase$n-*)" >&2; exit 2; }
[ -n "$old" ] || { echo "phase $n is the first phase: there is nothing to diff it against" >&2; exit 2; }
diff -ruN --exclude=build "$old" "$new" || [ $? -eq 1 ]
