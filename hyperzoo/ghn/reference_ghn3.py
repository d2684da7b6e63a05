"""Loading checkpoints of the reference GHN-3 (``SamsungSAILMontreal/ghn3``) into hyperzoo's :class:`GHN`.

Two file formats exist, both read without running code from the file:

- the published (Hugging Face) one, ``joblib.dump(state_dict)``: a pickle, read by
  :func:`hyperzoo.ghn.safe_pickle.load_pickled_state_dict` (restricted to the three globals the format uses). It
  carries no configuration: it is inferred from the tensor shapes as the reference's ``from_pretrained`` does
  (:func:`infer_ghn3_config`), and the three node-embedding tables are at the top level (``centrality_embed_in``,
  ``centrality_embed_out``, ``input_dist_embed``);
- the reference's training checkpoints, ``torch.save({'state_dict', 'config', ...})``, read with
  ``torch.load(weights_only=True)``; the tables are inside the first layer (``gnn.0.centrality_embed_in``, ...).

The loaded GHN is ``GHN(hypernet="graphormer", decoder="conv3", num_ops=15, graph_rules="ghn3")``: it builds the
reference GHN-3's graphs (:mod:`hyperzoo.graphs.ghn3_rules`) and predicts what the reference predicts.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from hyperzoo.errors import ConfigError, DataError
from hyperzoo.ghn.ghn import GHN

__all__ = ["infer_ghn3_config", "is_reference_ghn3_file", "load_reference_ghn3", "map_ghn3_state_dict"]

_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."  # pickle of torch's legacy magic number

#: reference key (regex) -> hyperzoo key template
_KEY_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^ln\.(weight|bias)$"), r"node_norm.\1"),
    (re.compile(r"^embed\.weight$"), "op_embed.weight"),
    (re.compile(r"^shape_enc\.embed_channel\.weight$"), "shape_encoder.channel_embed.weight"),
    (re.compile(r"^shape_enc\.embed_spatial\.weight$"), "shape_encoder.spatial_embed.weight"),
    (re.compile(r"^(?:gnn\.0\.)?centrality_embed_in\.weight$"), "gnn.degree_in_embed.weight"),
    (re.compile(r"^(?:gnn\.0\.)?centrality_embed_out\.weight$"), "gnn.degree_out_embed.weight"),
    (re.compile(r"^(?:gnn\.0\.)?input_dist_embed\.weight$"), "gnn.input_dist_embed.weight"),
    (re.compile(r"^gnn\.0\.attn\.edge_embed\.embed\.weight$"), "gnn.edge_embed.weight"),
    (re.compile(r"^gnn\.0\.attn\.proj_e\.(0|2)\.(weight|bias)$"), r"gnn.edge_proj.\1.\2"),
    (re.compile(r"^gnn\.(\d+)\.(ln1|ln2)\.(weight|bias)$"), r"gnn.layers.\1.\2.\3"),
    (re.compile(r"^gnn\.(\d+)\.attn\.to_qkv\.weight$"), r"gnn.layers.\1.qkv.weight"),
    (re.compile(r"^gnn\.(\d+)\.attn\.to_out\.0\.(weight|bias)$"), r"gnn.layers.\1.out.\2"),
    (re.compile(r"^gnn\.(\d+)\.ff\.net\.0\.(weight|bias)$"), r"gnn.layers.\1.ffn.0.\2"),
    (re.compile(r"^gnn\.(\d+)\.ff\.net\.3\.(weight|bias)$"), r"gnn.layers.\1.ffn.2.\2"),
    (re.compile(r"^decoder\.fc\.0\.(weight|bias)$"), r"decoder.fc.\1"),
    (re.compile(r"^decoder\.conv\.0\.(weight|bias)$"), r"decoder.conv1.\1"),
    (re.compile(r"^decoder\.conv\.2\.(weight|bias)$"), r"decoder.conv2.\1"),
    (re.compile(r"^decoder\.class_layer_predictor\.1\.(weight|bias)$"), r"decoder.class_conv.\1"),
    (re.compile(r"^decoder_1d\.fc\.(0|2)\.(weight|bias)$"), r"decoder_1d.\1.\2"),
    (re.compile(r"^bias_class\.1\.(weight|bias)$"), r"bias_class.\1"),
]

#: constructor arguments of the reference ``GHN3`` that hyperzoo reads or may ignore
_KNOWN_CONFIG = {
    "max_shape", "num_classes", "hid", "layers", "heads", "is_ghn2", "weight_norm", "ve", "layernorm",
    "hypernet", "decoder", "pretrained", "debug_level",
}  # fmt: skip


def map_ghn3_state_dict(state_dict: dict[str, torch.Tensor], where: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Renames a reference GHN-3 state dict to hyperzoo's :class:`GHN` keys (either embedding-table location).

    The decoder's linear layers are 2-D in GHN-3 files; 4-D ``[out, in, 1, 1]`` 1x1-convolution weights (GHN-2-style
    files) are squeezed. A ``module.`` (DataParallel) prefix is dropped.

    Raises:
        DataError: a key no rule maps, or two keys mapping to the same tensor.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        k = key.removeprefix("module.")
        for pattern, template in _KEY_RULES:
            if pattern.match(k):
                new = pattern.sub(template, k)
                break
        else:
            raise DataError(f"{where}: unknown reference GHN-3 key {key!r}; is this a GHN-3 checkpoint of ghn3?")
        if new in out:
            raise DataError(
                f"{where}: keys map twice onto {new!r} (embedding tables both at the top level and in gnn.0?)"
            )
        if new.startswith("decoder.") and value.dim() == 4 and value.shape[2:] == (1, 1):
            value = value.flatten(1)
        out[new] = value
    return out


def infer_ghn3_config(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The configuration the reference's ``from_pretrained`` infers for a file without one.

    ``num_classes`` from the rows of ``decoder.class_layer_predictor`` (else 10); ``hid`` from the width of the
    ``*embed.weight`` tables; ``max_shape = (m, m, s, s)`` with ``m = sqrt(rows of decoder.conv.2.weight)`` and ``s``
    = 11 if ``shape_enc.embed_spatial`` has 9 rows else 16 (the default before that: 16 if ``num_classes >= 1000``
    else 11); ``layers`` = number of ``gnn.<i>.ln1.weight``; ``heads`` = 16 if ``hid > 64`` else 8; ``layernorm``
    if a ``ln.weight`` exists; ``weight_norm`` and ``ve`` on.
    """
    num_classes = 10
    for name, p in state_dict.items():
        if "class_layer_predictor" in name:
            num_classes = len(p)
            break
    s = 16 if num_classes >= 1000 else 11
    hid, layers, layernorm, max_ch = 32, 0, False, 64
    for name, p in state_dict.items():
        if name.endswith("ln.weight"):
            layernorm = True
        elif name.endswith("embed.weight"):
            hid = int(p.shape[-1])
        elif name.endswith("decoder.conv.2.weight"):
            max_ch = int(len(p) ** 0.5)
        elif name.endswith("shape_enc.embed_spatial.weight"):
            s = 11 if len(p) == 9 else 16
        elif name.endswith("ln1.weight") and "gnn." in name:
            layers += 1
    return {
        "hid": hid,
        "max_shape": (max_ch, max_ch, s, s),
        "num_classes": num_classes,
        "heads": 16 if hid > 64 else 8,
        "layers": layers,
        "is_ghn2": any("gnn.gru." in k for k in state_dict),
        "weight_norm": True,
        "ve": True,
        "layernorm": layernorm,
    }


def _file_kind(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(len(_LEGACY_TORCH_MAGIC))
    if head.startswith(_ZIP_MAGIC):
        return "torch-zip"
    if head == _LEGACY_TORCH_MAGIC:
        return "torch-legacy"
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


def _looks_like_ghn3(state_dict: dict[str, Any], config: dict[str, Any] | None) -> bool:
    if config is not None and ("layers" in config or "heads" in config or config.get("is_ghn2") is False):
        return True
    return any(k.startswith(("gnn.0.attn.", "gnn.0.ln1.")) for k in state_dict)


def read_reference_file(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None, Any]:
    """``(state_dict, config or None, epoch)`` of a reference GHN file in either format, running no file code."""
    from hyperzoo.ghn.safe_pickle import load_pickled_state_dict

    path = Path(path)
    if not path.is_file():
        raise DataError(f"GHN checkpoint not found: {path}")
    kind = _file_kind(path)
    if kind == "pickle":
        return load_pickled_state_dict(path), None, None
    if kind == "unknown":
        raise DataError(f"{path} is neither a PyTorch checkpoint nor a pickled state dict (unrecognised header)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as exc:
        raise DataError(f"{path} is not a loadable PyTorch checkpoint (weights_only=True): {exc}") from exc
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        config = ckpt.get("config")
        return dict(ckpt["state_dict"]), (dict(config) if isinstance(config, dict) else None), ckpt.get("epoch")
    if isinstance(ckpt, dict) and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return dict(ckpt), None, None  # a bare state dict
    raise DataError(f"{path}: expected a GHN checkpoint ({{'state_dict', 'config'}} or a state dict)")


def is_reference_ghn3_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a reference GHN-3 checkpoint (by content: its keys and config, not its name).

    Cheap for the published pickle format (header check, then the restricted reader); a torch file is loaded with
    ``weights_only=True``. Files that cannot be read return ``False`` (the caller's loader then reports why).
    """
    path = Path(path)
    try:
        if not path.is_file():
            return False
        kind = _file_kind(path)
        if kind == "pickle":
            return True  # the only plain-pickle GHN format hyperzoo reads
        if kind == "unknown":
            return False
        state, config, _ = read_reference_file(path)
    except DataError:
        return False
    return _looks_like_ghn3(state, config)


def load_reference_ghn3(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> GHN:
    """Builds hyperzoo's :class:`GHN` from a reference GHN-3 file (either format), in eval mode.

    Args:
        path: ``ghn3tm8.pt``-style pickle (published format) or a ``torch.save({'state_dict', 'config'})`` file.
        map_location: device of the returned GHN.

    Returns:
        A GHN with ``hypernet="graphormer"``, ``decoder="conv3"``, ``num_ops=15``, ``graph_rules="ghn3"``.

    Raises:
        UnsafePickleError: the pickle asks for any global outside the three the format uses.
        DataError: missing, truncated or corrupt file, or weights that do not fit the (inferred) configuration.
        ConfigError: a GHN-2 checkpoint saved in the GHN-3 format, or unknown configuration keys.
    """
    path = Path(path)
    state, config, epoch = read_reference_file(path)
    if not _looks_like_ghn3(state, config):
        raise DataError(f"{path} is not a reference GHN-3 checkpoint (no Graphormer layers gnn.<i>.attn / ln1)")
    inferred = infer_ghn3_config(state)
    if config is None:
        config = inferred
    else:
        unknown = set(config) - _KNOWN_CONFIG
        if unknown:
            raise ConfigError(f"{path}: unsupported GHN-3 config keys {sorted(unknown)}")
        if "is_ghn2" in config and bool(config["is_ghn2"]) != inferred["is_ghn2"]:
            raise DataError(f"{path}: config is_ghn2={config['is_ghn2']} contradicts its weights")
        config = {**inferred, **config}
    if config.get("is_ghn2"):
        raise ConfigError(
            f"{path}: a GHN-2 saved by the ghn3 code (GatedGNN weights); load ppuda's GHN-2 files with "
            "hyperzoo.ghn.load_reference_checkpoint instead"
        )
    max_shape = tuple(int(v) for v in config["max_shape"])
    hid = int(config["hid"])
    ghn = GHN(
        hid=hid,
        max_shape=max_shape,
        num_classes=int(config["num_classes"]),
        hypernet="graphormer",
        decoder="conv3",
        ve=bool(config.get("ve", True)),
        layernorm=bool(config.get("layernorm", False)),
        weight_norm=bool(config.get("weight_norm", True)),
        layers=int(config.get("layers", 3)),
        heads=int(config.get("heads", 16 if hid > 64 else 8)),
        graph_rules="ghn3",
    )
    from hyperzoo.ghn.state import load_fitting_state

    load_fitting_state(ghn, map_ghn3_state_dict(state, str(path)), str(path), f"the GHN-3 config {config}")
    ghn.epoch = epoch if isinstance(epoch, int) else None
    return ghn.to(map_location).eval()
