#!/usr/bin/env python3
"""Is a committed diagram render (diagrams/<name>.svg) the render of its
source (diagrams/<name>.dot) as it is now? Font-independent, so that it
holds on any machine, not only on the one that rendered it.

    diagrams.py COMMITTED.svg FRESH.svg SOURCE.dot

COMMITTED.svg is the render in the repository, FRESH.svg a render of
SOURCE.dot made just now (dot -Tsvg). Two things are compared, and each
difference is printed as one line (a few lines of detail below it):

- The source's fingerprint. `make diagrams` (common/phase.mk) appends
  "<!-- source: NAME.dot sha256 HEX -->" to every render; HEX must be the
  SHA-256 of SOURCE.dot now. Any change to the source, even one that only
  moves things, makes the render stale.
- What the picture says: every SVG element in document order (nodes, edges
  and clusters with their titles and ids, the text of every label, colours,
  line styles, font family, size and weight, links), with the geometry left
  out (coordinates, sizes, paths, transforms). The geometry is the only part
  of a Graphviz render that depends on the fonts installed, so two machines
  with different fonts agree on the rest.

Exit status 0 when both agree, 1 otherwise.
"""
import difflib
import hashlib
import re
import sys
import xml.etree.ElementTree as ET

# Attributes that carry geometry: they change with the fonts' metrics.
GEOMETRY = {"x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "width", "height", "points", "d",
            "transform", "viewBox", "textLength"}
FINGERPRINT = re.compile(r"<!-- source: (\S+) sha256 ([0-9a-f]{64}) -->")


def meaning(path):
    """The render as lines, one per element: tag, non-geometric attributes, text."""
    lines = []

    def walk(element, depth):
        tag = element.tag.split("}")[-1]
        attrs = sorted((name.split("}")[-1], value) for name, value in element.attrib.items()
                       if name.split("}")[-1] not in GEOMETRY)
        attr_text = " ".join(f'{name}="{value}"' for name, value in attrs)
        text = (element.text or "").strip()
        lines.append(f"{'  ' * depth}<{tag}{' ' if attr_text else ''}{attr_text}>{text}")
        for child in element:
            walk(child, depth + 1)

    walk(ET.parse(path).getroot(), 0)
    return lines


def main(argv):
    if len(argv) != 4:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    committed, fresh, source = argv[1:]
    problems = 0

    with open(source, "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    with open(committed, encoding="utf-8", errors="replace") as f:
        found = FINGERPRINT.findall(f.read())
    if not found:
        print(f"{committed} has no source fingerprint: render it with make diagrams, not dot by hand")
        problems += 1
    elif found[-1][1] != want:
        print(f"{committed} was rendered from another version of {source}: run make diagrams and commit the render")
        problems += 1

    try:
        old, new = meaning(committed), meaning(fresh)
    except ET.ParseError as e:
        print(f"{committed} is not an SVG file Graphviz wrote ({e}): run make diagrams")
        return 1
    if old != new:
        print(f"{committed} does not say what a fresh render of {source} says (labels, nodes, edges, styles):")
        diff = difflib.unified_diff(old, new, "committed", "fresh render", lineterm="", n=0)
        for line in list(diff)[2:14]:
            print("    " + line)
        problems += 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
