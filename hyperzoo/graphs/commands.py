"""``hyperzoo graphs ACTION``: inspect and draw computation graphs.

``register`` adds a ``graphs`` parser whose actions come from :data:`ACTION_BUILDERS`; another action is one
more function that adds its parser to the ``actions`` subparsers object and sets ``func``. Heavy imports stay
inside the command functions so that ``hyperzoo --help`` stays fast. The graphs come from
:func:`hyperzoo.graphs.load.load_graph`, whose errors name its arguments (``input_size=0``); ``hyperzoo`` prints the
flags (``--input-size 0``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hyperzoo.cli_flags import argument_flags
from hyperzoo.cli_types import new_file, positive_int
from hyperzoo.errors import ConfigError
from hyperzoo.graphs.load import load_graph  # the library function, kept importable from here

if TYPE_CHECKING:
    from hyperzoo.graphs.arch_graph import ArchGraph

__all__ = ["ACTION_BUILDERS", "GRAPH_ACTIONS", "load_graph", "register"]

# The `graphs` subparsers object once `register` ran (for actions added from elsewhere).
GRAPH_ACTIONS: argparse._SubParsersAction | None = None


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-size", type=positive_int, default=None, help="image side (default: the model's own)")
    p.add_argument("--adapt-cifar", action="store_true", help="adapt a torchvision model to 32x32 inputs")
    p.add_argument("--num-classes", type=positive_int, default=None, help="classifier outputs (default: the model's)")
    p.add_argument("--s-max", type=positive_int, default=50, help="longest virtual edge (1: real edges only)")


def _graph_from_args(args: argparse.Namespace, strict: bool = True) -> ArchGraph:
    return load_graph(args.model, args.input_size, args.adapt_cifar, args.num_classes, args.s_max, strict=strict)


def _cmd_info(args: argparse.Namespace) -> int:
    graph = _graph_from_args(args, strict=False)  # unmapped parameters are shown, not raised
    if args.json:
        print(json.dumps(graph.to_json_dict()))
        return 0
    real = int((graph.edge_dist == 1).sum())
    total = int(graph.edge_dist.numel())
    print(f"graph        {graph.name}")
    if getattr(graph, "input_size", None):
        print(f"input        {'x'.join(str(d) for d in graph.input_size)}")
    print(f"nodes        {int(graph.num_nodes)}")
    print(f"edges        {real} real, {total - real} virtual (s_max={graph.s_max}), {total} in all")
    if total:
        print(f"max distance {int(graph.edge_dist.max())}")
    print(f"param nodes  {int(graph.has_param.sum())}")
    if getattr(graph, "num_params", None) is not None:
        print(f"parameters   {int(graph.num_params):,}")
    unmapped = list(getattr(graph, "unmapped", None) or [])
    print(f"unmapped     {len(unmapped)}{': ' + ', '.join(unmapped) if unmapped else ''}")
    fallback = str(getattr(graph, "meta_fallback", "") or "")
    print(f"meta trace   {'FELL BACK to a real forward pass: ' + fallback if fallback else 'ok'}")
    from hyperzoo.graphs.sharing import tied_uses

    tied = tied_uses(graph)
    if tied:
        shown = ", ".join(f"{k} x{len(v)}" for k, v in list(tied.items())[:6])
        print(f"shared       {len(tied)} parameter(s) with one node per use: {shown}{' ...' if len(tied) > 6 else ''}")
    unused = list(getattr(graph, "unused", None) or [])
    if unused:
        print(f"unused       {len(unused)} parameter(s) no output depends on: {', '.join(unused[:6])}")
    print("ops:")
    for op, count in graph.op_histogram().items():
        print(f"  {op:14s} {count}")
    if unmapped:
        modules = list(getattr(graph, "unmapped_modules", None) or [])
        print(
            f"\nWARNING: {len(unmapped)} parameter tensor(s) have no role in the graph, so a GHN refuses this model "
            "(unless allowed, and then leaves them at their initial values):"
        )
        for name in unmapped[:20]:
            print(f"  {name}")
        if len(unmapped) > 20:
            print(f"  ... and {len(unmapped) - 20} more")
        print(f"  in module(s): {', '.join(modules[:10])}")
        print("  map them with graph_from_module(..., param_ops={'name or pattern': op})")
    if fallback:
        print(f"\nWARNING: the meta-device trace failed ({fallback}); the graph comes from a real forward pass")
    return 0


def _cmd_draw(args: argparse.Namespace) -> int:
    from hyperzoo.graphs.draw import draw_graph

    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ConfigError(f"-o {args.output}: give a file name ending in .png, .pdf or .svg")
    from hyperzoo.io import check_output

    check_output(out, args.overwrite, "-o")
    graph = _graph_from_args(args)
    draw_graph(graph, out, labels=args.labels)
    print(f"wrote {out} ({int(graph.num_nodes)} nodes)")
    return 0


def _add_info(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser("info", help="node/edge counts and op histogram of a model's graph")
    p.add_argument("model", help="registered model name (`hyperzoo models`) or an .onnx file")
    _add_model_args(p)
    p.add_argument("--json", action="store_true", help='print {"num_nodes", "nodes", "param_names", "edges"} as JSON')
    p.set_defaults(func=_cmd_info, argument_flags=argument_flags(p))


def _add_draw(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser("draw", help="draw a model's graph, layered by topological depth, ops coloured")
    p.add_argument("model", help="registered model name (`hyperzoo models`) or an .onnx file")
    p.add_argument("-o", "--output", type=new_file, required=True, help="image file (.png, .pdf or .svg)")
    p.add_argument("--labels", action="store_true", help="write the op name beside each node")
    p.add_argument("--overwrite", action="store_true", help="replace an existing -o file")
    _add_model_args(p)
    p.set_defaults(func=_cmd_draw, argument_flags=argument_flags(p))


# Each builder adds one action; append a builder to add an action (e.g. `generate`).
ACTION_BUILDERS: list[Callable[[argparse._SubParsersAction], None]] = [_add_info, _add_draw]

# --- `hyperzoo graphs generate` (DeepNets-1M splits; implemented in hyperzoo.graphs.generate) ---------------
from hyperzoo.graphs.generate_cli import add_generate_action  # noqa: E402  (argparse only; no heavy imports)

ACTION_BUILDERS.append(add_generate_action)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hyperzoo graphs ACTION`` to the ``hyperzoo`` parser."""
    global GRAPH_ACTIONS
    p = subparsers.add_parser("graphs", help="computation graphs of models: info, draw, generate")
    GRAPH_ACTIONS = p.add_subparsers(dest="graphs_command", metavar="ACTION", required=True)
    for build in ACTION_BUILDERS:
        build(GRAPH_ACTIONS)
