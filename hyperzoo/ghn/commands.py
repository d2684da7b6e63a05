"""``hyperzoo eval-ghn``, ``predict`` and ``ghns``: evaluate a GHN, predict one network's weights, list published GHNs.

A command parses its arguments, calls a library function and prints or writes what it returns: the evaluation
lives in :mod:`hyperzoo.ghn.evaluate`, prediction of a registered model in :mod:`hyperzoo.ghn.predict`, of an ONNX
file in :mod:`hyperzoo.ghn.onnx_predict`. Library errors name Python arguments (``skip_unknown=True``); each parser
states which flags feed them (:func:`hyperzoo.cli_flags.argument_flags`), and ``hyperzoo`` prints the flags.
``register`` adds both parsers; heavy imports (torch, onnx) stay inside the command functions so that
``hyperzoo --help`` stays fast. ``predict_onnx`` and ``onnx_weight_shapes`` are importable from here as before.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperzoo.cli_flags import argument_flags
from hyperzoo.cli_types import new_file, positive_int
from hyperzoo.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch

    from hyperzoo.ghn.evaluate import Architecture, EvalImages
    from hyperzoo.ghn.ghn import GHN
    from hyperzoo.ghn.onnx_predict import onnx_weight_shapes, predict_onnx
    from hyperzoo.ghn.results import PredictionReport

__all__ = ["add_ghns_parser", "load_ghn_arg", "onnx_weight_shapes", "parse_indices", "predict_onnx", "register"]

_GHN_HELP = (
    "the GHN: a checkpoint file (hyperzoo .safetensors written by save_ghn, a Lightning .ckpt, "
    "a reference ppuda .pt) or a GHN name that `hyperzoo ghns` lists (ghn2-cifar10, ghn2-cifar10-ppuda, ghn3-xl, ...)"
)
# `--skip-unknown` feeds both names the library uses for it
_SKIP_UNKNOWN = {"allow_unpredicted": "--skip-unknown", "skip_unknown": "--skip-unknown"}
_MOVED = {"predict_onnx": "predict_onnx", "onnx_weight_shapes": "onnx_weight_shapes", "_shim_module": "shim_module"}


def __getattr__(name: str) -> Any:
    """``predict_onnx`` and ``onnx_weight_shapes`` moved to :mod:`hyperzoo.ghn.onnx_predict` (imported on use)."""
    if name in _MOVED:
        from hyperzoo.ghn import onnx_predict

        return getattr(onnx_predict, _MOVED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _wrap(text: str) -> str:
    """A help paragraph wrapped for ``RawDescriptionHelpFormatter`` (which keeps the epilog's examples intact)."""
    import textwrap

    return textwrap.fill(text, width=100)


def load_ghn_arg(spec: str, device: str | torch.device = "cpu") -> GHN:
    """The GHN that ``--ghn SPEC`` names (a shipped name or a checkpoint file), in eval mode on ``device``.

    Raises:
        DataError: no such file or shipped name, or an unreadable checkpoint.
    """
    from hyperzoo.ghn.published import PUBLISHED, from_pretrained

    if spec not in PUBLISHED and not Path(spec).exists():
        close = PUBLISHED.closest(spec)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise DataError(
            f"--ghn {spec}: no such file or GHN name; {hint}give a GHN checkpoint (.safetensors written by "
            "hyperzoo.ghn.save_ghn, a Lightning .ckpt or a reference ppuda .pt) or a name that `hyperzoo ghns` lists "
            f"({', '.join(PUBLISHED.names())})"
        )
    return from_pretrained(spec, map_location=device)


def parse_indices(spec: str) -> list[int]:
    """``"3"``, ``"0,4,7"`` or ``"10-19"`` (inclusive ranges, combinable: ``"0-4,9"``) as a list of indices.

    Raises:
        ConfigError: not such a list.
    """
    out: list[int] = []
    try:
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            out.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    except ValueError:
        raise ConfigError(f"--archs {spec!r}: give indices and inclusive ranges such as 0,4,10-19") from None
    if not out or min(out) < 0:
        raise ConfigError(f"--archs {spec!r}: give non-negative indices such as 0,4,10-19")
    return out


def _device_description(device: torch.device) -> str:
    import platform

    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


# ---------------------------------------------------------------------------------------------- eval-ghn
def _check_eval_args(args: argparse.Namespace) -> None:
    """Refuses flag combinations before anything is loaded (and an existing --json file, before the evaluation)."""
    if args.json:
        from hyperzoo.io import check_output

        check_output(args.json, args.overwrite, "--json")
    if args.split is None and args.archs is not None:
        raise ConfigError("--archs selects graphs of a --split store; with --models, list the models instead")
    if args.limit_archs is not None and args.limit_archs < 1:
        raise ConfigError(f"--limit-archs must be at least 1, got {args.limit_archs}")


def _eval_architectures(args: argparse.Namespace, num_classes: int) -> list[Architecture]:
    """The architectures ``--split``/``--archs`` or ``--models`` name, at most ``--limit-archs`` of them."""
    from hyperzoo.ghn.evaluate import architectures_from_names, architectures_from_store

    if args.split is None:
        archs = architectures_from_names(args.models.split(","), num_classes, adapt_cifar=True)
        return archs[: args.limit_archs]
    if not Path(args.split).is_file():
        raise DataError(
            f"--split {args.split}: no such graph store; give an .h5 file written by `hyperzoo graphs generate` "
            "(the repository has graphs/val.h5, graphs/test.h5 and graphs/predefined.h5)"
        )
    indices = parse_indices(args.archs) if args.archs is not None else None
    return architectures_from_store(Path(args.split), num_classes, indices, args.limit_archs)


def _eval_images(args: argparse.Namespace, ghn: GHN) -> EvalImages:
    """The test images ``--data``/``--dataset`` name, refused when their classes are not the GHN's."""
    from hyperzoo.ghn.evaluate import load_eval_data

    images = load_eval_data(args.data, args.dataset, args.batch_size, args.limit_images, args.seed)
    if images.num_classes != ghn.num_classes:
        raise ConfigError(
            f"--ghn {args.ghn} predicts classifiers for {ghn.num_classes} classes but --data {args.data} "
            f"({args.dataset}) has {images.num_classes}; evaluate on data with {ghn.num_classes} classes "
            f"(--dataset) or use a GHN trained on {args.dataset}"
        )
    return images


def _eval_header(
    args: argparse.Namespace, ghn: GHN, images: EvalImages, archs: list[Architecture], device: str
) -> dict[str, Any]:
    """What the ``--json`` file records besides the results: the command's settings and the protocol."""
    return {
        "ghn": args.ghn,
        "ghn_config": ghn.config,
        "data": args.data,
        "dataset": args.dataset,
        "data_description": images.description,
        "split": args.split,
        "archs": args.archs,
        "models": None if args.split is not None else [a.name for a in archs],
        "num_images": images.num_images,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "device": device,
        "protocol": "predicted parameters, no fine-tuning, batch norms with batch statistics",
    }


def _cmd_eval(args: argparse.Namespace) -> int:
    from hyperzoo.progress import Stages

    say = Stages("hyperzoo eval-ghn")
    _check_eval_args(args)
    say("loading torch")
    from hyperzoo.ghn.evaluate import evaluate_predicted, format_table, resolve_device, summarize, to_json

    device = resolve_device(args.device)
    say(f"loading the GHN {args.ghn}")
    ghn = load_ghn_arg(args.ghn, device)
    archs = _eval_architectures(args, ghn.num_classes)  # before the data: a typo fails before unpacking a dataset
    say(f"loading the test images ({args.data}; the first time, archives are unpacked and cached)")
    images = _eval_images(args, ghn)
    results = evaluate_predicted(
        ghn, archs, images, device=device, baseline_random=args.baseline_random, skip_unknown=args.skip_unknown,
        seed=args.seed,
        progress=None,  # a bar on a terminal (naming the stage); stage lines in logs with HYPERZOO_PROGRESS=1
        stage=None if sys.stderr.isatty() else say,
    )  # fmt: skip
    described = _device_description(device)
    print(
        f"GHN {args.ghn} on {images.num_images} test images of {images.description} "
        f"(predicted parameters, no training, batch norms with batch statistics, batch {args.batch_size}, "
        f"{described})"
    )
    print(format_table(results, summarize(results)))
    for row in results:  # only with --skip-unknown: otherwise an unpredicted parameter is an error
        _report_unpredicted(list(row.unpredicted), f"{row.name}, left at their initial values")
    if args.json:
        from hyperzoo.io import write_text_atomic

        write_text_atomic(Path(args.json), to_json(results, **_eval_header(args, ghn, images, archs, described)))
        print(f"wrote {args.json}")
    return 0


def _add_eval(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval-ghn",
        help="predict the parameters of unseen networks with a GHN and measure their test accuracy",
        description=_wrap(
            "Predicts all parameters of each network in one GHN pass, copies them in, switches batch norms to batch "
            "statistics and classifies CIFAR test images with no training (the protocol of Knyazev et al. 2021: "
            "eval batch 64). Prints a table (architecture, parameters, prediction time, top-1, top-5) and the mean "
            "+- std over architectures."
        ),
        epilog=(
            "examples:\n"
            "  hyperzoo eval-ghn --ghn ghn2.safetensors --models resnet20,resnet50,vgg11_bn\n"
            "  hyperzoo eval-ghn --ghn ghn2.safetensors --split graphs/test.h5 "
            "--data ../shared/data/cifar10-jpeg.tar.gz --json test.json\n"
            "  hyperzoo eval-ghn --ghn ghn2.safetensors --split graphs/test.h5 --archs 0-9 --baseline-random"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ghn", required=True, metavar="CKPT", help=_GHN_HELP)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--split",
        metavar="FILE.h5",
        help="a graph store (graphs/test.h5, graphs/val.h5, graphs/predefined.h5): its networks are rebuilt from "
        "their net_args and its stored graphs are reused",
    )
    which.add_argument(
        "--models",
        metavar="A,B,C",
        help="comma-separated registered models (`hyperzoo models`); torchvision ones are adapted to 32x32",
    )
    p.add_argument(
        "--data",
        default="sample",
        metavar="ROOT",
        help="test images: 'sample' (the embedded 1,000, default), a .tar.gz such as cifar10-jpeg.tar.gz, an "
        "ImageFolder tree or torchvision's CIFAR folder",
    )
    p.add_argument("--dataset", choices=["cifar10", "cifar100"], default="cifar10", help="default cifar10")
    p.add_argument("--archs", metavar="I,J-K", help="with --split: only these graph indices, e.g. 0,4,10-19")
    p.add_argument("--limit-archs", type=positive_int, metavar="N", help="evaluate the first N architectures only")
    p.add_argument(
        "--limit-images", type=positive_int, metavar="N", help="evaluate on N test images (a fixed random subset)"
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=64,
        metavar="N",
        help="test batch size (default 64, the reference's: batch norms normalize with each batch's statistics)",
    )
    p.add_argument(
        "--device", default="auto", metavar="DEV", help="auto (CUDA when available, default), cpu, cuda or cuda:N"
    )
    p.add_argument(
        "--json", type=new_file, metavar="OUT", help="also write the results and their mean/std to this JSON file"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument(
        "--baseline-random",
        action="store_true",
        help="also evaluate each network at its default random initialisation, for comparison",
    )
    p.add_argument(
        "--skip-unknown",
        action="store_true",
        help="leave parameters the GHN cannot predict (ops it has no embedding for, parameters without a graph "
        "role) at their random init, reported by name in the output and the JSON, instead of failing",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the networks' init and of the image order")
    p.set_defaults(func=_cmd_eval, argument_flags=argument_flags(p, **_SKIP_UNKNOWN))


# ---------------------------------------------------------------------------------------------- predict
def _check_predict_args(args: argparse.Namespace) -> Path:
    """The ``--out`` path, once MODEL/--onnx and the flags that go with each agree (an existing file refused)."""
    if (args.model is None) == (args.onnx is None):
        raise ConfigError(
            "give either a registered MODEL (`hyperzoo predict resnet18 --ghn ... --out resnet18.safetensors`) "
            "or --onnx IN.onnx, not both"
            if args.model is not None
            else "give a registered MODEL or --onnx IN.onnx to predict parameters for"
        )
    out = Path(args.out)
    if args.onnx is not None:
        if out.suffix.lower() != ".onnx":
            raise ConfigError(f"--out {args.out}: with --onnx the output is an ONNX file; give a name ending in .onnx")
        for flag, given in (("--adapt-cifar", args.adapt_cifar), ("--num-classes", args.num_classes is not None)):
            if given:
                raise ConfigError(f"{flag} applies to registered models; an ONNX file fixes its own architecture")
        if args.input_size is not None:
            raise ConfigError("--input-size applies to registered models; an ONNX file fixes its input size")
    elif out.suffix.lower() != ".safetensors":
        raise ConfigError(f"--out {args.out}: give a file name ending in .safetensors")
    from hyperzoo.io import check_output

    check_output(out, args.overwrite, "--out")
    return out


def _cmd_predict(args: argparse.Namespace) -> int:
    out = _check_predict_args(args)
    from hyperzoo.progress import Stages, stage

    stage("loading torch and the GHN", prefix="hyperzoo predict")
    from hyperzoo.ghn.evaluate import resolve_device
    from hyperzoo.ghn.predict import BN_NOTE

    device = resolve_device(args.device)
    if args.onnx is not None:
        from hyperzoo.ghn.onnx_predict import predict_onnx

        src = Path(args.onnx)
        if not src.is_file():
            raise DataError(f"--onnx {args.onnx}: no such file; give the path of an existing .onnx model")
        ghn = load_ghn_arg(args.ghn, device)
        onnx_info = predict_onnx(ghn, src, out, skip_unknown=args.skip_unknown)
        _report_prediction(onnx_info, src.name, "keep the values the file had")
        if onnx_info.reset_buffers:
            print(f"note: {BN_NOTE}; the ONNX graph normalizes with them (inference-mode BatchNormalization)")
        print(f"wrote {out}")
        return 0

    from hyperzoo.ghn.predict import predict_to_file

    ghn = load_ghn_arg(args.ghn, device)
    info = predict_to_file(
        ghn, args.model, out, num_classes=args.num_classes, adapt_cifar=args.adapt_cifar, input_size=args.input_size,
        skip_unknown=args.skip_unknown, ghn_source=str(args.ghn), stage=Stages("hyperzoo predict"),
    )  # fmt: skip
    _report_prediction(info, args.model, "keep their random initialisation")
    if info.has_bn:
        print(f"note: {BN_NOTE}")
    print(f"wrote {out}")
    return 0


def _report_prediction(info: PredictionReport, label: str, unpredicted: str) -> None:
    print(
        f"predicted {info.predicted_tensors} of {info.tensors} parameter tensors "
        f"({info.predicted_params:,} of {info.params:,} parameters) of {label} "
        f"in {1000 * info.predict_s:.1f} ms (graph {1000 * info.graph_s:.1f} ms)"
    )
    _report_unpredicted(list(info.unpredicted), unpredicted)


def _report_unpredicted(names: list[str], what: str) -> None:
    if names:
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        print(f"not predicted ({what}): {shown}")


def _add_predict(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict all parameters of a model (registered name or ONNX file) with a GHN and save them",
        description=_wrap(
            "Predicts every parameter of a network in one GHN pass. For a registered MODEL, writes the network's "
            "state dict (predicted parameters plus buffers) as safetensors, so that "
            "create_model(MODEL, ...).load_state_dict(safetensors.torch.load_file(OUT)) works. With --onnx, writes "
            "a copy of the ONNX model whose initializers are the predicted parameters. Batch-norm running "
            "statistics are not predicted (defaults are written): normalize with batch statistics or recalibrate."
        ),
        epilog=(
            "examples:\n"
            "  hyperzoo predict resnet18 --adapt-cifar --ghn ghn2.safetensors --out resnet18.safetensors\n"
            "  hyperzoo predict --onnx resnet18.onnx --ghn ghn2.safetensors --out resnet18-predicted.onnx\n"
            "export recipe for --onnx: torch.onnx.export(model.eval(), (x,), dynamo=True, optimize=False)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", metavar="MODEL", help="registered model name (`hyperzoo models`)")
    p.add_argument("--onnx", metavar="IN.onnx", help="an ONNX model (with or without initializers) instead of MODEL")
    p.add_argument("--ghn", required=True, metavar="CKPT", help=_GHN_HELP)
    p.add_argument(
        "--out", type=new_file, required=True, metavar="FILE", help="output: .safetensors for MODEL, .onnx with --onnx"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--adapt-cifar", action="store_true", help="adapt a torchvision model to 32x32 inputs")
    p.add_argument(
        "--num-classes",
        type=positive_int,
        metavar="K",
        help="classifier outputs (default and only choice: the GHN's classes)",
    )
    p.add_argument(
        "--input-size", type=positive_int, metavar="N", help="image side for tracing the graph (default: the model's)"
    )
    p.add_argument(
        "--skip-unknown",
        action="store_true",
        help="leave parameters the GHN cannot predict (ops it has no embedding for, parameters without a graph "
        "role) at their initial values, reported by name, instead of failing",
    )
    p.add_argument("--device", default="cpu", metavar="DEV", help="GHN device: cpu (default), cuda, cuda:N or auto")
    p.set_defaults(func=_cmd_predict, argument_flags=argument_flags(p, **_SKIP_UNKNOWN))


# ---------------------------------------------------------------------------------------------- ghns
def _cmd_ghns(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from hyperzoo.ghn.published import is_cached, list_published

    entries = list_published(args.pattern or "*")
    if not entries:
        raise DataError(f"no published GHN matches {args.pattern!r}; `hyperzoo ghns` lists them all")
    table = Table(title="Published GHNs (accuracy: as reported by the paper, predicted parameters, no fine-tuning)")
    for col in ("name", "status", "size", "dataset", "paper-reported accuracy", "source"):
        table.add_column(col, overflow="fold")
    for e in entries:
        if e.kind == "shipped":
            status = "shipped"
        else:
            status = "downloadable, cached" if is_cached(e.name) else "downloadable"
        table.add_row(e.name, status, e.size, e.dataset, e.paper_accuracy, e.source)
    Console(width=args.width).print(table)
    print("Load one with hyperzoo.ghn.from_pretrained(NAME) or --ghn NAME; `~` sizes are estimates (float32 weights).")
    return 0


def add_ghns_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``hyperzoo ghns`` (the published GHNs as a table) to the ``hyperzoo`` parser."""
    p = subparsers.add_parser(
        "ghns",
        help="list the published GHN checkpoints (shipped or downloadable) with their paper-reported accuracy",
        description="Every GHN name that from_pretrained, --ghn, eval-ghn and predict accept: shipped with "
        "hyperzoo or downloaded on first use (ppuda from GitHub, GHN-3 from the Hugging Face Hub), verified and "
        "cached.",
    )
    p.add_argument("pattern", nargs="?", help="shell-style pattern, e.g. 'ghn3*'")
    p.add_argument("--width", type=int, default=None, help="table width in characters (default: the terminal's)")
    p.set_defaults(func=_cmd_ghns)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hyperzoo eval-ghn``, ``hyperzoo predict`` and ``hyperzoo ghns`` to the ``hyperzoo`` parser."""
    _add_eval(subparsers)
    _add_predict(subparsers)
    add_ghns_parser(subparsers)
