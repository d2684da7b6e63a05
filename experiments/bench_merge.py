"""Benchmark: permutation spec, matching and merging of two torchvision ResNet-50s (random weights, 224x224).

    OMP_NUM_THREADS=2 python experiments/bench_merge.py --batches 100 --batch-size 2 --pleas \
        --out experiments/logs/bench_merge_resnet50.json

Stages, each timed (wall clock and process CPU time: the machine is shared, CPU time is the steadier number)
with the process's peak resident memory after it:
  spec (one traced forward pass), weight matching (Git Re-Basin coordinate descent), activation matching
  (correlations from ``--batches`` random batches, two passes), merge at width 1.0 (permuted average), the
  honest compute of merges at widths 1.0-2.0 and, with ``--pleas``, the full PLeaS merge at width 1.0 (layer-wise
  least squares over the same batches, then a BN reset). Baseline measured in the same run: plain inference of
  both models over the same batches (one pass), so the activation-matching cost is also reported as a ratio to it.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch

from hyperzoo.merge.baselines import reset_bn_stats
from hyperzoo.merge.compute import count_macs, count_params
from hyperzoo.merge.matching import activation_matching, weight_matching
from hyperzoo.merge.pleas import build_merged, partial_plan, refit_least_squares
from hyperzoo.merge.spec import derive_spec
from hyperzoo.nets import create_model


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet50")
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--max-rows", type=int, default=4096)
    p.add_argument("--pleas", action="store_true", help="also time PLeaS's least-squares refit + BN reset (width 1)")
    p.add_argument("--ridge", type=float, default=1e-3, help="relative ridge of the least-squares refit")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    res: dict = {
        "machine": f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}",
        "args": vars(args),
    }
    torch.manual_seed(0)
    a = create_model(args.model).eval()
    torch.manual_seed(1)
    b = create_model(args.model).eval()
    res["rss_models_mib"] = peak_mib()
    g = torch.Generator().manual_seed(2)
    batches = [torch.randn(args.batch_size, 3, args.size, args.size, generator=g) for _ in range(args.batches)]
    res["rss_data_mib"] = peak_mib()

    t, c = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for x in batches:
            a(x)
            b(x)
    res["baseline_inference_s"] = time.perf_counter() - t
    res["baseline_inference_cpu_s"] = time.process_time() - c
    res["rss_after_inference_mib"] = peak_mib()

    t, c = time.perf_counter(), time.process_time()
    spec = derive_spec(a, input_size=args.size)
    res["spec_s"] = time.perf_counter() - t
    res["spec_cpu_s"] = time.process_time() - c
    res["groups"] = len(spec.groups)
    res["rss_after_spec_mib"] = peak_mib()

    t, c = time.perf_counter(), time.process_time()
    wperms, _ = weight_matching(spec, a.state_dict(), b.state_dict())
    res["weight_matching_s"] = time.perf_counter() - t
    res["weight_matching_cpu_s"] = time.process_time() - c
    res["rss_after_weight_matching_mib"] = peak_mib()

    t, c = time.perf_counter(), time.process_time()
    aperms, corr = activation_matching(a, b, spec, batches, args.batches, args.max_rows)
    res["activation_matching_s"] = time.perf_counter() - t
    res["activation_matching_cpu_s"] = time.process_time() - c
    res["activation_matching_vs_inference"] = res["activation_matching_cpu_s"] / res["baseline_inference_cpu_s"]
    res["correlation_floats"] = sum(c.numel() for c in corr.values())
    res["rss_after_activation_matching_mib"] = peak_mib()

    x1 = torch.zeros(1, 3, args.size, args.size)
    single_macs, single_params = count_macs(a, x1), count_params(a)
    res["widths"] = {}
    for width in (1.0, 1.25, 1.5, 2.0):
        t, c = time.perf_counter(), time.process_time()
        merged = build_merged(a, b, spec, partial_plan(spec, aperms, corr, width))
        took, took_cpu = time.perf_counter() - t, time.process_time() - c
        res["widths"][str(width)] = {
            "merge_s": took,
            "merge_cpu_s": took_cpu,
            "macs_ratio": count_macs(merged, x1) / single_macs,
            "params_ratio": count_params(merged) / single_params,
        }
        del merged
    if args.pleas:
        plan = partial_plan(spec, aperms, corr, 1.0)
        merged = build_merged(a, b, spec, plan)
        t, c = time.perf_counter(), time.process_time()
        rows = refit_least_squares(merged, a, b, spec, plan, batches, args.batches, ridge=args.ridge)
        res["pleas_least_squares_s"] = time.perf_counter() - t
        res["pleas_least_squares_cpu_s"] = time.process_time() - c
        res["pleas_layers_refit"] = len(rows)
        res["pleas_rows_per_layer_min_max"] = [min(rows.values()), max(rows.values())]
        res["rss_after_least_squares_mib"] = peak_mib()
        t, c = time.perf_counter(), time.process_time()
        with torch.no_grad():
            reset_bn_stats(merged, batches, args.batches)
        res["pleas_bn_reset_s"] = time.perf_counter() - t
        res["pleas_bn_reset_cpu_s"] = time.process_time() - c
        del merged
    res["merge_w1_s"] = res["widths"]["1.0"]["merge_s"]
    res["rss_peak_mib"] = peak_mib()
    res["total_spec_match_merge_s"] = res["spec_s"] + res["activation_matching_s"] + res["merge_w1_s"]
    res["total_spec_match_merge_cpu_s"] = (
        res["spec_cpu_s"] + res["activation_matching_cpu_s"] + res["widths"]["1.0"]["merge_cpu_s"]
    )
    if args.pleas:
        res["total_spec_match_pleas_s"] = (
            res["total_spec_match_merge_s"] + res["pleas_least_squares_s"] + res["pleas_bn_reset_s"]
        )
        res["total_spec_match_pleas_cpu_s"] = (
            res["total_spec_match_merge_cpu_s"] + res["pleas_least_squares_cpu_s"] + res["pleas_bn_reset_cpu_s"]
        )
    same = sum(int(torch.equal(wperms[k], aperms[k])) for k in spec.groups)
    res["groups_where_weight_and_activation_matching_agree"] = same
    text = json.dumps(res, indent=1)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
