"""Exports a trained GHN (a Lightning ``.ckpt`` of GHNModule) into the package as a shipped checkpoint + model card.

Run: python experiments/ship_ghn.py CKPT [--name ghn2-cifar10] [--metrics experiments/logs/ghn2_eval.json]
       [--command "..."] [--device "..."] [--fp16]
Writes hyperzoo/pretrained/<file>.safetensors and .json (the card: training command, steps, data, device, metrics).
With --fp16 the weights are stored in float16 (half the file) after checking that the parameters the stored GHN
predicts for ResNet-18/50 and a DeepNets-1M network differ from the float32 GHN's by at most --tolerance relative to
each tensor's largest magnitude; the measured difference goes into the card.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from hyperzoo.bench import cpu_name
from hyperzoo.ghn import load_ghn, save_ghn
from hyperzoo.ghn.checkpoint import PRETRAINED

PACKAGE = Path(__file__).resolve().parents[1] / "hyperzoo" / "pretrained"


def fp16_change(ghn: torch.nn.Module) -> float:
    """Largest change, relative to each tensor's max magnitude, of predictions after a float16 round trip."""
    import copy

    from hyperzoo.nets import create_model

    half = copy.deepcopy(ghn)
    with torch.no_grad():
        for t in half.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())
    worst = 0.0
    for name, kw in (("resnet18", {"adapt_cifar": True}), ("resnet50", {"adapt_cifar": True}), ("resnet20", {})):
        a = ghn(create_model(name, num_classes=10, **kw)).state_dict()
        b = half(create_model(name, num_classes=10, **kw)).state_dict()
        for k, v in a.items():
            if v.is_floating_point() and v.numel():
                scale = float(v.abs().max()) or 1.0
                worst = max(worst, float((v - b[k]).abs().max()) / scale)
    print(f"float16 storage: predictions change by at most {worst:.2e} of each tensor's largest magnitude")
    return worst


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ckpt", help="Lightning checkpoint of the training run (e.g. <run>/checkpoints/last.ckpt)")
    p.add_argument("--name", default="ghn2-cifar10", choices=sorted(PRETRAINED), help="shipped name")
    p.add_argument("--metrics", help="JSON of evaluation results to put in the card")
    p.add_argument("--command", default="experiments/run_ghn2_cpu.sh", help="the training command, for the card")
    p.add_argument("--device", default=None, help="training device for the card (default: this CPU)")
    p.add_argument("--data", default="CIFAR-10 (JPEG), 50,000 training images; graphs: DeepNets-1M-style train split")
    p.add_argument("--global-step", type=int, default=None,
                   help="training steps for the card when the checkpoint's own count is not the total (a run that "
                   "started from another GHN's weights)")  # fmt: skip
    p.add_argument("--fp16", action="store_true", help="store float16 weights if predictions stay within --tolerance")
    p.add_argument("--tolerance", type=float, default=1e-3, help="largest relative prediction change for --fp16")
    args = p.parse_args()
    ckpt = torch.load(args.ckpt, map_location="cpu", weights_only=True)
    ghn = load_ghn(args.ckpt)
    hparams = ckpt.get("hyper_parameters", {})
    card = {
        "variant": hparams.get("ghn"),
        "training_command": args.command,
        "global_step": args.global_step if args.global_step is not None else int(ckpt.get("global_step", 0)),
        "epoch": int(ckpt.get("epoch", 0)),
        "skipped_steps": int(ckpt.get("skipped_steps", 0)),
        "data": args.data,
        "device": args.device or f"CPU: {cpu_name()}",
        "hparams": hparams,
        "parameters": "predicted only (no fine-tuning) in every reported metric",
    }
    if args.metrics:
        card["metrics"] = json.loads(Path(args.metrics).read_text())
    dtype = None
    if args.fp16:
        card["fp16_max_relative_change"] = fp16_change(ghn)
        if card["fp16_max_relative_change"] > args.tolerance:
            raise SystemExit(
                f"float16 storage changes predictions by {card['fp16_max_relative_change']:.2e} > "
                f"--tolerance {args.tolerance}; ship float32 (drop --fp16)"
            )
        dtype = torch.float16
    out = save_ghn(ghn, PACKAGE / PRETRAINED[args.name], storage_dtype=dtype, **card)
    print(f"wrote {out} and {out.with_suffix('.json')} (step {card['global_step']})")


if __name__ == "__main__":
    main()
