"""Loading checkpoints of the reference GHN-2 (``facebookresearch/ppuda``: ``ghn2_cifar10.pt``, ``ghn2_imagenet.pt``).

The reference saves ``{'state_dict', 'epoch', 'config'}`` (sometimes with an optimizer state) where ``config`` holds
the ``GHN`` constructor arguments. Its state-dict keys are mapped onto :class:`GHN2`'s module names by
:data:`REFERENCE_KEY_MAP` (prefix rewrites).
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from hyperzoo.errors import ConfigError, DataError
from hyperzoo.ghn.ghn import GHN2
from hyperzoo.ghn.state import NONFINITE_HINT, load_fitting_state
from hyperzoo.io import check_finite

__all__ = [
    "HEADLINE_METRIC",
    "PRETRAINED",
    "REFERENCE_KEY_MAP",
    "best_shipped",
    "headline_top1",
    "load_ghn",
    "load_reference_checkpoint",
    "map_reference_state_dict",
    "pretrained_path",
    "read_card",
    "save_ghn",
]

#: reference key prefix -> hyperzoo key prefix
REFERENCE_KEY_MAP: dict[str, str] = {
    "ln.": "node_norm.",
    "embed.": "op_embed.",
    "shape_enc.embed_channel.": "shape_encoder.channel_embed.",
    "shape_enc.embed_spatial.": "shape_encoder.spatial_embed.",
    "gnn.mlp.fc.": "gnn.message.",
    "gnn.mlp_ve.fc.": "gnn.virtual_message.",
    "gnn.gru.": "gnn.gru.",
    "gnn.fc.": "gnn.fc.",  # the MLP baseline's per-node MLP
    "decoder.fc.0.": "decoder.fc.",
    "decoder.conv.0.": "decoder.conv1.",
    "decoder.conv.2.": "decoder.conv2.",
    "decoder.class_layer_predictor.1.": "decoder.class_conv.",
    "decoder_1d.fc.": "decoder_1d.",
    "bias_class.1.": "bias_class.",
}

_SUPPORTED = {"hypernet": ("gatedgnn", "mlp"), "decoder": ("conv",)}
_KNOWN_CONFIG = {"max_shape", "num_classes", "hypernet", "decoder", "weight_norm", "ve", "layernorm", "hid"}


def map_reference_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames the reference's state-dict keys to :class:`GHN2`'s (a ``module.`` DataParallel prefix is dropped)."""
    out = {}
    for key, value in state_dict.items():
        k = key.removeprefix("module.")
        for old, new in REFERENCE_KEY_MAP.items():
            if k.startswith(old):
                out[new + k[len(old) :]] = value
                break
        else:
            raise DataError(f"unknown reference GHN key {key!r}; is this a GHN-1/GHN-2 checkpoint of ppuda?")
    return out


def load_reference_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> GHN2:
    """Builds a :class:`GHN2` from a reference checkpoint file, in eval mode.

    Args:
        path: a ``.pt`` file saved by ppuda (``torch.save({'state_dict', 'epoch', 'config', ...})``).
        map_location: device of the loaded tensors.

    Raises:
        DataError: the file is missing, not loadable with ``weights_only=True``, or not such a checkpoint.
        ConfigError: its config asks for something this implementation does not support (an MLP hypernet, the
            MLP decoder, unknown options).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"GHN checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as exc:
        raise DataError(f"{path} is not a loadable PyTorch checkpoint (weights_only=True): {exc}") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "config" not in ckpt:
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise DataError(
            f"{path} is not a reference GHN checkpoint: expected keys 'state_dict' and 'config', got {keys}"
        )
    config: dict[str, Any] = dict(ckpt["config"])
    unknown = set(config) - _KNOWN_CONFIG - {"debug_level"}
    if unknown:
        raise ConfigError(f"{path}: unsupported GHN config keys {sorted(unknown)}")
    for key, value in _SUPPORTED.items():
        if config.get(key, value[0]) not in value:
            raise ConfigError(f"{path}: config {key}={config[key]!r} is not supported (only {key} in {value})")
    if "max_shape" not in config or "num_classes" not in config:
        raise ConfigError(f"{path}: config must give max_shape and num_classes, got {sorted(config)}")
    ghn = GHN2(
        hid=int(config.get("hid", 32)),
        max_shape=tuple(int(v) for v in config["max_shape"]),  # type: ignore[arg-type]
        num_classes=int(config["num_classes"]),
        hypernet=str(config.get("hypernet", "gatedgnn")),
        ve=bool(config.get("ve", False)),
        layernorm=bool(config.get("layernorm", False)),
        weight_norm=bool(config.get("weight_norm", False)),
    )
    state = map_reference_state_dict(ckpt["state_dict"])
    check_finite(state, str(path), "GHN tensor", NONFINITE_HINT)
    try:
        ghn.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DataError(f"{path}: state dict does not fit the config {config}: {exc}") from exc
    ghn.epoch = ckpt.get("epoch")
    return ghn.to(map_location).eval()


# ---------------------------------------------------------------------- hyperzoo's own format: safetensors + JSON
FORMAT = "hyperzoo-ghn"
FORMAT_VERSION = 1
#: checkpoints shipped inside the package: name -> file under ``hyperzoo/pretrained/``
PRETRAINED: dict[str, str] = {
    "ghn2-cifar10": "ghn2_cifar10.safetensors",
    "ghn2-cifar10-resnets": "ghn2_cifar10_resnets.safetensors",
}


def save_ghn(
    ghn: GHN2, path: str | os.PathLike[str], storage_dtype: torch.dtype | None = None, **metadata: Any
) -> Path:
    """Writes ``ghn`` as ``<path>.safetensors`` (weights, config in the header) plus ``<path>.json`` (config + card).

    Args:
        ghn: the GHN.
        path: the weights file; a missing ``.safetensors`` suffix is added. Both files are written atomically.
        storage_dtype: store floating-point tensors in this dtype (e.g. ``torch.float16`` halves a shipped file);
            loading casts them back to the GHN's own dtype. None: as they are.
        **metadata: JSON-serialisable facts kept in the JSON card (training command, steps, data, metrics, ...).

    Returns:
        The ``.safetensors`` path.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    card = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": ghn.config, "metadata": metadata}
    state = {k: v.detach().contiguous().cpu() for k, v in ghn.state_dict().items()}
    if storage_dtype is not None:
        state = {k: v.to(storage_dtype) if v.is_floating_point() else v for k, v in state.items()}
        check_finite(state, str(path), f"GHN tensor stored as {storage_dtype}", "store it in float32 instead")
        card["storage_dtype"] = str(storage_dtype).removeprefix("torch.")
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "config": json.dumps(ghn.config)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=header)
    os.replace(tmp, path)
    path.chmod(0o644)  # safetensors writes private files; a checkpoint is ordinary data
    card_path = path.with_suffix(".json")
    tmp_card = card_path.with_name(card_path.name + ".tmp")
    tmp_card.write_text(json.dumps(card, indent=2, default=str) + "\n")
    os.replace(tmp_card, card_path)
    return path


def read_card(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON card beside a ``.safetensors`` GHN (``{}`` when there is none)."""
    card_path = Path(path).with_suffix(".json")
    if not card_path.is_file():
        return {}
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{card_path} is not valid JSON: {exc}") from exc
    return card if isinstance(card, dict) else {}


def _load_safetensors(path: Path, map_location: str | torch.device) -> GHN2:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except Exception as exc:  # safetensors raises its own error types (SafetensorError, HeaderTooLarge, ...)
        raise DataError(f"{path} is not a readable safetensors file (corrupt or truncated?): {exc}") from exc
    if "config" in header:
        try:
            config = json.loads(header["config"])
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: the config in the safetensors header is not JSON: {exc}") from exc
    else:
        config = read_card(path).get("config")
        if config is None:
            raise DataError(
                f"{path} has no GHN config (neither in its header nor in {path.with_suffix('.json').name}); "
                "was it written by hyperzoo.ghn.save_ghn?"
            )
    return _build(config, state, str(path), map_location)


def _build(config: dict[str, Any], state: dict[str, torch.Tensor], where: str, map_location: Any) -> GHN2:
    try:
        ghn = GHN2(**config)
    except TypeError as exc:
        raise ConfigError(f"{where}: config {config} does not describe a GHN: {exc}") from exc
    load_fitting_state(ghn, state, where, "its GHN config")
    return ghn.to(map_location).eval()


def _load_lightning(path: Path, map_location: str | torch.device) -> GHN2:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as exc:
        raise DataError(f"{path} is not a loadable checkpoint (weights_only=True refuses it): {exc}") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise DataError(f"{path}: not a Lightning checkpoint (no 'state_dict')")
    config = ckpt.get("ghn_config") or (ckpt.get("hyper_parameters") or {}).get("ghn_config")
    if not isinstance(config, dict):
        raise DataError(f"{path}: a Lightning checkpoint without 'ghn_config'; was it saved by hyperzoo's GHNModule?")
    state = {k[len("ghn.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("ghn.")}
    ghn = _build(config, state, str(path), map_location)
    ghn.epoch = ckpt.get("epoch")
    return ghn


def load_ghn(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> GHN2:
    """Loads a GHN in eval mode from any checkpoint hyperzoo knows, without unpickling code.

    Accepts hyperzoo's ``.safetensors`` (+ ``.json``) files or a directory holding one, a Lightning ``.ckpt`` of
    :class:`~hyperzoo.ghn.training.GHNModule`, the reference GHN-2's ``.pt`` files (:func:`load_reference_checkpoint`)
    and the reference GHN-3's files in both formats
    (:func:`~hyperzoo.ghn.reference_ghn3.load_reference_ghn3`, recognised by content).

    Raises:
        DataError: missing, corrupt or truncated files, pickles that need code, weights of another GHN.
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.safetensors"))
        if len(found) != 1:
            raise DataError(f"{path}: expected one .safetensors GHN in the directory, found {len(found)}")
        path = found[0]
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        raise DataError(f"GHN checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        return _load_safetensors(path, map_location)
    if path.suffix == ".ckpt":
        return _load_lightning(path, map_location)
    from hyperzoo.ghn.reference_ghn3 import is_reference_ghn3_file, load_reference_ghn3

    if is_reference_ghn3_file(path):  # by content: the published pickle, or Graphormer weights/config
        return load_reference_ghn3(path, map_location)
    return load_reference_checkpoint(path, map_location)


def pretrained_path(name: str) -> Path:
    """The file of a checkpoint shipped in the package (``hyperzoo/pretrained/``)."""
    if name not in PRETRAINED:
        raise DataError(f"unknown pretrained GHN {name!r}; shipped: {sorted(PRETRAINED)} (or give a file path)")
    from importlib.resources import files

    path = Path(str(files("hyperzoo") / "pretrained" / PRETRAINED[name]))
    if not path.is_file():
        raise DataError(f"pretrained GHN {name!r} is registered but {path} is missing from this installation")
    return path


#: where a shipped GHN's card records its headline number: top-1 of ResNet-50 (adapted to 32x32) on the 10,000
#: CIFAR-10 (JPEG) test images, predicted parameters only
HEADLINE_METRIC = ("metrics", "cifar10_jpeg_test_10000", "resnet50_adapted_32x32", "top1")


def headline_top1(card: dict[str, Any]) -> float | None:
    """A card's ResNet-50 predicted-only top-1 (:data:`HEADLINE_METRIC`), or None when it records none."""
    value: Any = card.get("metadata", {})
    for key in HEADLINE_METRIC:
        value = value.get(key) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else None


def best_shipped(cards: dict[str, dict[str, Any]] | None = None) -> tuple[str, dict[str, float | None]]:
    """The shipped GHN with the highest ResNet-50 top-1 in its card, and every shipped GHN's number.

    Args:
        cards: ``{name: card}`` to choose among; None reads the card of every :data:`PRETRAINED` checkpoint.

    Returns:
        ``(name, {name: top-1 or None})``; a card without the number ranks last, ties keep :data:`PRETRAINED` order.
    """
    if cards is None:
        cards = {name: read_card(pretrained_path(name)) for name in PRETRAINED}
    if not cards:
        raise DataError("no shipped GHN to choose from (hyperzoo/pretrained/ is empty in this installation)")
    scores = {name: headline_top1(card) for name, card in cards.items()}
    ranked = {name: -1.0 if score is None else score for name, score in scores.items()}
    best = max(ranked, key=ranked.__getitem__)
    return best, scores
