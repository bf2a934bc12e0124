#!/usr/bin/env bash
# Prints what phase N adds to phase N-1 as a unified diff, build outputs
# and generated pictures (.svg renders, .png) excluded: the .dot sources
# carry the change.   tools/phase_diff.sh N [--stat]   (make diff-phaseN [STAT=1])
# With --stat: one line per changed file, lines added and removed.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:?usage: tools/phase_diff.sh N [--stat]}
stat=${2:-}
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
if [ "$stat" = "--stat" ]; then
  { diff -ruN --exclude=build --exclude="*.svg" --exclude="*.png" "$old" "$new" || [ $? -eq 1 ]; } | awk -v new="$new/" '
    /^diff / { file = $NF; sub(new, "", file); order[++n] = file; next }
    /^\+\+\+ / || /^--- / { next }
    /^\+/ { add[file]++ } /^-/ { del[file]++ }
    END { for (i = 1; i <= n; i++) { f = order[i]; printf "%-45s +%-5d -%d\n", f, add[f], del[f]; ta += add[f]; td += del[f] }
          printf "%-45s +%-5d -%d\n", "total", ta, td }'
  exit 0
fi
diff -ruN --exclude=build --exclude="*.svg" --exclude="*.png" "$old" "$new" || [ $? -eq 1 ]
