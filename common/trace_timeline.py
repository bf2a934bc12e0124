#!/usr/bin/python3
"""Draws a timeline picture of a GT_TRACE file (Chrome trace-event JSON).

    trace_timeline.py TRACE.json OUT.png|OUT.svg [--title TEXT]

One row per green thread (and one for the OS thread's idle time); a bar
for every stretch a thread held the CPU ("run" events), coloured by the
thread's priority, with a tick at its end coloured by how it ended (time
slice used, yield, outranked by a higher priority, blocked); markers for
create, block, wake, priority change and finish (a block on a descriptor
and the wake that ends it with markers of their own). Below, the same stretches
in order (the first 60), labelled. Uses matplotlib (Debian: python3-matplotlib), so run it with the
system Python, /usr/bin/python3.
"""
import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

MARKERS = {  # instant event -> (marker, colour, label)
    "create": ("^", "#0072B2", "create"),
    "block": ("s", "#D55E00", "block"),
    "wake": ("o", "#009E73", "wake"),
    "priority": ("D", "#CC79A7", "priority change"),
    "finish": ("x", "#000000", "finish"),
}
# A block on a descriptor (the wait reason "readable" or "writable", with
# "fd") and the wake that ends it, drawn apart from waits for a thread, a
# lock or a sleep.
IO_MARKERS = {
    "block": ("v", "#E69F00", "block on a descriptor"),
    "wake": ("P", "#56B4E9", "descriptor ready"),
}
IO_WAITS = ("readable", "writable")


def marker_for(e):
    """(marker, colour, label) of an instant event, or None."""
    args = e.get("args", {})
    if args.get("waiting for", args.get("waited for")) in IO_WAITS and e["name"] in IO_MARKERS:
        return IO_MARKERS[e["name"]]
    return MARKERS.get(e["name"])

ENDINGS = {  # "ended by" of a run -> (colour, label); others: blocked
    "time slice": ("#0072B2", "ended: time slice used (timer)"),
    "yield": ("#009E73", "ended: yield"),
    "outranked": ("#CC79A7", "ended: outranked (higher priority READY)"),
}
BLOCKED = ("#D55E00", "ended: blocked / finished")
SHOWN_IN_ORDER = 60


def load(path):
    with open(path, errors="replace") as f:
        text = f.read().strip()
    if not text.endswith("]"):
        # A process that died mid-trace: the JSON array format allows the
        # missing "]"; drop a last event that was only half written.
        lines = text.split("\n")
        while lines:
            try:
                return json.loads("\n".join(lines).rstrip(",") + "]")
            except json.JSONDecodeError:
                lines.pop()
        sys.exit(f"{path}: no complete trace events")
    return json.loads(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("out")
    ap.add_argument("--title", default="Which thread ran when")
    args = ap.parse_args()
    events = load(args.trace)

    names = {e["tid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e["name"] == "thread_name"}
    tids = sorted(names, key=lambda t: (t == 0, t))  # threads by id, idle last
    if not tids:
        sys.exit(f"{args.trace}: no thread_name events: is it a GT_TRACE file?")
    row = {tid: i for i, tid in enumerate(reversed(tids))}
    cmap = plt.get_cmap("viridis")

    runs = sorted((e for e in events if e.get("ph") == "X"), key=lambda e: e["ts"])
    fig, (ax, order) = plt.subplots(2, 1, figsize=(11, 1.1 * len(tids) + 2.6),
                                    gridspec_kw={"height_ratios": [1, 1]})

    # Top: real time.
    end = 0.0
    for e in runs:
        start, dur = e["ts"] / 1000.0, max(e["dur"] / 1000.0, 0.02)  # ms; keep tiny slices visible
        end = max(end, start + dur)
        colour = "#BBBBBB" if e["tid"] == 0 else cmap(e["args"]["priority"] / 31.0)
        ax.broken_barh([(start, dur)], (row[e["tid"]] - 0.35, 0.7), facecolors=colour, edgecolors="black",
                       linewidth=0.3)
    seen = set()
    for e in runs:
        ended = e.get("args", {}).get("ended by")
        if e["tid"] == 0 or not ended:
            continue
        colour, label = ENDINGS.get(ended, BLOCKED)
        ax.plot([(e["ts"] + e["dur"]) / 1000.0] * 2, [row[e["tid"]] - 0.42, row[e["tid"]] + 0.42], color=colour,
                linewidth=1.6, label=label if label not in seen else None)
        seen.add(label)
    for e in events:
        if e.get("ph") != "i" or marker_for(e) is None:
            continue
        marker, colour, label = marker_for(e)
        ax.plot(e["ts"] / 1000.0, row[e["tid"]] + 0.42, marker=marker, color=colour, markersize=5, linestyle="",
                label=label if label not in seen else None)
        seen.add(label)
    ax.set_xlabel("time since the trace started (ms)")
    ax.set_xlim(0, end * 1.02 if end else 1)
    ax.set_title(args.title + "\nreal time: bars are stretches on the CPU, coloured by priority (0-31); grey: OS thread idle",
                 fontsize=10)
    ax.legend(loc="upper right", fontsize=7, ncol=min(len(seen), 5) or 1, framealpha=0.9)

    # Bottom: the same stretches in order, one slot each, so that stretches
    # of microseconds are as visible as ones of milliseconds.
    shown = runs[:SHOWN_IN_ORDER]
    for i, e in enumerate(shown):
        colour = "#BBBBBB" if e["tid"] == 0 else cmap(e["args"]["priority"] / 31.0)
        order.broken_barh([(i, 0.9)], (row[e["tid"]] - 0.35, 0.7), facecolors=colour, edgecolors="black",
                          linewidth=0.3)
        ended = e.get("args", {}).get("ended by")
        if ended:
            order.text(i + 0.45, row[e["tid"]], ended, ha="center", va="center", fontsize=6, rotation=90
                       if len(ended) > 5 else 0, color="white" if e["args"]["priority"] < 20 else "black")
    first = "" if len(shown) == len(runs) else f"the first {len(shown)} of {len(runs)} "
    order.set_xlabel(f"{first}stretches on the CPU, in the order they happened (label: how each ended)")
    order.set_xlim(-0.2, max(len(shown), 1))
    order.set_xticks(range(len(shown)))
    order.set_xticklabels([str(i + 1) for i in range(len(shown))], fontsize=7)

    for a in (ax, order):
        a.set_yticks(range(len(tids)))
        a.set_yticklabels([names[t] for t in reversed(tids)])
        a.set_ylim(-0.7, len(tids) - 0.3)
        a.grid(axis="x", linestyle=":", linewidth=0.5)
    fig.colorbar(plt.cm.ScalarMappable(norm=plt.Normalize(0, 31), cmap=cmap), ax=[ax, order], pad=0.01,
                 label="priority")
    fig.savefig(args.out, dpi=110, bbox_inches="tight",
                metadata={"Software": None} if args.out.endswith(".png") else {"Date": None})


if __name__ == "__main__":
    main()
