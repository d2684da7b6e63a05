"""Benchmark: loading a merged zoo entry by width surgery, against the former route through the merging code.

    OMP_NUM_THREADS=1 python experiments/bench_merged_load.py --models resnet20 resnet18 --repeats 20

For each model, two randomly initialised zoo entries (seeds 0 and 1, projection shortcuts for CIFAR ResNets) go to a
temporary folder and are merged by PLeaS at width 1.5 on the embedded CIFAR-10 sample (2 batches of 32 images);
the merged entry is stored in the zoo. Then the median CPU time (``time.process_time``; the machine is shared) of

- ``hyperzoo.zoo.load_model``: the base model built, resized to the stored tensors
  (``hyperzoo.nets.resize_to_state``) and checked with one forward pass of ``example_input``;
- the baseline, the former route, measured in the same run: the base model built, its permutation spec traced
  (``merge.spec.derive_spec``), ``merge.permute.load_state`` at the recorded ``leaf_widths``, one forward pass,

and whether the two give bit-identical outputs on a fixed batch. Prints one JSON line per model.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from hyperzoo.bench import cpu_name, median_seconds
from hyperzoo.merge.permute import load_state
from hyperzoo.merge.run import merge_entries
from hyperzoo.merge.spec import derive_spec
from hyperzoo.nets import create_model
from hyperzoo.zoo.store import load_meta, load_model, save_model


def former_route(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    """How merged entries were loaded before width surgery moved to ``hyperzoo.nets``."""
    n = int(meta.get("source_num_classes", meta.get("num_classes", 10)))
    template = create_model(meta["model"], num_classes=n, **meta.get("model_kwargs", {}))
    spec = derive_spec(template)
    widths = {int(k): int(v) for k, v in meta["leaf_widths"].items()}
    model = load_state(template, state, spec, widths).eval()
    with torch.no_grad():
        model(torch.zeros(spec.input_shape))
    return model


def bench(model: str, root: Path, repeats: int) -> dict[str, Any]:
    kwargs = {"shortcut": "B"} if model in ("resnet8", "resnet20", "resnet32", "resnet56") else {}
    for name, seed in (("a", 0), ("b", 1)):
        torch.manual_seed(seed)
        net = create_model(model, num_classes=10, **kwargs)
        save_model(f"{model}-{name}", net, {"model": model, "model_kwargs": kwargs, "num_classes": 10}, root)
    entry = merge_entries(
        f"{model}-a", f"{model}-b", "pleas", 1.5, "sample", batches=2, batch_size=32, test_limit=32,
        zoo=str(root), out=str(root), name=f"{model}-merged",
    )  # fmt: skip
    meta = load_meta(entry.name, root)
    state = load_file(str(entry.path))
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        same = torch.equal(load_model(entry.name, root)(x), former_route(meta, state)(x))
    new = median_seconds(lambda: load_model(entry.name, root), repeats, clock=time.process_time)
    old = median_seconds(lambda: former_route(meta, load_file(str(entry.path))), repeats, clock=time.process_time)
    return {
        "model": model,
        "params": int(meta["params"]),
        "load_model_ms": round(new * 1000, 1),
        "former_route_ms": round(old * 1000, 1),
        "speedup": round(old / new, 2),
        "bit_identical": same,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["resnet20"])
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(1)
    print(json.dumps({"cpu": cpu_name(), "load_average": os.getloadavg()}))
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            print(json.dumps(bench(model, Path(tmp), args.repeats)), flush=True)


if __name__ == "__main__":
    main()
