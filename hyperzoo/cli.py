"""The ``hyperzoo`` command.

``hyperzoo fit|validate|test`` are LightningCLI subcommands (``--config``, ``--print_config``, dotted
overrides); the others are hyperzoo's own. Errors a user can act on print as one line, without a traceback.

Building the parser imports no torch (``hyperzoo --help`` and each subcommand's ``--help`` take well under a second):
a command module listed in :data:`COMMAND_MODULES` must import only light modules at its top (argparse, pathlib,
:mod:`hyperzoo.errors`, :mod:`hyperzoo.cli_types`, other ``commands`` modules), keep every heavy import inside its
command functions, and live in a package whose ``__init__`` is lazy (:mod:`hyperzoo._lazy`).
``tests/test_cli_robustness.py`` checks this for every listed module.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import NoReturn

from hyperzoo.cli_flags import flag_message
from hyperzoo.cli_types import MODEL_FAMILIES, existing_path, positive_int
from hyperzoo.errors import HyperzooError

__all__ = ["main"]

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)
# noise a user cannot act on: Lightning's loops still call torch's deprecated pytree API (LeafSpec)
warnings.filterwarnings("ignore", message=r".*\(treespec, LeafSpec\)` is deprecated.*", category=FutureWarning)
warnings.filterwarnings("ignore", message=r".*_register_pytree_node` is deprecated.*", category=FutureWarning)

LIGHTNING = ("fit", "validate", "test")
Command = Callable[[argparse.Namespace], int | None]

# Subpackages that add their own subcommands: each module defines `register(subparsers)`, which adds parsers
# whose defaults set `func(args) -> int | None`. Keep imports inside the command functions so `--help` is fast
# (see the module docstring: a new module is one more line here, and the lazy-import test covers it).
COMMAND_MODULES: list[str] = [
    "hyperzoo.graphs.commands",
    "hyperzoo.ghn.commands",
    "hyperzoo.smash.commands",
    "hyperzoo.zoo.commands",
    "hyperzoo.merge.commands",
    "hyperzoo.stitch.commands",
]


class _OptionValueError(Exception):
    """An option value failed its :mod:`hyperzoo.cli_types` check; the usage error is printed already."""


class _Parser(argparse.ArgumentParser):
    """argparse, except that a bad option *value* makes :func:`main` return 2 instead of exiting.

    Like a library error, a value that fails its :mod:`hyperzoo.cli_types` check returns 2 from :func:`main`; other
    usage errors (unknown options, missing arguments, bad choices) raise ``SystemExit(2)`` as argparse does.
    """

    def error(self, message: str) -> NoReturn:
        handling = sys.exc_info()[1]
        if handling is not None and isinstance(handling.__context__, argparse.ArgumentTypeError):
            self.print_usage(sys.stderr)
            print(f"{self.prog}: error: {message}", file=sys.stderr)
            raise _OptionValueError(message)
        super().error(message)


def _cmd_models(args: argparse.Namespace) -> int:
    from hyperzoo.nets import create_model, list_models, model_family

    names = list_models(args.pattern or "*", family=args.family)
    if not names:
        raise HyperzooError(f"no model matches {args.pattern!r}; try `hyperzoo models` to list them all")
    rows = []
    for name in names:
        row = [name, model_family(name)]
        if args.params:
            row.append(f"{sum(p.numel() for p in create_model(name).parameters()) / 1e6:.3f}M")
        rows.append(row)
    if sys.stdout.isatty():  # a table for people; piped, one "name family [params]" line per model, as before
        from hyperzoo.tables import text_table

        print(text_table(["model", "family", "params"][: len(rows[0])], rows, align="llr"))
    else:
        for row in rows:
            print(f"{row[0]:28s} {row[1]}" + (f"  {row[2]:>10s} params" if args.params else ""))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from hyperzoo.demo import run_demo

    run_demo(model=args.model, ghn=args.ghn, data_root=args.data_root, limit=args.limit)
    return 0


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from hyperzoo.data import CIFAR10DataModule, CIFAR100DataModule, ImageFolderDataModule, ImageNetDataModule

    cls = {
        "cifar10": CIFAR10DataModule,
        "cifar100": CIFAR100DataModule,
        "imagefolder": ImageFolderDataModule,
        "imagenet": ImageNetDataModule,
    }[args.dataset]
    dm = cls(root=args.root, cache_dir=args.cache_dir, download=args.download)
    dm.prepare_data()
    dm.setup("fit")
    print(f"{args.dataset}: cache ready ({dm.num_classes} classes)")
    return 0


def _data_root(text: str) -> str:
    """A dataset root: ``sample`` (the embedded CIFAR-10 test images) or an existing folder or archive."""
    return text if text == "sample" else existing_path(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hyperzoo",
        description="hyperzoo: hypernetworks and parameter prediction.",
        epilog="Training: `hyperzoo fit --config experiments/configs/<name>.yaml` "
        "(also validate, test; `hyperzoo fit --help` lists every option).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in LIGHTNING:
        sub.add_parser(name, help=f"LightningCLI {name}: --config FILE.yaml, --print_config, dotted overrides")

    p = sub.add_parser("models", help="list registered models")
    p.add_argument("pattern", nargs="?", help="shell-style pattern, e.g. 'resnet*'")
    p.add_argument("--family", choices=MODEL_FAMILIES, help="only this family: " + ", ".join(MODEL_FAMILIES))
    p.add_argument("--params", action="store_true", help="also build each model and count its parameters")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser(
        "demo",
        help="predict a ResNet-50 with the shipped GHN-2 and test it on the embedded CIFAR-10 sample",
        description="Predicts all parameters of MODEL (default ResNet-50, adapted to 32x32) in one pass of the GHN "
        "shipped with hyperzoo and classifies the embedded CIFAR-10 test sample with the predicted network, "
        "untrained, next to the same network at random initialisation.",
    )
    p.add_argument("--model", default="resnet50", help="registered model (default resnet50)")
    p.add_argument(
        "--ghn",
        default=None,
        help="shipped GHN name or checkpoint file (default: the shipped GHN whose card records the best ResNet-50 "
        "top-1; `hyperzoo ghns` lists them)",
    )
    p.add_argument(
        "--data-root",
        type=_data_root,
        default=None,
        help="another CIFAR-10 source (folder or .tar.gz) instead of the sample",
    )
    p.add_argument("--limit", type=positive_int, default=None, help="evaluate on this many test images")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("data", help="image data utilities: prepare (the HDF5 cache of a dataset)")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    q = dsub.add_parser("prepare", help="build the HDF5 uint8 cache of a dataset once")
    q.add_argument("--dataset", choices=["cifar10", "cifar100", "imagefolder", "imagenet"], default="cifar10")
    q.add_argument("--root", required=True, help="dataset folder, ImageFolder tree, .tar.gz archive or 'sample'")
    q.add_argument("--cache-dir", default=None, help="cache folder (default $HYPERZOO_CACHE or ~/.cache/hyperzoo)")
    q.add_argument("--download", action="store_true", help="download CIFAR with torchvision if missing")
    q.set_defaults(func=_cmd_data_prepare)

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hyperzoo`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args: argparse.Namespace | None = None
    try:
        if argv and argv[0] in LIGHTNING:
            from hyperzoo.lightning.cli import run_lightning_cli

            run_lightning_cli(argv)
            return 0
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        return int(args.func(args) or 0)
    except _OptionValueError:  # argparse printed usage and the error, which names the option
        return 2
    except HyperzooError as e:
        message = " ".join(str(e).split())  # one line, whatever the message's origin
        # library messages name Python arguments (batch_size=0); say the command's flags instead (--batch-size 0)
        message = flag_message(message, getattr(args, "argument_flags", None) or {})
        print(f"hyperzoo: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `hyperzoo models | head`
        sys.stderr.close()
        return 0
    except OSError as e:  # a file the command cannot read or write: say which, without a traceback
        if os.environ.get("HYPERZOO_TRACEBACK"):
            raise
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        print(f"hyperzoo: error: {e.strerror or e}{where} (HYPERZOO_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hyperzoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
