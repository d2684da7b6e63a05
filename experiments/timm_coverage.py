"""Coverage of timm models: graph, meta trace, GHN prediction and forward for one small model per timm family.

OMP_NUM_THREADS=1 python experiments/timm_coverage.py [--models a,b] [--json out.json] [--markdown out.md]

For each model of ``hyperzoo.nets.timm_models.COVERAGE_SET`` (built without pretrained weights, 10 classes, at
timm's input size): the graph is built strictly (every parameter mapped), the meta trace is compared with a real
trace, a small random GHN-2 with hyperzoo's full vocabulary fills the model (``ghn(model)``) and a forward pass
runs. A model is "fully predicted" when all of that holds: no unmapped parameter, meta trace equal to the real one
without a fallback, every parameter predicted and finite, a finite output.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import warnings
from collections import defaultdict
from typing import Any

import torch

from hyperzoo.ghn import create_ghn
from hyperzoo.ghn.unpredicted import UnpredictedParametersWarning
from hyperzoo.graphs import PRIMITIVES, graph_from_module
from hyperzoo.graphs.from_module import UnmappedModuleError
from hyperzoo.graphs.sharing import tied_uses
from hyperzoo.nets import create_model
from hyperzoo.nets.timm_models import COVERAGE_SET


def same(a: Any, b: Any) -> str:
    if a.param_names != b.param_names:
        return "param_names"
    for key in ("op", "shape", "edge_index", "edge_dist"):
        if not torch.equal(getattr(a, key), getattr(b, key)):
            return key
    return ""


def check(name: str, kwargs: dict[str, Any], ghn: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"model": name, "kwargs": kwargs}
    t0 = time.perf_counter()
    torch.manual_seed(0)
    model = create_model(f"timm:{name}", num_classes=10, **kwargs).eval()
    row["params"] = sum(p.numel() for p in model.parameters())
    try:
        graph = graph_from_module(model)
        row["unmapped"] = []
    except UnmappedModuleError:
        graph = graph_from_module(model, strict=False)
        row["unmapped"] = list(graph.unmapped)
        row.update(nodes=int(graph.num_nodes), meta_fallback=graph.meta_fallback, ok=False)
        return row  # not predictable as a whole: stop here (the rest needs a complete graph)
    row["nodes"] = int(graph.num_nodes)
    row["meta_fallback"] = graph.meta_fallback
    real = graph_from_module(model, meta=False, strict=False)
    row["meta_equal"] = same(graph, real) == ""
    row["tied"] = sorted(tied_uses(graph))
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        ghn(model, graph, allow_unpredicted=True)
    row["unpredicted_warning"] = [str(w.message)[:300] for w in caught if w.category is UnpredictedParametersWarning]
    row["nonfinite_params"] = [k for k, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    size = model.expected_input_size
    hw = (size, size) if isinstance(size, int) else tuple(size)
    with torch.no_grad():
        out = model(torch.randn(2, 3, *hw))
    out = out[0] if isinstance(out, (tuple, list)) else out
    row["forward_finite"] = bool(torch.isfinite(out).all())
    row["wall_s"] = time.perf_counter() - t0
    row["ok"] = (
        not row["unmapped"]
        and not row["meta_fallback"]
        and row["meta_equal"]
        and not row["unpredicted_warning"]
        and not row["nonfinite_params"]
        and row["forward_finite"]
    )
    return row


def why(row: dict[str, Any]) -> str:
    if "error" in row:
        return row["error"]
    out = []
    if row["unmapped"]:
        out.append(f"no role for {len(row['unmapped'])} tensor(s), e.g. {', '.join(row['unmapped'][:2])}")
        return "; ".join(out)
    if row["meta_fallback"]:
        out.append(f"meta fallback ({row['meta_fallback'][:80]})")
    if not row["meta_equal"]:
        out.append("meta trace differs")
    if row["unpredicted_warning"]:
        out.append("unpredicted parameters")
    if row["nonfinite_params"]:
        out.append(f"non-finite {row['nonfinite_params'][:2]}")
    if not row["forward_finite"]:
        out.append("non-finite output")
    return "; ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated subset of the coverage set")
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    wanted = set(args.models.split(",")) if args.models else None
    ghn = create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3), num_ops=len(PRIMITIVES), num_classes=10).eval()
    rows = []
    for family, name, kwargs in COVERAGE_SET:
        if wanted is not None and name not in wanted:
            continue
        try:
            row = check(name, kwargs, ghn)
        except Exception as e:
            row = {"model": name, "kwargs": kwargs, "ok": False, "error": f"{type(e).__name__}: {str(e)[:200]}"}
        row["family"] = family
        rows.append(row)
        print(f"{family:26s} {name:34s} {'OK' if row['ok'] else 'NO: ' + why(row)[:150]}", flush=True)
        gc.collect()
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
    by_family: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_family[r["family"]].append(r)
    lines = ["| family | models tried | fully predicted | why not |", "|---|---|---|---|"]
    for family, rs in by_family.items():
        tried = ", ".join(r["model"] + (f" ({r['kwargs']})" if r["kwargs"] else "") for r in rs)
        ok = sum(r["ok"] for r in rs)
        reasons = "; ".join(f"{r['model']}: {why(r)}" for r in rs if not r["ok"])
        lines.append(f"| {family} | {tried} | {ok}/{len(rs)} | {reasons} |")
    total = sum(r["ok"] for r in rows)
    lines.append(f"\n{total}/{len(rows)} models fully predicted, {len(by_family)} families")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
