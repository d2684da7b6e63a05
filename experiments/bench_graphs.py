"""Benchmark of the computation-graph pipeline (issue 3): graph building, generation, store reads.

Measures, on this machine and in one run:
  * median time of ``graph_from_module`` (forward pass + autograd walk + virtual edges, s_max=50) for torchvision
    ResNet-50 and DenseNet-201 at 224x224;
  * train-split generation throughput (sample net_args, build the CIFAR network, build its graph) per core,
    in-process (no worker start-up);
  * random-access read time per graph from a hyperzoo HDF5 graph store.

Run: python experiments/bench_graphs.py [--store graphs/val.h5] [--repeats 5] [--gen 40]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import warnings

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

import torch  # noqa: E402

from hyperzoo.bench import cpu_name  # noqa: E402
from hyperzoo.graphs import graph_from_module  # noqa: E402
from hyperzoo.graphs.store import GraphStore  # noqa: E402
from hyperzoo.nets import create_model  # noqa: E402
from hyperzoo.nets.deepnets1m import build_network  # noqa: E402
from hyperzoo.nets.deepnets1m.splits import candidate  # noqa: E402


def time_graph(name: str, repeats: int) -> tuple[float, int]:
    model = create_model(name)
    graph_from_module(model)  # warm-up (first forward allocates)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        graph = graph_from_module(model)
        times.append(time.perf_counter() - start)
    return statistics.median(times), graph.num_nodes


def generation_rate(n: int) -> float:
    start = time.perf_counter()
    made, j = 0, 0
    while made < n:
        args = candidate("train", j, 0, False)
        j += 1
        if args is None:
            continue
        graph_from_module(build_network(args, light=True))
        made += 1
    return made / (time.perf_counter() - start)


def read_time(path: str, reads: int) -> float:
    store = GraphStore(path)
    store[0]  # open the file
    idx = [random.randrange(len(store)) for _ in range(reads)]
    start = time.perf_counter()
    for i in idx:
        store[i]
    return (time.perf_counter() - start) / reads


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default="graphs/val.h5", help="graph store for the read benchmark")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per model (median reported)")
    p.add_argument("--gen", type=int, default=40, help="train-split graphs to generate for the throughput")
    p.add_argument("--reads", type=int, default=2000, help="random reads from the store")
    args = p.parse_args()
    torch.set_num_threads(1)  # per-core numbers
    print(f"machine: {cpu_name()}, 1 thread, torch {torch.__version__}")
    for name in ("resnet50", "densenet201"):
        t, n = time_graph(name, args.repeats)
        print(f"graph_from_module({name}, 224x224, s_max=50): median {t * 1000:.0f} ms ({n} nodes)")
    print(f"train-split generation: {generation_rate(args.gen):.2f} graphs/s per core")
    print(f"store random read ({args.store}): {read_time(args.store, args.reads) * 1000:.3f} ms/graph")


if __name__ == "__main__":
    main()
