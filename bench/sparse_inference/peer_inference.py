#!/usr/bin/python3
"""The peer of bench_sparse_inference: PyTorch (Debian's python3-torch) ResNet-50 inference,
model.eval() under torch.no_grad(), float32 NCHW input, at each batch size and thread count.

PyTorch multiplies pruned weights like any others, so its time does not depend on the mask:
the weights are the random initialisation (torchvision's resnet50 when python3-torchvision is
installed, else the same architecture defined below). Per figure: one untimed warm-up batch,
then at least --reps timed batches and at least --min-seconds; the median gives img/s.
Prints one JSON line per figure ({"kind": "time", "engine": "pytorch", ...}).

Run with /usr/bin/python3 (python3-torch), not the python3 on PATH.
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn


class Bottleneck(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        out = 4 * planes
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != out:
            self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        s = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + s)


def resnet50():
    try:
        import torchvision
        return torchvision.models.resnet50(), "torchvision"
    except ImportError:
        pass
    layers, cin = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                   nn.MaxPool2d(3, 2, 1)], 64
    for i, blocks in enumerate([3, 4, 6, 3]):
        planes = 64 << i
        for b in range(blocks):
            layers.append(Bottleneck(cin, planes, 2 if i > 0 and b == 0 else 1))
            cin = 4 * planes
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1000)]
    return nn.Sequential(*layers), "own definition (torchvision absent)"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batches", default="1,32")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--min-seconds", type=float, default=1.0)
    a = p.parse_args()
    torch.manual_seed(0)
    model, source = resnet50()
    model.eval()
    for batch in [int(b) for b in a.batches.split(",") if b]:
        x = torch.randn(batch, 3, a.image_size, a.image_size)
        for t in [int(t) for t in a.threads.split(",") if t]:
            torch.set_num_threads(t)
            times = []
            with torch.no_grad():
                model(x)
                t0 = time.perf_counter()
                while len(times) < a.reps or time.perf_counter() - t0 < a.min_seconds:
                    s = time.perf_counter()
                    model(x)
                    times.append(time.perf_counter() - s)
            sec = statistics.median(times)
            print(json.dumps({"kind": "time", "engine": "pytorch", "batch": batch, "threads": t,
                              "sec_per_batch": round(sec, 5), "img_s": round(batch / sec, 2),
                              "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                              "torch": torch.__version__, "model": source}), flush=True)


if __name__ == "__main__":
    main()
