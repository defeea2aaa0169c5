#!/usr/bin/python3
"""Peer of bench_prune: the threshold of global magnitude pruning with numpy and PyTorch.

Draws He-normal values (N(0, 2 / fan_in)) for every conv kernel of torchvision's resnet50
(53 kernels, 23,454,912 weights: the same shapes as lth's resnet50) and times, on the flat
float32 array of their magnitudes, what a Python implementation of one pruning step would
call to find what to keep, keep = round(0.8 * n) of the n candidates:
  numpy.partition(a, n - keep)        the threshold value (a partitioned copy of a)
  torch.kthvalue(t, n - keep + 1)     the threshold value and its index
  torch.topk(t, keep, sorted=False)   the kept values and their indices
in two states: dense (n = all weights) and after one 20 % prune (n = the 80 % largest, in
position order). These compute only the threshold / the kept indices: no masks are built, the
magnitudes and the candidate array are prepared outside the timing, and ties are not ordered
by position. lth's figure (bench_prune) is the whole prune() call: masks read, |w| taken,
threshold found, ties resolved by position, new masks written.

Each figure: --warmup untimed calls, then --reps timed ones; median and every time reported,
with the share of the CPUs other processes used meanwhile (foreign_cpu_frac). Prints a table,
then one JSON line (the last line of stdout).
Usage: /usr/bin/python3 peer_prune.py [--threads 2] [--reps 9] [--warmup 1] [--keep 0.8]
"""
import argparse
import json
import math
import os
import statistics
import time

import numpy as np
import torch
import torchvision


def busy_cpu_seconds():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system


class CpuWatch:
    """CPU used by other processes: (machine busy - own) / (wall * ncpu)."""

    def __init__(self):
        self.t0, self.busy0, self.own0 = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()

    def foreign_fraction(self):
        wall = max(time.perf_counter() - self.t0, 1e-9)
        foreign = (busy_cpu_seconds() - self.busy0) - (own_cpu_seconds() - self.own0)
        return max(0.0, foreign) / (wall * os.cpu_count())

    def own_cpu(self):
        return own_cpu_seconds() - self.own0


def wait_quiet(max_wait):
    t0 = time.time()
    while True:
        w = CpuWatch()
        time.sleep(2)
        frac = w.foreign_fraction()
        if frac < 0.10 or time.time() - t0 >= max_wait:
            return round(frac, 3)
        print(f"# machine busy ({100 * frac:.0f}% of CPUs used by others); waiting", flush=True)
        time.sleep(8)


def conv_magnitudes(seed):
    """|w| of He-normal values in the shapes of torchvision resnet50's conv kernels, flat."""
    net = torchvision.models.resnet50()
    gen = torch.Generator().manual_seed(seed)
    parts = []
    for _, p in sorted(net.named_parameters()):
        if p.dim() != 4:
            continue
        fan_in = p.shape[1] * p.shape[2] * p.shape[3]
        parts.append((torch.randn(p.shape, generator=gen) * math.sqrt(2.0 / fan_in)).flatten())
    return torch.cat(parts).abs().contiguous(), len(parts)


def time_it(op, state, n, fn, warmup, reps):
    for _ in range(warmup):
        fn()
    times = []
    watch = CpuWatch()
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"op": op, "state": state, "candidates": n,
            "median_s": round(statistics.median(times), 5), "min_s": round(min(times), 5),
            "times_s": [round(t, 5) for t in times],
            "cpu_per_wall": round(watch.own_cpu() / max(sum(times), 1e-9), 2),
            "cpu_s_per_call": round(watch.own_cpu() / max(reps, 1), 5),
            "foreign_cpu_frac": round(watch.foreign_fraction(), 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--keep", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--wait-quiet", type=float, default=120.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    mags, layers = conv_magnitudes(args.seed)
    n = mags.numel()
    # After one prune: the round(keep * n) largest magnitudes remain, in position order.
    kept = torch.topk(mags, round(args.keep * n), sorted=False).indices.sort().values
    states = {"dense": mags, "pruned20": mags[kept].contiguous()}
    env = {"torch": torch.__version__, "numpy": np.__version__, "threads": torch.get_num_threads(),
           "nproc": os.cpu_count(), "layers": layers, "weights": n, "keep": args.keep}
    quiet = wait_quiet(args.wait_quiet) if args.wait_quiet > 0 else -1.0

    results = []
    for state, t in states.items():
        a = t.numpy()
        m = t.numel()
        keep = round(args.keep * m)
        results.append(time_it("numpy.partition", state, m,
                               lambda: np.partition(a, m - keep)[m - keep], args.warmup, args.reps))
        results.append(time_it("torch.kthvalue", state, m,
                               lambda: torch.kthvalue(t, m - keep + 1), args.warmup, args.reps))
        results.append(time_it("torch.topk (sorted=False)", state, m,
                               lambda: torch.topk(t, keep, sorted=False), args.warmup, args.reps))
    print(f"{'op':36s} {'state':9s} {'candidates':>11s} {'median s':>10s} {'CPU s/call':>10s} "
          f"{'cpu/wall':>8s} {'foreign':>8s}")
    for r in results:
        print(f"{r['op']:36s} {r['state']:9s} {r['candidates']:11d} {r['median_s']:10.4f} "
              f"{r['cpu_s_per_call']:10.4f} {r['cpu_per_wall']:8.2f} {100 * r['foreign_cpu_frac']:7.1f}%")
    print(json.dumps({"script": "peer_prune", "env": env, "others_busy_before": quiet, "results": results}))


if __name__ == "__main__":
    main()
