#!/usr/bin/env python3
"""Checks docs/FORMATS.md's NumPy reader of compact tickets (Python 3 + numpy only).

usage: check_compact_snippet.py FORMATS.md COMPACT DENSE float32|bfloat16

Runs the ```python block that follows the `<!-- compact-ticket-reader -->` marker in the
doc, as written, on COMPACT (an `lth export` file), and compares what it returns with DENSE
(the same ticket as an lth checkpoint, parsed here independently): every masked weight
(exactly in float32, within bf16 rounding otherwise), every mask, every other tensor. The
bit layout is checked on its own with a per-bit loop over the raw bytes (row-major index i
is bit i % 8, least significant first, of byte i // 8), not with numpy's unpackbits.
Prints "ok: N masked tensors ..." and exits 0, or exits non-zero naming the difference.
"""
import json
import math
import struct
import sys

import numpy as np

MARKER = "<!-- compact-ticket-reader -->"
NUMPY = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
         "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "u1"}


def fail(message):
    sys.exit(f"check_compact_snippet.py: {message}")


def snippet(doc_path):
    text = open(doc_path, encoding="utf-8").read()
    at = text.find(MARKER)
    if at < 0:
        fail(f"{doc_path}: no {MARKER}")
    start = text.index("```python\n", at) + len("```python\n")
    return text[start:text.index("```\n", start)]


def raw_tensors(path):
    """{name: (dtype, shape, bytes)} and metadata, straight from the file's bytes."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items()}, meta


def array(entry):
    dtype, shape, data = entry
    return np.frombuffer(data, NUMPY[dtype]).reshape(shape)


def main(doc, compact_path, dense_path, dtype):
    namespace = {}
    exec(compile(snippet(doc), "FORMATS.md snippet", "exec"), namespace)
    got, meta = namespace["load_compact_ticket"](compact_path)
    compact, compact_meta = raw_tensors(compact_path)
    dense, dense_meta = raw_tensors(dense_path)
    if meta != compact_meta or meta["format"] != "lth-compact-ticket-1" or meta["dtype"] != dtype:
        fail(f"metadata: {meta}")
    if meta["iteration"] != dense_meta["iteration"] or meta["config"] != dense_meta["config"]:
        fail("iteration or config differ from the checkpoint's")
    masked = json.loads(meta["masked"])
    kept_all = 0
    for name, shape in masked.items():
        want = array(dense[name]).astype(np.float32)
        mask = array(dense["mask/" + name])
        if list(want.shape) != shape:
            fail(f"{name}: metadata shape {shape}, checkpoint {list(want.shape)}")
        # The bits, one by one from the raw bytes.
        bits = compact[name + ".mask_bits"][2]
        n = math.prod(shape)
        if len(bits) != (n + 7) // 8:
            fail(f"{name}.mask_bits: {len(bits)} bytes for {n} entries")
        flat_mask = mask.reshape(-1).tolist()
        for i in range(8 * len(bits)):
            bit = (bits[i // 8] >> (i % 8)) & 1
            if bit != (flat_mask[i] if i < n else 0):
                fail(f"{name}.mask_bits: bit {i} is {bit}")
        kept = sum(flat_mask)
        kept_all += kept
        values = array(compact[name + ".values"])
        if values.shape != (kept,):
            fail(f"{name}.values: shape {values.shape}, {kept} kept")
        # What the snippet returned.
        if got["mask/" + name].dtype != np.uint8 or not np.array_equal(got["mask/" + name], mask):
            fail(f"mask/{name} differs")
        if got[name].dtype != np.float32 or got[name].shape != want.shape:
            fail(f"{name}: {got[name].dtype} {got[name].shape}")
        if dtype == "float32":
            if not np.array_equal(got[name], want):
                fail(f"{name} differs from the checkpoint")
        elif not np.all(np.abs(got[name] - want) <= 2.0 ** -8 * np.abs(want)):
            fail(f"{name} differs from the checkpoint by more than bf16 rounding")
        if np.any(got[name][mask == 0] != 0):
            fail(f"{name}: nonzero pruned entries")
    others = [k for k in dense if k not in masked and not k.startswith(("mask/", "momentum/"))]
    for name in others:
        if not np.array_equal(got[name], array(dense[name])):
            fail(f"{name} differs from the checkpoint")
    if int(meta["kept"]) != kept_all:
        fail(f"metadata kept {meta['kept']}, bits keep {kept_all}")
    print(f"ok: {len(masked)} masked tensors, {kept_all} kept, {len(others)} other tensors")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        fail("usage: check_compact_snippet.py FORMATS.md COMPACT DENSE float32|bfloat16")
    main(*sys.argv[1:])
