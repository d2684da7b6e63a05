"""Check that the meta-device trace gives the same graph as a real forward for every torchvision classifier.

python experiments/check_meta_trace.py [--size 224] [--adapt-cifar] [--json out.json]
Prints one line per model (equal or what differs) and the time of both traces.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import torch
import torchvision

from hyperzoo.graphs import graph_from_module
from hyperzoo.nets import create_model


def same(a, b) -> str:
    if a.param_names != b.param_names:
        return "param_names"
    for key in ("op", "shape", "edge_index", "edge_dist"):
        if not torch.equal(getattr(a, key), getattr(b, key)):
            return key
    return ""


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--adapt-cifar", action="store_true")
    parser.add_argument("--models", default="", help="comma-separated subset")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = args.models.split(",") if args.models else torchvision.models.list_models(module=torchvision.models)
    rows = []
    for name in names:
        kwargs = {"num_classes": 10, "adapt_cifar": True} if args.adapt_cifar else {}
        model = create_model(name, **kwargs)
        size = 32 if args.adapt_cifar else (299 if name == "inception_v3" else args.size)
        t0 = time.perf_counter()
        a = graph_from_module(model, input_size=size, meta=True)
        t1 = time.perf_counter()
        b = graph_from_module(model, input_size=size, meta=False)
        t2 = time.perf_counter()
        diff = same(a, b)
        rows.append({"model": name, "equal": not diff, "diff": diff, "meta_s": t1 - t0, "real_s": t2 - t1})
        print(f"{name:28s} {'equal' if not diff else 'DIFFERS: ' + diff:20s} meta {t1 - t0:6.2f}s real {t2 - t1:6.2f}s",
              flush=True)  # fmt: skip
        del model
    bad = [r["model"] for r in rows if not r["equal"]]
    print(f"{len(rows) - len(bad)}/{len(rows)} equal; differ: {bad}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
