#!/usr/bin/env python3
"""The reference's checkpoints and computation, independently of lth (Python 3, NumPy and
Debian's python3-msgpack; no Flax, no JAX), for lth's tests of io/flax_checkpoint.h.

  write OUT.ckpt --model resnet50 --stem 3|7 --classes C [--seed S] [--density D]
        [--no-mask] [--ties] [--channels K] [--images N --size H --out DIR]
      A checkpoint laid out as the reference's scripts/train.py writes it with
      flax.serialization.to_bytes: {params: {ext, cls}, params_mask, batch_stats,
      image_stats}, the ext tree named as giung2's Flax ResNet creates its modules
      (Conv_i / BatchNorm_i in creation order), HWIO kernels, head without bias, every array
      as Flax's ndarray extension. Random weights, BN statistics and conv masks (pruned
      weights exactly 0). With --images: DIR/images.npy (uint8 NHWC), DIR/logits.npy (the
      reference's forward pass: x/255, (x - m)/s, TensorFlow SAME padding, max-pool SAME
      with -inf, BN with running statistics, float64), DIR/labels.npy (the argmax for even
      images, another class for odd ones) and DIR/expected.json (top-1 accuracy and NLL).
  compare A.ckpt B.ckpt
      Every array of A and B: same key path, dtype, shape and bytes. Exit 1 otherwise.
  check-prune SRC.ckpt PRUNED.ckpt --ratio R [--exact]
      The reference's pruning formula on SRC (RECIPE.md "Pruning": scores (|w| + 1) - 1 in
      float32 over the 4-D kernels, zero where SRC's mask is 0; keep the top
      round(remaining * R), the new mask is 1 where score >= the threshold, so ties at the
      threshold are all kept) against PRUNED's params_mask. --exact instead scores |w| and
      keeps exactly the count, ties broken by position (lth's magnitude_global), for files
      with no ties. Exit 1 on any difference.
"""
import argparse
import json
import math
import sys

import msgpack
import numpy as np

IMAGENET = {18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]),
            50: ("bottleneck", [3, 4, 6, 3]), 101: ("bottleneck", [3, 4, 23, 3]),
            152: ("bottleneck", [3, 8, 36, 3])}
PIXEL_MEAN = (0.48145466, 0.4578275, 0.40821073)
PIXEL_STD = (0.26862954, 0.26130258, 0.27577711)


# ---- the reference's module tree -------------------------------------------------------

def architecture(model, stem):
    """(block type, blocks per stage, base planes, stem kernel) as giung2's ResNets."""
    depth = int(model[len("resnet"):])
    if depth in IMAGENET:
        kind, blocks = IMAGENET[depth]
        return kind, blocks, 64, stem
    assert (depth - 2) % 6 == 0 and stem == 3, "CIFAR ResNets have the 3x3 stem"
    return "basic", [(depth - 2) // 6] * 3, 16, 3


def conv_plan(model, stem, in_channels=3):
    """The convolutions in Flax creation order: (kernel, stride, in, out, role), role one of
    'stem', 'branch', 'branch_last', 'shortcut'; each is followed by its BatchNorm."""
    kind, blocks, planes0, k = architecture(model, stem)
    plan = [(k, 2 if k == 7 else 1, in_channels, planes0, "stem")]
    channels = planes0
    for stage, n in enumerate(blocks):
        planes = planes0 * 2 ** stage
        for b in range(n):
            stride = 2 if (stage > 0 and b == 0) else 1
            if kind == "basic":
                out = planes
                plan += [(3, stride, channels, planes, "branch"), (3, 1, planes, planes, "branch_last")]
            else:
                out = 4 * planes
                plan += [(1, 1, channels, planes, "branch"), (3, stride, planes, planes, "branch"),
                         (1, 1, planes, out, "branch_last")]
            if stride != 1 or channels != out:
                plan.append((1, stride, channels, out, "shortcut"))
            channels = out
    return plan, channels


def random_checkpoint(model, stem, classes, seed, density, with_mask, ties=False, channels=3):
    rng = np.random.default_rng(seed)
    plan, features = conv_plan(model, stem, channels)
    ext, ext_mask, stats = {}, {}, {}
    for i, (k, _, cin, cout, role) in enumerate(plan):
        kernel = rng.standard_normal((k, k, cin, cout), np.float32) * np.float32(math.sqrt(2.0 / (k * k * cin)))
        if ties:  # a coarse grid: many weights share a magnitude, at the threshold too
            kernel = np.round(kernel * 256) / np.float32(256)
        mask = (rng.random(kernel.shape, np.float32) < density).astype(np.float32)
        if i == 0:
            mask[...] = 1  # keep the stem dense, as a pruned stem would only add noise here
        kernel *= mask
        ext[f"Conv_{i}"] = {"kernel": kernel}
        ext_mask[f"Conv_{i}"] = {"kernel": mask}
        scale = rng.uniform(0.2 if role == "branch_last" else 0.6, 1.0, cout).astype(np.float32)
        ext[f"BatchNorm_{i}"] = {"scale": scale, "bias": rng.normal(0, 0.1, cout).astype(np.float32)}
        ext_mask[f"BatchNorm_{i}"] = {"scale": np.ones(cout, np.float32), "bias": np.ones(cout, np.float32)}
        stats[f"BatchNorm_{i}"] = {"mean": rng.normal(0, 0.1, cout).astype(np.float32),
                                   "var": rng.uniform(0.5, 1.5, cout).astype(np.float32)}
    cls = rng.normal(0, 1.0 / math.sqrt(features), (features, classes)).astype(np.float32)
    ckpt = {"params": {"ext": ext, "cls": cls}}
    if with_mask:
        ckpt["params_mask"] = {"ext": ext_mask, "cls": np.ones_like(cls)}
    ckpt["batch_stats"] = stats
    ckpt["image_stats"] = {"m": np.array(PIXEL_MEAN[:channels], np.float32),
                           "s": np.array(PIXEL_STD[:channels], np.float32)}
    return ckpt


# ---- Flax's serialisation (flax.serialization.to_bytes / msgpack_restore) --------------

def _pack_ext(x):
    if isinstance(x, np.ndarray):
        payload = msgpack.packb((x.shape, x.dtype.name, x.tobytes("C")), use_bin_type=True)
        return msgpack.ExtType(1, payload)
    raise TypeError(f"cannot serialise {type(x)}")


def to_bytes(tree):
    return msgpack.packb(tree, default=_pack_ext, strict_types=True)


def _unpack_ext(code, data):
    if code != 1:
        raise ValueError(f"extension type {code}")
    shape, dtype, buffer = msgpack.unpackb(data, raw=True)
    return np.frombuffer(buffer, dtype=np.dtype(dtype.decode())).reshape(shape, order="C")


def restore(path):
    with open(path, "rb") as f:
        return msgpack.unpackb(f.read(), ext_hook=_unpack_ext, raw=False)


def leaves(tree, prefix=""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, f"{prefix}/{key}" if prefix else key)
    else:
        yield prefix, tree


# ---- the reference's forward pass ------------------------------------------------------

def same_pads(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return out, total // 2, total - total // 2


def conv_same(x, kernel, stride):
    """NHWC x HWIO, TensorFlow SAME padding."""
    kh, kw, _, cout = kernel.shape
    n, h, w, _ = x.shape
    oh, top, bottom = same_pads(h, kh, stride)
    ow, left, right = same_pads(w, kw, stride)
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    out = np.zeros((n, oh, ow, cout), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]
            out += patch @ kernel[i, j].astype(np.float64)
    return out


def max_pool_same(x, k=3, s=2):
    n, h, w, c = x.shape
    oh, top, bottom = same_pads(h, k, s)
    ow, left, right = same_pads(w, k, s)
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=-np.inf)
    out = np.full((n, oh, ow, c), -np.inf)
    for i in range(k):
        for j in range(k):
            out = np.maximum(out, x[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s, :])
    return out


def forward(ckpt, model, stem, images):
    params, stats = ckpt["params"], ckpt["batch_stats"]
    m = ckpt["image_stats"]["m"].astype(np.float64)
    s = ckpt["image_stats"]["s"].astype(np.float64)
    x = (images.astype(np.float64) / 255.0 - m) / s
    plan, _ = conv_plan(model, stem, images.shape[-1])

    def conv_bn(i, y):
        _, stride, _, _, _ = plan[i]
        y = conv_same(y, params["ext"][f"Conv_{i}"]["kernel"], stride)
        bn, st = params["ext"][f"BatchNorm_{i}"], stats[f"BatchNorm_{i}"]
        inv = bn["scale"].astype(np.float64) / np.sqrt(st["var"].astype(np.float64) + 1e-5)
        return (y - st["mean"]) * inv + bn["bias"]

    y = np.maximum(conv_bn(0, x), 0)
    if stem == 7:
        y = max_pool_same(y)
    i = 1
    while i < len(plan):
        residual = y
        while plan[i][4] == "branch":
            y = np.maximum(conv_bn(i, y), 0)
            i += 1
        y = conv_bn(i, y)  # branch_last
        i += 1
        if i < len(plan) and plan[i][4] == "shortcut":
            residual = conv_bn(i, residual)
            i += 1
        y = np.maximum(y + residual, 0)
    return y.mean(axis=(1, 2)) @ params["cls"].astype(np.float64)


# ---- the reference's pruning formula ---------------------------------------------------

def reference_masks(ckpt, ratio, exact):
    params = ckpt["params"]
    old = ckpt.get("params_mask")
    keys = [k for k, v in leaves(params) if v.ndim == 4]
    masks = {k: (dict(leaves(old))[k] if old is not None else np.ones_like(dict(leaves(params))[k]))
             for k in keys}
    flat = dict(leaves(params))
    remaining = int(sum(int((masks[k] != 0).sum()) for k in keys))
    keep = int(round(remaining * ratio))
    if exact:
        # lth's rule: exactly `keep` of the unmasked weights, ties by position (key order as
        # lth's sorted parameter names is not Flax's; the test files have no ties).
        scores = np.concatenate([np.where(masks[k] != 0, np.abs(flat[k]), -1).ravel() for k in keys])
        order = np.argsort(-scores, kind="stable")[:keep]
        new = np.zeros(scores.shape, bool)
        new[order] = True
    else:
        one = np.float32(1)
        scores = np.concatenate([np.where(masks[k] != 0, (np.abs(flat[k]) + one) - one, np.float32(0)).ravel()
                                 for k in keys]).astype(np.float32)
        threshold = np.sort(scores)[::-1][keep - 1]
        new = scores >= threshold
    out, at = {}, 0
    for k in keys:
        n = masks[k].size
        out[k] = new[at:at + n].reshape(masks[k].shape)
        at += n
    return out


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("path")
    w.add_argument("--model", required=True)
    w.add_argument("--stem", type=int, default=3)
    w.add_argument("--classes", type=int, default=10)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--density", type=float, default=0.7)
    w.add_argument("--no-mask", action="store_true")
    w.add_argument("--ties", action="store_true", help="kernels on a grid of 1/256: many ties")
    w.add_argument("--channels", type=int, default=3)
    w.add_argument("--images", type=int, default=0)
    w.add_argument("--size", type=int, default=32)
    w.add_argument("--out")
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    p = sub.add_parser("check-prune")
    p.add_argument("src")
    p.add_argument("pruned")
    p.add_argument("--ratio", type=float, required=True)
    p.add_argument("--exact", action="store_true")
    args = parser.parse_args()

    if args.command == "write":
        ckpt = random_checkpoint(args.model, args.stem, args.classes, args.seed, args.density,
                                 not args.no_mask, args.ties, args.channels)
        with open(args.path, "wb") as f:
            f.write(to_bytes(ckpt))
        if args.images:
            rng = np.random.default_rng(args.seed + 1)
            images = rng.integers(0, 256, (args.images, args.size, args.size, args.channels), dtype=np.uint8)
            logits = forward(ckpt, args.model, args.stem, images)
            top = logits.argmax(axis=1)
            labels = np.where(np.arange(len(top)) % 2 == 0, top, (top + 1) % args.classes).astype(np.int64)
            z = logits - logits.max(axis=1, keepdims=True)
            log_softmax = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            np.save(f"{args.out}/images.npy", images)
            np.save(f"{args.out}/labels.npy", labels)
            np.save(f"{args.out}/logits.npy", logits.astype(np.float32))
            with open(f"{args.out}/expected.json", "w") as f:
                json.dump({"acc": float((top == labels).mean()),
                           "nll": float(-log_softmax[np.arange(len(labels)), labels].mean())}, f)
        return 0

    if args.command == "compare":
        a, b = dict(leaves(restore(args.a))), dict(leaves(restore(args.b)))
        problems = [f"only in {args.a}: {k}" for k in a.keys() - b.keys()]
        problems += [f"only in {args.b}: {k}" for k in b.keys() - a.keys()]
        for k in sorted(a.keys() & b.keys()):
            x, y = a[k], b[k]
            if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                problems.append(f"{k}: {x.dtype}{list(x.shape)} vs {y.dtype}{list(y.shape)}, "
                                f"bytes {'equal' if x.tobytes() == y.tobytes() else 'differ'}")
        for line in problems:
            print(line)
        print(f"{len(a)} arrays, {len(problems)} differences")
        return 1 if problems else 0

    src, pruned = restore(args.src), restore(args.pruned)
    expected = reference_masks(src, args.ratio, args.exact)
    got = dict(leaves(pruned["params_mask"]))
    bad = [k for k in expected if not np.array_equal(expected[k], got[k] != 0)]
    kept = sum(int(v.sum()) for v in expected.values())
    print(f"formula keeps {kept}; lth keeps {sum(int((got[k] != 0).sum()) for k in expected)}; "
          f"{len(bad)} of {len(expected)} kernels differ {bad[:3]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
