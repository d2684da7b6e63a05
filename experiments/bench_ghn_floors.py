"""GHN-2 speed against the floors: prediction vs a state-dict copy, a training step vs its target networks.

Measured in one process, 1 thread, CPU time (``time.process_time``; the machine is shared, so wall time measures the
neighbours), every quantity timed in interleaved rounds (one call of each per round) until the median of each is
stable (changes by less than ``--tol`` over the last rounds) or ``--max-rounds`` is reached:

* the memory floor: ``model.load_state_dict(sd)`` of ResNet-50 (CIFAR adaptation: 3x3 stem, no max-pool, 10 classes)
  into an existing model;
* hyperzoo's public paths with a prebuilt graph: ``ghn(model, graph)`` (fills the model in place),
  ``ghn.predict_parameters(graph, model)`` (new tensors), and the latter copied into the model;
* the reference's schedule (``bench_ghn.reference_schedule``: node-by-node GatedGNN, blocks tiled with
  ``repeat`` and normalized after tiling) on the same calls;
* end to end (graph + predict + fill): ``ghn(model)`` (graph traced on the meta device) against the reference's
  schedule with a real-forward graph;
* the compute floor of training: the same 8 DeepNets-1M networks (width 32) with ordinary parameters, forward and
  backward on the same 64 images, against one GHN training step as ``GHNModule.training_step`` does it
  (prediction, forward, backward through the GHN, clipping, Adam).

Run: python experiments/bench_ghn_floors.py [--checkpoint ../shared/conformance/ghn2_cifar10_seed0.pt]
     [--store graphs/val.h5] [--json experiments/logs/bench_ghn_floors.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ghn import reference_schedule  # noqa: E402

from hyperzoo.bench import cpu_name  # noqa: E402
from hyperzoo.ghn import create_ghn, load_reference_checkpoint  # noqa: E402
from hyperzoo.ghn.ghn import GHN  # noqa: E402
from hyperzoo.graphs import graph_from_module  # noqa: E402
from hyperzoo.nets import create_model  # noqa: E402


def interleaved_medians(
    fns: dict[str, Callable[[], object]], min_rounds: int, max_rounds: int, tol: float
) -> tuple[dict[str, float], int]:
    """CPU-time medians (s) of each function, one call of each per round, until every median is stable.

    Stable: after ``min_rounds``, the median of the first ``k - 2`` rounds and of all ``k`` differ by less than
    ``tol`` (relative) for every function.
    """
    for fn in fns.values():  # warm-up: plans, allocator, lazy initialisation
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    rounds = 0
    while rounds < max_rounds:
        for k, fn in fns.items():
            start = time.process_time()
            fn()
            times[k].append(time.process_time() - start)
        rounds += 1
        if rounds >= max(min_rounds, 3) and all(
            abs(statistics.median(t[:-2]) - statistics.median(t)) < tol * statistics.median(t) for t in times.values()
        ):
            break
    return {k: statistics.median(t) for k, t in times.items()}, rounds


def prediction(ghn: GHN, args: argparse.Namespace) -> tuple[dict[str, float], int]:
    model = create_model("resnet50", num_classes=10, adapt_cifar=True)
    graph = graph_from_module(model)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    params = dict(model.named_parameters())

    def predict_fill() -> None:
        for k, v in ghn.predict_parameters(graph, model).items():
            params[k].copy_(v)

    def ref_predict() -> None:
        with reference_schedule(ghn):
            ghn.predict_parameters(graph, model)

    def ref_fill() -> None:
        with reference_schedule(ghn):
            ghn(model, graph)

    def ref_e2e() -> None:
        with reference_schedule(ghn):
            ghn(model, graph_from_module(model, s_max=ghn.s_max, meta=False))

    fns: dict[str, Callable[[], object]] = {
        "floor_state_dict_copy": lambda: model.load_state_dict(sd),
        "ghn_model_graph": lambda: ghn(model, graph),
        "predict_parameters": lambda: ghn.predict_parameters(graph, model),
        "predict_parameters_and_copy": predict_fill,
        "ghn_model_e2e": lambda: ghn(model),
        "reference_predict": ref_predict,
        "reference_model_graph": ref_fill,
        "reference_e2e": ref_e2e,
    }
    with torch.no_grad():
        return interleaved_medians(fns, args.min_rounds, args.max_rounds, args.tol)


def training(ghn: GHN, args: argparse.Namespace) -> tuple[dict[str, float], int]:
    """One GHN training step against the same 8 networks with ordinary parameters (forward + backward)."""
    from hyperzoo.graphs.store import GraphStore
    from hyperzoo.lightning.ghn_module import _logits, build_target, prune_unpredicted, reshape_graph

    torch.manual_seed(0)
    ghn = ghn.train()
    opt = torch.optim.Adam(ghn.parameters(), 1e-3)
    store = GraphStore(args.store)
    graphs = [store[j] for j in range(8)]
    images = torch.randn(64, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (64,))

    def cl(v: torch.Tensor) -> torch.Tensor:
        return v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v

    def ghn_step() -> None:  # GHNModule.training_step with widths=None (stored width 32)
        nets = [build_target(g.net_args, 10, args.width) for g in graphs]
        gs = [reshape_graph(g, n) for g, n in zip(graphs, nets)]
        preds = ghn.predict_batch(nets, gs)
        losses = []
        for net, p in zip(nets, preds):
            prune_unpredicted(net, p)
            losses.append(F.cross_entropy(_logits(net, {k: cl(v) for k, v in p.items()}, images), labels))
        opt.zero_grad()
        torch.stack(losses).mean().backward()
        torch.nn.utils.clip_grad_norm_(ghn.parameters(), 5.0)
        opt.step()

    # the floor: the same networks (same pruned parameters) as ordinary modules with the predicted values
    with torch.no_grad():
        nets = [build_target(g.net_args, 10, args.width) for g in graphs]
        preds = ghn.predict_batch(nets, [reshape_graph(g, n) for g, n in zip(graphs, nets)])
    floor_nets = []
    for net, p in zip(nets, preds):
        prune_unpredicted(net, p)
        net = net.to_empty(device="cpu")
        for k, v in net.named_parameters():
            v.data = cl(p[k].detach().clone())
        floor_nets.append(net)
    floor_params = [p for n in floor_nets for p in n.parameters()]

    def floor_step() -> None:
        for p in floor_params:
            p.grad = None
        losses = []
        for net in floor_nets:
            out = net(images)
            losses.append(F.cross_entropy(out[0] if isinstance(out, tuple) else out, labels))
        torch.stack(losses).mean().backward()

    fns: dict[str, Callable[[], object]] = {"floor_8_nets_fwd_bwd": floor_step, "ghn_train_step": ghn_step}
    return interleaved_medians(fns, args.min_rounds, args.max_train_rounds, args.tol)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="reference GHN-2 checkpoint (default: a freshly initialised GHN-2)")
    p.add_argument("--store", default="graphs/val.h5", help="graph store with the training networks (first 8)")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--min-rounds", type=int, default=7)
    p.add_argument("--max-rounds", type=int, default=41)
    p.add_argument("--max-train-rounds", type=int, default=9)
    p.add_argument("--tol", type=float, default=0.03, help="relative change of the medians that counts as stable")
    p.add_argument("--skip-training", action="store_true")
    p.add_argument("--json", help="also write the numbers here")
    args = p.parse_args()
    torch.set_num_threads(1)
    ghn = load_reference_checkpoint(args.checkpoint) if args.checkpoint else create_ghn("ghn2").eval()
    load0 = os.getloadavg()
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread, CPU time; "
          f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} at start")  # fmt: skip
    pred, rounds = prediction(ghn, args)
    floor = pred["floor_state_dict_copy"]
    print(f"ResNet-50 (CIFAR, 10 classes), graph prebuilt; medians over {rounds} interleaved rounds (ms, x floor):")
    for k, v in pred.items():
        print(f"  {k:30s} {v * 1e3:8.1f} ms  {v / floor:6.2f}x floor")
    print(f"  reference schedule / ours: predict {pred['reference_predict'] / pred['predict_parameters']:.2f}x, "
          f"ghn(model, graph) {pred['reference_model_graph'] / pred['ghn_model_graph']:.2f}x, "
          f"end to end {pred['reference_e2e'] / pred['ghn_model_e2e']:.2f}x")  # fmt: skip
    result: dict[str, object] = {"machine": cpu_name(), "load_at_start": load0, "prediction": pred, "rounds": rounds}
    if not args.skip_training:
        train, train_rounds = training(ghn, args)
        ratio = train["ghn_train_step"] / train["floor_8_nets_fwd_bwd"]
        print(f"training step, 8 networks, 64 images, width {args.width}, medians over {train_rounds} rounds: floor "
              f"(ordinary parameters, forward + backward) {train['floor_8_nets_fwd_bwd']:.3f} s, GHN step "
              f"{train['ghn_train_step']:.3f} s = {ratio:.2f}x floor")  # fmt: skip
        result["training"] = train
        result["train_rounds"] = train_rounds
    load1 = os.getloadavg()
    print(f"load average {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} at the end")
    result["load_at_end"] = load1
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
