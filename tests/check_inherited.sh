#!/usr/bin/env bash
# Every phase still does everything the phase before it did: phase N builds
# phase N-1's tests against its own headers and library and passes them
#   make -C phaseN-* test-inherited FROM=../phase<N-1>-*     (common/phase.mk)
# By induction each phase then passes the tests of every earlier phase, as
# long as no test is deleted on the way, and none may be: a test that
# existed in phase N-1 must exist in phase N under the same file name (it may
# grow). The first phase has nothing to inherit.
#
#   tests/check_inherited.sh        (run by make check and make test)
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/lib.sh"

jobs=$(nproc 2>/dev/null || echo 2)
failures=0
pairs=0
first=true
for phase in $(phases); do
  n=$(phase_number "$phase")
  if $first; then
    first=false
    echo "$phase: first phase, nothing to inherit"
    continue
  fi
  prev=$(phase_folder $((n - 1)))
  if [ -z "$prev" ]; then
    echo "$phase: there is no phase$((n - 1))-* folder before it (phases are numbered without gaps)"
    failures=$((failures + 1))
    continue
  fi
  pairs=$((pairs + 1))
  for t in "$prev"/tests/*; do
    [ -e "$phase/tests/$(basename "$t")" ] ||
      { echo "$phase: lost $t (a later phase keeps every earlier test file)"; failures=$((failures + 1)); }
  done
  log=$CHECK_TMP/$phase.log
  start=$SECONDS
  if "${MAKE_CMD[@]}" -C "$phase" -j"$jobs" test-inherited FROM="../$prev" >"$log" 2>&1; then
    echo "$phase passes $prev's tests ($((SECONDS - start)) s): $(tail -n 1 "$log")"
  else
    echo "$phase does not pass $prev's tests (make -C $phase test-inherited FROM=../$prev):"
    tail -n 40 "$log" | sed 's/^/    /'
    failures=$((failures + 1))
  fi
done

if [ "$first" = true ]; then
  echo "check_inherited: no phase folders (phase[0-9]-*) in $ROOT"
  exit 1
fi
if [ "$failures" -gt 0 ]; then
  echo "check_inherited: $failures failure(s)"
  exit 1
fi
echo "check_inherited: $pairs phase(s) pass the tests of the phase before ($(elapsed))"
