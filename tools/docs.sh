#!/usr/bin/env bash
# Builds the API documentation of each phase with Doxygen: one site per phase,
# from the one config docs/Doxyfile.    (make docs)
#
#   tools/docs.sh [phaseN-topic ...]     no argument: every phase
#
# Each site goes to build/docs/<phase>/html/index.html. Its front page is the
# phase's walkthrough (README.md) when there is one; the diagrams it shows come
# from the phase's diagrams/ folder. Warnings are errors: the script fails if
# Doxygen fails or prints anything at all, and shows what it printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

command -v doxygen >/dev/null || { echo "tools/docs.sh: doxygen is not installed (make deps, or: apt-get install doxygen graphviz)" >&2; exit 1; }
command -v dot >/dev/null || { echo "tools/docs.sh: dot is not installed (make deps, or: apt-get install graphviz)" >&2; exit 1; }

if [ $# -eq 0 ]; then
  set -- $(ls -d phase[0-9]-* 2>/dev/null | sort)
fi
[ $# -gt 0 ] || { echo "tools/docs.sh: no phase folders (phase<N>-<topic>) found" >&2; exit 2; }

status=0
for phase in "$@"; do
  phase=${phase%/}
  if [ ! -d "$phase/include" ]; then
    echo "tools/docs.sh: $phase/include does not exist: name a phase folder, e.g. phase1-basic" >&2
    status=1; continue
  fi
  out=build/docs/$phase
  rm -rf "$out/html"  # a fresh site: no pages left over from removed code
  mkdir -p "$out"
  mainpage=""
  [ -f "$phase/README.md" ] && mainpage=$phase/README.md
  log=$out/doxygen.log

  rc=0
  GT_PHASE_DIR=$phase GT_DOCS_OUT=$out GT_DOCS_MAINPAGE=$mainpage \
    doxygen docs/Doxyfile >"$log" 2>&1 || rc=$?
  if [ $rc -ne 0 ] || [ -s "$log" ]; then
    echo "FAIL $phase: doxygen (exit status $rc) reported:" >&2
    sed 's/^/  /' "$log" >&2
    status=1; continue
  fi

  # The walkthrough links to the phase's files (src/context.cpp, ...); copy
  # them beside the pages so those links work in the site too.
  for d in include src examples tests bench diagrams; do
    [ -d "$phase/$d" ] && cp -r "$phase/$d" "$out/html/"
  done
  echo "$phase: $root/$out/html/index.html"
done
exit $status
