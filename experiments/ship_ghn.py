"""Exports a trained GHN (a Lightning ``.ckpt`` of GHNModule) into the package as a shipped checkpoint + model card.

Run: python experiments/ship_ghn.py CKPT [--name ghn2-cifar10] [--metrics experiments/logs/ghn2_eval.json]
       [--command "..."] [--device "..."]
Writes hyperzoo/pretrained/<file>.safetensors and .json (the card: training command, steps, data, device, metrics).
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ckpt", help="Lightning checkpoint of the training run (e.g. <run>/checkpoints/last.ckpt)")
    p.add_argument("--name", default="ghn2-cifar10", choices=sorted(PRETRAINED), help="shipped name")
    p.add_argument("--metrics", help="JSON of evaluation results to put in the card")
    p.add_argument("--command", default="experiments/run_ghn2_cpu.sh", help="the training command, for the card")
    p.add_argument("--device", default=None, help="training device for the card (default: this CPU)")
    p.add_argument("--data", default="CIFAR-10 (JPEG), 50,000 training images; graphs: DeepNets-1M-style train split")
    args = p.parse_args()
    ckpt = torch.load(args.ckpt, map_location="cpu", weights_only=True)
    ghn = load_ghn(args.ckpt)
    hparams = ckpt.get("hyper_parameters", {})
    card = {
        "variant": hparams.get("ghn"),
        "training_command": args.command,
        "global_step": int(ckpt.get("global_step", 0)),
        "epoch": int(ckpt.get("epoch", 0)),
        "skipped_steps": int(ckpt.get("skipped_steps", 0)),
        "data": args.data,
        "device": args.device or f"CPU: {cpu_name()}",
        "hparams": hparams,
        "parameters": "predicted only (no fine-tuning) in every reported metric",
    }
    if args.metrics:
        card["metrics"] = json.loads(Path(args.metrics).read_text())
    out = save_ghn(ghn, PACKAGE / PRETRAINED[args.name], **card)
    print(f"wrote {out} and {out.with_suffix('.json')} (step {card['global_step']})")


if __name__ == "__main__":
    main()
