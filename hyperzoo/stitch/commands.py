"""``hyperzoo stitch fit|select``: train an SN-Net from a config, pick the best configuration under a budget."""

from __future__ import annotations

import argparse

from hyperzoo.cli_flags import argument_flags
from hyperzoo.cli_types import existing_file, finite_float, positive_float

__all__ = ["register"]


def _cmd_fit(args: argparse.Namespace) -> int:
    from hyperzoo.lightning.stitch_fit import run_fit

    run_fit(
        args.config,
        args.out,
        init=args.init,
        epochs=args.epochs,
        anchor_lr_scale=args.anchor_lr_scale,
        overwrite=args.overwrite,
    )
    return 0


def _cmd_select(args: argparse.Namespace) -> int:
    from hyperzoo.stitch.run import run_select

    run_select(args.table, args.budget_flops)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``stitch`` command."""
    p = subparsers.add_parser(
        "stitch", help="SN-Net: fit (stitch zoo anchors and train), select (a configuration under a budget)"
    )
    sub = p.add_subparsers(dest="stitch_command", metavar="ACTION", required=True)
    q = sub.add_parser("fit", help="LS-initialise, train and evaluate an SN-Net from a YAML config")
    q.add_argument(
        "--config", type=existing_file, required=True, help="stitch YAML (experiments/configs/stitch_cifar10.yaml)"
    )
    q.add_argument("--out", default=None, help="output directory (default: the config's out)")
    q.add_argument(
        "--init", choices=["ls", "random"], default=None, help="stitching-layer init, overrides the config's init"
    )
    q.add_argument(
        "--epochs",
        type=finite_float,
        default=None,
        help="training epochs, overrides train.max_epochs (0: evaluate the init)",
    )
    q.add_argument(
        "--anchor-lr-scale",
        type=finite_float,
        default=None,
        help="anchors' lr relative to the stitches', overrides train.anchor_lr_scale (0 freezes the anchors)",
    )
    q.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in the output folder")
    q.set_defaults(func=_cmd_fit, argument_flags=argument_flags(q))
    q = sub.add_parser("select", help="best evaluated configuration within a FLOPs budget, and the Pareto front")
    q.add_argument("--table", type=existing_file, required=True, help="configs.json written by `hyperzoo stitch fit`")
    q.add_argument("--budget-flops", type=positive_float, required=True, help="budget in FLOPs (2 x MACs) per image")
    q.set_defaults(func=_cmd_select)
