#!/usr/bin/env python3
"""Checks that the labelled code excerpts in the walkthroughs match the code.

    tests/excerpts.py [--root DIR] [--no-run] [FILE.md ...]

Without FILE arguments it reads every phase's walkthrough (phase[0-9]-*/*.md),
the top-level *.md files and docs/*.md under the root (default: the folder
above this script). Exit status 0: every labelled block matches; 1: some
do not (one message per block, "file.md:line: ..."); 2: usage error.

Two labels, each a line of its own outside any code block, followed by a
fenced code block (``` or ~~~; blank lines may stand between the two):

1. An excerpt of a file:

       File: [src/scheduler.cpp](src/scheduler.cpp) · `scheduler::yield`
       ```cpp
       void scheduler::yield() noexcept {
           ...
           switch_to(next);
       }
       ```

   The link target is resolved the way a code host resolves it: relative to
   the folder of the Markdown file (a phase's README.md: the phase folder;
   the top-level README.md: the repository root; docs/x.md: docs/, so
   ../phase1-basic/src/...). The link text must be the same path, or the path
   from the repository root. The "· ..." part is optional and says what the
   excerpt shows; every `symbol` in backquotes there must occur in the file
   (its last part, as a word: `yield` for `scheduler::yield`), so a renamed
   symbol fails the check. Free text (· frame layout) is not checked.
   Every line of the block must occur in the file, in order, on consecutive
   lines, except that a line that is only "...", "// ...", "# ..." or
   "/* ... */" (an elision) stands for any number of skipped lines, zero
   included. Trailing whitespace is ignored; indentation is not.

2. The output of an example program:

       Output of [examples/round_robin.cpp](examples/round_robin.cpp):
       ```
       $ build/examples/round_robin
       main (thread 1) creates alpha, beta and gamma
       ...
       ```

   The program is built (make -C <phase> examples) and run from its phase
   folder as build/examples/<name>; its standard output must equal the
   block's text exactly. A first line "$ <command>" is shown to the reader
   and ignored here. Here "..." is text, not an elision: label only demos
   whose output is deterministic.

A label whose file does not exist, a label line that does not parse, a label
not followed by a code block and a code block that is never closed all fail.
"""
import argparse
import difflib
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

FILE_LABEL = re.compile(r"^\s*File:\s*\[([^\]]+)\]\(([^)\s]+)\)\s*(?:·\s*(\S.*?))?\s*$")
OUTPUT_LABEL = re.compile(r"^\s*Output of\s+\[([^\]]+)\]\(([^)\s]+)\):\s*$")
# Lines that look like a label but are not one: a typo, not prose.
ALMOST_FILE = re.compile(r"^\s*File:")
ALMOST_OUTPUT = re.compile(r"^\s*Output of\s+\[")
FENCE_OPEN = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
ELISIONS = {"...", "// ...", "# ...", "/* ... */"}
RUN_TIMEOUT = 60


class Block:
    """A fenced code block: lines[i] is Markdown line first + i."""

    def __init__(self, fence_line, first, lines):
        self.fence_line = fence_line
        self.first = first
        self.lines = lines


class Checker:
    def __init__(self, root, run_examples):
        self.root = root.resolve()
        self.run_examples = run_examples
        self.errors = []
        self.checked = 0
        self.built = {}  # phase folder -> error text or None

    def error(self, md, line, text):
        self.errors.append(f"{self.rel(md)}:{line}: {text}")

    def rel(self, path):
        try:
            return str(Path(path).resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    # ---- Markdown --------------------------------------------------------
    def scan(self, md):
        """Yields ('label', lineno, text) and ('block', Block) in order."""
        lines = md.read_text(encoding="utf-8").split("\n")
        i = 0
        while i < len(lines):
            m = FENCE_OPEN.match(lines[i])
            if m and not (m.group(2)[0] == "`" and "`" in m.group(3)):
                indent, fence = len(m.group(1)), m.group(2)
                close = re.compile(r"^\s*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$")
                body = []
                j = i + 1
                while j < len(lines) and not close.match(lines[j]):
                    body.append(_dedent(lines[j], indent))
                    j += 1
                if j == len(lines):
                    yield ("unclosed", i + 1, None)
                    return
                yield ("block", Block(i + 1, i + 2, body))
                i = j + 1
                continue
            yield ("line", i + 1, lines[i])
            i += 1

    def check_markdown(self, md):
        pending = None  # (kind, lineno, match) of a label waiting for its block
        for kind, *rest in self.scan(md):
            if kind == "unclosed":
                self.error(md, rest[0], "code block is never closed")
                return
            if kind == "block":
                block = rest[0]
                if pending:
                    label_kind, lineno, m = pending
                    pending = None
                    self.checked += 1
                    if label_kind == "file":
                        self.check_excerpt(md, lineno, m, block)
                    else:
                        self.check_output(md, lineno, m, block)
                continue
            lineno, text = rest
            if pending and text.strip():
                self.error(md, pending[1], "label is not followed by a fenced code block")
                pending = None
            fm, om = FILE_LABEL.match(text), OUTPUT_LABEL.match(text)
            if fm:
                pending = ("file", lineno, fm)
            elif om:
                pending = ("output", lineno, om)
            elif ALMOST_FILE.match(text) or ALMOST_OUTPUT.match(text):
                self.error(md, lineno, "looks like a label but does not parse; the forms are\n"
                           "    File: [path](path) · `symbol` (the · part is optional)\n"
                           "    Output of [examples/name.cpp](examples/name.cpp):")
        if pending:
            self.error(md, pending[1], "label is not followed by a fenced code block")

    def resolve(self, md, lineno, text, target):
        """The labelled file as a Path, or None after reporting why not."""
        path = (md.parent / target).resolve()
        from_root = self.rel(path)
        if text != target and text != from_root:
            self.error(md, lineno, f"label text [{text}] and link ({target}) name different files")
            return None
        if not str(path).startswith(str(self.root) + os.sep):
            self.error(md, lineno, f"label names {target}, which is outside the repository")
            return None
        if not path.is_file():
            self.error(md, lineno, f"label names {target}, which does not exist ({from_root})")
            return None
        return path

    # ---- File: excerpts --------------------------------------------------
    def check_excerpt(self, md, lineno, m, block):
        text, target, symbol = m.group(1), m.group(2), m.group(3)
        path = self.resolve(md, lineno, text, target)
        if path is None:
            return
        try:
            source = [line.rstrip() for line in path.read_text(encoding="utf-8").split("\n")]
        except UnicodeDecodeError:
            self.error(md, lineno, f"{target} is not a text file")
            return
        where = f"excerpt of {target}" + (f" · {symbol}" if symbol else "")
        whole = "\n".join(source)
        for sym in re.findall(r"`([^`]+)`", symbol or ""):
            last = re.split(r"::|\.", re.sub(r"\(.*$", "", sym.strip()))[-1].strip()
            if last and not re.search(r"(?<![\w])" + re.escape(last) + r"(?![\w])", whole):
                self.error(md, lineno, f"{where}: `{last}` does not occur in {target} (renamed?)")
                return
        # Split the block into runs of lines separated by elisions.
        segments, run = [], []
        for k, line in enumerate(block.lines):
            line = line.rstrip()
            if line.strip() in ELISIONS:
                if run:
                    segments.append(run)
                run = []
            else:
                run.append((block.first + k, line))
        if run:
            segments.append(run)
        if not segments:
            self.error(md, block.fence_line, f"{where}: the block shows no line of the file")
            return
        pos = 0  # the first file line (0-based) the next run may start at
        for seg in segments:
            found = _find_run(source, [l for _, l in seg], pos)
            if found is not None:
                pos = found + len(seg)
                continue
            # Report the longest prefix of this run that does match somewhere.
            best_at, best_len = None, 0
            for start in range(pos, len(source)):
                n = 0
                while n < len(seg) and start + n < len(source) and source[start + n] == seg[n][1]:
                    n += 1
                if n > best_len:
                    best_at, best_len = start, n
            bad_line, bad_text = seg[best_len]
            msg = (f"{where} does not match the file; the first line that does not:\n"
                   f"    {self.rel(md)}:{bad_line}: {bad_text!r}\n")
            if best_len:
                nxt = source[best_at + best_len] if best_at + best_len < len(source) else "<end of file>"
                msg += (f"    (the block's lines before it match {target}:{best_at + 1}-{best_at + best_len}; "
                        f"line {best_at + best_len + 1} there is {nxt!r})")
            else:
                earlier = [i for i in range(0, min(pos, len(source))) if source[i] == bad_text]
                msg += f"    is not in {target}" + (f" after line {pos}" if pos else "")
                if earlier:
                    msg += f" (it is at line {earlier[0] + 1}: out of order, or an elision is missing)"
            self.error(md, block.fence_line, msg)
            return

    # ---- Output of examples ------------------------------------------------
    def check_output(self, md, lineno, m, block):
        text, target = m.group(1), m.group(2)
        path = self.resolve(md, lineno, text, target)
        if path is None:
            return
        parts = Path(self.rel(path)).parts
        if not (len(parts) == 3 and re.fullmatch(r"phase[0-9]-.*", parts[0]) and parts[1] == "examples"
                and parts[2].endswith(".cpp")):
            self.error(md, lineno, f"Output of label must name a phase's examples/<name>.cpp, not {target}")
            return
        if not self.run_examples:
            return
        phase = self.root / parts[0]
        if phase not in self.built:
            jobs = str(os.cpu_count() or 2)
            proc = subprocess.run(["make", "--no-print-directory", "-s", "-j" + jobs, "-C", str(phase), "examples"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
            self.built[phase] = None if proc.returncode == 0 else proc.stdout.decode(errors="replace")[-3000:]
        if self.built[phase] is not None:
            self.error(md, lineno, f"make -C {parts[0]} examples failed:\n{self.built[phase]}")
            return
        exe = phase / _build_folder(phase) / "examples" / parts[2][:-len(".cpp")]
        try:
            proc = subprocess.run([str(exe)], cwd=phase, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=RUN_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            self.error(md, lineno, f"{self.rel(exe)} did not finish within {RUN_TIMEOUT} s")
            return
        if proc.returncode != 0:
            self.error(md, lineno, f"{self.rel(exe)} exited with status {proc.returncode}:\n"
                       + proc.stderr.decode(errors="replace")[-2000:])
            return
        shown = block.lines[1:] if block.lines and block.lines[0].startswith("$ ") else block.lines
        expected = "".join(line + "\n" for line in shown)
        actual = proc.stdout.decode(errors="replace")
        if expected != actual:
            diff = difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                        f"{self.rel(md)} (block at line {block.fence_line})",
                                        f"output of {self.rel(exe)}")
            lines = list(diff)
            shown_diff = "".join("    " + l if l.endswith("\n") else "    " + l + "\n" for l in lines[:30])
            if not actual.endswith("\n") and actual:
                shown_diff += "    (the output does not end with a newline)\n"
            self.error(md, block.fence_line, f"the block labelled Output of {target} is not what the "
                       f"program prints now; paste its output:\n{shown_diff.rstrip()}")


@functools.lru_cache(maxsize=None)
def _build_folder(phase):
    """The folder the phase's make builds into: build/, or build/clang when
    CXX=clang++ came from the environment (`make test CXX=clang++`)."""
    proc = subprocess.run(["make", "--no-print-directory", "-s", "-C", str(phase),
                           "--eval", "gt-print-build: ; @echo $(BUILD)", "gt-print-build"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    folder = proc.stdout.decode(errors="replace").strip()
    return folder if proc.returncode == 0 and folder else "build"


def _dedent(line, indent):
    n = 0
    while n < indent and n < len(line) and line[n] == " ":
        n += 1
    return line[n:]


def _find_run(source, run, start):
    """The first index >= start where run occurs in source, or None."""
    for i in range(start, len(source) - len(run) + 1):
        if source[i:i + len(run)] == run:
            return i
    return None


def default_files(root):
    files = sorted(root.glob("*.md")) + sorted(root.glob("docs/*.md"))
    files += sorted(p for p in root.glob("phase[0-9]-*/*.md"))
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--no-run", action="store_true", help="do not build and run examples")
    ap.add_argument("files", nargs="*", type=Path)
    args = ap.parse_args()
    checker = Checker(args.root, not args.no_run)
    files = args.files or default_files(checker.root)
    for md in files:
        if not md.is_file():
            print(f"{md}: no such file", file=sys.stderr)
            return 2
        checker.check_markdown(md.resolve())
    for e in checker.errors:
        print(e)
    print(f"excerpts: {checker.checked} labelled block(s) in {len(files)} Markdown file(s), "
          f"{len(checker.errors)} problem(s)")
    return 1 if checker.errors else 0


if __name__ == "__main__":
    sys.exit(main())
