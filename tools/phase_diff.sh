#!/usr/bin/env bash
# Prints what phase N adds to phase N-1 as a unified diff, build outputs
# excluded:   tools/phase_diff.sh N      (make diff-phaseN)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:?usage: tools/phase_diff.sh N}
new=$(ls -d "phase$n"-* 2>/dev/null | head -n1 || true)
old=$(ls -d "phase$((n - 1))"-* 2>/dev/null | head -n1 || true)
[ -n "$new" ] || { echo "no phase $n folder (phase$n-*)" >&2; exit 2; }
if [ -z "$old" ]; then
  if [ "$n" -le 1 ]; then
    echo "phase $n is the first phase: there is nothing to diff it against; read $new/README.md"
    exit 0
  fi
  echo "no phase $((n - 1)) folder (phase$((n - 1))-*) to diff $new against" >&2
  exit 2
fi
diff -ruN --exclude=build "$old" "$new" || [ $? -eq 1 ]
