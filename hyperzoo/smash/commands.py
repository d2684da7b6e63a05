"""``hyperzoo smash ACTION``: rank architectures with a trained SMASH model, or print random architectures.

- ``hyperzoo smash rank --checkpoint runs/smash_cifar10/smash.safetensors --data-root
  ../shared/data/cifar10-jpeg.tar.gz`` scores ``--num-archs`` random architectures on the held-out split, trains
  ``--num-train`` of them normally for ``--train-steps`` steps and prints Spearman/Kendall correlations with
  bootstrap intervals (``--out`` writes JSON).
- ``hyperzoo smash sample --num 3`` prints random architectures of the default space as JSON lines.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hyperzoo.cli_flags import argument_flags
from hyperzoo.cli_types import int_at_least, new_file, nonnegative_int, positive_float, positive_int
from hyperzoo.errors import ConfigError

__all__ = ["register"]


def _cmd_rank(args: argparse.Namespace) -> int:
    import torch

    from hyperzoo.smash.model import load_smash
    from hyperzoo.smash.rank import load_split, plot_ranking, run_ranking

    if args.num_archs < 3 or args.train_steps < 1 or args.holdout < 1:
        raise ConfigError("--num-archs must be >= 3, --train-steps and --holdout >= 1")
    from hyperzoo.io import check_output

    for option, value in (("--out", args.out), ("--plot", args.plot)):
        if value:  # before the ranking, not after it
            check_output(Path(value), args.overwrite, option)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_smash(args.checkpoint)
    data = load_split(
        args.data_root, val_size=args.val_size, limit=args.train_images, holdout=args.holdout, seed=args.split_seed
    )
    result = run_ranking(
        model, data, num_archs=args.num_archs, num_train=min(args.num_train, args.num_archs),
        train_steps=args.train_steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, n_boot=args.bootstrap,
    )  # fmt: skip
    if args.out:
        from hyperzoo.io import write_text_atomic

        payload = {**result.to_json(), "checkpoint": str(args.checkpoint)}
        write_text_atomic(Path(args.out), json.dumps(payload, indent=1))
    if args.plot:
        plot_ranking(result, args.plot)
    c = result.correlation
    print(
        f"{result.num_train} trained of {result.num_archs} scored: Spearman {c.spearman:.3f} "
        f"[{c.spearman_ci[0]:.3f}, {c.spearman_ci[1]:.3f}], Kendall {c.kendall:.3f} "
        f"[{c.kendall_ci[0]:.3f}, {c.kendall_ci[1]:.3f}] ({int(100 * c.ci)}% bootstrap CI)"
    )
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    import random

    from hyperzoo.smash.space import SMASHSpace

    space = SMASHSpace()
    rng = random.Random(args.seed)
    for _ in range(args.num):
        print(space.sample(rng).to_json())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("smash", help="SMASH one-shot architecture search: rank, sample")
    sub = p.add_subparsers(dest="smash_command", metavar="ACTION", required=True)
    q = sub.add_parser("rank", help="score random architectures with a trained SMASH model and correlate with training")
    q.add_argument(
        "--checkpoint",
        required=True,
        help="smash.safetensors written by `hyperzoo fit` (SMASHModule)",
    )
    q.add_argument(
        "--data-root", required=True, help="CIFAR-10 root, e.g. ../shared/data/cifar10-jpeg.tar.gz or sample"
    )
    q.add_argument(
        "--num-archs",
        type=int_at_least(3, "(correlations need 3 points)"),
        default=50,
        help="random architectures to score (default 50)",
    )
    q.add_argument(
        "--num-train",
        type=int_at_least(3, "(correlations need 3 points)"),
        default=10,
        help="of these, how many to train normally (default 10)",
    )
    q.add_argument(
        "--train-steps", type=positive_int, default=400, help="SGD steps per trained architecture (default 400)"
    )
    q.add_argument("--batch-size", type=positive_int, default=64, help="SGD batch size (default 64)")
    q.add_argument("--lr", type=positive_float, default=0.1, help="SGD learning rate of the trained architectures")
    q.add_argument(
        "--val-size", type=positive_int, default=5000, help="held-out training images (as in the fit config)"
    )
    q.add_argument("--holdout", type=positive_int, default=2000, help="held-out images used for scoring and evaluation")
    q.add_argument("--train-images", type=positive_int, default=None, help="train on a subset of this many images")
    q.add_argument("--split-seed", type=int, default=0, help="seed of the held-out split (as in the fit config)")
    q.add_argument("--seed", type=int, default=0, help="seed of the architecture sample and of training")
    q.add_argument("--bootstrap", type=positive_int, default=2000, help="bootstrap resamples for the intervals")
    q.add_argument("--threads", type=nonnegative_int, default=0, help="torch threads (0: torch's default)")
    q.add_argument("--out", type=new_file, default=None, help="write the full result (every architecture) as JSON")
    q.add_argument("--plot", type=new_file, default=None, help="write a scatter plot PNG")
    q.add_argument("--overwrite", action="store_true", help="replace existing --out/--plot files")
    q.set_defaults(func=_cmd_rank, argument_flags=argument_flags(q))
    q = sub.add_parser("sample", help="print random architectures of the default space as JSON lines")
    q.add_argument("--num", type=positive_int, default=1, help="how many architectures (default 1)")
    q.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    q.set_defaults(func=_cmd_sample)
