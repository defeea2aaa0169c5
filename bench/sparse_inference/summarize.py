#!/usr/bin/python3
"""Markdown tables from a bench/sparse_inference/run.sh folder: images/s of lth's sparse
engine, lth's dense LibTorch forward and the PyTorch peer side by side with the ideal speedup
of each mask, the issue-18 targets checked, and each layer's density in every mask.

Usage: summarize.py OUTDIR   (reads OUTDIR/ours.jsonl and OUTDIR/peer.jsonl)
"""
import json
import os
import sys

# (family, density, batch, threads: "all") -> minimum sparse/dense ratio (issue 18).
TARGETS = [("uniform", 0.1074, 32, 3.0), ("uniform", 0.2097, 32, 2.0), ("uniform", 0.018, 32, 6.0),
           ("uniform", 0.1074, 1, 2.0)]


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.startswith("{")]


def main(out):
    ours = load(os.path.join(out, "ours.jsonl"))
    peer = {(r["batch"], r["threads"]): r for r in load(os.path.join(out, "peer.jsonl"))}
    times = [r for r in ours if r.get("kind") == "time"]
    masks = [r for r in ours if r.get("kind") == "mask"]
    by = {}
    for r in times:
        by[(r["family"], r["density"], r["batch"], r["threads"], r["engine"])] = r
    max_threads = max((r["threads"] for r in times), default=1)
    print("| mask | density (conv) | ideal | batch | threads | lth sparse img/s | lth dense img/s "
          "| PyTorch img/s | sparse / dense | sparse / PyTorch | sparse layers | weights MB sparse / dense | foreign CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    keys = sorted({k[:4] for k in by}, key=lambda k: (k[0] != "uniform", k[0], -k[1], k[2], k[3]))
    ratios = {}
    for fam, d, b, t in keys:
        s, dn = by.get((fam, d, b, t, "lth_sparse")), by.get((fam, d, b, t, "lth_dense"))
        if not s or not dn:
            continue
        pr = peer.get((b, t))
        ratio = s["img_s"] / dn["img_s"]
        ratios[(fam, d, b, t)] = ratio
        peer_s = f"{pr['img_s']:.2f}" if pr else "n/a"
        vs_peer = f"{s['img_s'] / pr['img_s']:.2f}x" if pr else "n/a"
        name = "dense" if d >= 1 else fam
        print(f"| {name} {d:g} | {s['conv_density']:.4f} | {s['ideal_speedup']:.2f}x | {b} | {t} "
              f"| {s['img_s']:.2f} | {dn['img_s']:.2f} | {peer_s} | {ratio:.2f}x | {vs_peer} "
              f"| {s['sparse_layers']} | {s['weight_mb']:.1f} / {dn['weight_mb']:.1f} "
              f"| {max(s['foreign_cpu_frac'], dn['foreign_cpu_frac']):.2f} |")
    print()
    print(f"Targets (issue 18; ratio to lth dense, all cores = {max_threads} threads):")
    print()
    for fam, d, b, target in TARGETS:
        r = ratios.get((fam, d, b, max_threads))
        status = "not measured" if r is None else ("met" if r >= target else f"missed by {target / r:.2f}x")
        print(f"- {fam} {d:g}, batch {b}: {'n/a' if r is None else f'{r:.2f}x'} (target >= {target:g}x): {status}")
    dense_ratios = [v for k, v in ratios.items() if k[1] >= 1]
    if dense_ratios:
        worst = min(dense_ratios)
        print(f"- density 1.0, every batch/thread count: worst {worst:.2f}x (target >= 0.97x): "
              f"{'met' if worst >= 0.97 else 'missed'}")
    if masks:
        print()
        print("Per-layer density of each mask (conv layers; the head is dense):")
        print()
        cols = [(m["family"], m["density"]) for m in masks]
        print("| layer | shape | " + " | ".join(f"{f} {d:g}" for f, d in cols) + " |")
        print("|---|---|" + "---|" * len(cols))
        for i, l in enumerate(masks[0]["layers"]):
            cells = []
            for m in masks:
                x = m["layers"][i]
                cells.append(f"{x['density']:.4f}{'' if x['sparse'] else ' (D)'}")
            print(f"| {l['name']} | {l['shape']} | " + " | ".join(cells) + " |")
        print()
        print("(D): the engine ran that layer dense (density above its crossover).")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
