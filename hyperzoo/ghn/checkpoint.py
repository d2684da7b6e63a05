"""Loading checkpoints of the reference GHN-2 (``facebookresearch/ppuda``: ``ghn2_cifar10.pt``, ``ghn2_imagenet.pt``).

The reference saves ``{'state_dict', 'epoch', 'config'}`` (sometimes with an optimizer state) where ``config`` holds
the ``GHN`` constructor arguments. Its state-dict keys are mapped onto :class:`GHN2`'s module names by
:data:`REFERENCE_KEY_MAP` (prefix rewrites).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from hyperzoo.errors import ConfigError, DataError
from hyperzoo.ghn.ghn import GHN2

__all__ = ["REFERENCE_KEY_MAP", "load_reference_checkpoint", "map_reference_state_dict"]

#: reference key prefix -> hyperzoo key prefix
REFERENCE_KEY_MAP: dict[str, str] = {
    "ln.": "node_norm.",
    "embed.": "op_embed.",
    "shape_enc.embed_channel.": "shape_encoder.channel_embed.",
    "shape_enc.embed_spatial.": "shape_encoder.spatial_embed.",
    "gnn.mlp.fc.": "gnn.message.",
    "gnn.mlp_ve.fc.": "gnn.virtual_message.",
    "gnn.gru.": "gnn.gru.",
    "decoder.fc.0.": "decoder.fc.",
    "decoder.conv.0.": "decoder.conv1.",
    "decoder.conv.2.": "decoder.conv2.",
    "decoder.class_layer_predictor.1.": "decoder.class_conv.",
    "decoder_1d.fc.": "decoder_1d.",
    "bias_class.1.": "bias_class.",
}

_SUPPORTED = {"hypernet": "gatedgnn", "decoder": "conv"}
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
        if config.get(key, value) != value:
            raise ConfigError(f"{path}: config {key}={config[key]!r} is not supported (only {key}={value!r})")
    if "max_shape" not in config or "num_classes" not in config:
        raise ConfigError(f"{path}: config must give max_shape and num_classes, got {sorted(config)}")
    ghn = GHN2(
        hid=int(config.get("hid", 32)),
        max_shape=tuple(int(v) for v in config["max_shape"]),  # type: ignore[arg-type]
        num_classes=int(config["num_classes"]),
        ve=bool(config.get("ve", False)),
        layernorm=bool(config.get("layernorm", False)),
        weight_norm=bool(config.get("weight_norm", False)),
    )
    state = map_reference_state_dict(ckpt["state_dict"])
    try:
        ghn.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DataError(f"{path}: state dict does not fit the config {config}: {exc}") from exc
    ghn.epoch = ckpt.get("epoch")
    return ghn.to(map_location).eval()
