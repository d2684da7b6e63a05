"""Cost of batching graphs for the GHN: PyG's ``Batch`` (``batch_graphs``) against the former hand-written offsets.

CPU time (``time.process_time``), 1 thread, interleaved rounds (one call of each per round), medians. Measured on
a meta-batch of 8 DeepNets-1M graphs (the first 8 of ``--store``) and on ResNet-50's graph (CIFAR adaptation):

* ``hand_written``: what ``GHN.embed_nodes`` did before (``torch.cat`` of ``op``/``shape``, per-graph ``s_max`` cut
  and edge offsets, the removed ``ghn.py:_batch_edges``), reproduced here as the baseline;
* ``pyg_batch``: what it does now for a list of graphs (:func:`batch_graphs`, then the ``s_max`` cut);
* ``one_graph``: what it does now for one graph (no batch: the graph's own tensors, the cut skipped when all edges
  are kept);
* ``to_data_list``: the training step's unpacking of a collated meta-batch;
* ``embed_nodes``: GHN-2's whole node embedding of the same graphs, for scale;
* end to end, the former ``embed_nodes`` (hand-written batching, bound to the same GHN) against the current one in
  the same rounds: ``ghn(model, graph)`` of ResNet-50 (the tracked prediction path, ``bench_ghn_floors.py``) and
  ``predict_batch`` of the 8 DeepNets-1M networks from a list and from a collated ``Batch`` (the training step).

Run: python experiments/bench_graph_batching.py [--store graphs/val.h5] [--rounds 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import types
import warnings
from collections.abc import Callable, Sequence

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from hyperzoo.ghn import create_ghn  # noqa: E402
from hyperzoo.ghn.ghn import GHN, _sweep_plan  # noqa: E402
from hyperzoo.graphs import ArchGraph, graph_from_module  # noqa: E402
from hyperzoo.graphs.arch_graph import batch_graphs  # noqa: E402
from hyperzoo.graphs.store import GraphStore  # noqa: E402
from hyperzoo.lightning.ghn_module import build_target  # noqa: E402
from hyperzoo.nets import create_model  # noqa: E402


def hand_written(graphs: Sequence[ArchGraph], s_max: int) -> tuple[Tensor, ...]:
    """The former batching of ``GHN.embed_nodes`` (``_batch_edges``), kept as the baseline."""
    op = torch.cat([g.op for g in graphs])
    shape = torch.cat([g.shape for g in graphs])
    ptr = torch.zeros(len(graphs) + 1, dtype=torch.long)
    ptr[1:] = torch.tensor([int(g.num_nodes) for g in graphs]).cumsum(0)
    eis, eds = [], []
    for g, start in zip(graphs, ptr.tolist()):
        keep = g.edge_dist <= s_max
        eis.append(g.edge_index[:, keep].long() + start)
        eds.append(g.edge_dist[keep])
    return op, shape, torch.cat(eis, dim=1), torch.cat(eds), ptr


def pyg_batch(graphs: Sequence[ArchGraph], s_max: int) -> tuple[Tensor, ...]:
    b = batch_graphs(graphs) if len(graphs) > 1 else graphs[0]
    edge_index, edge_dist = b.edge_index.long(), b.edge_dist
    keep = edge_dist <= s_max
    if not bool(keep.all()):
        edge_index, edge_dist = edge_index[:, keep], edge_dist[keep]
    return b.op, b.shape, edge_index, edge_dist


def former_embed_nodes(self: GHN, graphs: ArchGraph | Sequence[ArchGraph], skip_unknown: bool = False) -> Tensor:
    """``GHN.embed_nodes`` before PyG batching (GHN-2/GHN-1 encoder only), kept as the baseline."""
    graph_list = [graphs] if isinstance(graphs, ArchGraph) else list(graphs)
    device = self.op_embed.weight.device
    op, shape, edge_index, edge_dist, _ = hand_written(graph_list, self.s_max)
    x = self.shape_encoder(self.op_embed(op.to(device)), shape.to(device), shape.abs().sum(dim=1) > 0)
    plan = _sweep_plan(
        graph_list[0] if len(graph_list) == 1 else batch_graphs(graph_list),  # only the cache key is read
        edge_index, edge_dist, self.s_max, self.ve, device, x.dtype,
    )  # fmt: skip
    x = self.gnn(x, edge_index.to(device), edge_dist.to(device), plan)
    return self.node_norm(x) if self.node_norm is not None else x


def medians(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            start = time.process_time()
            fn()
            times[k].append(time.process_time() - start)
    return {k: statistics.median(t) * 1e3 for k, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default="graphs/val.h5")
    p.add_argument("--rounds", type=int, default=200)
    args = p.parse_args()
    torch.set_num_threads(1)
    store = GraphStore(args.store)
    eight = [store[i] for i in range(8)]
    resnet = [graph_from_module(create_model("resnet50", num_classes=10, adapt_cifar=True))]
    ghn = create_ghn("ghn2").eval()
    s = ghn.s_max
    collated = batch_graphs(eight)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ms = medians(
        {
            "8 graphs: hand_written": lambda: hand_written(eight, s),
            "8 graphs: pyg_batch": lambda: pyg_batch(eight, s),
            "8 graphs: to_data_list": collated.to_data_list,
            "resnet50: hand_written": lambda: hand_written(resnet, s),
            "resnet50: one_graph": lambda: pyg_batch(resnet, s),
            "resnet50: pyg_batch (forced)": lambda: batch_graphs(resnet),
        },
        args.rounds,
    )
    with torch.no_grad():
        ms.update(
            medians(
                {
                    "8 graphs: embed_nodes": lambda: ghn.embed_nodes(eight),
                    "resnet50: embed_nodes": lambda: ghn.embed_nodes(resnet),
                },
                max(args.rounds // 10, 5),
            )
        )
    model = create_model("resnet50", num_classes=10, adapt_cifar=True)
    nets = [build_target(g.net_args, 10) for g in eight]
    former = create_ghn("ghn2").eval()
    former.load_state_dict(ghn.state_dict())
    former.embed_nodes = types.MethodType(former_embed_nodes, former)  # type: ignore[method-assign]
    with torch.no_grad():
        ms.update(
            medians(
                {
                    "resnet50: ghn(model, graph) former": lambda: former(model, resnet[0]),
                    "resnet50: ghn(model, graph) now": lambda: ghn(model, resnet[0]),
                    "8 graphs: predict_batch former": lambda: former.predict_batch(nets, eight),
                    "8 graphs: predict_batch list now": lambda: ghn.predict_batch(nets, eight),
                    "8 graphs: predict_batch Batch now": lambda: ghn.predict_batch(nets, collated),
                },
                max(args.rounds // 5, 5),
            )
        )
    n8 = sum(int(g.num_nodes) for g in eight)
    e8 = sum(int(g.edge_index.shape[1]) for g in eight)
    print(f"8 DeepNets-1M graphs: {n8} nodes, {e8} edges; resnet50: {int(resnet[0].num_nodes)} nodes, "
          f"{int(resnet[0].edge_index.shape[1])} edges; CPU-time medians over {args.rounds} rounds:")  # fmt: skip
    for k, v in ms.items():
        print(f"  {k:36s} {v:8.3f} ms")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
