#!/usr/bin/python3
"""Input-pipeline benchmark of lth's data/imagenet next to its peers, in one invocation.

Runs, one after the other on the same JPEG folder:
  1. bench_imagenet_pipeline (ours): decode, train and eval transforms, 1 core and all cores;
  2. the peer torchvision_loader.py (ImageFolder + DataLoader, RandomResizedCrop bicubic +
     flip / Resize 256 + CenterCrop, num_workers 0 and 2, plus PIL/torchvision decode-only);
  3. the peer tjbench_decode.py (libjpeg-turbo's tjbench, 1 thread, full and 1/2 scale);
then prints a markdown table with each of our figures, the peer figure from this same run
and the ratio, and writes raw JSON and the table to --out.

Data: --data/train (ImageNet-sized q90 JPEGs). When missing it is generated with the peer
script make_jpeg_folder.py if /usr/bin/python3 has PIL, else with our own generator (500-px
synthetic JPEGs, q90). Every run also records the share of the CPUs that other processes
used while it ran (foreign_cpu_frac, via the peers' peer_env.py): figures taken on a busy
machine are flagged in the table.

Example: /usr/bin/python3 bench/imagenet_pipeline/run_bench.py --build build
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"


def find_binary(build):
    for dirpath, _, files in os.walk(build):
        if "bench_imagenet_pipeline" in files:
            return os.path.join(dirpath, "bench_imagenet_pipeline")
    sys.exit(f"bench_imagenet_pipeline not found under {build}: build it first "
             f"(cmake --build {build} --target bench_imagenet_pipeline)")


def has_modules(*names):
    code = "import " + ", ".join(names)
    return subprocess.run([PY, "-c", code], capture_output=True).returncode == 0


def run_json(cmd, peer_env, label):
    """Runs cmd, returns (last JSON line of stdout, foreign CPU share during the run)."""
    print(f"== {label}: {' '.join(cmd)}", flush=True)
    watch = peer_env.CpuWatch()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    contention = watch.report()
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        return None, contention
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    return (json.loads(lines[-1]) if lines else None), contention


def child_cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def torchvision_cpu_rate(root, pipeline, epochs, images):
    """Images per CPU-second of torchvision's single-process pipeline (num_workers=0, 1 torch
    thread): CPU time of a run with `epochs` timed passes minus that of a run with none, so
    start-up, imports and the cold pass cancel out. Robust to other processes' load."""
    script = os.path.join(ARGS.peers, "torchvision_loader.py")
    used = []
    for e in (0, epochs):
        c0 = child_cpu()
        subprocess.run([PY, script, "--root", root, "--num-workers", "0", "--pipelines", pipeline,
                        "--epochs", str(e), "--threads", "1", "--wait-quiet", "0"],
                       check=True, capture_output=True)
        used.append(child_cpu() - c0)
    return epochs * images / (used[1] - used[0]), used


def ensure_data(data, binary):
    train = os.path.join(data, "train")
    if os.path.isdir(train) and os.listdir(train):
        return train, "existing"
    peers_maker = os.path.join(ARGS.peers, "make_jpeg_folder.py")
    if has_modules("PIL", "numpy") and os.path.exists(peers_maker):
        subprocess.run([PY, peers_maker, "--root", data, "--classes", "10", "--per-class",
                        str(ARGS.per_class), "--seed", "0"], check=True)
        return train, "make_jpeg_folder.py (peer)"
    gen = os.path.join(data, "gen")
    subprocess.run([binary, "--root", gen, "--generate", str(10 * ARGS.per_class),
                    "--generate_only"], check=True)
    os.makedirs(data, exist_ok=True)
    os.symlink(os.path.join(gen, "imagenet", "train"), train)
    return train, "lth make-imagenet generator (no PIL)"


def rate(result, *path):
    node = result
    for key in path:
        if node is None:
            return None
        if isinstance(key, tuple):  # select from a list by field values
            node = next((r for r in node if all(r.get(k) == v for k, v in key)), None)
        else:
            node = node.get(key) if isinstance(node, dict) else None
    return node


def table(rounds):
    rows = [
        ("train transform, 1 core", ("train_1core", "img_per_s"),
         "torchvision RRC(bicubic)+flip, num_workers=0", ("torchvision", "results", (("pipeline", "train"), ("num_workers", 0)), "img_per_s")),
        ("train transform, all cores", ("train_all", "img_per_s"),
         "torchvision train, num_workers=2", ("torchvision", "results", (("pipeline", "train"), ("num_workers", 2)), "img_per_s")),
        ("train transform, 1 core, no DCT scaling", ("train_1core_nodct", "img_per_s"),
         "torchvision train, num_workers=0", ("torchvision", "results", (("pipeline", "train"), ("num_workers", 0)), "img_per_s")),
        ("eval transform, 1 core", ("eval_1core", "img_per_s"),
         "torchvision Resize(256,bicubic)+CenterCrop, num_workers=0", ("torchvision", "results", (("pipeline", "eval"), ("num_workers", 0)), "img_per_s")),
        ("eval transform, all cores", ("eval_all", "img_per_s"),
         "torchvision eval, num_workers=2", ("torchvision", "results", (("pipeline", "eval"), ("num_workers", 2)), "img_per_s")),
        ("full-size decode, 1 core", ("decode_full_1core", "img_per_s"),
         "tjbench 1/1, 1 thread", ("tjbench", "results", (("scale", "1/1"),), "img_per_s")),
        ("full-size decode, 1 core", ("decode_full_1core", "img_per_s"),
         "PIL decode full size", ("torchvision", "decode_only", "pil_full_img_per_s")),
        ("full-size decode, 1 core", ("decode_full_1core", "img_per_s"),
         "torchvision.io.decode_jpeg", ("torchvision", "decode_only", "tv_decode_jpeg_img_per_s")),
    ]
    def values(source, path):
        out = [rate(r[source], *path) for r in rounds]
        return [v for v in out if isinstance(v, (int, float))]

    def fmt(vs):
        if not vs:
            return "not run"
        return f"{max(vs):.1f}" + (f" ({min(vs):.0f}-{max(vs):.0f})" if len(vs) > 1 else "")

    lines = ["| figure | lth img/s | peer | peer img/s | ratio |", "|---|---|---|---|---|"]
    for name, ours_path, peer_name, peer_path in rows:
        mine = values("ours", ours_path)
        peer = values(peer_path[0], peer_path[1:])
        ratio = f"{max(mine) / max(peer):.2f}x" if mine and peer else "-"
        lines.append(f"| {name} | {fmt(mine)} | {peer_name} | {fmt(peer)} | {ratio} |")
    lines.append("")
    lines.append("Best round per figure, range in parentheses. Other processes' share of the CPUs during "
                 "each run (foreign_cpu_frac), by round: " +
                 "; ".join(", ".join(f"{k} {v.get('foreign_cpu_frac')}" for k, v in r["contention"].items())
                           for r in rounds) +
                 ". Above ~0.05 the figures are depressed by contention.")
    return "\n".join(lines)


def cpu_table(rounds, cpu):
    """Per-core throughput as images per CPU-second: on a shared machine, CPU time is what
    the work costs, whatever other processes do (wall-clock figures above are not)."""
    lines = ["Images per CPU-second (1 core, robust to other processes' load):", "",
             "| pipeline | lth img/CPU-s | torchvision img/CPU-s (num_workers=0, 1 thread) | ratio |",
             "|---|---|---|---|"]
    for pipeline, key in (("train", "train_1core"), ("eval", "eval_1core")):
        mine = [r["ours"][key]["img_per_cpu_s"] for r in rounds if r["ours"]]
        peer = cpu.get(pipeline, {}).get("img_per_cpu_s")
        m = max(mine) if mine else None
        lines.append(f"| {pipeline} | {m:.1f} | " + (f"{peer:.1f} | {m / peer:.2f}x |" if peer and m else "not run | - |"))
    return "\n".join(lines)


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--data", default="/tmp/lth_bench_jpeg")
    ap.add_argument("--peers", default=os.environ.get("LTH_PEERS", os.path.join(os.path.dirname(REPO), "shared", "bench", "peers")))
    ap.add_argument("--per-class", type=int, default=50, help="images per class (10 classes) if generating")
    ap.add_argument("--seconds", type=float, default=4.0, help="timed seconds per figure of ours")
    ap.add_argument("--out", default=None)
    ap.add_argument("--wait-quiet", type=float, default=60.0)
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--cpu-epochs", type=int, default=4,
                    help="timed passes for torchvision's CPU-time figure (one extra run with none)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat ours/torchvision/tjbench this many times, alternating; the table "
                         "shows each figure's best round (same rule for every column) and its range")
    ARGS = ap.parse_args()
    if not os.path.isdir(ARGS.peers) and os.path.isdir("/work/shared/bench/peers"):
        ARGS.peers = "/work/shared/bench/peers"
    sys.path.insert(0, ARGS.peers)
    import peer_env  # noqa: E402  (the peers' contention monitor)

    binary = find_binary(ARGS.build)
    root, source = ensure_data(ARGS.data, binary)
    out = ARGS.out or os.path.join("/tmp/lth_bench_out", datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    quiet = peer_env.wait_quiet(ARGS.wait_quiet) if ARGS.wait_quiet > 0 else None

    rounds = []
    for r in range(ARGS.rounds):
        contention = {}
        ours, contention["lth"] = run_json([binary, "--root", root, "--seconds", str(ARGS.seconds)],
                                           peer_env, f"lth (round {r + 1})")
        tv = tj = None
        if not ARGS.skip_peers:
            if has_modules("torch", "torchvision", "PIL"):
                tv, contention["torchvision"] = run_json(
                    [PY, os.path.join(ARGS.peers, "torchvision_loader.py"), "--root", root, "--num-workers", "0", "2",
                     "--pipelines", "train", "eval", "--decode-only", "--decode-min-time", "3", "--wait-quiet", "0"],
                    peer_env, f"torchvision (round {r + 1})")
            else:
                print("!! torchvision peer not run: /usr/bin/python3 lacks torch/torchvision/PIL "
                      "(apt-get install python3-torchvision python3-pil)", file=sys.stderr)
            if shutil.which("tjbench"):
                tj, contention["tjbench"] = run_json(
                    [PY, os.path.join(ARGS.peers, "tjbench_decode.py"), "--root", root, "--files", "8",
                     "--scales", "1/1", "1/2", "--benchtime", "1", "--warmup", "0.5", "--wait-quiet", "0"],
                    peer_env, f"tjbench (round {r + 1})")
            else:
                print("!! tjbench peer not run: tjbench missing (apt-get install libjpeg-turbo-progs)", file=sys.stderr)
        rounds.append({"ours": ours, "torchvision": tv, "tjbench": tj, "contention": contention})

    cpu = {}
    if not ARGS.skip_peers and has_modules("torch", "torchvision", "PIL"):
        n = rounds[-1]["ours"]["images"] if rounds[-1]["ours"] else 0
        for pipeline in ("train", "eval"):
            print(f"== torchvision CPU time, {pipeline} (epochs 0 and {ARGS.cpu_epochs})", flush=True)
            rate_, used = torchvision_cpu_rate(root, pipeline, ARGS.cpu_epochs, n)
            cpu[pipeline] = {"img_per_cpu_s": rate_, "cpu_s_runs": used}
    md = table(rounds) + "\n\n" + cpu_table(rounds, cpu)
    ours = rounds[-1]["ours"]
    header = (f"Data: {root} ({source}), {ours.get('images') if ours else '?'} images; {ARGS.rounds} round(s); "
              f"others busy before start: {quiet}; nproc {os.cpu_count()}; {time.strftime('%Y-%m-%d %H:%M:%S')}")
    print("\n" + header + "\n\n" + md)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"rounds": rounds, "torchvision_cpu": cpu, "data": root, "data_source": source}, f, indent=2)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(header + "\n\n" + md + "\n")
    print(f"\nraw results in {out}")


if __name__ == "__main__":
    main()
