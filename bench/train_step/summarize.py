#!/usr/bin/python3
"""Markdown tables from a bench/train_step/run.sh result folder.

Reads OUT/<variant>_r<round>.json (the last JSON line of each program) for the variants
  peer         torch_train_step.py --eval                     (glibc default)
  peer_keep    the same under GLIBC_TUNABLES mmap_max=0 + no trim
  peer_masked  torch_train_step.py --masked                   (50% masks re-applied)
  peer_cl      torch_train_step.py --eval, configs name:batch:cl (channels_last)
  ours         bench_train_step --eval --masks dense half     (glibc default)
  ours_keep    the same with --malloc keep (mallopt in-process)
and prints, per config and mode, our img/s, the peer's, and the ratio of the medians over
rounds (each cell: median, then every round's figure in brackets). A figure taken while
other processes used more than 5% of the CPUs is marked with '*'.
Usage: summarize.py OUT
"""
import glob
import json
import os
import re
import statistics
import sys

BUSY = 0.05


def load(out):
    runs = {}
    for path in sorted(glob.glob(os.path.join(out, "*_r*.json"))):
        m = re.match(r"(.+)_r(\d+)\.json$", os.path.basename(path))
        text = open(path).read().strip()
        if not m or not text:
            continue
        runs.setdefault(m.group(1), []).append((int(m.group(2)), json.loads(text)))
    return runs


def figures(runs, variant):
    """{(model, batch, mode, masks): [(img/s, foreign frac, record), ...]} over rounds."""
    table = {}
    for _, doc in sorted(runs.get(variant, [])):
        for r in doc["results"]:
            key = (r["model"], r["batch"])
            if doc["script"] == "bench_train_step":
                table.setdefault(key + (r["mode"], r["masks"]), []).append(
                    (r["img_per_s"], r["foreign_cpu_frac"], r))
            else:  # the peer: one record per config with train and (maybe) eval figures
                masks = "half" if r.get("masked") else "dense"
                table.setdefault(key + ("train", masks), []).append(
                    (r["train_img_per_s"], r["foreign_cpu_frac"], r))
                if "eval_img_per_s" in r:
                    table.setdefault(key + ("eval", masks), []).append(
                        (r["eval_img_per_s"], r["foreign_cpu_frac"], r))
    return table


def clean(samples):
    """The samples taken on a quiet machine, or all of them if none was."""
    quiet = [s for s in samples if s[1] <= BUSY]
    return quiet or samples


def med(samples):
    return statistics.median(s[0] for s in clean(samples)) if samples else None


def fmt_num(v):
    if v is None:
        return "–"
    return f"{v:,.0f}" if v >= 1000 else (f"{v:.1f}" if v >= 100 else f"{v:.2f}")


def cell(samples):
    if not samples:
        return "–"
    each = " / ".join(fmt_num(s[0]) + ("*" if s[1] > BUSY else "") for s in samples)
    busy = all(s[1] > BUSY for s in samples)
    return f"**{fmt_num(med(samples))}**{'*' if busy else ''} ({each})" if len(samples) > 1 else each


def gflops(samples, per_img):
    return f"{med(samples) * per_img:.0f}" if samples and per_img else "–"


def ratio(a, b):
    return f"{med(a) / med(b):.2f}×" if a and b else "–"


ROWS = [("train", "dense", "train, dense masks"), ("train", "half", "train, 50% masks"),
        ("eval", "dense", "eval (no grad)")]


def configs_of(*tables):
    seen = []
    for t in tables:
        for k in t:
            if k[:2] not in seen:
                seen.append(k[:2])
    return seen


def flop_per_img(peer, model, batch, mode):
    for key in ((model, batch, "train", "dense"), (model, batch, "train", "half")):
        for s in peer.get(key, []):
            r = s[2]
            return r["train_gflop_per_img"] if mode == "train" else 2e-3 * r["fwd_mmacs_per_img"]
    return None


def compare(title, ours, peer, peer_masked=None, note=""):
    lines = [f"### {title}", ""]
    if note:
        lines += [note, ""]
    lines += ["| config | step | ours img/s | PyTorch img/s | ratio (ours / PyTorch) | ours GFLOP/s |",
              "|---|---|---|---|---|---|"]
    for model, batch in configs_of(ours, peer):
        for mode, masks, label in ROWS:
            o = ours.get((model, batch, mode, masks))
            p = peer.get((model, batch, mode, masks))
            if masks == "half" and peer_masked is not None:
                p = peer_masked.get((model, batch, mode, masks))
            if not o and not p:
                continue
            per_img = flop_per_img(peer, model, batch, mode) or flop_per_img(peer_masked or {}, model, batch, mode)
            lines.append(f"| {model} b{batch} | {label} | {cell(o)} | {cell(p)} | {ratio(o, p)} | "
                         f"{gflops(o, per_img)} |")
    return lines


def faults(title, tables):
    lines = [f"### {title}", "",
             "| config | step | " + " | ".join(n for n, _ in tables) + " |",
             "|---|---|" + "---|" * len(tables)]
    first = tables[0][1]
    for model, batch in configs_of(first):
        for mode, masks, label in ROWS:
            cells = []
            for _, t in tables:
                s = t.get((model, batch, mode, masks))
                if s and mode == "eval" and s[0][2].get("eval_img_per_s") is not None:
                    s = None  # the peer counts faults over its training loop only
                if not s:
                    cells.append("–")
                    continue
                f = " / ".join(f"{x[2].get('minor_faults_per_step', 0):,}" for x in s)
                rss = max(x[2].get("max_rss_mb", 0) for x in s)
                cells.append(f"{f} ({rss:,.0f} MB)")
            if any(c != "–" for c in cells):
                lines.append(f"| {model} b{batch} | {label} | " + " | ".join(cells) + " |")
    return lines


def main():
    out = sys.argv[1]
    runs = load(out)
    t = {v: figures(runs, v) for v in ("peer", "peer_keep", "peer_masked", "peer_cl", "ours", "ours_keep",
                                         "peer_bf16", "ours_bf16")}
    lines = []
    if t["ours_bf16"] or t["peer_bf16"]:
        lines += compare("bf16 autocast (lth --precision bf16; PyTorch torch.autocast('cpu', bfloat16)), "
                         "both sides glibc default", t["ours_bf16"], t["peer_bf16"], None,
                         "Both keep float32 master weights and SGD state; lth's head runs in float32 "
                         "under autocast (as the reference), PyTorch's Linear runs in bf16.")
        lines.append("")
    if t["peer"] or t["peer_masked"] or (t["ours"] and not t["peer_cl"]):
        lines += compare("Default allocator (glibc malloc as shipped), both sides", t["ours"], t["peer"],
                         t["peer_masked"] or None,
                         "PyTorch's 50%-mask row is torch_train_step.py --masked (mask re-applied "
                         "after each SGD step); ours is MaskedSgd with 50% random_global masks.")
        lines.append("")
    if t["ours_keep"] or t["peer_keep"]:
        lines += compare("Freed memory kept mapped, both sides (ours: mallopt in-process; "
                         "PyTorch: GLIBC_TUNABLES)", t["ours_keep"], t["peer_keep"])
        lines.append("")
    if t["peer_cl"]:
        lines += compare("PyTorch in channels_last (peer name:batch:cl), both sides glibc default",
                         t["ours"], t["peer_cl"], None,
                         "Our networks run channels-last internally (the NHWC input is permuted, "
                         "not made contiguous), so this is the like-for-like layout comparison.")
        lines.append("")
    if t["ours"] and t["ours_keep"]:
        lines += ["### Effect of mallopt on our step", "",
                  "| config | step | glibc default img/s | mallopt keep img/s | speed-up |",
                  "|---|---|---|---|---|"]
        for model, batch in configs_of(t["ours"]):
            for mode, masks, label in ROWS:
                a = t["ours"].get((model, batch, mode, masks))
                b = t["ours_keep"].get((model, batch, mode, masks))
                if a or b:
                    lines.append(f"| {model} b{batch} | {label} | {cell(a)} | {cell(b)} | {ratio(b, a)} |")
        lines.append("")
        lines += faults("Minor page faults per step (each round), peak RSS",
                        [(n, t[n]) for n in ("ours", "ours_keep", "peer", "peer_keep") if t[n]])
        lines.append("")
    # Contention: the worst foreign-CPU share seen per program run.
    lines += ["### Other processes' share of the 2 CPUs during each run", "",
              "| run | round | foreign CPU (whole run) | worst figure | loadavg at end |", "|---|---|---|---|---|"]
    for variant in sorted(runs):
        for rnd, doc in sorted(runs[variant], key=lambda x: x[0]):
            worst = max((r.get("foreign_cpu_frac", 0) for r in doc["results"]), default=0)
            c = doc.get("contention", {})
            la = c.get("loadavg_end", "")
            la = " ".join(la) if isinstance(la, list) else la
            lines.append(f"| {variant} | {rnd} | {100 * c.get('foreign_cpu_frac', 0):.1f}% | "
                         f"{100 * worst:.1f}% | {la} |")
    lines.append("")
    lines.append(f"Cells: median over rounds in bold, then each round's figure; '*' = other "
                 f"processes used > {100 * BUSY:.0f}% of the CPUs during that figure (left out of the "
                 f"median when a quiet figure exists). GFLOP/s: Conv/Linear MACs counted by the "
                 f"peer's hooks (same architectures), train = 6 x MACs, eval = 2 x MACs per image.")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
