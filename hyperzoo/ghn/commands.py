"""``hyperzoo eval-ghn`` and ``hyperzoo predict``: evaluate a GHN on unseen networks, predict one network's weights.

``register`` adds both parsers; heavy imports (torch, onnx) stay inside the command functions so that
``hyperzoo --help`` stays fast. The evaluation itself lives in :mod:`hyperzoo.ghn.evaluate`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperzoo.cli_types import new_file, positive_int
from hyperzoo.errors import ConfigError, DataError, HyperzooError

if TYPE_CHECKING:
    import onnx
    import torch
    from torch import nn

    from hyperzoo.ghn.ghn import GHN

__all__ = ["load_ghn_arg", "onnx_weight_shapes", "parse_indices", "predict_onnx", "register"]

_GHN_HELP = (
    "the GHN: a checkpoint file (hyperzoo .safetensors written by save_ghn, a Lightning .ckpt, "
    "a reference ppuda .pt) or a GHN name that `hyperzoo ghns` lists (ghn2-cifar10, ghn2-cifar10-ppuda, ghn3-xl, ...)"
)
_BN_NOTE = (
    "running statistics of batch norms are not predicted: the written ones are the defaults (mean 0, variance 1); "
    "evaluate with batch statistics (hyperzoo.ghn.set_bn_batch_stats) or recalibrate them on training data"
)


def _wrap(text: str) -> str:
    """A help paragraph wrapped for ``RawDescriptionHelpFormatter`` (which keeps the epilog's examples intact)."""
    import textwrap

    return textwrap.fill(text, width=100)


def load_ghn_arg(spec: str, device: str | torch.device = "cpu") -> GHN:
    """The GHN that ``--ghn SPEC`` names (a shipped name or a checkpoint file), in eval mode on ``device``.

    Raises:
        DataError: no such file or shipped name, or an unreadable checkpoint.
    """
    from hyperzoo.ghn.checkpoint import from_pretrained
    from hyperzoo.ghn.published import PUBLISHED

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
def _cmd_eval(args: argparse.Namespace) -> int:
    from hyperzoo.progress import Stages

    say = Stages("hyperzoo eval-ghn")
    say("loading torch")
    from hyperzoo.ghn.evaluate import (
        architectures_from_names,
        architectures_from_store,
        evaluate_predicted,
        format_table,
        load_eval_data,
        resolve_device,
        summarize,
    )

    if args.json:  # before the evaluation, not after it
        from hyperzoo.io import check_output

        check_output(args.json, args.overwrite, "--json")
    if args.split is None and args.archs is not None:
        raise ConfigError("--archs selects graphs of a --split store; with --models, list the models instead")
    if args.limit_archs is not None and args.limit_archs < 1:
        raise ConfigError(f"--limit-archs must be at least 1, got {args.limit_archs}")
    device = resolve_device(args.device)
    say(f"loading the GHN {args.ghn}")
    ghn = load_ghn_arg(args.ghn, device)
    # architectures before data: a typo in a name fails before a dataset is unpacked
    if args.split is not None:
        split = Path(args.split)
        if not split.is_file():
            raise DataError(
                f"--split {args.split}: no such graph store; give an .h5 file written by `hyperzoo graphs generate` "
                "(the repository has graphs/val.h5, graphs/test.h5 and graphs/predefined.h5)"
            )
        indices = parse_indices(args.archs) if args.archs is not None else None
        archs = architectures_from_store(split, ghn.num_classes, indices, args.limit_archs)
    else:
        archs = architectures_from_names(args.models.split(","), ghn.num_classes, adapt_cifar=True)
        archs = archs[: args.limit_archs]
    say(f"loading the test images ({args.data}; the first time, archives are unpacked and cached)")
    images = load_eval_data(args.data, args.dataset, args.batch_size, args.limit_images, args.seed)
    if images.num_classes != ghn.num_classes:
        raise ConfigError(
            f"--ghn {args.ghn} predicts classifiers for {ghn.num_classes} classes but --data {args.data} "
            f"({args.dataset}) has {images.num_classes}; evaluate on data with {ghn.num_classes} classes "
            f"(--dataset) or use a GHN trained on {args.dataset}"
        )

    results = evaluate_predicted(
        ghn,
        archs,
        images,
        device=device,
        baseline_random=args.baseline_random,
        skip_unknown=args.skip_unknown,
        seed=args.seed,
        progress=None,  # a bar on a terminal (naming the stage); stage lines in logs with HYPERZOO_PROGRESS=1
        stage=None if sys.stderr.isatty() else say,
    )
    summary = summarize(results)
    print(
        f"GHN {args.ghn} on {images.num_images} test images of {images.description} "
        f"(predicted parameters, no training, batch norms with batch statistics, batch {args.batch_size}, "
        f"{_device_description(device)})"
    )
    print(format_table(results, summary))
    for row in results:  # only with --skip-unknown: otherwise an unpredicted parameter is an error
        _report_unpredicted(list(row.get("unpredicted", [])), f"{row['name']}, left at their initial values")
    if args.json:
        from hyperzoo.ghn.evaluate import to_json

        header = {
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
            "device": _device_description(device),
            "protocol": "predicted parameters, no fine-tuning, batch norms with batch statistics",
        }
        out = Path(args.json)
        from hyperzoo.io import write_text_atomic

        write_text_atomic(out, to_json(results, **header))
        print(f"wrote {out}")
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
    p.set_defaults(func=_cli_hint(_cmd_eval))


# ---------------------------------------------------------------------------------------------- predict
def _cmd_predict(args: argparse.Namespace) -> int:
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

    from hyperzoo.progress import stage

    stage("loading torch and the GHN", prefix="hyperzoo predict")
    from hyperzoo.ghn.evaluate import resolve_device

    device = resolve_device(args.device)
    if args.onnx is not None:
        src = Path(args.onnx)
        if not src.is_file():
            raise DataError(f"--onnx {args.onnx}: no such file; give the path of an existing .onnx model")
        ghn = load_ghn_arg(args.ghn, device)
        info = predict_onnx(ghn, src, out, skip_unknown=args.skip_unknown)
        _report_prediction(info, src.name, "keep the values the file had")
        if info["reset_buffers"]:
            print(f"note: {_BN_NOTE}; the ONNX graph normalizes with them (inference-mode BatchNormalization)")
        print(f"wrote {out}")
        return 0

    ghn = load_ghn_arg(args.ghn, device)
    info = _predict_module(ghn, args, out)
    _report_prediction(info, args.model, "keep their random initialisation")
    if info["has_bn"]:
        print(f"note: {_BN_NOTE}")
    print(f"wrote {out}")
    return 0


def _report_prediction(info: dict[str, Any], label: str, unpredicted: str) -> None:
    print(
        f"predicted {info['predicted_tensors']} of {info['tensors']} parameter tensors "
        f"({info['predicted_params']:,} of {info['params']:,} parameters) of {label} "
        f"in {1000 * info['predict_s']:.1f} ms (graph {1000 * info['graph_s']:.1f} ms)"
    )
    _report_unpredicted(info["unpredicted"], unpredicted)


def _report_unpredicted(names: list[str], what: str) -> None:
    if names:
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        print(f"not predicted ({what}): {shown}")


def _predict_module(ghn: GHN, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import torch
    from safetensors.torch import save_file

    from hyperzoo.ghn.evaluate import build_named_model, fill_predicted
    from hyperzoo.nets import model_family
    from hyperzoo.progress import Stages

    family = model_family(args.model)  # unknown names fail here, with suggestions
    num_classes = ghn.num_classes if args.num_classes is None else args.num_classes
    if num_classes != ghn.num_classes:
        raise ConfigError(
            f"--num-classes {num_classes}: --ghn {args.ghn} predicts classifiers for {ghn.num_classes} classes; "
            f"omit --num-classes, or use a GHN trained on a {num_classes}-class dataset"
        )
    if args.input_size is not None and args.input_size <= 0:
        raise ConfigError(f"--input-size must be a positive image side, got {args.input_size}")
    adapt = bool(args.adapt_cifar) and family in ("torchvision", "timm")
    say = Stages("hyperzoo predict")  # large models take a while to build, trace and predict
    say(f"building {args.model}")
    model = build_named_model(args.model, num_classes, adapt_cifar=adapt)
    say(f"tracing the graph of {args.model}")
    t0 = time.perf_counter()
    # the GHN's graph rules; a parameter without a node is an error unless --skip-unknown
    graph = ghn.graph(model, input_size=args.input_size, name=args.model, allow_unpredicted=args.skip_unknown)
    graph_s = time.perf_counter() - t0
    model = model.to(ghn.op_embed.weight.device)
    say(f"predicting {sum(p.numel() for p in model.parameters()):,} parameters")
    t0 = time.perf_counter()
    with torch.no_grad():
        pred = ghn.predict_batch([model], [graph], skip_unknown=args.skip_unknown)[0]
    if ghn.op_embed.weight.is_cuda:
        torch.cuda.synchronize()
    predict_s = time.perf_counter() - t0
    fill_predicted(model, pred, bn_batch_stats=False)
    # clones: safetensors refuses tensors that share memory (tied weights)
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    params = dict(model.named_parameters())
    metadata = {
        "format": "hyperzoo-predicted",
        "model": args.model,
        "ghn": str(args.ghn),
        "ghn_config": json.dumps(ghn.config),
        "adapt_cifar": json.dumps(adapt),
        "num_classes": str(num_classes),
        "input_size": json.dumps(list(getattr(graph, "input_size", None) or [])),
        "predicted": str(len(pred)),
        "unpredicted": json.dumps(sorted(set(params) - set(pred))),
        "batch_norm": _BN_NOTE,
    }
    from hyperzoo.io import atomic_write

    with atomic_write(out) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return {
        "tensors": len(params),
        "params": sum(p.numel() for p in params.values()),
        "predicted_tensors": len(pred),
        "predicted_params": sum(t.numel() for t in pred.values()),
        "unpredicted": sorted(set(params) - set(pred)),
        "graph_s": graph_s,
        "predict_s": predict_s,
        "has_bn": any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()),
    }


# ---------------------------------------------------------------------------------------------- ONNX
_BUFFER_DEFAULTS = {"running_mean": 0.0, "running_var": 1.0}


def _load_onnx(src: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    if not isinstance(src, (str, Path)):
        return src
    try:
        import onnx
    except ImportError as exc:
        raise HyperzooError("predicting ONNX models needs the onnx package: pip install 'hyperzoo[onnx]'") from exc
    path = Path(src)
    if not path.is_file():
        raise DataError(f"ONNX file {path} not found; give the path of an existing .onnx model")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others from protobuf
        raise DataError(f"cannot read {path} as an ONNX model: {type(exc).__name__}: {exc}") from exc


def _static_dims(value_info: Any) -> tuple[int, ...] | None:
    """The shape a graph input declares, or None when it is missing or has symbolic dimensions."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
    return None if any(d < 0 for d in dims) else tuple(dims)


def onnx_weight_shapes(proto: onnx.ModelProto) -> tuple[dict[str, tuple[int, ...] | None], set[str]]:
    """Shapes of the weights of an ONNX model (``onnx_parameter_names``), and those that have no initializer.

    A weight's shape comes from its initializer or, for a stripped model, from its graph input's declared type
    (``None`` when that is not fully static).
    """
    from hyperzoo.graphs.onnx import onnx_parameter_names

    inits = {i.name: tuple(int(d) for d in i.dims) for i in proto.graph.initializer}
    inputs = {i.name: i for i in proto.graph.input}
    shapes: dict[str, tuple[int, ...] | None] = {}
    missing: set[str] = set()
    for name in onnx_parameter_names(proto):
        if name in inits:
            shapes[name] = inits[name]
        else:
            shapes[name] = _static_dims(inputs[name]) if name in inputs else None
            missing.add(name)
    return shapes, missing


def _shim_module(shapes: Mapping[str, tuple[int, ...]], norm_modules: set[str]) -> nn.Module:
    """An ``nn.Module`` whose ``named_parameters()`` have the given names and shapes (on the meta device).

    :meth:`GHN.predict_batch` reads only parameter shapes and, to give a norm node's bias with its weight, whether
    the module of a norm weight is a normalization layer: the modules named in ``norm_modules`` are therefore
    (empty) :class:`torch.nn.LayerNorm` instances; the rest are plain modules.
    """
    import torch
    from torch import nn

    class NormPlaceholder(nn.LayerNorm):
        def __init__(self) -> None:
            nn.Module.__init__(self)  # no parameters of its own: they are registered below

    root = nn.Module()
    for name, shape in shapes.items():
        *path, leaf = name.split(".")
        module = root
        for i, part in enumerate(path):
            child = module._modules.get(part)
            if child is None:
                child = NormPlaceholder() if ".".join(path[: i + 1]) in norm_modules else nn.Module()
                module.add_module(part, child)
            module = child
        module.register_parameter(leaf, nn.Parameter(torch.empty(shape, device="meta"), requires_grad=False))
    return root


def predict_onnx(
    ghn: GHN, src: str | Path | onnx.ModelProto, out: str | Path | None = None, skip_unknown: bool = False
) -> dict[str, Any]:
    """Predicts the parameters of an ONNX model with ``ghn`` and writes them into it as initializers.

    The graph comes from :func:`~hyperzoo.graphs.onnx.graph_from_onnx` (the graph of the module the file was
    exported from), parameter shapes from the file's initializers or, for a stripped model, its graph inputs. Batch
    norm running statistics are written as defaults (mean 0, variance 1): they belong to other weights, and the
    GHN does not predict them.

    Args:
        ghn: the GHN.
        src: an ``.onnx`` file or ``onnx.ModelProto`` (with or without initializers).
        out: where to save the model with predicted initializers (optional).
        skip_unknown: see :meth:`GHN.predict_batch`; unpredicted weights keep the values the file has.

    Returns:
        ``{"model": ModelProto, "params": {name: tensor}, "tensors", "params", "predicted_tensors",
        "predicted_params", "unpredicted", "reset_buffers", "graph_s", "predict_s"}``.

    Raises:
        DataError: a parameter whose shape the file does not declare, or weights that are neither predicted nor
            present in the file.
        ConfigError: the model's classifier has another number of classes than the GHN predicts.
    """
    import math

    import torch

    from hyperzoo.graphs.onnx import graph_from_onnx, write_onnx_initializers

    proto = _load_onnx(src)
    t0 = time.perf_counter()
    graph = graph_from_onnx(proto, s_max=ghn.s_max, name=Path(src).stem if isinstance(src, (str, Path)) else None)
    graph_s = time.perf_counter() - t0
    shapes, missing = onnx_weight_shapes(proto)
    buffers = {n for n in shapes if n.rpartition(".")[2] in _BUFFER_DEFAULTS}
    undeclared = sorted(n for n, s in shapes.items() if s is None)
    if undeclared:
        raise DataError(
            f"the ONNX model declares no static shape for weights {undeclared[:6]}; re-export it with its "
            "initializers or with static input shapes"
        )
    param_shapes = {n: s for n, s in shapes.items() if n not in buffers and s is not None}
    names = list(graph.param_names)
    n = int(graph.num_nodes)
    if n >= 2 and names[n - 2] in param_shapes and len(param_shapes[names[n - 2]]) >= 2:
        classes = param_shapes[names[n - 2]][0]
        if classes != ghn.num_classes:
            raise ConfigError(
                f"the ONNX model's classifier ({names[n - 2]}) has {classes} outputs but the GHN predicts "
                f"classifiers for {ghn.num_classes} classes; export the model with num_classes={ghn.num_classes} "
                f"or use a GHN trained on a {classes}-class dataset"
            )
    norm_modules = {names[v].rpartition(".")[0] for v, op in enumerate(graph.op_names) if op in ("bn", "ln")}
    shim = _shim_module(param_shapes, norm_modules)
    device = ghn.op_embed.weight.device
    t0 = time.perf_counter()
    with torch.no_grad():
        pred = ghn.predict_batch([shim], [graph], skip_unknown=skip_unknown)[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    predict_s = time.perf_counter() - t0
    pred = {k: v.detach().cpu() for k, v in pred.items()}
    unpredicted = sorted(set(param_shapes) - set(pred))
    lacking = sorted(set(unpredicted) & missing)
    if lacking:
        raise DataError(
            f"{len(lacking)} weight(s) were not predicted (ops the GHN cannot embed, or parameters without a graph "
            f"node) and the ONNX file has no values for them: {lacking[:6]}; export the model with its initializers "
            "so that these keep their values"
        )
    values: dict[str, torch.Tensor] = {
        b: torch.full(shapes[b] or (), _BUFFER_DEFAULTS[b.rpartition(".")[2]]) for b in sorted(buffers)
    }
    values.update(pred)
    model = write_onnx_initializers(proto, values, out=out)
    return {
        "model": model,
        "values": values,
        "tensors": len(param_shapes),
        "params": sum(math.prod(s) for s in param_shapes.values()),
        "predicted_tensors": len(pred),
        "predicted_params": sum(t.numel() for t in pred.values()),
        "unpredicted": unpredicted,
        "reset_buffers": sorted(buffers),
        "graph_s": graph_s,
        "predict_s": predict_s,
    }


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
    p.set_defaults(func=_cli_hint(_cmd_predict))


def _cli_hint(command: Any) -> Any:
    """Wraps a command so that the GHN's advice to pass ``skip_unknown=True`` names the flag instead."""

    def run(args: argparse.Namespace) -> int:
        from hyperzoo.ghn.ghn import UnpredictableLayerError
        from hyperzoo.graphs.from_module import UnmappedModuleError

        try:
            return int(command(args) or 0)
        except (UnpredictableLayerError, UnmappedModuleError) as exc:
            raise type(exc)(f"{exc} (on the command line: --skip-unknown)") from exc

    return run


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hyperzoo eval-ghn``, ``hyperzoo predict`` and ``hyperzoo ghns`` to the ``hyperzoo`` parser."""
    from hyperzoo.ghn import published

    _add_eval(subparsers)
    _add_predict(subparsers)
    published.register(subparsers)
