"""Benchmark of GHN-2 parameter prediction and training, with an in-run baseline.

Measures, on this machine and in one run:
  * median time to predict all parameters of torchvision ResNet-50 (224x224 graph prebuilt), with 1 and 2 threads,
    wall time and (1 thread) CPU time, for hyperzoo's GHN-2 and for the same GHN run on the reference's schedule
    (the baseline: ``hyperzoo.ghn.gatedgnn.node_by_node``, one node per sequential step with masked edge gathers,
    and normalization after tiling, as ppuda);
  * end to end: graph building + prediction + writing the parameters into the model (``ghn(model)``); the baseline
    builds the graph with a real forward pass, as the reference does;
  * peak resident memory of a fresh process doing the end-to-end prediction;
  * training throughput: architectures per second at meta-batch 8 on CIFAR-10-sized batches (64 images, 32x32,
    DeepNets-1M training networks at width 32), with the top operators of a torch.profiler run.

Run: python experiments/bench_ghn.py [--repeats 5] [--train-steps 3] [--store experiments/runs/graphs/train.h5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import warnings

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

from collections.abc import Iterator  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from hyperzoo.bench import cpu_name, median_seconds  # noqa: E402
from hyperzoo.ghn import create_ghn  # noqa: E402
from hyperzoo.ghn.decoder import normalize_parameter  # noqa: E402
from hyperzoo.ghn.gatedgnn import node_by_node  # noqa: E402
from hyperzoo.ghn.ghn import GHN  # noqa: E402
from hyperzoo.graphs import graph_from_module  # noqa: E402
from hyperzoo.nets import create_model  # noqa: E402

_E2E = """
import resource, sys, warnings, torch
warnings.filterwarnings("ignore")
from hyperzoo.ghn import create_ghn
from hyperzoo.nets import create_model
torch.set_num_threads(1)
ghn = create_ghn("ghn2").eval()
model = create_model("resnet50", num_classes=10)
if sys.argv[1] == "predict":
    with torch.no_grad():
        ghn(model)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _repeat_tile(w: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The reference's ``_tile_params``: crop, ``repeat`` one block more than needed where larger, crop."""
    t = tuple(int(v) for v in shape)
    w = w[tuple(slice(0, min(a, b)) for a, b in zip(t, w.shape))]
    reps = [a // b + 1 if a > b else 1 for a, b in zip(t, w.shape)]
    if any(r > 1 for r in reps):
        w = w.repeat(*reps)[tuple(slice(0, v) for v in t)]
    return w


def _reference_normalize(self: GHN, w: torch.Tensor, shape: torch.Size, is_weight: bool) -> torch.Tensor:
    """The reference's order: tile the block to the full shape (``repeat``), then normalize the full tensor."""
    w = _repeat_tile(w, shape)
    return normalize_parameter(w, is_weight) if self.weight_norm else w


@contextlib.contextmanager
def reference_schedule(ghn: GHN) -> Iterator[None]:
    """The baseline: node-by-node GatedGNN (ppuda's loop), tiling by ``repeat`` and normalization after tiling.

    The full-size normalized tensor then passes through hyperzoo's tiling unchanged (nothing left to repeat) and is
    copied into the model by ``ghn(model)``, as the reference's ``ghn(model)`` sets the parameters.
    """
    gnn_forward, normalize = ghn.gnn.forward, GHN._normalize
    ghn.gnn.forward = lambda x, ei, ed, plan=None: node_by_node(ghn.gnn, x, ei, ed)  # type: ignore[method-assign]
    GHN._normalize = _reference_normalize  # type: ignore[method-assign]
    try:
        yield
    finally:
        ghn.gnn.forward = gnn_forward  # type: ignore[method-assign]
        GHN._normalize = normalize  # type: ignore[method-assign]


def prediction(repeats: int) -> dict[str, float]:
    """Wall (and, with 1 thread, CPU) medians: ours vs the reference's schedule, prebuilt graph and end to end.

    End to end, ours traces the graph on the meta device (the default) and the baseline with a real forward pass
    (``meta=False``), as the reference does.
    """
    ghn = create_ghn("ghn2").eval()  # the ghn2_cifar10 architecture (weights do not change the timing)
    model = create_model("resnet50", num_classes=10)
    graph = graph_from_module(model)
    out: dict[str, float] = {
        "nodes": float(graph.num_nodes),
        "params": float(sum(p.numel() for p in model.parameters())),
    }

    def ours_e2e() -> None:
        ghn(model)

    def base_e2e() -> None:
        ghn(model, graph_from_module(model, s_max=ghn.s_max, meta=False))

    for threads in (1, 2):
        torch.set_num_threads(threads)
        clocks = {"": time.perf_counter, "cpu_": time.process_time} if threads == 1 else {"": time.perf_counter}
        with torch.no_grad():
            for prefix, clock in clocks.items():
                key = f"{prefix}{{}}_{threads}t"
                out[key.format("ours")] = median_seconds(lambda: ghn.predict_parameters(graph, model), repeats,
                                                         clock=clock)  # fmt: skip
                out[key.format("ours_e2e")] = median_seconds(ours_e2e, repeats, clock=clock)
                with reference_schedule(ghn):
                    out[key.format("baseline")] = median_seconds(lambda: ghn.predict_parameters(graph, model),
                                                                 repeats, clock=clock)  # fmt: skip
                    out[key.format("baseline_e2e")] = median_seconds(base_e2e, repeats, clock=clock)
    torch.set_num_threads(1)
    return out


def peak_memory() -> tuple[float, float]:
    """Peak RSS (MB) of a fresh process that builds GHN-2 and ResNet-50, without and with predicting it."""

    def run(mode: str) -> float:
        proc = subprocess.run([sys.executable, "-c", _E2E, mode], capture_output=True, text=True, check=True)
        return int(proc.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux

    return run("build"), run("predict")


def training(store_path: str, steps: int, width: int = 32) -> dict[str, object]:
    from torch.profiler import ProfilerActivity, profile

    from hyperzoo.graphs.store import GraphStore
    from hyperzoo.lightning.ghn_module import _logits, build_target, prune_unpredicted, reshape_graph

    torch.manual_seed(0)
    store = GraphStore(store_path)
    ghn = create_ghn("ghn2").train()
    opt = torch.optim.Adam(ghn.parameters(), 1e-3)
    images = torch.randn(64, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (64,))

    def step(i: int) -> None:
        graphs = [store[8 * i + j] for j in range(8)]
        nets = [build_target(g.net_args, 10, width) for g in graphs]
        graphs = [reshape_graph(g, n) for g, n in zip(graphs, nets)]
        preds = ghn.predict_batch(nets, graphs)
        loss = 0.0
        for net, p in zip(nets, preds):
            prune_unpredicted(net, p)
            p = {k: (v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v) for k, v in p.items()}
            loss = loss + F.cross_entropy(_logits(net, p, images), labels)
        opt.zero_grad()
        (loss / 8).backward()  # type: ignore[operator]
        torch.nn.utils.clip_grad_norm_(ghn.parameters(), 5.0)
        opt.step()

    step(0)  # warm-up
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(1, steps + 1):
        step(i)
    seconds = (time.perf_counter() - start) / steps
    cpu_seconds = (time.process_time() - cpu_start) / steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(steps + 1)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10)
    return {
        "seconds_per_step": seconds,
        "archs_per_second": 8 / seconds,
        "cpu_seconds_per_step": cpu_seconds,
        "archs_per_cpu_second": 8 / cpu_seconds,
        "profile": table,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    p.add_argument("--train-steps", type=int, default=3, help="timed training steps (0 skips training)")
    p.add_argument("--store", default="graphs/val.h5", help="graph store of the training networks")
    p.add_argument("--json", help="also write the numbers here")
    args = p.parse_args()
    load = os.getloadavg()[0]
    print(f"machine: {cpu_name()}, torch {torch.__version__}, load average {load:.2f} at start")
    pred = prediction(args.repeats)
    print(f"ResNet-50 (224x224 graph, {int(pred['nodes'])} nodes, {pred['params'] / 1e6:.1f}M parameters), GHN-2;")
    print("baseline: the reference's schedule (node-by-node GatedGNN, normalize after tiling, real-forward graph)")
    rows = [("1 thread, wall", "", 1), ("1 thread, CPU time", "cpu_", 1), ("2 threads, wall", "", 2)]
    for label, prefix, t in rows:
        for what, key in (("predict (graph prebuilt)", ""), ("end to end (graph + predict + fill)", "e2e_")):
            ours, base = pred[f"{prefix}ours_{key}{t}t"], pred[f"{prefix}baseline_{key}{t}t"]
            print(f"  {label:19s} {what:38s} hyperzoo {ours * 1000:7.1f} ms   baseline "
                  f"{base * 1000:7.1f} ms   speed-up {base / ours:5.1f}x")  # fmt: skip
    base_mb, peak_mb = peak_memory()
    print(f"  peak RSS of a fresh process predicting ResNet-50: {peak_mb:.0f} MB ({base_mb:.0f} MB for the same "
          f"process without the prediction: imports, GHN and model)")  # fmt: skip
    result: dict[str, object] = {
        "machine": cpu_name(),
        "load_at_start": load,
        "prediction": pred,
        "peak_rss_mb": peak_mb,
        "rss_before_mb": base_mb,
    }
    if args.train_steps:
        train = training(args.store, args.train_steps)
        print(f"training, meta-batch 8, 64 images, width 32, 1 thread: {train['seconds_per_step']:.2f} s/step wall = "
              f"{train['archs_per_second']:.2f} architectures/s; {train['cpu_seconds_per_step']:.2f} CPU-s/step = "
              f"{train['archs_per_cpu_second']:.2f} architectures per CPU-second")  # fmt: skip
        print(train["profile"])
        result["training"] = {k: v for k, v in train.items() if k != "profile"}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
