#!/usr/bin/env python3
"""The hand-written phase diffs in the walkthroughs do what make diff-phaseN does.

    diff_commands.py ROOT

Every Markdown file a reader follows (phase*/README.md, README.md,
docs/*.md) that shows `diff -ruN` must show it as the loop that
tools/phase_diff.sh runs, on lines of their own inside a code block:

    for p in include src examples tests bench diagrams Makefile README.md; do
      diff -ruN -x build -x '*.svg' -x '*.png' phase1-basic/$p phase2-management/$p
    done

Each such loop is run with bash from ROOT and its output compared with
`tools/phase_diff.sh N` (N: the phase of the second folder); they must be
equal byte for byte. The loop may be indented (in a list item). A `diff -ruN` anywhere else in those files (inline, or
in another shape) fails: it could not be checked. Prints one line per loop
or problem; exit status 1 if anything failed.
"""
import glob
import os
import re
import subprocess
import sys
import textwrap

LOOP_START = re.compile(r"^\s*for p in [^;]*; do$")
DIFF_LINE = re.compile(r"^\s+diff -ruN .* (phase(\d)-[\w-]+)/\$p (phase(\d)-[\w-]+)/\$p$")


def walkthroughs(root):
    files = sorted(glob.glob(os.path.join(root, "phase[0-9]-*", "README.md")))
    files += [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    return [f for f in files if os.path.isfile(f)]


def loops(lines):
    """(first line number, loop text, new phase number) of every checked loop, and
    the line numbers of `diff -ruN` mentions that are not inside one."""
    found, stray, i = [], [], 0
    while i < len(lines):
        if LOOP_START.match(lines[i]) and i + 2 < len(lines) and lines[i + 2].strip() == "done":
            m = DIFF_LINE.match(lines[i + 1])
            if m:
                found.append((i + 1, textwrap.dedent("\n".join(lines[i:i + 3])) + "\n", int(m.group(4))))
                i += 3
                continue
        if "diff -ruN" in lines[i]:
            stray.append(i + 1)
        i += 1
    return found, stray


def main(argv):
    root = os.path.abspath(argv[1] if len(argv) > 1 else ".")
    failures = checked = 0
    expected = {}
    for md in walkthroughs(root):
        rel = os.path.relpath(md, root)
        with open(md, encoding="utf-8") as f:
            found, stray = loops(f.read().split("\n"))
        for line in stray:
            print(f"{rel}:{line}: a hand-written `diff -ruN` that is not the checked loop "
                  "(write it as tools/phase_diff.sh's header shows, on lines of its own)")
            failures += 1
        for line, loop, n in found:
            checked += 1
            if n not in expected:
                expected[n] = subprocess.run([os.path.join(root, "tools", "phase_diff.sh"), str(n)], cwd=root,
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False).stdout
            got = subprocess.run(["bash", "-c", loop], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 check=False).stdout
            if got == expected[n]:
                print(f"{rel}:{line}: the hand-written diff is make diff-phase{n}")
            else:
                print(f"{rel}:{line}: the hand-written diff is not what make diff-phase{n} prints "
                      f"({len(got.splitlines())} lines against {len(expected[n].splitlines())}): "
                      "copy the loop from tools/phase_diff.sh")
                failures += 1
    print(f"hand-written diffs: {checked} checked, {failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
