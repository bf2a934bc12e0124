#!/usr/bin/env python3
"""Checks the "Where is it" table of every phase's walkthrough.

    tests/where_is_it.py [--root DIR]

Each phase's README.md has a section "## Where is it": a table whose rows map
a concept to places, written as

    | concept | [src/file.cpp](src/file.cpp) · `symbol`, `other`; [src/x.hpp](src/x.hpp) · `name` |

For every place, the file must exist (relative to the phase folder) and each
`symbol` (its last part after ::, as a whole word) must occur in that file,
so a renamed or moved symbol fails `make check`. A phase walkthrough without
the section fails too. Exit status 0: all good; 1: problems, one per line.
"""
import argparse
import os
import re
import sys

PLACE = re.compile(r"\[([^\]]+)\]\(([^)]+)\)\s*·\s*((?:`[^`]+`(?:\s*,\s*)?)+)")


def check_phase(root, phase):
    problems = []
    readme = os.path.join(root, phase, "README.md")
    if not os.path.exists(readme):
        return [f"{phase}: no README.md"], 0
    lines = open(readme, encoding="utf-8").read().splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.strip() == "## Where is it")
    except StopIteration:
        return [f"{phase}/README.md: no '## Where is it' section (a table of concept -> file and symbol)"], 0
    rows = 0
    for n in range(start + 1, len(lines)):
        line = lines[n]
        if line.startswith("## "):
            break
        if not line.startswith("|") or set(line.replace("|", "").strip()) <= set("-: "):
            continue
        places = PLACE.findall(line)
        if not places:
            continue
        rows += 1
        for text, target, symbols in places:
            where = f"{phase}/README.md:{n + 1}"
            if text != target:
                problems.append(f"{where}: link text {text} differs from its target {target}")
            path = os.path.join(root, phase, target)
            if not os.path.isfile(path):
                problems.append(f"{where}: {target} does not exist in {phase}/")
                continue
            body = open(path, encoding="utf-8", errors="replace").read()
            for symbol in re.findall(r"`([^`]+)`", symbols):
                word = symbol.split("::")[-1]
                if not re.search(r"(?<![A-Za-z0-9_])" + re.escape(word) + r"(?![A-Za-z0-9_])", body):
                    problems.append(f"{where}: `{symbol}` does not occur in {target} (renamed or moved?)")
    if rows == 0:
        problems.append(f"{phase}/README.md: the '## Where is it' section has no rows naming a file and a symbol")
    return problems, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    args = parser.parse_args()
    phases = sorted(d for d in os.listdir(args.root) if re.fullmatch(r"phase[0-9]-.+", d) and os.path.isdir(os.path.join(args.root, d)))
    problems, total = [], 0
    for phase in phases:
        p, rows = check_phase(args.root, phase)
        problems += p
        total += rows
    for p in problems:
        print(p)
    print(f"where_is_it: {total} row(s) in {len(phases)} walkthrough(s), {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
