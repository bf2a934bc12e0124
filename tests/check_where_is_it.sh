#!/usr/bin/env bash
# Every phase's walkthrough has a "Where is it" table (concept -> file and
# symbol), and every file and symbol it names exists: a rename that leaves
# the table behind fails here.
#
#   tests/check_where_is_it.sh        (run by make check and make test)
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/lib.sh"

python3 tests/where_is_it.py --root "$ROOT"
