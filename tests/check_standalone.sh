#!/usr/bin/env bash
# Every phase builds on its own: a phase folder plus common/ (the shared build
# rules) is all a learner needs. For each phase, copies ONLY that phase (less
# its build/ folder) and common/ into a temporary folder, in the same layout
# (tmp/<phase>, tmp/common), and builds the library, the examples, the test
# programs and, when Google Benchmark is installed, the benchmarks there. A relative
# reference to a sibling phase or to the top level cannot resolve there, so it
# fails the build; an absolute one could, so every dependency make recorded
# (the build/**/*.d files) and every command it ran is also checked for paths
# into the repository.
#
#   tests/check_standalone.sh [PHASE...]     (default: every phase)
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/lib.sh"

targets=(lib examples)
if [ -f /usr/include/benchmark/benchmark.h ]; then
  targets+=(benches)
else
  echo "note: Google Benchmark is not installed (tools/deps.sh bench): benchmarks not built"
fi
jobs=$(nproc 2>/dev/null || echo 2)

list=("$@")
[ ${#list[@]} -gt 0 ] || mapfile -t list < <(phases)
[ ${#list[@]} -gt 0 ] || { echo "check_standalone: no phase folders (phase[0-9]-*) in $ROOT"; exit 1; }

failures=0
notes=""
for phase in "${list[@]}"; do
  phase=${phase%/}
  start=$SECONDS
  box=$CHECK_TMP/$phase
  mkdir -p "$box"
  tar -C "$ROOT" --exclude="$phase/build" -cf - "$phase" common | tar -C "$box" -xf -
  log=$box/build.log
  # The test programs are built once, not in both variants (make tests also
  # builds each at -O0): the two compile the same files with the same include
  # paths, so the second cannot reach anywhere the first does not.
  tests=()
  for t in "$box/$phase"/tests/*_test.cpp; do
    t=${t##*/}
    tests+=("build/tests/${t%.cpp}")
  done
  # OPT="-O0 -g0": no optimisation and no debug info (-g0 comes after the
  # rules' -g), since only what the build reads matters here; it halves the time.
  # BUILD=build: the folder the test targets above name, whichever compiler
  # CXX names (a Clang build would otherwise go to build/clang).
  if ! "${MAKE_CMD[@]}" -C "$box/$phase" -j"$jobs" OPT="-O0 -g0" BUILD=build "${targets[@]}" "${tests[@]}" >"$log" 2>&1; then
    echo "$phase: does not build standalone (only $phase/ and common/ copied to a temporary folder)."
    if grep -qE 'error:|No such file|undefined reference|\*\*\*' "$log"; then
      echo "  make ${targets[*]} <the tests> said (errors only):"
      grep -E -A3 'error:|No such file|undefined reference|\*\*\*' "$log" | head -n 30 | sed 's/^/    /'
    else
      echo "  make ${targets[*]} <the tests> said (last 25 lines):"
      tail -n 25 "$log" | sed 's/^/    /'
    fi
    failures=$((failures + 1))
    rm -rf "$box"
    continue
  fi
  # Notes the build printed (common/phase.mk: benchmarks built without a
  # peer that is not installed), said once at the end.
  notes=$(printf '%s\n%s\n' "$notes" "$(grep '^note: ' "$log" || true)" | sed '/^$/d' | sort -u)
  # Anything the build read or ran that names the repository is a reference
  # that would break in a copy of the phase.
  outside=$( { find "$box/$phase/build" -name '*.d' -exec cat {} +; cat "$log"; } \
             | tr ' \t' '\n\n' | grep -F -- "$ROOT/" | sed 's/:$//' | sort -u | head -n 10 || true)
  if [ -n "$outside" ]; then
    echo "$phase: its build reads files outside the phase folder and common/:"
    echo "$outside" | sed 's/^/    /'
    failures=$((failures + 1))
  else
    echo "$phase: builds standalone ($((SECONDS - start)) s)"
  fi
  rm -rf "$box"
done

[ -z "$notes" ] || echo "$notes"
if [ "$failures" -gt 0 ]; then
  echo "check_standalone: $failures phase(s) do not build standalone"
  exit 1
fi
echo "check_standalone: ${#list[@]} phase(s) build standalone ($(elapsed))"
