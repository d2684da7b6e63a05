"""Running merges on CIFAR-10 zoo models: data batches, evaluation per label space, the ``merge`` command.

Statistics (matching, least squares, BN reset) use training images without augmentation; accuracy is measured on
the test split. For models with different label spaces (zoo entries trained on label subsets) the merged model's
outputs are ``[A's classes | B's classes]``: *joint* accuracy takes the argmax over all of them (task-agnostic),
*per-half* accuracy the argmax over the matching head on that head's test images (task-aware).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hyperzoo.data.fixed_batches import test_batches, train_batches
from hyperzoo.errors import ConfigError

__all__ = [
    "MergedEntry",
    "accuracies",
    "data_batches",
    "load_merged",
    "merge_entries",
    "predict",
    "run_merge",
    "test_data",
]


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


def _meta_classes(meta: Mapping[str, Any]) -> list[int]:
    return list(meta.get("classes") or range(int(meta.get("num_classes", 10))))


@dataclass(frozen=True)
class MergedEntry:
    """A merged model stored as a zoo entry by :func:`merge_entries`.

    Attributes:
        name: the entry's name.
        path: its weights file.
        info: how it was made and how it scores: the keys of :attr:`MergeResult.info
            <hyperzoo.merge.baselines.MergeResult>` (method-dependent) plus the accuracies (``acc``, or ``joint``,
            ``half_a`` and ``half_b`` for two label spaces).
    """

    name: str
    path: Path
    info: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """``{"out": path, **info}``, what ``hyperzoo merge`` prints."""
        return {"out": str(self.path), **self.info}


def _check_pair(a: str, b: str, meta_a: Mapping[str, Any], meta_b: Mapping[str, Any], labels: str) -> str:
    """The label mode (``same``/``different``; ``auto`` decided from the classes) once A and B can be merged."""
    if (meta_a["model"], meta_a.get("model_kwargs")) != (meta_b["model"], meta_b.get("model_kwargs")):
        raise ConfigError(
            f"{a} is {meta_a['model']} {meta_a.get('model_kwargs')} but {b} is {meta_b['model']} "
            f"{meta_b.get('model_kwargs')}; merging needs two models of the same architecture and width"
        )
    ca, cb = _meta_classes(meta_a), _meta_classes(meta_b)
    mode = labels if labels != "auto" else ("same" if ca == cb else "different")
    if mode == "same" and ca != cb:
        raise ConfigError(f"{a} and {b} were trained on different classes; use labels='different'")
    return mode


def _merged_meta(
    meta_a: Mapping[str, Any], meta_b: Mapping[str, Any], labels: str, result: Any, acc: Mapping[str, float]
) -> dict[str, Any]:
    """The zoo metadata of the merged entry."""
    ca, cb = _meta_classes(meta_a), _meta_classes(meta_b)
    info = {**result.info, **acc}
    return {
        "model": meta_a["model"],
        "model_kwargs": meta_a.get("model_kwargs", {}),
        "num_classes": len(ca) + (len(cb) if labels == "different" else 0),
        "classes": ca + (cb if labels == "different" else []),
        "merged_from": [meta_a["name"], meta_b["name"]],
        "source_num_classes": len(ca),
        "merge": info,
        # the merged network's widths per permutation group of the base model's spec (a record of the merge; it
        # marks the entry as resized: `load_model` builds the base model and resizes it to the stored tensors)
        "leaf_widths": {str(k): v for k, v in result.plan.widths.items()},
        "channels": _channels(result.model),
        "test_acc": acc.get("acc", acc.get("joint")),
        "macs": int(info["macs"]),
        "params": int(info.get("params", sum(p.numel() for p in result.model.parameters()))),
        "loader": "hyperzoo.zoo.load_model (builds the base model, resized to the stored tensors)",
    }


def merge_entries(
    a: str,
    b: str,
    method: str = "pleas",
    width: float = 1.0,
    data_root: str = "sample",
    labels: str = "auto",
    batches: int = 20,
    batch_size: int = 128,
    ridge: float = 1e-3,
    test_limit: int | None = None,
    zoo: str | None = None,
    out: str = "merged",
    name: str | None = None,
    overwrite: bool = False,
    stage: Callable[[str], None] | None = None,
) -> MergedEntry:
    """Merges zoo entries ``a`` and ``b``, evaluates the merged model and stores it as a zoo entry in ``out``.

    Args:
        a: zoo entry A (a name in ``zoo``, or the path of a zoo ``.safetensors``/``.json`` file).
        b: zoo entry B, likewise.
        method: ``average``, ``rebasin``, ``pleas`` or ``pleas_weight``.
        width: merged width factor in [1, 2] (PLeaS).
        data_root: CIFAR-10 root of the statistics and the test images (``"sample"`` works).
        labels: ``same``, ``different`` (heads side by side) or ``auto`` (from the entries' classes).
        batches: training batches for matching, least squares and BN reset.
        batch_size: images per batch.
        ridge: ridge of the least squares.
        test_limit: evaluate on this many test images (None: all).
        zoo: zoo folder of A and B.
        out: zoo folder of the merged entry.
        name: its entry name (default derived from A, B, method and width).
        overwrite: replace an existing entry of that name.
        stage: called with a line at each stage (loading, merging, evaluating).

    Raises:
        ConfigError: an existing entry (without ``overwrite``), different architectures, or ``labels='same'``
            for entries trained on different classes (and what :func:`~hyperzoo.merge.baselines.merge_models`
            refuses).
    """
    from hyperzoo.merge.baselines import merge_models
    from hyperzoo.zoo.store import check_new_entry, load_meta, load_model, save_model

    say = stage or (lambda _: None)
    name = name or f"{Path(a).stem}+{Path(b).stem}-{method}-w{width:g}"
    check_new_entry(name, out, overwrite)  # before the work, not after it
    meta_a, meta_b = load_meta(*_name_root(a, zoo)), load_meta(*_name_root(b, zoo))
    labels = _check_pair(a, b, meta_a, meta_b, labels)
    say(f"loading {a} and {b}")
    model_a, model_b = load_model(*_name_root(a, zoo)), load_model(*_name_root(b, zoo))
    say(f"reading {batches} batches of {batch_size} images from {data_root}")
    train = data_batches(data_root, batch_size, batches)
    say(f"merging ({method}, width {width:g})")
    result = merge_models(model_a, model_b, method, width, train, labels, batches, batches, batches, ridge)
    say("evaluating the merged model")
    ca, cb = _meta_classes(meta_a), _meta_classes(meta_b)
    acc = accuracies(
        *predict(result.model, test_data(data_root, test_limit)), ca, cb if labels == "different" else None
    )
    meta = _merged_meta(meta_a, meta_b, labels, result, acc)
    path = save_model(name, result.model, meta, out, overwrite=overwrite)
    return MergedEntry(name, Path(path), meta["merge"])


def run_merge(args: argparse.Namespace) -> dict[str, Any]:
    """The old entry point of ``hyperzoo merge`` (kept for callers): :func:`merge_entries` with the parsed flags.

    Prints the merged entry as JSON, as the command does, and returns its ``info``.
    """
    from hyperzoo.progress import Stages

    entry = merge_entries(
        args.a, args.b, method=args.method, width=args.width, data_root=args.data_root, labels=args.labels,
        batches=args.batches, batch_size=args.batch_size, ridge=args.ridge, test_limit=args.test_limit,
        zoo=args.zoo, out=args.out, name=args.name, overwrite=bool(getattr(args, "overwrite", False)),
        stage=Stages("hyperzoo merge"),
    )  # fmt: skip
    print(json.dumps(entry.to_json(), indent=1, default=float))
    return dict(entry.info)


def _channels(model: nn.Module) -> dict[str, int]:
    """Output channels/features of every conv and linear layer (a readable record of the real widths)."""
    return {
        name: int(m.weight.shape[0])
        for name, m in model.named_modules()
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) and isinstance(m.weight, Tensor)
    }


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
