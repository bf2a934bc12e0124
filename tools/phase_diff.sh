#!/usr/bin/env bash
# Prints what phase N adds to phase N-1 as a unified diff, the runtime first:
#
#   tools/phase_diff.sh N [--stat]        (make diff-phaseN [STAT=1])
#
# The diff goes part by part, in the order a reader should meet them:
#   include src examples tests bench diagrams (anything else) Makefile README.md
# so the runtime's headers and sources come first and the walkthrough last.
# Build outputs and generated pictures (.svg renders, .png) are left out: the
# .dot sources carry the change. Each part is one plain `diff -ruN`, so the
# same diff by hand, as the walkthroughs show it (tests/check_diffs.sh runs
# their command and compares), is, from the repository root:
#
#   for p in include src examples tests bench diagrams Makefile README.md; do
#     diff -ruN -x build -x '*.svg' -x '*.png' phase1-basic/$p phase2-management/$p
#   done
#
# With --stat: one line per changed file in the same order, lines added and
# removed, and a total.
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

# The parts in reading order: the known ones, then whatever else either
# phase has at its top level (alphabetically), then Makefile and README.md.
first=(include src examples tests bench diagrams)
last=(Makefile README.md)
parts=()
for p in "${first[@]}"; do parts+=("$p"); done
while read -r p; do
  case " ${first[*]} ${last[*]} build " in *" $p "*) ;; *) parts+=("$p") ;; esac
done < <({ ls -A "$old"; ls -A "$new"; } | sort -u)
for p in "${last[@]}"; do parts+=("$p"); done

whole_diff() {
  local p rc
  for p in "${parts[@]}"; do
    [ -e "$old/$p" ] || [ -e "$new/$p" ] || continue
    rc=0
    diff -ruN -x build -x '*.svg' -x '*.png' "$old/$p" "$new/$p" || rc=$?
    [ "$rc" -le 1 ] || exit "$rc"
  done
}

if [ "$stat" = "--stat" ]; then
  # Counted from the hunks (a line "--- x" inside a hunk is a removed line,
  # not a file header); files in the order the diff shows them.
  whole_diff | awk -v new="$new/" '
    function count(spec) { return (split(spec, a, ",") > 1) ? a[2] + 0 : 1 }
    left > 0 || right > 0 {
      c = substr($0, 1, 1)
      if (c == "+") { add[file]++; right-- }
      else if (c == "-") { del[file]++; left-- }
      else if (c == " ") { left--; right-- }
      next
    }
    /^\+\+\+ / { split(substr($0, 5), hdr, "\t"); file = hdr[1]; sub("^" new, "", file); order[++n] = file; next }
    /^@@ / { left = count(substr($2, 2)); right = count(substr($3, 2)); next }
    /^Binary files .* differ$/ {
      file = $0; sub(" differ$", "", file); sub(".* and ", "", file); sub("^" new, "", file); order[++n] = file; next }
    END { for (i = 1; i <= n; i++) { f = order[i]; printf "%-45s +%-5d -%d\n", f, add[f], del[f]; ta += add[f]; td += del[f] }
          printf "%-45s +%-5d -%d\n", "total", ta, td }'
  exit "${PIPESTATUS[0]}"
fi
whole_diff
