#!/usr/bin/python3
"""Markdown table from a bench/prune/run.sh result folder.

Reads OUT/ours_r<round>.json (bench_prune) and OUT/peer_r<round>.json (peer_prune.py), the
last JSON line of each program, and prints per state (dense, pruned20) the median seconds per
call of every operation: the median over rounds of each round's median (the rounds' own
medians in brackets), and the ratio lth / numpy.partition. A figure taken while other
processes used more than 5% of the CPUs is marked with '*'. A second table gives the CPU
seconds each call used (own process, all threads): on a shared machine it is steadier than
the wall time.
Usage: summarize.py OUT
"""
import glob
import json
import os
import re
import statistics
import sys

BUSY = 0.05
COLUMNS = [  # (op as the programs name it, column heading)
    ("lth magnitude_global", "lth `prune(\"magnitude_global\")` (whole call)"),
    ("full stable sort (replaced rule)", "replaced rule (full stable sort)"),
    ("numpy.partition", "`numpy.partition`"),
    ("torch.kthvalue", "`torch.kthvalue`"),
    ("torch.topk (sorted=False)", "`torch.topk` (sorted=False)"),
]


def load(out):
    runs = []
    for path in sorted(glob.glob(os.path.join(out, "*_r*.json"))):
        m = re.match(r"(.+)_r(\d+)\.json$", os.path.basename(path))
        text = open(path).read().strip()
        if m and text:
            runs.append((int(m.group(2)), json.loads(text)))
    return runs


def fmt(v):
    return f"{v:.3f}" if v >= 0.1 else f"{v:.4f}"


def cell(samples, key):
    """median over rounds (each round's figure)."""
    if not samples:
        return "–", None
    values = [r[key] for _, r in samples]
    marks = ["*" if r["foreign_cpu_frac"] > BUSY else "" for _, r in samples]
    med = statistics.median(values)
    rounds = " / ".join(fmt(v) + m for v, m in zip(values, marks))
    return f"**{fmt(med)}** ({rounds})", med


def table(runs, key, title):
    figures = {}  # (state, op) -> [(round, record)]
    candidates = {}
    for rnd, doc in sorted(runs, key=lambda x: x[0]):
        for r in doc["results"]:
            figures.setdefault((r["state"], r["op"]), []).append((rnd, r))
            candidates[r["state"]] = r["candidates"]
    lines = [f"{title}", "",
             "| state | candidates | " + " | ".join(h for _, h in COLUMNS) + " | lth / numpy.partition |",
             "|---|---|" + "---|" * len(COLUMNS) + "---|"]
    for state in ("dense", "pruned20"):
        if state not in candidates:
            continue
        cells, meds = [], {}
        for op, _ in COLUMNS:
            text, med = cell(figures.get((state, op), []), key)
            cells.append(text)
            meds[op] = med
        ours, peer = meds["lth magnitude_global"], meds["numpy.partition"]
        ratio = f"{ours / peer:.2f}×" if ours and peer else "–"
        label = "dense masks (cycle 1)" if state == "dense" else "20 % pruned (cycle 2)"
        lines.append(f"| {label} | {candidates[state]:,} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


def main():
    out = sys.argv[1]
    runs = load(out)
    if not runs:
        sys.exit(f"summarize.py: no results under {out}")
    same = [r.get("same_masks_as_sort") for _, d in runs for r in d["results"]
            if "same_masks_as_sort" in r]
    print(table(runs, "median_s", "Median seconds per call (wall clock)"))
    print()
    print(table(runs, "cpu_s_per_call", "CPU seconds per call (own process, all threads)"))
    print()
    if same:
        print(f"masks equal to the replaced rule's: {sum(bool(s) for s in same)} of {len(same)} comparisons")
    busy = [r["foreign_cpu_frac"] for _, d in runs for r in d["results"]]
    print(f"other processes' share of the CPUs while timing: median {statistics.median(busy):.0%}, "
          f"max {max(busy):.0%}")


if __name__ == "__main__":
    main()
