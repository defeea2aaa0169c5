#!/usr/bin/python3
"""Writes the hostile inputs of issue 9 into fuzz/regressions/<harness>/, where
scripts/fuzz.sh replays them on every run (CI included). Findings of later fuzz runs are
added to the same folders by hand (the crashing input, named after what it found).
Usage: fuzz/make_regressions.py
"""
import gzip, os, struct, subprocess, zlib
import numpy as np

ROOT = os.path.dirname(os.path.abspath(__file__))


def put(harness, name, data):
    d = os.path.join(ROOT, "regressions", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy_raw(header, major=1, data=b""):
    n = len(header)
    length = struct.pack("<H", n) if major == 1 else struct.pack("<I", n)
    return b"\x93NUMPY" + bytes([major, 0]) + length + header + data


def dict_with(shape, descr=b"'|u1'"):
    return b"{'descr': " + descr + b", 'fortran_order': False, 'shape': " + shape + b", }\n"


# std::regex recursed per character on these: SIGSEGV on main.
put("fuzz_npy", "spaces_67k_header.npy", npy_raw(b" " * 67000, 2))
put("fuzz_npy", "descr_65000.npy", npy_raw(dict_with(b"(1,)", b"'" + b"a" * 65000 + b"'"), 2))
put("fuzz_npy", "descr_9000.npy", npy_raw(dict_with(b"(1,)", b"'" + b"a" * 9000 + b"'")))
put("fuzz_npy", "shape_overflow.npy", npy_raw(dict_with(b"(99999999999999999999999,)")))
put("fuzz_npy", "shape_negative.npy", npy_raw(dict_with(b"(-1, 28, 28, 3)")))
put("fuzz_npy", "shape_string.npy", npy_raw(dict_with(b"(1, 'x', 28, 28, 3)")))
put("fuzz_npy", "shape_wraps.npy", npy_raw(dict_with(b"(4294967296, 4294967296)")))
put("fuzz_npy", "empty_side.npy", npy_raw(dict_with(b"(1, 0, 8, 3)")))


def be32(v):
    return struct.pack(">I", v)


ihdr = b"IHDR" + be32(32000) + be32(32000) + bytes([8, 2, 0, 0, 0])
png_bomb = b"\x89PNG\r\n\x1a\n" + be32(13) + ihdr + be32(zlib.crc32(ihdr))
put("fuzz_image", "png_32000x32000_65_bytes.png", b"\x00" + png_bomb)


def cjpeg(args, w, h):
    rng = np.random.default_rng(1)
    ppm = b"P6\n%d %d\n255\n" % (w, h) + rng.integers(0, 255, (h, w, 3), dtype=np.uint8).tobytes()
    return subprocess.run(["cjpeg"] + args, input=ppm, capture_output=True, check=True).stdout


prog = bytearray(cjpeg(["-progressive"], 16, 16))
sof = prog.index(b"\xff\xc2")
prog[sof + 5:sof + 9] = struct.pack(">HH", 50000, 50000)  # height, width
put("fuzz_image", "progressive_50000x50000.jpg", b"\x40" + bytes(prog))

small = cjpeg(["-progressive"], 32, 32)
last_sos = small.rindex(b"\xff\xda")
flood = small[:-2] + small[last_sos:-2] * 600 + b"\xff\xd9"
put("fuzz_image", "progressive_600_scans.jpg", b"\x00" + flood)
put("fuzz_image", "progressive_600_scans_no_eoi.jpg", b"\x00" + flood[:-2])

# 64 MB of zeros behind a header that promises 10 bytes: must stop inflating at once.
bomb = gzip.compress(struct.pack(">BBBB", 0, 0, 8, 1) + be32(10) + bytes(64 << 20), 9, mtime=0)
put("fuzz_idx", "gzip_bomb_promises_10.gz", bomb)
put("fuzz_idx", "promises_2_to_96.idx", struct.pack(">BBBB", 0, 0, 8, 3) + be32(0xFFFFFFFF) * 3)


def st(header, data=b""):
    return struct.pack("<Q", len(header)) + header + data


put("fuzz_safetensors", "duplicate_key.safetensors",
    st(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
       b'"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x"))
put("fuzz_safetensors", "header_length_2_40.safetensors", struct.pack("<Q", 1 << 40) + b"{}")
put("fuzz_safetensors", "negative_iteration.safetensors",
    st(b'{"__metadata__":{"format":"lth-checkpoint-1","iteration":"-5"}}'))
put("fuzz_safetensors", "nan_best_acc.safetensors",
    st(b'{"__metadata__":{"format":"lth-checkpoint-1","iteration":"1","best_acc":"nan"}}'))

for i, line in enumerate([b"train.momentum=nan", b"train.lr=inf", b"train.weight_decay=-1",
                          b"train.label_smoothing=2", b"data.image_size=-5",
                          b"train.ckpt_every=-7", b"train.num_workers=4294967298",
                          b"imp.cycles=9999999999"]):
    put("fuzz_config", "set_%d_%s" % (i, line.split(b"=")[0].decode()), b"\0" + line)
put("fuzz_config", "toml_nan_lr", b"[train]\nlr = nan\n")
put("fuzz_config", "branch_rewind_20_digits", b"\0imp.branches=rewind_99999999999999999999")

put("fuzz_rendezvous", "world_size_huge", b"WORLD_SIZE=99999999999999999999\n")
put("fuzz_rendezvous", "rank_beyond_world", b"WORLD_SIZE=2\nRANK=2\nMASTER_ADDR=a\nMASTER_PORT=1\n")
