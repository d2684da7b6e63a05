"""Benchmarks of hyperzoo.hypernets and hyperzoo.smash; every number is a ratio against a baseline of the same run.

1. Per-sample weights: 64 images, each through a ResNet-20 with its own weight set (64 weight sets), as one
   vectorised ``batched_forward`` call vs a Python loop of 64 ``functional_call``s (``loop_forward``); forward only
   and forward + backward. BatchNorm uses batch statistics (of each sample's spatial positions).
2. SMASH training step (batch 64): encode a sampled architecture, generate the 1x1 weights, forward, backward,
   Adam step; against the plain training step of the same architecture as an ordinary network (``DerivedNet``),
   with a breakdown (sampling + encoding, hypernet forward).

Times are medians over ``--reps`` interleaved repetitions.

Run: python experiments/bench_hypernets.py --threads 1 --reps 5
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from hyperzoo.hypernets import batched_forward, loop_forward
from hyperzoo.nets import create_model
from hyperzoo.smash import SMASH, DerivedNet


def _time(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_per_sample(reps: int, b: int) -> dict[str, float]:
    torch.manual_seed(0)
    net = create_model("resnet20")
    params = {
        k: (v.detach().unsqueeze(0) + 0.01 * torch.randn(b, *v.shape)).requires_grad_()
        for k, v in net.named_parameters()
    }
    x = torch.randn(b, 3, 32, 32)

    def fwd(batched: bool) -> None:
        with torch.no_grad():
            (batched_forward if batched else loop_forward)(net, params, x, per_sample=True)

    def fwd_bwd(batched: bool) -> None:
        out = (batched_forward if batched else loop_forward)(net, params, x, per_sample=True)
        out.sum().backward()

    res: dict[str, list[float]] = {k: [] for k in ("fwd_batched", "fwd_loop", "fb_batched", "fb_loop")}
    fwd(True), fwd(False), fwd_bwd(True), fwd_bwd(False)  # warm-up
    for _ in range(reps):
        res["fwd_batched"].append(_time(lambda: fwd(True)))
        res["fwd_loop"].append(_time(lambda: fwd(False)))
        res["fb_batched"].append(_time(lambda: fwd_bwd(True)))
        res["fb_loop"].append(_time(lambda: fwd_bwd(False)))
    return {k: statistics.median(v) for k, v in res.items()}


def bench_smash(reps: int, b: int, steps: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = SMASH()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999), eps=1e-4)
    x, y = torch.randn(b, 3, 32, 32), torch.randint(0, 10, (b,))
    rng = random.Random(0)
    archs = [model.space.sample(rng) for _ in range(steps)]
    derived = [DerivedNet(model.space, a) for a in archs]
    dopts = [torch.optim.SGD(d.parameters(), lr=0.1, momentum=0.9) for d in derived]

    def smash_steps() -> None:
        for a in archs:
            loss = F.cross_entropy(model(x, a), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

    def derived_steps() -> None:
        for d, o in zip(derived, dopts):
            loss = F.cross_entropy(d(x), y)
            o.zero_grad()
            loss.backward()
            o.step()

    def sample_encode() -> None:
        r = random.Random(1)
        for _ in range(steps):
            model.space.encode(model.space.sample(r))

    def hypernet_fwd() -> None:
        with torch.no_grad():
            for a in archs:
                model.weights(a)

    smash_steps(), derived_steps()
    res: dict[str, list[float]] = {k: [] for k in ("smash", "derived", "sample_encode", "hypernet")}
    for _ in range(reps):
        res["smash"].append(_time(smash_steps) / steps)
        res["derived"].append(_time(derived_steps) / steps)
        res["sample_encode"].append(_time(sample_encode) / steps)
        res["hypernet"].append(_time(hypernet_fwd) / steps)
    return {k: statistics.median(v) for k, v in res.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--smash-steps", type=int, default=5, help="training steps per SMASH timing repetition")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, threads {args.threads}")
    r = bench_per_sample(args.reps, args.batch)
    print(f"[per-sample weights] ResNet-20, {args.batch} images x {args.batch} weight sets (median of {args.reps})")
    print(f"  forward          : batched {r['fwd_batched'] * 1e3:8.1f} ms   loop {r['fwd_loop'] * 1e3:8.1f} ms   "
          f"loop/batched = {r['fwd_loop'] / r['fwd_batched']:.2f}x")  # fmt: skip
    print(f"  forward+backward : batched {r['fb_batched'] * 1e3:8.1f} ms   loop {r['fb_loop'] * 1e3:8.1f} ms   "
          f"loop/batched = {r['fb_loop'] / r['fb_batched']:.2f}x")  # fmt: skip
    s = bench_smash(args.reps, args.batch, args.smash_steps)
    print(f"[SMASH step] batch {args.batch}, default space, mean over {args.smash_steps} random architectures")
    print(f"  SMASH step (encode+hypernet+fwd+bwd+Adam)       : {s['smash'] * 1e3:7.1f} ms")
    print(f"  same architectures trained normally (DerivedNet)  : {s['derived'] * 1e3:7.1f} ms   "
          f"SMASH/normal = {s['smash'] / s['derived']:.2f}x")  # fmt: skip
    print(f"  of which sample+encode {s['sample_encode'] * 1e3:.2f} ms ({100 * s['sample_encode'] / s['smash']:.1f}%), "
          f"hypernet forward {s['hypernet'] * 1e3:.2f} ms ({100 * s['hypernet'] / s['smash']:.1f}%)")  # fmt: skip


if __name__ == "__main__":
    main()
