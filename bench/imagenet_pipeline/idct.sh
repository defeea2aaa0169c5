#!/usr/bin/env bash
# The speed of the two inverse DCTs lth could decode with, measured with libjpeg-turbo's own
# tjbench on one ImageNet-sized (500x375, 4:2:0, q90) noisy picture, alternating the two
# settings for a few rounds in one run. lth decodes with the fast one (as TensorFlow).
# Usage: bench/imagenet_pipeline/idct.sh [ROUNDS]   (needs libjpeg-turbo-progs, python3-numpy)
set -euo pipefail
rounds="${1:-3}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 - "$dir/picture.ppm" <<'PY'
import sys
import numpy as np
rng = np.random.default_rng(0)
y, x = np.mgrid[0:375, 0:500]
img = np.stack([128 + 100 * np.sin(x / 17 + y / 29), 128 + 90 * np.cos(x / 23),
                128 + 80 * np.sin(y / 11)], -1) + rng.normal(0, 18, (375, 500, 3))
open(sys.argv[1], "wb").write(b"P6\n500 375\n255\n" + np.clip(img, 0, 255).astype(np.uint8).tobytes())
PY
cjpeg -quality 90 "$dir/picture.ppm" > "$dir/picture.jpg"
echo "round,idct,decode_mpixels_per_s"
for r in $(seq "$rounds"); do
  for flag in accuratedct fastdct; do
    mp=$(tjbench "$dir/picture.jpg" "-$flag" -rgb -quiet -benchtime 2 -warmup 0.5 | awk 'NF > 3 {v = $NF} END {print v}')
    echo "$r,${flag%dct},$mp"
  done
done
