"""SMASH as one module (space + one-shot network + hypernet) and its safetensors + JSON checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from hyperzoo.errors import DataError
from hyperzoo.smash.hypernet import SMASHHypernet
from hyperzoo.smash.network import SMASHNet
from hyperzoo.smash.space import Architecture, SMASHSpace

__all__ = ["SMASH", "load_smash", "save_smash"]

FORMAT = "hyperzoo-smash/1"


class SMASH(nn.Module):
    """The one-shot model of Brock et al. (2018): ``logits = SMASHNet(x, arch, H(encode(arch), z))``.

    Args:
        space: architecture space (or its keyword arguments).
        num_classes: classifier outputs.
        hypernet: keyword arguments of :class:`SMASHHypernet`.

    Shapes:
        ``x`` ``[n, 3, H, W]`` -> ``[n, num_classes]``.
    """

    def __init__(
        self,
        space: SMASHSpace | dict[str, Any] | None = None,
        num_classes: int = 10,
        hypernet: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if space is None:
            space = SMASHSpace()
        elif isinstance(space, dict):
            space = SMASHSpace(**space)
        self.space, self.num_classes = space, int(num_classes)
        self.net = SMASHNet(space, num_classes)
        self.hypernet = SMASHHypernet(space, **(hypernet or {}))

    @property
    def config(self) -> dict[str, Any]:
        return {"space": self.space.config, "num_classes": self.num_classes, "hypernet": dict(self.hypernet.config)}

    def weights(self, arch: Architecture, generator: torch.Generator | None = None) -> Tensor:
        """The generated 1x1 weight matrix of ``arch``."""
        c = self.space.encode(arch).to(self.net.stem.device)
        return self.hypernet(c, generator=generator)

    def forward(self, x: Tensor, arch: Architecture, generator: torch.Generator | None = None) -> Tensor:
        return self.net(x, arch, self.weights(arch, generator))


def save_smash(model: SMASH, path: str | Path, **meta: Any) -> Path:
    """Writes ``path`` (safetensors) and ``path.with_suffix('.json')`` (config + ``meta``)."""
    from hyperzoo.io import atomic_write, write_text_atomic

    path = Path(path)
    with atomic_write(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    card = {"format": FORMAT, "config": model.config, **meta}
    write_text_atomic(path.with_suffix(".json"), json.dumps(card, indent=2, default=str))
    return path


def load_smash(path: str | Path, map_location: str = "cpu") -> SMASH:
    """Rebuilds a :class:`SMASH` model from :func:`save_smash` files."""
    path = Path(path)
    card_path = path.with_suffix(".json")
    if not path.is_file() or not card_path.is_file():
        raise DataError(f"SMASH checkpoint {path} needs {path.name} and {card_path.name}; train one with hyperzoo fit")
    card = json.loads(card_path.read_text())
    if card.get("format") != FORMAT:
        raise DataError(f"{card_path} is not a hyperzoo SMASH card (format {card.get('format')!r}, expected {FORMAT})")
    cfg = card["config"]
    model = SMASH(cfg["space"], cfg["num_classes"], cfg["hypernet"])
    model.load_state_dict(load_file(str(path), device=map_location))
    return model
