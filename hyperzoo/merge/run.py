"""Running merges on CIFAR-10 zoo models: data batches, evaluation per label space, the ``merge`` command.

Statistics (matching, least squares, BN reset) use training images without augmentation; accuracy is measured on
the test split. For models with different label spaces (zoo entries trained on label subsets) the merged model's
outputs are ``[A's classes | B's classes]``: *joint* accuracy takes the argmax over all of them (task-agnostic),
*per-half* accuracy the argmax over the matching head on that head's test images (task-aware).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hyperzoo.data.fixed_batches import test_batches, train_batches
from hyperzoo.errors import ConfigError

__all__ = ["accuracies", "data_batches", "load_merged", "predict", "rebuild_merged", "run_merge", "test_data"]


# the fixed in-memory batches live in hyperzoo.data (stitching uses them too); the old names stay importable here
data_batches = train_batches
test_data = test_batches


@torch.no_grad()
def predict(model: nn.Module, data: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Logits and labels over ``data``."""
    model.eval()
    out = [(model(x), y) for x, y in data]
    return torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out])


def accuracies(
    logits: Tensor,
    labels: Tensor,
    classes_a: list[int],
    classes_b: list[int] | None = None,
) -> dict[str, float]:
    """Accuracy for one label space (``classes_b`` None) or both heads side by side (joint and per half)."""
    if classes_b is None:
        lut = torch.tensor(classes_a)
        mask = torch.isin(labels, lut)
        return {"acc": float((lut[logits[mask].argmax(1)] == labels[mask]).float().mean())}
    na = len(classes_a)
    lut = torch.tensor(classes_a + classes_b)
    res = {"joint": float((lut[logits.argmax(1)] == labels).float().mean())}
    for key, cls, sl in (("half_a", classes_a, slice(0, na)), ("half_b", classes_b, slice(na, None))):
        t = torch.tensor(cls)
        mask = torch.isin(labels, t)
        res[key] = float((t[logits[mask][:, sl].argmax(1)] == labels[mask]).float().mean())
    return res


def _meta_classes(meta: dict[str, Any]) -> list[int]:
    return list(meta.get("classes") or range(int(meta.get("num_classes", 10))))


def run_merge(args: argparse.Namespace) -> dict[str, Any]:
    """The ``hyperzoo merge`` command: merge, evaluate, store the merged model as a zoo entry in ``--out``."""
    from hyperzoo.merge.baselines import merge_models
    from hyperzoo.progress import Stages
    from hyperzoo.zoo.store import check_new_entry, load_meta, load_model, save_model

    name = args.name or f"{Path(args.a).stem}+{Path(args.b).stem}-{args.method}-w{args.width:g}"
    overwrite = bool(getattr(args, "overwrite", False))
    check_new_entry(name, args.out, overwrite)  # before the work, not after it
    meta_a, meta_b = load_meta(*_name_root(args.a, args.zoo)), load_meta(*_name_root(args.b, args.zoo))
    if (meta_a["model"], meta_a.get("model_kwargs")) != (meta_b["model"], meta_b.get("model_kwargs")):
        raise ConfigError(
            f"{args.a} is {meta_a['model']} {meta_a.get('model_kwargs')} but {args.b} is {meta_b['model']} "
            f"{meta_b.get('model_kwargs')}; merging needs two models of the same architecture and width"
        )
    ca, cb = _meta_classes(meta_a), _meta_classes(meta_b)
    labels = args.labels if args.labels != "auto" else ("same" if ca == cb else "different")
    if labels == "same" and ca != cb:
        raise ConfigError(f"{args.a} and {args.b} were trained on different classes; use --labels different")
    say = Stages("hyperzoo merge")  # one line per stage: matching and evaluation take minutes on CPU
    say(f"loading {args.a} and {args.b}")
    a, b = load_model(*_name_root(args.a, args.zoo)), load_model(*_name_root(args.b, args.zoo))
    say(f"reading {args.batches} batches of {args.batch_size} images from {args.data_root}")
    batches = data_batches(args.data_root, args.batch_size, args.batches)
    say(f"merging ({args.method}, width {args.width:g})")
    result = merge_models(
        a, b, args.method, args.width, batches, labels, args.batches, args.batches, args.batches, args.ridge
    )
    say("evaluating the merged model")
    data = test_data(args.data_root, args.test_limit)
    acc = accuracies(*predict(result.model, data), ca, cb if labels == "different" else None)
    info = {**result.info, **acc}
    meta = {
        "model": meta_a["model"],
        "model_kwargs": meta_a.get("model_kwargs", {}),
        "num_classes": len(ca) + (len(cb) if labels == "different" else 0),
        "classes": ca + (cb if labels == "different" else []),
        "merged_from": [meta_a["name"], meta_b["name"]],
        "source_num_classes": len(ca),
        "merge": info,
        # the merged network's real widths (per permutation group of the base model's spec): `load_model`
        # rebuilds the base model, then widens it to these (the registered model alone would not fit the weights)
        "leaf_widths": {str(k): v for k, v in result.plan.widths.items()},
        "channels": _channels(result.model),
        "test_acc": acc.get("acc", acc.get("joint")),
        "macs": int(info["macs"]),
        "params": int(info.get("params", sum(p.numel() for p in result.model.parameters()))),
        "loader": "hyperzoo.zoo.load_model (rebuilds the base model at leaf_widths)",
    }
    path = save_model(name, result.model, meta, args.out, overwrite=overwrite)
    print(json.dumps({"out": str(path), **info}, indent=1, default=float))
    return info


def _channels(model: nn.Module) -> dict[str, int]:
    """Output channels/features of every conv and linear layer (a readable record of the real widths)."""
    return {
        name: int(m.weight.shape[0])
        for name, m in model.named_modules()
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) and isinstance(m.weight, Tensor)
    }


def rebuild_merged(meta: dict[str, Any], state: dict[str, Tensor], where: str = "merged model") -> nn.Module:
    """The network of a merged zoo entry: its base model widened to the recorded ``leaf_widths``, with ``state``.

    Raises:
        DataError: the weights do not fit the recorded widths.
    """
    from hyperzoo.errors import DataError
    from hyperzoo.merge.permute import load_state
    from hyperzoo.merge.spec import derive_spec
    from hyperzoo.nets import create_model

    n = int(meta.get("source_num_classes", meta.get("num_classes", 10)))
    template = create_model(meta["model"], num_classes=n, **meta.get("model_kwargs", {}))
    spec = derive_spec(template)
    widths = {int(k): int(v) for k, v in meta.get("leaf_widths", {}).items()}
    own = template.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise DataError(f"{where}: weights lack {missing[:3]} of {meta['model']}; re-create the merged entry")
    model = load_state(template, state, spec, widths)
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(spec.input_shape))
    except RuntimeError as e:
        raise DataError(
            f"{where}: the weights do not fit {meta['model']} at the recorded widths {widths} ({e}); re-create "
            "the merged entry with `hyperzoo merge ... --overwrite`"
        ) from None
    return model


def load_merged(name: str, root: str | None = None) -> nn.Module:
    """Loads a merged model written by ``hyperzoo merge`` (same as :func:`hyperzoo.zoo.load_model`)."""
    from hyperzoo.zoo.store import load_model

    name, root = _name_root(name, root)
    return load_model(name, root)


def _name_root(name: str, zoo: str | None) -> tuple[str, str | None]:
    p = Path(name)
    if p.suffix in (".safetensors", ".json"):
        return p.stem, str(p.parent)
    return name, zoo
