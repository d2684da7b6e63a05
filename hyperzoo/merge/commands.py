"""``hyperzoo merge A B``: merge two zoo models (or weight files).

The command calls :func:`hyperzoo.merge.run.merge_entries` and prints the merged entry as JSON; library errors
name its arguments (``labels='different'``, ``overwrite=True``) and ``hyperzoo`` prints the flags.
"""

from __future__ import annotations

import argparse
import json

from hyperzoo.cli_flags import argument_flags
from hyperzoo.cli_types import MERGE_METHODS, float_range, nonnegative_float, positive_int

__all__ = ["register"]


def _cmd_merge(args: argparse.Namespace) -> int:
    from hyperzoo.merge.run import merge_entries
    from hyperzoo.progress import Stages

    entry = merge_entries(
        args.a, args.b, method=args.method, width=args.width, data_root=args.data_root, labels=args.labels,
        batches=args.batches, batch_size=args.batch_size, ridge=args.ridge, test_limit=args.test_limit,
        zoo=args.zoo, out=args.out, name=args.name, overwrite=args.overwrite,
        stage=Stages("hyperzoo merge"),  # one line per stage: matching and evaluation take minutes on CPU
    )  # fmt: skip
    print(json.dumps(entry.to_json(), indent=1, default=float))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``merge`` command."""
    p = subparsers.add_parser(
        "merge",
        help="merge two models of one architecture (averaging, Git Re-Basin, PLeaS)",
        description="Merges zoo entries A and B (names from `hyperzoo zoo list`, or paths of zoo .safetensors "
        "files) and stores the merged model as a zoo entry in --out, with its test accuracy and compute.",
    )
    p.add_argument("a", help="zoo entry A")
    p.add_argument("b", help="zoo entry B")
    p.add_argument("--method", default="pleas", choices=MERGE_METHODS, help="default pleas")
    p.add_argument("--width", type=float_range(1.0, 2.0), default=1.0, help="merged width factor in [1, 2] (PLeaS)")
    p.add_argument("--data", default="cifar10", choices=["cifar10"], help="dataset for statistics")
    p.add_argument("--data-root", default="../shared/data/cifar10-jpeg.tar.gz", help="data root ('sample' works)")
    p.add_argument(
        "--labels",
        default="auto",
        choices=["auto", "same", "different"],
        help="label spaces of A and B (auto: from the zoo metadata)",
    )
    p.add_argument("--batches", type=positive_int, default=20, help="batches for matching, least squares and BN reset")
    p.add_argument("--batch-size", type=positive_int, default=128, help="batch size (default 128)")
    p.add_argument("--ridge", type=nonnegative_float, default=1e-3, help="ridge of the least squares (default 1e-3)")
    p.add_argument("--test-limit", type=positive_int, default=None, help="evaluate on this many test images")
    p.add_argument("--zoo", default=None, help="zoo directory of A and B")
    p.add_argument("--out", default="merged", help="output directory (a zoo of merged models)")
    p.add_argument("--name", default=None, help="entry name of the merged model (default: derived)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing merged entry of that name")
    p.set_defaults(func=_cmd_merge, argument_flags=argument_flags(p))
