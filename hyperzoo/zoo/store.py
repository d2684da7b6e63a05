"""A local model zoo: trained networks stored as safetensors + JSON, listed and loaded by name.

Layout: ``<zoo>/<name>.safetensors`` (the state dict) and ``<zoo>/<name>.json`` (how to rebuild it: registered
model name and keyword arguments, number of classes, the label subset it was trained on, training recipe, test
accuracy, MACs, parameter count and the SHA-256 of the weights). The zoo directory is ``$HYPERZOO_ZOO`` or
``./zoo`` (ignored by git).

Integrity: both files are written atomically; the JSON records the SHA-256 of the weights file and
(``hyperzoo-zoo/2``) a ``checksum`` of its own content, both verified on every load, so a truncated or corrupt entry
is an error naming it instead of a model with wrong weights. Weights with NaN or infinite values are refused.
An existing entry is replaced only with ``overwrite=True``. Merged models (``hyperzoo merge``) are their base model
at other widths (marked by ``leaf_widths``, the widths per permutation group); :func:`load_model` builds the base
model and resizes it to the stored tensors (:mod:`hyperzoo.nets.resize`), with no help from the merging code.

Models from elsewhere enter the zoo from local weight files (torchvision or timm state dicts, ``.safetensors`` or
``.pth`` read with ``weights_only=True``); nothing is downloaded.
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
from hyperzoo.io import atomic_write, check_finite, ensure_parent, write_text_atomic

__all__ = [
    "ZOO_FORMAT",
    "add_external",
    "check_new_entry",
    "entry_path",
    "list_zoo",
    "load_meta",
    "load_model",
    "save_model",
    "zoo_dir",
]

ZOO_FORMAT = "hyperzoo-zoo/2"


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


def _meta_checksum(meta: dict[str, Any]) -> str:
    """SHA-256 of the metadata's canonical JSON, without its own ``checksum`` key."""
    body = {k: v for k, v in meta.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def check_new_entry(name: str, root: str | os.PathLike | None = None, overwrite: bool = False) -> Path:
    """The weights path of a new entry ``name``; refuses an existing entry unless ``overwrite``.

    Raises:
        ConfigError: the entry exists (the message names it and ``overwrite=True``), or a bad name or zoo folder.
    """
    path = entry_path(name, root)
    if not overwrite and (path.exists() or path.with_suffix(".json").exists()):
        raise ConfigError(
            f"zoo entry {name!r} already exists in {path.parent}; pass overwrite=True to replace it, or choose "
            "another name"
        )
    ensure_parent(path, "zoo")
    return path


def save_model(
    name: str,
    model: nn.Module,
    meta: dict[str, Any],
    root: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Stores ``model``'s state dict and ``meta`` (must hold ``model`` and ``model_kwargs``) as zoo entry ``name``.

    Both files are written atomically (weights first, then the JSON naming their SHA-256).

    Raises:
        ConfigError: the entry exists and ``overwrite`` is false; metadata without ``model``.
        DataError: weights with NaN or infinite values.
    """
    if "model" not in meta:
        raise ConfigError("zoo metadata needs 'model' (the registered model name) to rebuild the network")
    path = check_new_entry(name, root, overwrite)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    check_finite(state, f"zoo entry {name!r}", "tensors", "the model diverged; it is not stored")
    with atomic_write(path) as tmp:
        save_file(state, str(tmp))
    meta = {**meta, "name": name, "sha256": _sha256(path), "format": ZOO_FORMAT}
    meta["checksum"] = _meta_checksum(meta)
    write_text_atomic(path.with_suffix(".json"), json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
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
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(
            f"zoo entry {name!r}: {path} is not valid JSON ({e}); the entry is corrupt: restore it from a backup, "
            f"or delete {path.with_suffix('')}.* and train or add it again"
        ) from None
    if not isinstance(meta, dict) or "model" not in meta:
        raise DataError(f"zoo entry {name!r}: {path} is not zoo metadata (no 'model'); restore or re-create it")
    if "checksum" in meta and meta["checksum"] != _meta_checksum(meta):
        raise DataError(
            f"zoo entry {name!r}: {path} does not match its recorded checksum (edited or corrupt); restore it, or "
            f"delete {path.with_suffix('')}.* and train or add it again"
        )
    return meta


def _read_weights(name: str, path: Path, meta: dict[str, Any], verify: bool) -> dict[str, torch.Tensor]:
    """The entry's state dict, checked against its recorded SHA-256 (``verify``) and for finite values."""
    redo = f"restore it, or delete {path.with_suffix('')}.* and train or add it again"
    if not path.is_file():
        raise DataError(f"zoo entry {name!r}: the weights file {path} is missing; {redo}")
    if verify and meta.get("sha256") and _sha256(path) != meta["sha256"]:
        raise DataError(
            f"zoo entry {name!r}: {path} does not match its recorded SHA-256 (truncated or corrupt); {redo}"
        )
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types (SafetensorError, HeaderTooLarge, ...)
        raise DataError(f"zoo entry {name!r}: {path} is not a readable safetensors file ({e}); {redo}") from None
    check_finite(state, f"zoo entry {name!r} ({path})", "tensors", redo)
    return state


def load_model(name: str, root: str | os.PathLike | None = None, verify: bool = True) -> nn.Module:
    """Rebuilds zoo entry ``name`` (a registered model with its stored weights), in eval mode.

    Merged entries (``leaf_widths`` in their metadata, written by ``hyperzoo merge``) are their base model at other
    widths: it is built, then resized to the stored tensors (:func:`hyperzoo.nets.resize.resize_to_state`).

    Args:
        name: entry name (``hyperzoo zoo list``) or the path of an entry's ``.safetensors``/``.json`` file.
        root: zoo directory.
        verify: check the weights' SHA-256 against the metadata (default; reading is ~1 GB/s).

    Raises:
        UnknownNameError: no such entry.
        DataError: a missing, truncated or corrupt file, weights with NaN or infinite values, or weights that do
            not fit the recorded architecture; the message names the entry.
    """
    from hyperzoo.nets import create_model

    p = Path(name)
    if p.suffix in (".safetensors", ".json") and p.exists():
        root, name = p.parent, p.stem
    meta = load_meta(name, root)
    path = entry_path(name, root)
    state = _read_weights(name, path, meta, verify)
    if meta.get("leaf_widths"):
        return _rebuild_resized(name, path, meta, state).eval()
    kwargs = {"num_classes": meta.get("num_classes", 10), **meta.get("model_kwargs", {})}
    if meta.get("source") == "timm":
        try:
            import timm  # type: ignore[import-not-found]
        except ImportError:
            raise ConfigError(f"zoo entry {name!r} is a timm model; install timm to load it") from None
        model = timm.create_model(meta["model"], pretrained=False, **kwargs)
    else:
        model = create_model(meta["model"], **kwargs)
    own = model.state_dict()
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing, unexpected = model.load_state_dict({k: v for k, v in state.items() if k not in wrong}, strict=False)
    if missing or unexpected or wrong:
        raise DataError(
            f"zoo entry {name!r} ({path}) does not fit {meta['model']} {meta.get('model_kwargs', {})}: "
            f"{len(wrong)} tensors of other shapes (e.g. {wrong[:3]}), missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}; its metadata does not describe its weights: re-create the entry"
        )
    return model.eval()


def _rebuild_resized(name: str, path: Path, meta: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    """A merged entry's network: its base model (with the label space of a source model), resized to ``state``.

    The stored tensors carry every width; ``leaf_widths`` (the widths per permutation group of the merge) only
    marks the entry as resized, so entries of every format load the same way.
    """
    from hyperzoo.nets import create_model, example_input, resize_to_state

    n = int(meta.get("source_num_classes", meta.get("num_classes", 10)))
    model = create_model(meta["model"], num_classes=n, **meta.get("model_kwargs", {}))
    where = f"zoo entry {name!r} ({path}, {meta['model']} {meta.get('model_kwargs', {})} at other widths)"
    return resize_to_state(model, state, where, example=example_input(model, batch=1))


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
    overwrite: bool = False,
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
        overwrite: replace an existing entry of that name (else it is an error).
        **model_kwargs: further arguments of the model entrypoint.
    """
    from hyperzoo.nets import create_model, load_state_dict_file

    check_new_entry(name, root, overwrite)
    state = load_state_dict_file(Path(weights))
    check_finite(state, f"weights {weights}", "tensors", "they cannot enter the zoo")
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
        return save_model(name, net, meta, root, overwrite=overwrite)
