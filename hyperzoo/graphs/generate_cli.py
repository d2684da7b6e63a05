"""``hyperzoo graphs generate``: the parser (no heavy imports) and the command.

The command runs :func:`hyperzoo.graphs.generate.generate_split`, imported when it runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hyperzoo.cli_flags import argument_flags
from hyperzoo.cli_types import DEEPNETS1M_SPLITS, new_file, nonnegative_int, positive_int

__all__ = ["add_generate_action"]

_DEFAULT_S_MAX = 50  # hyperzoo.graphs.arch_graph.DEFAULT_S_MAX (a test checks they agree)


def add_generate_action(actions: Any) -> None:
    """Adds ``hyperzoo graphs generate`` to the ``graphs`` action parser."""
    p = actions.add_parser(
        "generate",
        help="generate a DeepNets-1M split or an architecture-family space into a graph store (resumable)",
        description="Kill it any time and run the same command again: it continues where it stopped.",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--split", choices=list(DEEPNETS1M_SPLITS), help="which DeepNets-1M split")
    which.add_argument(
        "--space",
        help="an architecture space instead: resnet, resnet_imagenet, mobilenet, mobilenet_imagenet, or "
        "module:callable (a function (rng) -> (nn.Module, net_args)); see hyperzoo.nets.spaces",
    )
    p.add_argument(
        "--no-holdout",
        action="store_true",
        help="with --space: keep graphs equal to the space's held-out networks (default: drop them)",
    )
    p.add_argument(
        "--holdout-set",
        action="store_true",
        help="with --space: write the graphs of the space's held-out networks (e.g. ResNet-18/34/50/101, WRN-50-2) "
        "instead, the validation set of a family-trained GHN; --num is not needed",
    )
    p.add_argument("--num", type=positive_int, help="number of graphs (predefined: at most 2)")
    p.add_argument("--out", type=new_file, required=True, help="output .h5 store")
    p.add_argument("--workers", type=nonnegative_int, default=0, help="worker processes (default 0: in-process)")
    p.add_argument("--seed", type=int, default=0, help="base seed of the split's candidate stream (default 0)")
    p.add_argument(
        "--s-max",
        type=positive_int,
        default=_DEFAULT_S_MAX,
        help=f"longest virtual edge kept (default {_DEFAULT_S_MAX}; 1: real edges only)",
    )
    p.add_argument("--part-size", type=positive_int, default=256, help="graphs per committed part (default 256)")
    p.add_argument("--max-cells", type=positive_int, default=None, help="cap cells per net (small nets for tests)")
    p.add_argument("--compression", choices=["lzf", "none"], default="lzf", help="final store compression")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_generate, argument_flags=argument_flags(p))


def _cmd_generate(args: Any) -> int:
    from hyperzoo.graphs.generate import generate_split
    from hyperzoo.graphs.store import GraphStore

    if args.space is not None:
        return _cmd_generate_space(args)
    if args.holdout_set:
        raise SystemExit(
            "hyperzoo graphs generate: --holdout-set needs --space (a DeepNets-1M split holds out nothing)"
        )
    if args.num is None:
        raise SystemExit("hyperzoo graphs generate: --num is required")

    t0 = time.perf_counter()
    num = args.num
    if args.split == "predefined" and num > 2:
        print(f"note: the predefined split has 2 networks; generating 2, not --num {num}")
        num = 2
    out = Path(args.out)
    complete_before = out.is_file() and not out.with_name(out.name + ".parts").exists()
    out = generate_split(
        args.split,
        num,
        out,
        workers=args.workers,
        seed=args.seed,
        s_max=args.s_max,
        part_size=args.part_size,
        max_cells=args.max_cells,
        compression=None if args.compression == "none" else args.compression,
        progress=not args.no_progress,
    )
    store = GraphStore(out)
    if complete_before:
        extra = len(store) - num
        print(
            f"{out} already holds {len(store)} {args.split} graphs of these settings; nothing generated"
            + (
                f". It has {extra} more than --num {num}: its first {num} are the graphs --num {num} would give "
                f"(readers can stop there, e.g. eval-ghn --archs 0-{num - 1}); to get a store of exactly {num} "
                "graphs, write to another --out"
                if extra > 0
                else ""
            )
        )
        return 0
    nodes = store.num_nodes()
    print(
        f"wrote {out}: {len(store)} {args.split} graphs, {int(nodes.min())}-{int(nodes.max())} nodes "
        f"(mean {nodes.mean():.1f}), {time.perf_counter() - t0:.1f} s"
    )
    return 0


def _cmd_generate_space(args: Any) -> int:
    from hyperzoo.graphs.generate_space import generate_space
    from hyperzoo.graphs.store import GraphStore

    if args.max_cells is not None:
        print("note: --max-cells applies to DeepNets-1M splits only; ignored with --space")
    t0 = time.perf_counter()
    if args.holdout_set:
        from hyperzoo.graphs.generate_space import holdout_store

        out = holdout_store(args.space, Path(args.out), s_max=args.s_max)
        store = GraphStore(out)
        names = [store[i].name for i in range(len(store))]
        print(f"wrote {out}: the {len(names)} held-out networks of {args.space}: {', '.join(names)}")
        return 0
    if args.num is None:
        raise SystemExit("hyperzoo graphs generate: --num is required (or --holdout-set)")
    out = generate_space(
        args.space,
        args.num,
        Path(args.out),
        workers=args.workers,
        seed=args.seed,
        s_max=args.s_max,
        part_size=args.part_size,
        compression=None if args.compression == "none" else args.compression,
        progress=not args.no_progress,
        holdout=not args.no_holdout,
    )
    store = GraphStore(out)
    nodes = store.num_nodes()
    held = store.attrs.get("holdout", "none")
    print(
        f"wrote {out}: {len(store)} {args.space} graphs, {int(nodes.min())}-{int(nodes.max())} nodes "
        f"(mean {nodes.mean():.1f}), held out: {held}, {time.perf_counter() - t0:.1f} s"
    )
    return 0
