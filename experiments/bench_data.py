"""Images/s delivered to a training loop: hyperzoo's HDF5 cache + BatchAugment vs torchvision's PIL pipeline.

Both pipelines serve CIFAR-10 train batches of 128 with random crop (padding 4), horizontal flip and
normalization, measured in the same run on the same machine:

(a) torchvision ``ImageFolder`` on the extracted JPEG tree + ``RandomCrop(32, padding=4)``,
    ``RandomHorizontalFlip``, ``ToTensor``, ``Normalize``; ``DataLoader(batch_size=128, shuffle=True,
    num_workers=2)``;
(b) ``hyperzoo.data.CIFAR10DataModule`` on the same archive: uint8 batches from the in-memory HDF5 cache
    (main process) and ``BatchAugment`` on the CPU.

The consumer touches every batch (``.sum()``). Each pipeline runs ``--warmup`` batches untimed, then
``--batches`` timed batches; the runs alternate ``--repeats`` times and the median is reported.

    python experiments/bench_data.py --archive ../shared/data/cifar10-jpeg.tar.gz --markdown
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator

import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision import transforms

from hyperzoo.bench import cpu_name
from hyperzoo.data import CIFAR10DataModule
from hyperzoo.data.datamodules import CIFAR10_MEAN, CIFAR10_STD


def cycle(make: Callable[[], Iterable]) -> Iterator:
    while True:
        yield from make()


def measure(batches: Iterator, consume: Callable, warmup: int, n: int) -> float:
    for batch in itertools.islice(batches, warmup):
        consume(batch)
    images = 0
    start = time.perf_counter()
    for batch in itertools.islice(batches, n):
        images += consume(batch)
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", required=True, help="CIFAR-10 JPEG ImageFolder .tar.gz (or extracted tree)")
    parser.add_argument("--cache-dir", default=None, help="hyperzoo cache dir (default $HYPERZOO_CACHE)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="workers of the torchvision baseline")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="print a RESULTS.md-ready block")
    args = parser.parse_args()

    dm = CIFAR10DataModule(root=args.archive, batch_size=args.batch_size, cache_dir=args.cache_dir)
    t0 = time.perf_counter()
    dm.setup("fit")  # builds the cache on the first run, reuses it afterwards
    setup_s = time.perf_counter() - t0
    train_tree = dm.source.root / "train"

    baseline_set = torchvision.datasets.ImageFolder(
        str(train_tree),
        transform=transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD),
            ]
        ),
    )
    baseline_loader = DataLoader(
        baseline_set,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        persistent_workers=True,
    )
    hz_loader = dm.train_dataloader()

    def consume_baseline(batch) -> int:
        x, y = batch
        x.sum()
        return len(y)

    def consume_hyperzoo(batch) -> int:
        x, y = batch
        x = dm.batch_augment(x, train=True)  # what on_after_batch_transfer does on the device
        x.sum()
        return len(y)

    baseline_batches = cycle(lambda: baseline_loader)
    hz_batches = cycle(lambda: hz_loader)
    base_runs, hz_runs = [], []
    load = os.getloadavg()[0]
    for _ in range(args.repeats):
        base_runs.append(measure(baseline_batches, consume_baseline, args.warmup, args.batches))
        hz_runs.append(measure(hz_batches, consume_hyperzoo, args.warmup, args.batches))
    base, hz = statistics.median(base_runs), statistics.median(hz_runs)
    machine = (
        f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}, {torch.get_num_threads()} intra-op threads, "
        f"load average {load:.2f} at start"
    )
    print(f"machine: {machine}")
    print(f"cache setup: {setup_s:.1f} s ({dm.train_set})")
    runs = ", ".join(f"{r:,.0f}" for r in base_runs)
    print(f"torchvision + PIL, {args.workers} workers: {base:,.0f} images/s (runs {runs})")
    runs = ", ".join(f"{r:,.0f}" for r in hz_runs)
    print(f"hyperzoo HDF5 cache + BatchAugment, main process: {hz:,.0f} images/s (runs {runs})")
    print(f"ratio: {hz / base:.1f}x")
    if args.markdown:
        archive = "../shared/data/cifar10-jpeg.tar.gz"
        baseline = "torchvision ImageFolder + RandomCrop/Flip/ToTensor/Normalize"
        lines = [
            "## Data loading throughput",
            "",
            "```",
            f"python experiments/bench_data.py --archive {archive} --batches {args.batches} "
            f"--repeats {args.repeats} --markdown",
            "```",
            "",
            f"- Machine: {machine}.",
            f"- Data: CIFAR-10 (JPEG), train split, batch {args.batch_size}, random crop (padding 4) + "
            "horizontal flip + normalize; the consumer calls `.sum()` on every batch.",
            f"- {args.warmup} warm-up + {args.batches} timed batches per run, median of {args.repeats} "
            "alternating runs.",
            "",
            "| pipeline | images/s |",
            "|---|---:|",
            f"| {baseline}, DataLoader with {args.workers} workers | {base:,.0f} |",
            f"| hyperzoo HDF5 uint8 cache (in memory) + BatchAugment (CPU), 0 workers | {hz:,.0f} |",
            f"| **ratio** | **{hz / base:.1f}x** |",
        ]
        print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
