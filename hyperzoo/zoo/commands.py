"""``hyperzoo zoo train|list|add``: train the zoo from a config, list its entries, add local weight files."""

from __future__ import annotations

import argparse

from hyperzoo.cli_flags import argument_flags
from hyperzoo.cli_types import existing_file, positive_int

__all__ = ["register"]


def _cmd_train(args: argparse.Namespace) -> int:
    from hyperzoo.lightning.zoo_train import train_zoo

    overrides = {"root": args.data_root} if args.data_root else None
    train_zoo(args.config, root=args.zoo, only=args.only or None, overrides=overrides)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from hyperzoo.errors import DataError
    from hyperzoo.zoo.store import list_zoo, load_meta, zoo_dir

    names = list_zoo(args.zoo)
    if not names:
        print(f"zoo {zoo_dir(args.zoo)} is empty; train it with `hyperzoo zoo train --config ...`")
        return 0
    print(f"{'name':24s} {'model':14s} {'kwargs':32s} {'classes':10s} {'epochs':>6s} {'test acc':>8s} {'MMACs':>8s}")
    for name in names:
        try:
            m = load_meta(name, args.zoo)
        except DataError as e:  # one corrupt entry does not hide the others
            print(f"{name:24s} unreadable: {e}")
            continue
        classes = m.get("classes") or []
        cls = f"{classes[0]}-{classes[-1]}" if classes else "?"
        merge = m.get("merge") or {}  # merged entries written before test_acc/macs were recorded for them
        acc = m.get("test_acc", merge.get("acc", merge.get("joint")))
        m.setdefault("macs", merge.get("macs", 0))
        kwargs = str(m.get("model_kwargs", {}))
        if m.get("leaf_widths"):
            kwargs = f"{kwargs} merged {merge.get('method', '')} x{merge.get('width', '?')}"
        print(
            f"{name:24s} {m['model']:14s} {kwargs:32s} {cls:10s} "
            f"{m.get('recipe', {}).get('epochs', '-')!s:>6s} {acc * 100 if acc is not None else float('nan'):8.2f} "
            f"{m.get('macs', 0) / 1e6:8.1f}"
        )
    return 0


def _cmd_add(args: argparse.Namespace) -> int:
    from hyperzoo.zoo.store import add_external

    path = add_external(
        args.name, args.model, args.weights, args.num_classes, args.source, args.zoo, overwrite=args.overwrite
    )
    print(f"zoo: stored {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``zoo`` command."""
    p = subparsers.add_parser("zoo", help="a local model zoo (train, list, add local weights)")
    sub = p.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)
    q = sub.add_parser("train", help="train every entry of a zoo config that is not stored yet")
    q.add_argument(
        "--config", type=existing_file, required=True, help="zoo YAML (experiments/configs/zoo_cifar10.yaml)"
    )
    q.add_argument("--zoo", default=None, help="zoo directory (default $HYPERZOO_ZOO or ./zoo)")
    q.add_argument("--only", nargs="*", help="train only these entries")
    q.add_argument("--data-root", default=None, help="override data.root of the config")
    q.set_defaults(func=_cmd_train)
    q = sub.add_parser("list", help="list the zoo's entries")
    q.add_argument("--zoo", default=None, help="zoo directory")
    q.set_defaults(func=_cmd_list)
    q = sub.add_parser("add", help="add a model from a local torchvision/timm weights file")
    q.add_argument("name", help="zoo entry name")
    q.add_argument("--model", required=True, help="registered (torchvision) model name, or a timm name")
    q.add_argument("--weights", type=existing_file, required=True, help="local .safetensors or .pth state dict")
    q.add_argument("--num-classes", type=positive_int, default=1000, help="classifier outputs (default 1000)")
    q.add_argument("--source", choices=["torchvision", "timm"], default="torchvision")
    q.add_argument("--zoo", default=None, help="zoo directory")
    q.add_argument("--overwrite", action="store_true", help="replace an existing entry of that name")
    q.set_defaults(func=_cmd_add, argument_flags=argument_flags(q))
