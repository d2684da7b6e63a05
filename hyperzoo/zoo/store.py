"""A local model zoo: trained networks stored as safetensors + JSON, listed and loaded by name.

Layout: ``<zoo>/<name>.safetensors`` (the state dict) and ``<zoo>/<name>.json`` (how to rebuild it: registered
model name and keyword arguments, number of classes, the label subset it was trained on, training recipe, test
accuracy, MACs, parameter count and the SHA-256 of the weights). The zoo directory is ``$HYPERZOO_ZOO`` or
``./zoo`` (ignored by git). Models from elsewhere enter the zoo from local weight files (torchvision or timm
state dicts, ``.safetensors`` or ``.pth`` read with ``weights_only=True``); nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from hyperzoo.errors import ConfigError, DataError, UnknownNameError

__all__ = ["add_external", "entry_path", "list_zoo", "load_meta", "load_model", "save_model", "zoo_dir"]


def zoo_dir(root: str | os.PathLike | None = None) -> Path:
    """The zoo directory: ``root``, else ``$HYPERZOO_ZOO``, else ``./zoo``."""
    return Path(root or os.environ.get("HYPERZOO_ZOO") or "zoo")


def entry_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """Path of the weights file of zoo entry ``name`` (which may not exist yet)."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"zoo entry names are plain file names (letters, digits, '-', '_'), got {name!r}")
    return zoo_dir(root) / f"{name}.safetensors"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(name: str, model: nn.Module, meta: dict[str, Any], root: str | os.PathLike | None = None) -> Path:
    """Stores ``model``'s state dict and ``meta`` (must hold ``model`` and ``model_kwargs``) as zoo entry ``name``."""
    if "model" not in meta:
        raise ConfigError("zoo metadata needs 'model' (the registered model name) to rebuild the network")
    path = entry_path(name, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, path)
    meta = {**meta, "name": name, "sha256": _sha256(path), "format": "hyperzoo-zoo/1"}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def load_meta(name: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The JSON metadata of zoo entry ``name``."""
    path = entry_path(name, root).with_suffix(".json")
    if not path.is_file():
        known = ", ".join(list_zoo(root)) or "none"
        raise UnknownNameError(
            f"no zoo entry {name!r} in {zoo_dir(root)} (entries: {known}); train it with `hyperzoo zoo train` or "
            "set $HYPERZOO_ZOO"
        )
    return json.loads(path.read_text())


def load_model(name: str, root: str | os.PathLike | None = None, verify: bool = False) -> nn.Module:
    """Rebuilds zoo entry ``name`` (a registered model with its stored weights), in eval mode.

    Args:
        name: entry name (``hyperzoo zoo list``) or the path of an entry's ``.safetensors``/``.json`` file.
        root: zoo directory.
        verify: check the weights' SHA-256 against the metadata.
    """
    from hyperzoo.nets import create_model

    p = Path(name)
    if p.suffix in (".safetensors", ".json") and p.exists():
        root, name = p.parent, p.stem
    meta = load_meta(name, root)
    path = entry_path(name, root)
    if verify and _sha256(path) != meta.get("sha256"):
        raise DataError(f"zoo entry {path} does not match its recorded SHA-256; retrain or restore it")
    kwargs = {"num_classes": meta.get("num_classes", 10), **meta.get("model_kwargs", {})}
    if meta.get("source") == "timm":
        try:
            import timm  # type: ignore[import-not-found]
        except ImportError:
            raise ConfigError(f"zoo entry {name!r} is a timm model; install timm to load it") from None
        model = timm.create_model(meta["model"], pretrained=False, **kwargs)
    else:
        model = create_model(meta["model"], **kwargs)
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise DataError(
            f"zoo entry {path} does not fit {meta['model']} {meta.get('model_kwargs', {})}: missing "
            f"{missing[:3]}, unexpected {unexpected[:3]}"
        )
    return model.eval()


def list_zoo(root: str | os.PathLike | None = None) -> list[str]:
    """Names of all entries in the zoo directory."""
    d = zoo_dir(root)
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.json") if p.with_suffix(".safetensors").is_file())


def add_external(
    name: str,
    model: str,
    weights: str | os.PathLike,
    num_classes: int = 1000,
    source: str = "torchvision",
    root: str | os.PathLike | None = None,
    **model_kwargs: Any,
) -> Path:
    """Adds a model from a local weights file to the zoo (converted to safetensors).

    Args:
        name: zoo entry name.
        model: registered model name (torchvision names are registered) or, with ``source="timm"``, a timm name.
        weights: local ``.safetensors`` or ``.pth`` state dict.
        num_classes: classifier outputs of the weights.
        source: ``torchvision`` (hyperzoo's registry) or ``timm`` (needs the optional timm package).
        root: zoo directory.
        **model_kwargs: further arguments of the model entrypoint.
    """
    from hyperzoo.nets import create_model, load_state_dict_file

    state = load_state_dict_file(Path(weights))
    if source == "timm":
        try:
            import timm  # type: ignore[import-not-found]
        except ImportError:
            raise ConfigError("source='timm' needs the timm package (`pip install timm`)") from None
        net = timm.create_model(model, pretrained=False, num_classes=num_classes, **model_kwargs)
    elif source == "torchvision":
        net = create_model(model, num_classes=num_classes, **model_kwargs)
    else:
        raise ConfigError(f"source must be 'torchvision' or 'timm', got {source!r}")
    own = net.state_dict()
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing, unexpected = net.load_state_dict({k: v for k, v in state.items() if k not in wrong}, strict=False)
    if missing or unexpected or wrong:
        raise DataError(
            f"weights {weights} do not fit {model}: {len(wrong)} with other shapes (e.g. {wrong[:3]}), "
            f"{len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )
    meta = {
        "model": model,
        "model_kwargs": model_kwargs,
        "num_classes": num_classes,
        "source": source,
        "weights_file": Path(weights).name,
        "params": sum(p.numel() for p in net.parameters()),
    }
    if source == "timm":
        meta["note"] = "timm model: load with timm.create_model and the stored state dict"
    with torch.no_grad():
        return save_model(name, net, meta, root)
