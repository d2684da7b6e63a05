"""What hyperzoo's GHN-2 does with the torchvision models the reference GHN-2 cannot handle.

python experiments/check_ghn2_not_handled.py [--conformance ../shared/conformance] [names ...]

Reads ``reference_not_handled`` from ``ppuda_ghn2_seed0_more.json``, builds each model adapted to 32x32 with its
parameters on the ``meta`` device (shapes only), builds its graph and predicts its parameters with the reference
checkpoint ``ghn2_cifar10_seed0.pt`` (``skip_unknown=True``: tensors of ops outside GHN-2's 15-op vocabulary are left
out). Prints one line per model: the reference's failure, the graph size, unmapped tensors, predicted / total.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch

from hyperzoo.ghn import load_reference_checkpoint
from hyperzoo.graphs import graph_from_module
from hyperzoo.nets import create_model
from hyperzoo.nets.meta_params import parameters_on_meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="models (default: every reference_not_handled entry)")
    parser.add_argument("--conformance", default=str(Path(__file__).resolve().parents[2] / "shared" / "conformance"))
    args = parser.parse_args()
    root = Path(args.conformance)
    missing = json.loads((root / "ppuda_ghn2_seed0_more.json").read_text())["reference_not_handled"]
    ghn = load_reference_checkpoint(root / "ghn2_cifar10_seed0.pt")
    torch.set_num_threads(1)
    for name in args.names or sorted(missing):
        start = time.process_time()
        with parameters_on_meta():
            model = create_model(name, num_classes=10, adapt_cifar=True).eval()
        graph = graph_from_module(model)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            pred = ghn.predict_parameters(graph, model, skip_unknown=True)
        params = dict(model.named_parameters())
        left = sorted({k.rpartition(".")[2] for k in params if k not in pred})
        ref = missing.get(name, {})
        print(
            f"{name}: reference {ref.get('stage', '-')}: {ref.get('reason', '-')[:80]} | hyperzoo: {graph.num_nodes} "
            f"nodes, {len(graph.unmapped)} unmapped, predicted {len(pred)}/{len(params)} (not predicted: "
            f"{', '.join(left) or 'none'}) | {time.process_time() - start:.1f} s CPU",
            flush=True,
        )


if __name__ == "__main__":
    main()
