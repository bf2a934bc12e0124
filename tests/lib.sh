# shellcheck shell=bash
# Shared by the cross-phase checks (tests/check_*.sh). Source it, don't run it:
#
#   source "$(dirname "$0")/lib.sh"
#
# It moves to the repository root (found from this file's own path, so a check
# runs from anywhere), lists the phases, makes a temporary folder that is
# removed on exit, and keeps the flags of an outer make away from the makes a
# check runs itself.
set -euo pipefail
shopt -s nullglob

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# `make check` runs the checks from a make recipe, which exports its
# command-line variables (RESULTS=... would make every sub-make append its
# test cases to the top-level summary: a check is one PASS/FAIL line there)
# and passes flags and jobserver handles in MAKEFLAGS.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES GNUMAKEFLAGS RESULTS FROM
# shellcheck disable=SC2034 # used by the checks that source this file
MAKE_CMD=(make --no-print-directory)

# The phase folders in order: phase<N>-<topic>, N one digit.
phases() {
  local d
  for d in phase[0-9]-*/; do echo "${d%/}"; done
}

# phase_number phase3-preemption -> 3
phase_number() {
  local n=${1#phase}
  echo "${n%%-*}"
}

# The phase folder whose number is $1, or nothing.
phase_folder() {
  local d
  for d in phase"$1"-*/; do echo "${d%/}"; return; done
}

# One temporary folder per check, removed however the check ends.
CHECK_TMP=$(mktemp -d "${TMPDIR:-/tmp}/gt-$(basename "$0" .sh).XXXXXX")
trap 'rm -rf "$CHECK_TMP"' EXIT

# Seconds since the check started, for the closing line.
CHECK_START=$SECONDS
elapsed() { echo "$((SECONDS - CHECK_START)) s"; }
