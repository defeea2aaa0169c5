#!/usr/bin/env python3
"""torchvision's resnet50 training step, the peer of bench_gpu_step (bench/gpu/run.sh).

One step: zero_grad, forward under autocast (bf16, or none for fp32), cross-entropy,
backward, SGD step (momentum 0.9, weight decay 1e-4, as lth's MaskedSgd defaults), on
one fixed batch of channels-last float inputs already on the device (no data loading).
CUDA is asynchronous: the clock stops after torch.cuda.synchronize(). Prints one JSON line.

Example: python3 torch_peer.py --device cuda --precision bf16 --batch 256
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F
import torchvision


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: default)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).to(device).to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    images = torch.randn(args.batch, 3, 224, 224, device=device).to(memory_format=torch.channels_last)
    labels = torch.randint(0, 1000, (args.batch,), device=device)
    bf16 = args.precision == "bf16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(images)
        loss = F.cross_entropy(logits.float(), labels)
        loss.backward()
        opt.step()
        return loss

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    sync()
    seconds = time.perf_counter() - start
    print(json.dumps({"impl": "torchvision", "model": "resnet50", "batch": args.batch, "device": str(device),
                      "precision": args.precision, "steps": args.steps, "seconds": seconds,
                      "img_per_s": args.batch * args.steps / seconds, "last_loss": loss.item(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
