#!/usr/bin/env bash
# Every phase's diagrams/*.dot renders with `dot -Tsvg` without an error or a
# warning, and the committed render beside it (diagrams/<name>.svg) is the
# render of the source as it is now, so the walkthrough that shows the .svg
# on a code host shows the current source. Compared without the fonts,
# which differ between machines and move every coordinate (tests/diagrams.py):
# the render must carry the SHA-256 of the current .dot (make diagrams
# writes it), and say what a fresh render says: the same nodes, edges and
# clusters, label texts, colours and line styles, whatever the positions.
# A render without a source, or a render that git ignores, is a failure too.
#
#   tests/check_diagrams.sh        (run by make check and make test)
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/lib.sh"

command -v dot >/dev/null || { echo "dot (Graphviz) is not installed: run tools/deps.sh test"; exit 1; }
in_git=$(git rev-parse --is-inside-work-tree 2>/dev/null || echo false)

failures=0
count=0
problem() { echo "$1"; failures=$((failures + 1)); }

for phase in $(phases); do
  for dotfile in "$phase"/diagrams/*.dot; do
    count=$((count + 1))
    svg=${dotfile%.dot}.svg
    fresh=$CHECK_TMP/fresh.svg
    # Rendered the way `make -C <phase> diagrams` renders it, from the phase folder.
    if ! (cd "$phase" && dot -Tsvg "diagrams/$(basename "$dotfile")" -o "$fresh") 2>"$CHECK_TMP/err"; then
      problem "$dotfile: dot -Tsvg failed:"
      sed 's/^/    /' "$CHECK_TMP/err"
      continue
    fi
    if [ -s "$CHECK_TMP/err" ]; then
      problem "$dotfile: dot -Tsvg warns (fix the source):"
      sed 's/^/    /' "$CHECK_TMP/err"
    fi
    if [ ! -f "$svg" ]; then
      problem "$svg is missing: run make diagrams and commit the renders"
    elif ! python3 tests/diagrams.py "$svg" "$fresh" "$dotfile" >"$CHECK_TMP/meaning"; then
      problem "$(head -n 1 "$CHECK_TMP/meaning")"
      tail -n +2 "$CHECK_TMP/meaning"
    elif [ "$in_git" = true ] && git check-ignore -q "$svg"; then
      problem "$svg is ignored by git, but the renders are committed: fix .gitignore"
    fi
  done
  for svg in "$phase"/diagrams/*.svg; do
    [ -f "${svg%.svg}.dot" ] || problem "$svg has no source ${svg%.svg}.dot: delete the render or restore its source"
  done
done

if [ "$failures" -gt 0 ]; then
  echo "check_diagrams: $failures problem(s) in $count diagram(s)"
  exit 1
fi
echo "check_diagrams: $count diagram(s) render cleanly, and each committed .svg is the render of its .dot ($(elapsed))"
