"""The zero-setup demo: ``make demo`` / ``hyperzoo demo``.

Predict every parameter of a ResNet-50 (adapted to 32x32 CIFAR-10 images) in one pass of a GHN-2 checkpoint
shipped in the package (by default the one whose card records the best ResNet-50 accuracy, named in the output),
then classify the embedded CIFAR-10 sample (100 test JPEGs per class) with the predicted network, untrained, next
to the same network at its random initialisation. Batch norm uses batch statistics in both (running statistics are
not predicted), as the papers evaluate.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

__all__ = ["run_demo"]


def run_demo(
    model: str = "resnet50",
    ghn: str | None = None,
    data_root: str | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Predicts ``model``'s parameters with ``ghn`` and prints test accuracy against random initialisation.

    Args:
        model: a registered model (torchvision models are adapted to 32x32 inputs).
        ghn: a shipped GHN name or a checkpoint file (:func:`hyperzoo.ghn.from_pretrained`); None: the shipped GHN
            whose card records the best ResNet-50 top-1 (:func:`hyperzoo.ghn.checkpoint.best_shipped`).
        data_root: another CIFAR-10 source (e.g. ``../shared/data/cifar10-jpeg.tar.gz``) instead of the sample.
        limit: evaluate on this many test images (a fixed random subset).
        seed: seed of the random initialisation and of the image order.

    Returns:
        ``{"model", "params", "predict_seconds", "graph_seconds", "predicted_acc", "random_init_acc", ...}``.
    """
    from hyperzoo.progress import Stages

    say = Stages("hyperzoo demo")  # stage lines on stderr: the demo takes minutes on a slow or loaded machine
    say("loading torch and the GHN")
    import torch

    from hyperzoo.ghn import from_pretrained, read_card
    from hyperzoo.ghn.checkpoint import PRETRAINED, best_shipped, pretrained_path
    from hyperzoo.ghn.evaluate import architectures_from_names, evaluate_predicted, load_eval_data

    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    if ghn is None:
        ghn, scores = best_shipped()
        print(f"hyperzoo demo: using {ghn!r}, the better shipped GHN on ResNet-50 (card: predicted-only top-1 on the "
              "10,000 CIFAR-10 test images: " + ", ".join(
                  f"{n} {'n/a' if v is None else f'{100 * v:.1f}%'}" for n, v in scores.items()) + ")")  # fmt: skip
    gen = from_pretrained(ghn)
    card = read_card(pretrained_path(ghn)) if ghn in PRETRAINED else {}
    trained = card.get("metadata", {}).get("global_step")
    source = data_root or "sample"
    print(f"hyperzoo demo: GHN {ghn!r} ({sum(p.numel() for p in gen.parameters()) / 1e6:.2f}M parameters"
          f"{f', trained {trained} steps' if trained else ''}) predicts {model} for CIFAR-10")  # fmt: skip
    say(f"loading the CIFAR-10 test images ({source})")
    images = load_eval_data(source, limit=limit, seed=seed)
    start = time.perf_counter()
    result = evaluate_predicted(gen, architectures_from_names([model], gen.num_classes), images,
                                baseline_random=True, seed=seed, progress=False, stage=say)[0]  # fmt: skip
    total = time.perf_counter() - start
    print()
    print(f"  model              {model} adapted to 32x32 ({result.params / 1e6:.2f}M parameters, "
          f"{result.predicted_tensors}/{result.tensors} tensors predicted)")  # fmt: skip
    print(f"  prediction         {1000 * result.predict_s:.0f} ms in one GHN pass "
          f"(+{1000 * result.graph_s:.0f} ms to trace the computation graph)")  # fmt: skip
    print(f"  test images        {result.num_images} (CIFAR-10 (JPEG) {'sample' if source == 'sample' else source})")
    b1, b5, p1, p5 = (100 * (v or 0.0) for v in (result.baseline_top1, result.baseline_top5, result.top1, result.top5))
    print(f"  random init        top-1 {b1:5.1f}%   top-5 {b5:5.1f}%")
    print(f"  GHN-predicted      top-1 {p1:5.1f}%   top-5 {p5:5.1f}%   (no training)")
    print(f"  ({total:.1f} s in all)")
    return {
        "model": model,
        "params": result.params,
        "graph_seconds": result.graph_s,
        "predict_seconds": result.predict_s,
        "predicted_acc": result.top1,
        "predicted_acc5": result.top5,
        "random_init_acc": result.baseline_top1,
        "random_init_acc5": result.baseline_top5,
        "num_images": result.num_images,
    }
