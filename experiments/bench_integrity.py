"""Cost of the integrity checks: graph-store reads with and without CRC-32 verification, zoo loads with and without
the SHA-256 check, and the finite check on GHN predictions. CPU time (``time.process_time``), best of ``--repeats``.

    OMP_NUM_THREADS=1 python experiments/bench_integrity.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from hyperzoo.graphs.store import GraphStore, GraphStoreWriter

REPO = Path(__file__).resolve().parents[1]


def _per_read(store: GraphStore, idx: list[int], every_read: bool) -> float:
    store[0]
    t = time.process_time()
    for i in idx:
        if every_read and store._crc is not None:
            store._verified[i] = False  # worst case: verify on every read, not once per graph
        store[i]
    return (time.process_time() - t) / len(idx) * 1e3


def bench_store(repeats: int) -> dict[str, Any]:
    src = GraphStore(REPO / "graphs" / "val.h5")
    tmp = Path(tempfile.mkdtemp())
    contiguous = tmp / "val_contiguous.h5"
    with GraphStoreWriter(contiguous, compression=None) as w:
        for i in range(len(src)):
            g = src[i]
            w.append(g, g.net_args)
    out = {}
    for label, path, kw in (
        ("lzf, in memory", REPO / "graphs" / "val.h5", {}),
        ("lzf, h5py reads", REPO / "graphs" / "val.h5", {"in_memory": False}),
        ("contiguous, memory-mapped", contiguous, {}),
    ):
        row = {}
        for mode in ("off", "once", "every read"):
            times = []
            for r in range(repeats):
                store = GraphStore(path, verify=mode != "off", **kw)
                idx = list(range(len(store))) * 3
                random.Random(r).shuffle(idx)
                times.append(_per_read(store, idx, mode == "every read"))
            row[mode] = min(times)
        out[label] = row
        print(
            f"{label:26s} ms/graph: unverified {row['off']:.4f}, verified once {row['once']:.4f}, "
            f"verified every read {row['every read']:.4f} (x{row['every read'] / row['off']:.2f})"
        )
    return out


def bench_zoo(repeats: int) -> dict[str, Any]:
    from hyperzoo.nets import create_model
    from hyperzoo.zoo.store import load_model, save_model

    tmp = Path(tempfile.mkdtemp())
    out = {}
    for name in ("resnet20", "resnet50"):
        model = create_model(name, num_classes=10)
        save_model(name, model, {"model": name, "num_classes": 10}, tmp)
        size = (tmp / f"{name}.safetensors").stat().st_size
        row = {}
        for verify in (False, True):
            times = []
            for _ in range(repeats):
                t = time.process_time()
                load_model(name, tmp, verify=verify)
                times.append(time.process_time() - t)
            row["verified" if verify else "unverified"] = min(times) * 1e3
        out[name] = {**row, "mb": size / 1e6}
        print(
            f"zoo load {name:9s} ({size / 1e6:.1f} MB): {row['unverified']:.1f} ms, "
            f"with SHA-256 {row['verified']:.1f} ms"
        )
    return out


def bench_predictions(repeats: int) -> dict[str, Any]:
    from hyperzoo.ghn import from_pretrained
    from hyperzoo.ghn.ghn import check_finite_predictions
    from hyperzoo.graphs import graph_from_module
    from hyperzoo.nets import create_model

    ghn = from_pretrained("ghn2-cifar10")
    model = create_model("resnet50", num_classes=10, adapt_cifar=True)
    graph = graph_from_module(model, s_max=ghn.s_max)
    with torch.no_grad():
        preds = ghn.predict_batch([model], [graph])
        predict, check = [], []
        for _ in range(repeats):
            t = time.process_time()
            ghn.predict_batch([model], [graph])
            predict.append(time.process_time() - t)
            t = time.process_time()
            check_finite_predictions(preds, [graph])
            check.append(time.process_time() - t)
    row = {"predict_ms": min(predict) * 1e3, "check_ms": min(check) * 1e3}
    print(f"ResNet-50 prediction {row['predict_ms']:.1f} ms, of which the finite check {row['check_ms']:.1f} ms")
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    result = {"store": bench_store(args.repeats), "zoo": bench_zoo(args.repeats), "predict": bench_predictions(3)}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
