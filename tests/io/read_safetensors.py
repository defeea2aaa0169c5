#!/usr/bin/env python3
"""Independent safetensors reader (Python 3 + numpy only) used by lth's io tests.

Parses FILE from the format's definition alone, checks its layout, and prints one JSON
object: header length, metadata, tensor order in the data section, and for each tensor
its dtype, shape and flattened values (floats as Python floats; NaN and infinities as
the strings "nan", "inf", "-inf" so the output stays valid JSON).
"""
import json
import math
import struct
import sys

import numpy as np

DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
    "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "u1",
}


def fail(message):
    sys.exit(f"read_safetensors.py: {message}")


def as_values(dtype, array):
    if dtype == "BF16":  # numpy has no bfloat16: it is the top half of a float32
        array = (array.astype(np.uint32) << 16).view(np.float32)
    values = []
    for v in array.reshape(-1).tolist():
        if isinstance(v, float) and not math.isfinite(v):
            v = "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        values.append(v)
    return values


def main(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    order = sorted(header, key=lambda k: header[k]["data_offsets"])
    end = 0
    tensors = {}
    for name in order:
        info = header[name]
        begin, stop = info["data_offsets"]
        if begin != end:
            fail(f"{name}: starts at {begin}, previous tensor ended at {end}")
        end = stop
        array = np.frombuffer(data[begin:stop], dtype=DTYPES[info["dtype"]])
        if array.size != math.prod(info["shape"]):
            fail(f"{name}: {array.size} elements for shape {info['shape']}")
        if info["dtype"] == "BOOL" and array.size and array.max() > 1:
            fail(f"{name}: BOOL byte other than 0/1")
        tensors[name] = {"dtype": info["dtype"], "shape": info["shape"],
                         "values": as_values(info["dtype"], array)}
    if end != len(data):
        fail(f"data section is {len(data)} bytes, tensors cover {end}")
    print(json.dumps({"header_length": n, "metadata": metadata, "order": order,
                      "tensors": tensors}))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        fail("usage: read_safetensors.py FILE")
    main(sys.argv[1])
