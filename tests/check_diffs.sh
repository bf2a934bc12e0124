#!/usr/bin/env bash
# The phase-to-phase diffs are the lessons, so they must be clean: for every
# phase after the first, `tools/phase_diff.sh N` (make diff-phaseN) runs, and
# no file it shows is a build output: no path with a build/ folder in it, no
# object file or library, nothing that git ignores. The phase folders are
# numbered without gaps or repeats, so that phase N-1 is always defined.
#
#   tests/check_diffs.sh        (run by make check and make test)
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/lib.sh"

in_git=$(git rev-parse --is-inside-work-tree 2>/dev/null || echo false)
failures=0
count=0
seen=" "
first=true
for phase in $(phases); do
  n=$(phase_number "$phase")
  case "$seen" in *" $n "*)
    echo "$phase: phase $n has two folders ($(phase_folder "$n") and $phase)"
    failures=$((failures + 1)); continue ;;
  esac
  seen="$seen$n "
  if $first; then
    first=false
    echo "$phase: first phase, no diff to check"
    continue
  fi
  if [ -z "$(phase_folder $((n - 1)))" ]; then
    echo "$phase: there is no phase$((n - 1))-* folder before it (phases are numbered without gaps)"
    failures=$((failures + 1))
    continue
  fi
  count=$((count + 1))
  out=$CHECK_TMP/diff-$n.txt
  if ! tools/phase_diff.sh "$n" >"$out" 2>"$CHECK_TMP/err"; then
    echo "$phase: tools/phase_diff.sh $n fails:"
    sed 's/^/    /' "$CHECK_TMP/err"
    failures=$((failures + 1))
    continue
  fi
  [ -s "$out" ] || echo "note: $phase is identical to the phase before it"
  # The files the diff shows: its "diff -ruN ... OLD NEW" header lines and any
  # "Binary files OLD and NEW differ" lines.
  { sed -n 's/^diff .* \([^ ]*\) \([^ ]*\)$/\1\n\2/p' "$out"
    sed -n 's/^Binary files \(.*\) and \(.*\) differ$/\1\n\2/p' "$out"; } | sort -u |
    while read -r f; do if [ -e "$f" ]; then echo "$f"; fi; done >"$CHECK_TMP/files"  # diff -N names absent files too
  bad=$(grep -E '(^|/)build/|\.(o|a|so|d)$' "$CHECK_TMP/files" || true)
  if [ "$in_git" = true ]; then
    ignored=$(git check-ignore --stdin <"$CHECK_TMP/files" || true)
    bad=$(printf '%s\n%s\n' "$bad" "$ignored" | sed '/^$/d' | sort -u)
  fi
  if [ -n "$bad" ]; then
    echo "$phase: tools/phase_diff.sh $n shows build outputs or ignored files (exclude them in tools/phase_diff.sh, or delete them):"
    echo "$bad" | head -n 20 | sed 's/^/    /'
    failures=$((failures + 1))
  else
    echo "$phase: diff against phase $((n - 1)) is clean ($(grep -c '^diff ' "$out" || true) file(s) differ)"
  fi
done

if [ "$first" = true ]; then
  echo "check_diffs: no phase folders (phase[0-9]-*) in $ROOT"
  exit 1
fi
if [ "$failures" -gt 0 ]; then
  echo "check_diffs: $failures problem(s)"
  exit 1
fi
echo "check_diffs: $count diff(s) clean ($(elapsed))"
