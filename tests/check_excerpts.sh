#!/usr/bin/env bash
# Labelled code in the walkthroughs matches the code it names, so a reader
# never studies an excerpt that the repository no longer contains.
#
# Checked: every phase's walkthrough (phase[0-9]-*/*.md, README.md above all),
# the top-level *.md files and docs/*.md. Two labels, each on a line of its
# own, followed by a fenced code block (blank lines may come between):
#
#   File: [src/scheduler.cpp](src/scheduler.cpp) · `scheduler::yield`
#       The block is an excerpt of that file. The link is relative to the
#       Markdown file's folder, as a code host reads it (in a phase's
#       README.md: the phase folder; in the top-level README.md: the root; in
#       docs/x.md: docs/, so ../phase1-basic/src/...); the link text is the
#       same path or the path from the repository root. The "· ..." part is
#       optional and says what the block shows: free text (· frame layout)
#       and/or `symbols` in backquotes (· `scheduler::pick_next`,
#       `scheduler::yield`); each backquoted symbol's last part (yield) must
#       occur in the file as a word, so renaming it fails the check.
#       Every line of the block occurs in the file, in order and on
#       consecutive lines, except that a line that is only "...", "// ...",
#       "# ..." or "/* ... */" stands for any number of skipped lines.
#       Trailing whitespace is ignored, indentation is not.
#
#   Output of [examples/round_robin.cpp](examples/round_robin.cpp):
#       The block is exactly what the example prints on standard output
#       (built with make -C <phase> examples, run from the phase folder as
#       build/examples/round_robin). A first line "$ <command>" is ignored.
#
# A label naming a missing file, a label line that does not parse, or a label
# without a block fails too. The checker is tests/excerpts.py (its docstring
# has the details); tests/excerpts_selftest.sh tests it first.
#
#   tests/check_excerpts.sh        (run by make check and make test)
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/lib.sh"

if ! out=$(tests/excerpts_selftest.sh 2>&1); then
  echo "$out"
  exit 1
fi
python3 tests/excerpts.py --root "$ROOT"
