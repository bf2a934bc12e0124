#!/usr/bin/env python3
"""Writes the "What changed" table of each phase's walkthrough from the real diff.

    tools/changes_table.py [--check] [N ...]      (make changes-tables; make check runs --check)

A walkthrough (phase<N>-*/README.md, N >= 2) holds its table between two
marker lines:

    <!-- changes table: begin (tools/changes_table.py writes it; make check compares) -->
    ...a summary line, then | file | lines | what it adds | rows...
    <!-- changes table: end -->

Each row's first column names files or folders of the phase, in backquotes,
separated by commas (`src/trace.hpp`, `src/trace.cpp` or `tests/`); a file
counts in the row that names it, else in the row of its nearest folder.
The third column, why the files changed, is written by hand and kept as it
is. This script fills in the rest from `tools/phase_diff.sh N` (exactly
what make diff-phaseN prints):

- the lines column of every row: "new, 106" when every file of the row is
  new, "+154 −19" otherwise (a zero side left out), "deleted, 40" when
  every file of the row was removed;
- the rows themselves: a file the diff shows that no row covers gets a row
  of its own, with "(say what it adds)" for you to replace; a row that
  covers no changed file is dropped; rows go in the order of the diff
  (the runtime first);
- the summary above the table: the diff but the walkthrough, the runtime's
  part (include/ and src/) and how much of that is comment lines (lines
  that start with //, /* or *).

The walkthrough (README.md) and the diagrams (diagrams/) are left out of the
table: the rest of the walkthrough describes them.

Without --check, it rewrites the tables in place and says what it changed.
With --check, it changes nothing and fails (exit status 1) when a table is
not what it would write, naming the rows that differ.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN = re.compile(r"^<!-- changes table: begin\b.*-->$")
END = "<!-- changes table: end -->"
BEGIN_LINE = "<!-- changes table: begin (tools/changes_table.py writes it; make check compares) -->"
HEADER = ["| file | lines | what it adds |", "|---|---|---|"]
LEFT_OUT = ("README.md", "diagrams/")
RUNTIME = ("include/", "src/")
TO_DESCRIBE = "(say what it adds)"
MINUS = "\u2212"


def phase_folder(n):
    found = sorted(glob.glob(os.path.join(ROOT, f"phase{n}-*")))
    return found[0] if found else None


def parse_diff(text, new):
    """{file: [added, removed, added comment lines]} in diff order, from a unified diff."""
    files, current, left, right = {}, None, 0, 0
    for line in text.split("\n"):
        if left > 0 or right > 0:
            tag = line[:1]
            if tag == "+":
                files[current][0] += 1
                right -= 1
                body = line[1:].strip()
                if body.startswith(("//", "/*", "*")):
                    files[current][2] += 1
            elif tag == "-":
                files[current][1] += 1
                left -= 1
            elif tag == " ":
                left -= 1
                right -= 1
            continue
        if line.startswith("+++ "):
            current = line[4:].split("\t")[0]
            current = current[len(new) + 1:] if current.startswith(new + "/") else current
            files.setdefault(current, [0, 0, 0])
        elif line.startswith("@@ "):
            m = re.match(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@", line)
            left = int(m.group(1)) if m.group(1) is not None else 1
            right = int(m.group(2)) if m.group(2) is not None else 1
        elif line.startswith("Binary files ") and line.endswith(" differ"):
            path = line[:-len(" differ")].split(" and ")[-1]
            files.setdefault(path[len(new) + 1:] if path.startswith(new + "/") else path, [0, 0, 0])
    return files


def the_diff(n):
    """{file: [added, removed, comments]} of make diff-phaseN, checked against its --stat total."""
    new = os.path.basename(phase_folder(n))
    tool = os.path.join(ROOT, "tools", "phase_diff.sh")
    text = subprocess.run([tool, str(n)], cwd=ROOT, stdout=subprocess.PIPE, check=True).stdout.decode()
    files = parse_diff(text, new)
    stat = subprocess.run([tool, str(n), "--stat"], cwd=ROOT, stdout=subprocess.PIPE, check=True).stdout.decode()
    total = stat.strip().split("\n")[-1].split()
    mine = ["total", f"+{sum(f[0] for f in files.values())}", f"-{sum(f[1] for f in files.values())}"]
    if total != mine:
        sys.exit(f"changes_table.py: counted {mine} in make diff-phase{n}, but --stat says {total}")
    return files


def split_row(line):
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
    return cells if len(cells) == 3 else None


def row_keys(cell):
    return re.findall(r"`([^`]+)`", cell)


def owner(path, rows):
    """Index of the row that covers path: the one naming it, else the one naming its nearest folder."""
    best, best_len = None, -1
    for i, row in enumerate(rows):
        for key in row["keys"]:
            if key == path:
                return i
            if key.endswith("/") and path.startswith(key) and len(key) > best_len:
                best, best_len = i, len(key)
    return best


def lines_cell(paths, files, old, new):
    added = sum(files[p][0] for p in paths)
    removed = sum(files[p][1] for p in paths)
    if all(not os.path.exists(os.path.join(old, p)) for p in paths):
        return f"new, {added}"
    if all(not os.path.exists(os.path.join(new, p)) for p in paths):
        return f"deleted, {removed}"
    parts = ([f"+{added}"] if added else []) + ([f"{MINUS}{removed}"] if removed else [])
    return " ".join(parts) or "+0"


def summary(n, files):
    """The line above the table (wrapped), from every file of the diff but the walkthrough."""
    files = {p: f for p, f in files.items() if p != "README.md"}
    added = sum(f[0] for f in files.values())
    removed = sum(f[1] for f in files.values())
    runtime = [f for p, f in files.items() if p.startswith(RUNTIME)]
    r_added, r_removed, r_comments = (sum(f[i] for f in runtime) for i in range(3))
    share = round(100 * r_comments / r_added) if r_added else 0
    text = (f"Without this walkthrough, `make diff-phase{n}` is +{added} {MINUS}{removed} lines; the "
            f"runtime's part (`include/`, `src/`) is +{r_added} {MINUS}{r_removed}, and {share}% of the lines "
            f"it adds are comment lines. Per file, without the diagrams:")
    return textwrap.wrap(text, 76, break_on_hyphens=False)


def generate(n, block):
    """The table block (lines between the markers) as it should be, and notes on what changed."""
    old, new = phase_folder(n - 1), phase_folder(n)
    everything = the_diff(n)
    files = {p: f for p, f in everything.items() if not p.startswith(LEFT_OUT)}
    order = list(files)
    rows = []
    for line in block:
        cells = split_row(line) if line.startswith("|") else None
        if cells and row_keys(cells[0]) and not set(cells[2]) <= set("-"):
            rows.append({"keys": row_keys(cells[0]), "first": cells[0], "why": cells[2], "files": []})
    notes = []
    for path in order:
        i = owner(path, rows)
        if i is None:
            rows.append({"keys": [path], "first": f"`{path}`", "why": TO_DESCRIBE, "files": [path]})
            notes.append(f"{path} changed, but no row covers it (the tool adds one, for you to describe)")
        else:
            rows[i]["files"].append(path)
    for row in rows:
        if not row["files"]:
            notes.append(f"the row {row['first']} covers no file that changed (the tool drops it)")
    rows = [r for r in rows if r["files"]]
    rows.sort(key=lambda r: min(order.index(p) for p in r["files"]))
    out = summary(n, everything) + [""] + HEADER
    out += [f"| {r['first']} | {lines_cell(r['files'], files, old, new)} | {r['why']} |" for r in rows]
    return out, notes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="change nothing; fail when a table drifted")
    ap.add_argument("phases", nargs="*", type=int, help="phase numbers (default: every phase from 2)")
    args = ap.parse_args()
    numbers = args.phases or sorted(int(os.path.basename(p)[5]) for p in glob.glob(os.path.join(ROOT, "phase[0-9]-*")))
    failures = 0
    for n in numbers:
        if n < 2 or not phase_folder(n) or not phase_folder(n - 1):
            continue
        md = os.path.join(phase_folder(n), "README.md")
        rel = os.path.relpath(md, ROOT)
        with open(md, encoding="utf-8") as f:
            text = f.read().split("\n")
        begins = [i for i, line in enumerate(text) if BEGIN.match(line)]
        ends = [i for i, line in enumerate(text) if line == END]
        if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
            print(f"{rel}: needs one changes table between '{BEGIN_LINE}' and '{END}' lines "
                  f"(found {len(begins)} begin and {len(ends)} end marker(s))")
            failures += 1
            continue
        b, e = begins[0], ends[0]
        current = text[b + 1:e]
        wanted, notes = generate(n, current)
        if wanted == current:
            print(f"{rel}: the changes table matches make diff-phase{n}")
            continue
        if args.check:
            failures += 1
            print(f"{rel}: the changes table is not what make diff-phase{n} gives; run tools/changes_table.py {n}:")
            for note in notes:
                print(f"    {note}")
            for line in [f"- {x}" for x in current if x not in wanted] + [f"+ {x}" for x in wanted if x not in current]:
                print(f"    {line[:150]}")
        else:
            text[b + 1:e] = wanted
            with open(md, "w", encoding="utf-8") as f:
                f.write("\n".join(text))
            print(f"{rel}: changes table rewritten from make diff-phase{n}")
            for note in notes:
                print(f"    {note}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
