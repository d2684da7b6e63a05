"""Benchmark of the computation-graph pipeline: graph building, generation, store reads.

Measures, on this machine and in one run (wall time, and CPU time: what one dedicated core takes, which stays
meaningful on a loaded machine):
  * median time of ``graph_from_module`` (forward pass + autograd walk + virtual edges, s_max=50) for torchvision
    ResNet-50 and DenseNet-201 at 224x224, with the meta-device trace (default) and with a real forward (baseline);
  * train-split generation throughput (sample net_args, build the CIFAR network, build its graph) per core,
    in-process (no worker start-up);
  * random-access read time per graph from a hyperzoo HDF5 graph store.

Run: python experiments/bench_graphs.py [--store graphs/val.h5] [--repeats 5] [--gen 40]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

import torch  # noqa: E402

from hyperzoo.bench import cpu_name  # noqa: E402
from hyperzoo.graphs import graph_from_module  # noqa: E402
from hyperzoo.graphs.store import GraphStore, write_graphs  # noqa: E402
from hyperzoo.nets import create_model  # noqa: E402
from hyperzoo.nets.deepnets1m import build_network  # noqa: E402
from hyperzoo.nets.deepnets1m.splits import candidate  # noqa: E402


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def time_graph(name: str, repeats: int, meta: bool) -> dict[str, float]:
    """Median wall and CPU time of ``graph_from_module`` (CPU time is what one dedicated core would take)."""
    model = create_model(name)
    graph = graph_from_module(model, meta=meta)  # warm-up (first forward allocates)
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = _clocks()
        graph = graph_from_module(model, meta=meta)
        w1, c1 = _clocks()
        walls.append(w1 - w0)
        cpus.append(c1 - c0)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus), "nodes": graph.num_nodes}


def generation_rate(n: int, meta: bool) -> dict[str, float]:
    """Train-split graphs per second (wall and per CPU-second): sample, build the net without init, build its graph."""
    w0, c0 = _clocks()
    made, j = 0, 0
    while made < n:
        args = candidate("train", j, 0, False)
        j += 1
        if args is None:
            continue
        graph_from_module(build_network(args, light=True), meta=meta)
        made += 1
    w1, c1 = _clocks()
    return {"per_wall_s": made / (w1 - w0), "per_cpu_s": made / (c1 - c0)}


def read_time(path: str | Path, reads: int, in_memory: bool | None = None) -> dict[str, float]:
    """Mean wall and CPU milliseconds per random-access read of one graph."""
    store = GraphStore(path, in_memory=in_memory)
    for i in range(len(store)):  # open the file and warm the page cache, as a training run's later epochs find it
        store[i]
    idx = [random.randrange(len(store)) for _ in range(reads)]
    w0, c0 = _clocks()
    for i in idx:
        store[i]
    w1, c1 = _clocks()
    return {"wall_ms": (w1 - w0) / reads * 1000, "cpu_ms": (c1 - c0) / reads * 1000}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default="graphs/val.h5", help="graph store for the read benchmark")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per model (median reported)")
    p.add_argument("--gen", type=int, default=40, help="train-split graphs to generate for the throughput")
    p.add_argument("--reads", type=int, default=2000, help="random reads from the store")
    p.add_argument("--json", default=None, help="also write the numbers here")
    args = p.parse_args()
    torch.set_num_threads(1)  # per-core numbers
    load = os.getloadavg()[0]
    print(f"machine: {cpu_name()}, 1 thread, torch {torch.__version__}, load average {load:.2f} at start")
    print("baseline: the same pipeline with a real forward pass (meta=False), as the reference traces")
    out: dict[str, object] = {"machine": cpu_name(), "load_at_start": load}
    for name in ("resnet50", "densenet201"):
        fast, real = time_graph(name, args.repeats, True), time_graph(name, args.repeats, False)
        out[name] = {"meta": fast, "real": real}
        print(
            f"graph_from_module({name}, 224x224, s_max=50, {fast['nodes']} nodes): "
            f"meta {fast['wall_s'] * 1000:.0f} ms wall / {fast['cpu_s'] * 1000:.0f} ms CPU, "
            f"real forward {real['wall_s'] * 1000:.0f} / {real['cpu_s'] * 1000:.0f} ms: "
            f"{real['cpu_s'] / fast['cpu_s']:.1f}x"
        )
    gen, gen_real = generation_rate(args.gen, True), generation_rate(args.gen, False)
    out["generation"] = {"meta": gen, "real": gen_real}
    print(
        f"train-split generation: {gen['per_cpu_s']:.1f} graphs per CPU-second ({gen['per_wall_s']:.1f}/s wall); "
        f"real forward {gen_real['per_cpu_s']:.1f} ({gen_real['per_wall_s']:.1f}/s wall)"
    )
    src = GraphStore(args.store)
    with tempfile.TemporaryDirectory() as tmp:
        mapped = write_graphs(Path(tmp) / "contiguous.h5", [src[i] for i in range(len(src))], compression=None)
        layouts = {
            "chunked lzf, read whole into memory (stores up to 256 MB)": (args.store, True),
            "chunked lzf, read through h5py (larger stores)": (args.store, False),
            "contiguous (compression none), memory-mapped (any size)": (mapped, None),
        }
        out["store_read"] = {}
        for label, (path, in_memory) in layouts.items():
            read = read_time(path, args.reads, in_memory)
            out["store_read"][label] = read  # type: ignore[index]
            size = Path(path).stat().st_size / 1e6
            print(f"store random read, {label}, {size:.0f} MB: {read['wall_ms']:.3f} ms/graph wall, "
                  f"{read['cpu_ms']:.3f} ms CPU")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
