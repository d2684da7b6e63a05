"""Compares hyperzoo's reference-GHN-3 path with golden outputs of the reference GHN-3 (graphs and parameters).

Golden files have the layout of ``shared/conformance/ghn3/ghn3t_seed0.json`` (``models.<name>``: ``nodes``,
``param_names``, ``edges``, ``node_shapes``, ``not_predicted``, ``params`` fingerprints); a file may also be a bare
``{name: {...}}`` mapping, as written by a local run of the reference. For each model it prints one Markdown row:
graph match (node sequence, names, real + virtual edges, node shapes), predicted tensors vs the reference's, the
tensors left unpredicted, and the worst relative fingerprint error (the comparison of the GHN-2 conformance tests).

    PYTHONPATH=. python experiments/check_ghn3_conformance.py --ghn ../shared/conformance/ghn3/ghn3tm8_seed0.pt \\
        --golden ../shared/conformance/ghn3/ghn3t_seed0.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import torch
import torchvision

from hyperzoo.ghn import from_pretrained
from hyperzoo.graphs.ghn3_rules import reference_shape_4d


def relative_error(pred: torch.Tensor, fp: dict) -> float:
    """The largest of the norm, sum and sampled-value errors (as ``tests/ghn/test_conformance.py``)."""
    v = pred.detach().double().flatten()
    norm, rms = fp["norm"], fp["norm"] / math.sqrt(max(v.numel(), 1))
    got = v[fp["idx"]].tolist()
    return max(
        abs(v.norm().item() - norm) / max(norm, 1e-30),
        abs(v.sum().item() - fp["sum"]) / max(abs(fp["sum"]) + norm, 1e-30),
        max((abs(a - b) / max(abs(b) + rms, 1e-30) for a, b in zip(got, fp["vals"])), default=0.0),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ghn", required=True, help="reference GHN-3 checkpoint (either format)")
    parser.add_argument("--golden", required=True, nargs="+", help="golden JSON file(s)")
    parser.add_argument("--models", default=None, help="comma-separated subset")
    args = parser.parse_args()
    ghn = from_pretrained(args.ghn)
    print("| model | nodes | graph equal | tensors predicted (ref) | not predicted | worst rel. err | CPU s |")
    print("|---|---|---|---|---|---|---|")
    for path in args.golden:
        data = json.loads(Path(path).read_text())
        models = data.get("models", data)
        for name, ref in models.items():
            if args.models and name not in args.models.split(","):
                continue
            t0 = time.process_time()
            torch.manual_seed(0)
            kw = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
            model = getattr(torchvision.models, name)(**kw).eval()
            graph = ghn.graph(model)
            ours = graph.to_json_dict()
            equal = (
                ours["nodes"] == ref["nodes"]
                and ours["param_names"] == ref["param_names"]
                and ours["edges"] == ref["edges"]
                and graph.shape.tolist() == [list(reference_shape_4d(s)) for s in ref["node_shapes"]]
            )
            torch.manual_seed(0)
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred = ghn.predict_batch([model], [graph], allow_unpredicted=True)[0]
            worst = max((relative_error(pred[k], fp) for k, fp in ref["params"].items() if k in pred), default=0.0)
            same_set = set(pred) == set(ref["params"]) and sorted(graph.unmapped) == sorted(ref["not_predicted"])
            unpred = ref["not_predicted"]
            shown = ", ".join(unpred[:2]) + (f" (+{len(unpred) - 2})" if len(unpred) > 2 else "") if unpred else "-"
            print(
                f"| {name} | {ours['num_nodes']} | {'yes' if equal else 'NO'} | {len(pred)} ({len(ref['params'])})"
                f"{'' if same_set else ' DIFFERENT SET'} | {shown} | {worst:.1e} | {time.process_time() - t0:.1f} |"
            )


if __name__ == "__main__":
    main()
