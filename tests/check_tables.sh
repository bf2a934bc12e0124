#!/usr/bin/env bash
# The "What changed" table of every phase's walkthrough says what the diff
# says: the same files, the same line counts (make diff-phaseN), the same
# runtime figures above it. tools/changes_table.py writes the tables (the
# "what it adds" column is written by hand and kept); this check runs it
# with --check, which changes nothing and fails on a count that drifted, a
# changed file no row covers, or a row that covers no changed file.
#
#   tests/check_tables.sh        (run by make check and make test)
#   make changes-tables          (rewrite the tables after a change)
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/lib.sh"

if ! python3 tools/changes_table.py --check; then
  echo "check_tables: a walkthrough's changes table drifted from its diff: run make changes-tables"
  exit 1
fi
echo "check_tables: every changes table matches its diff ($(elapsed))"
