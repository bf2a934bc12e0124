#!/usr/bin/env bash
# The phase-to-phase diffs are the lessons, so they must be clean: for every
# phase after the first, `tools/phase_diff.sh N` (make diff-phaseN) runs, and
# no file it shows is a build output: no path with a build/ folder in it, no
# object file or library, nothing that git ignores. The phase folders are
# numbered without gaps or repeats, so that phase N-1 is always defined.
# And every hand-written diff command in the walkthroughs and docs prints
# exactly what make diff-phaseN prints (tests/diff_commands.py).
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
  # The files the diff shows, as --stat lists them (its last line is the
  # total), on whichever side they exist (diff -N names absent files too).
  if ! tools/phase_diff.sh "$n" --stat >"$CHECK_TMP/stat" 2>"$CHECK_TMP/err"; then
    echo "$phase: tools/phase_diff.sh $n --stat fails:"
    sed 's/^/    /' "$CHECK_TMP/err"
    failures=$((failures + 1))
    continue
  fi
  sed '$d' "$CHECK_TMP/stat" | awk '{ print $1 }' | while read -r f; do
    for side in "$(phase_folder $((n - 1)))" "$phase"; do
      if [ -e "$side/$f" ]; then echo "$side/$f"; fi
    done
  done >"$CHECK_TMP/files"
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
    echo "$phase: diff against phase $((n - 1)) is clean ($(sed '$d' "$CHECK_TMP/stat" | wc -l) file(s) differ)"
  fi
done

if [ "$first" = true ]; then
  echo "check_diffs: no phase folders (phase[0-9]-*) in $ROOT"
  exit 1
fi
# The hand-written commands: each one run and compared with the target's output.
if ! python3 tests/diff_commands.py "$ROOT"; then
  failures=$((failures + 1))
fi

if [ "$failures" -gt 0 ]; then
  echo "check_diffs: $failures problem(s)"
  exit 1
fi
echo "check_diffs: $count diff(s) clean, the hand-written ones identical ($(elapsed))"
