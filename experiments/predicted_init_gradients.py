"""Why fine-tuning from GHN-predicted parameters behaves as it does: loss, logit scale, weight norms and gradients.

Run: python experiments/predicted_init_gradients.py resnet20 [--ghn ghn2-cifar10] [--batch 128]
For the default init, the GHN's prediction, and the prediction with default-init norms (``ghn_init_norms: default``),
one training-mode forward/backward on the same CIFAR-10 test batch (the embedded sample, fixed order), printing the
loss, accuracy and logit std, and for chosen layers the weight norm and the relative gradient ``|grad| / |w|``
(the step SGD takes on a weight, as a fraction of the weight, is ``lr`` times that).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from hyperzoo.data import CIFAR10DataModule
from hyperzoo.lightning.classifier import predicted_init
from hyperzoo.nets import create_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="resnet20 or a torchvision ResNet (adapted to 32x32)")
    p.add_argument("--ghn", default="ghn2-cifar10")
    p.add_argument("--batch", type=int, default=128)
    args = p.parse_args()
    kwargs = {"adapt_cifar": True} if args.model in ("resnet18", "resnet34", "resnet50", "resnet101") else {}
    dm = CIFAR10DataModule(root="sample", batch_size=args.batch, eval_batch_size=args.batch)
    dm.setup("fit")
    x, y = dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)
    for mode in ("default", "predicted", "default norms"):
        torch.manual_seed(0)
        net = create_model(args.model, num_classes=10, **kwargs)
        if mode != "default":
            predicted_init(net, args.ghn, "default" if mode == "default norms" else "predicted")
        net.train()
        out = net(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        acc = float((out.argmax(1) == y).float().mean())
        print(f"{mode:14s} loss {loss.item():.3f}  top-1 {acc:.3f}  logit std {out.std().item():.2f}")
        params = dict(net.named_parameters())
        convs = [n for n, q in params.items() if q.dim() == 4]
        for name in (convs[0], convs[len(convs) // 2], convs[-1], "fc.weight"):
            w = params[name]
            rel = float(w.grad.norm() / w.detach().norm())
            print(f"    {name:28s} |w| {float(w.detach().norm()):7.3f}   |grad|/|w| {rel:8.4f}")


if __name__ == "__main__":
    main()
