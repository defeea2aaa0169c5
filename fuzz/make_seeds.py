#!/usr/bin/python3
"""Writes the seed corpus of every fuzz harness into fuzz/corpus/<harness>/.

Small valid files of each kind (what the fuzzer mutates from), made with NumPy, zlib and
libjpeg-turbo's cjpeg. Re-running it rewrites the same files. Usage: fuzz/make_seeds.py
"""
import gzip, io, json, os, struct, subprocess, zlib
import numpy as np

ROOT = os.path.dirname(os.path.abspath(__file__))


def put(harness, name, data):
    d = os.path.join(ROOT, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy(array, version=(1, 0)):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, version=version)
    return buf.getvalue()


rng = np.random.default_rng(0)
put("fuzz_npy", "images_u1.npy", npy(rng.integers(0, 255, (2, 5, 4, 3), dtype=np.uint8)))
put("fuzz_npy", "labels_i8.npy", npy(np.array([3, 1, 4], dtype=np.int64)))
put("fuzz_npy", "v2_f4.npy", npy(np.zeros((2, 3), dtype=np.float32), version=(2, 0)))
put("fuzz_npy", "u2.npy", npy(np.arange(6, dtype=np.uint16).reshape(3, 2)))
put("fuzz_npy", "scalar.npy", npy(np.array(7, dtype=np.uint8)))


def safetensors(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in sorted(tensors.items()):
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


w = np.arange(6, dtype=np.float32).tobytes()
put("fuzz_safetensors", "plain.safetensors", safetensors({"a": ("F32", [2, 3], w)}))
put("fuzz_safetensors", "checkpoint.safetensors", safetensors(
    {"fc.weight": ("F32", [2, 3], w), "mask/fc.weight": ("U8", [2, 3], bytes([1, 0, 1, 1, 0, 1])),
     "momentum/fc.weight": ("F32", [2, 3], w), "fc.bias": ("BF16", [2], b"\0\0\0\0")},
    {"format": "lth-checkpoint-1", "iteration": "100", "best_acc": "0.5",
     "config": json.dumps({"model": {"name": "lenet300_100"}}),
     "trainer": json.dumps({"iteration": 100, "epoch": 1, "batch": 2, "best_acc": 0.5,
                            "best_iteration": 100, "window_loss_sum": 1.0, "window_count": 1})}))
put("fuzz_safetensors", "empty.safetensors", safetensors({}))
# `lth export`'s compact tickets: kept values + mask bits (bit i % 8 of byte i // 8), and a
# BN-folded one (conv bias stored, the BN recreated on reading).
compact_meta = {"format": "lth-compact-ticket-1", "masked": json.dumps({"conv1.weight": [2, 1, 1, 5]}),
                "dtype": "float32", "kept": "6", "total": "10", "density": "0.6", "fold_bn": "false",
                "iteration": "7", "config": json.dumps({"model": {"name": "resnet20"}})}
compact = {"conv1.weight.values": ("F32", [6], w), "conv1.weight.mask_bits": ("U8", [2], bytes([0b01101101, 0b10])),
           "bn1.weight": ("F32", [2], np.ones(2, np.float32).tobytes())}
put("fuzz_safetensors", "compact.safetensors", safetensors(compact, compact_meta))
folded_meta = dict(compact_meta, fold_bn="true", folded=json.dumps({"bn1": "conv1"}), bn_eps="1e-05",
                   dtype="bfloat16")
folded = {"conv1.weight.values": ("BF16", [6], bytes(12)), "conv1.weight.mask_bits": ("U8", [2], bytes([0b01101101, 0b10])),
          "conv1.bias": ("F32", [2], np.zeros(2, np.float32).tobytes())}
put("fuzz_safetensors", "compact_folded.safetensors", safetensors(folded, folded_meta))


def idx(array):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


put("fuzz_idx", "images-idx3-ubyte", idx(rng.integers(0, 255, (3, 4, 4))))
put("fuzz_idx", "labels-idx1-ubyte", idx(np.array([1, 2, 3])))
put("fuzz_idx", "images-idx3-ubyte.gz", gzip.compress(idx(rng.integers(0, 255, (2, 3, 3))), mtime=0))


def ppm(w, h, gray=False):
    pixels = rng.integers(0, 255, (h, w) if gray else (h, w, 3), dtype=np.uint8)
    return (b"P5" if gray else b"P6") + b"\n%d %d\n255\n" % (w, h) + pixels.tobytes()


def cjpeg(args, w, h, gray=False):
    return subprocess.run(["cjpeg"] + args, input=ppm(w, h, gray), capture_output=True, check=True).stdout


def png(w, h):
    raw = b"".join(b"\0" + rng.integers(0, 255, w * 3, dtype=np.uint8).tobytes() for _ in range(h))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# The first byte selects the transform (size, train/eval, DCT scaling): see fuzz_image.cpp.
put("fuzz_image", "baseline.jpg", b"\x08" + cjpeg(["-quality", "80"], 24, 16))
put("fuzz_image", "progressive.jpg", b"\x68" + cjpeg(["-progressive"], 40, 32))
put("fuzz_image", "gray.jpg", b"\x25" + cjpeg([], 16, 16, gray=True))
put("fuzz_image", "restart.jpg", b"\x41" + cjpeg(["-restart", "1", "-sample", "1x1"], 32, 24))
put("fuzz_image", "rgb.png", b"\x30" + png(12, 9))

with open(os.path.join(ROOT, "..", "configs", "imagenet_resnet50.toml"), "rb") as f:
    put("fuzz_config", "imagenet_resnet50.toml", f.read())
put("fuzz_config", "overrides.toml", b"[train]\nlr = 0.05\n[imp]\ncycles = 3\n\0train.momentum=0.8\nimp.branches=reinit\ndata.strict=yes")
put("fuzz_config", "empty.toml", b"")

put("fuzz_rendezvous", "two_ranks", b"WORLD_SIZE=2\nRANK=1\nLOCAL_RANK=1\nMASTER_ADDR=127.0.0.1\nMASTER_PORT=29500\n")
put("fuzz_rendezvous", "timeout", b"WORLD_SIZE=4\nRANK=0\nMASTER_ADDR=node0\nMASTER_PORT=1\nLTH_DIST_TIMEOUT=60\nGLOO_SOCKET_IFNAME=eth0,eth1\n")
put("fuzz_rendezvous", "single", b"WORLD_SIZE=1\n")


# fuzz_ilsvrc: meta.mat (MATLAB v5, written here independently of lth's writer), the devkit
# as .tar.gz, and a tar of per-class tars like ILSVRC2012_img_train.tar.
def mat_element(kind, data):
    out = struct.pack("<II", kind, len(data)) + data
    return out + b"\0" * (-len(out) % 8)


def mat_matrix(cls, dims, name, body):
    flags = mat_element(6, struct.pack("<II", cls, 0))
    return mat_element(14, flags + mat_element(5, struct.pack("<%di" % len(dims), *dims)) +
                       mat_element(1, name) + body)


def mat_double(v):
    return mat_matrix(6, [1, 1], b"", mat_element(9, struct.pack("<d", v)))


def mat_char(s):
    return mat_matrix(4, [1, len(s)], b"", mat_element(4, s.encode("utf-16-le")))


def meta_mat(synsets, compress):
    fields = [b"ILSVRC2012_ID", b"WNID", b"num_children"]
    body = struct.pack("<I", (4 << 16) | 5) + struct.pack("<I", 32)  # small element: name length 32
    body += mat_element(1, b"".join(f.ljust(32, b"\0") for f in fields))
    for sid, wnid, children in synsets:
        body += mat_double(sid) + mat_char(wnid) + mat_double(children)
    var = mat_matrix(2, [len(synsets), 1], b"synsets", body)
    header = b"MATLAB 5.0 MAT-file, seed".ljust(116, b" ") + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"
    if compress:
        z = zlib.compress(var)
        return header + struct.pack("<II", 15, len(z)) + z
    return header + var


def tar_bytes(members):
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


synsets = [(1, "n01443537", 0), (2, "n01440764", 0), (1001, "n00000001", 2)]
put("fuzz_ilsvrc", "meta.mat", meta_mat(synsets, False))
put("fuzz_ilsvrc", "meta_compressed.mat", meta_mat(synsets, True))
devkit = tar_bytes([("ILSVRC2012_devkit_t12/data/meta.mat", meta_mat(synsets, True)),
                    ("ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt", b"2\n1\n")])
put("fuzz_ilsvrc", "devkit.tar.gz", gzip.compress(devkit, mtime=0))
put("fuzz_ilsvrc", "train_tar_of_tars.tar",
    tar_bytes([(w + ".tar", tar_bytes([(w + "_1.JPEG", b"\xff\xd8jpeg\xff\xd9"), (w + "_2.JPEG", b"x" * 600)]))
               for w in ("n01440764", "n01443537")]))


# The reference's Flax checkpoints (MessagePack): a ResNet-20 tree whose stem kernel is real
# and whose other arrays are empty (a valid file is megabytes, beyond -max_len), the tree
# without params_mask, a chunked array, and a document with every MessagePack type.
import msgpack  # Debian's python3-msgpack


def flax_array(a):
    return msgpack.ExtType(1, msgpack.packb((a.shape, a.dtype.name, a.tobytes("C")), use_bin_type=True))


def resnet20_tree(with_mask=True):
    empty = flax_array(np.zeros((0,), np.float32))
    ext, stats = {}, {}
    for i in range(21):
        ext[f"Conv_{i}"] = {"kernel": flax_array(rng.standard_normal((3, 3, 3, 16), np.float32)) if i == 0 else empty}
        ext[f"BatchNorm_{i}"] = {"scale": empty, "bias": empty}
        stats[f"BatchNorm_{i}"] = {"mean": empty, "var": empty}
    tree = {"params": {"ext": ext, "cls": flax_array(np.zeros((64, 2), np.float32))}}
    if with_mask:
        tree["params_mask"] = tree["params"]
    tree["batch_stats"] = stats
    tree["image_stats"] = {"m": flax_array(np.full(3, 0.5, np.float32)), "s": flax_array(np.full(3, 0.25, np.float32))}
    return msgpack.packb(tree, use_bin_type=True)


put("fuzz_msgpack", "resnet20_tree.ckpt", resnet20_tree())
put("fuzz_msgpack", "resnet20_no_mask.ckpt", resnet20_tree(with_mask=False))
put("fuzz_msgpack", "chunked.ckpt", msgpack.packb({"params": {"cls": {
    "__msgpack_chunked_array__": True, "shape": [2, 2], "chunks": {"0": flax_array(np.zeros(4, np.float32))}}}}))
put("fuzz_msgpack", "types.msgpack", msgpack.packb(
    {"i": [0, -1, 200, -200, 70000, -70000, 2**33, -2**33, 2**64 - 1], "f": [1.5, float("inf")],
     "s": ["x" * 40, "y" * 300], "b": [b"", b"\0" * 300], "n": [None, True, False],
     "e": [msgpack.ExtType(2, b"ab"), msgpack.ExtType(3, b"abcd"), msgpack.ExtType(99, b"12345678")],
     "deep": [[[[[[1]]]]]]}, use_bin_type=True))
