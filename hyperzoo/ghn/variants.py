"""Named GHN configurations: ``create_ghn("ghn2")``, ``list_ghns()``.

| name | encoder | virtual edges | LayerNorm | weight norm | hid | max_shape | source |
|---|---|---|---|---|---|---|---|
| ``ghn1`` | GatedGNN | no | no | no | 32 | 64x64x11x11 | Zhang et al. 2019, as configured in ppuda |
| ``ghn2`` | GatedGNN | s_max 50 | yes | yes | 32 | 64x64x11x11 | Knyazev et al. 2021 (``ghn2_cifar10.pt``) |
| ``mlp`` | per-node MLP | (none) | yes | yes | 32 | 64x64x11x11 | the "MLP" ablation of Knyazev et al. 2021 |
| ``ghn3_t`` | Graphormer, 3 layers, 8 heads | s_max 50 | yes | yes | 64 | 64x64x16x16 | 2023 (``ghn3tm8``) |
| ``ghn3_s`` | Graphormer, 5 layers, 16 heads | s_max 50 | yes | yes | 128 | 128x128x16x16 | (``ghn3sm8`` |
| ``ghn3_l`` | Graphormer, 12 layers, 16 heads | s_max 50 | yes | yes | 256 | 256x256x16x16 | (``ghn3lm8`` |
| ``ghn3_xl`` | Graphormer, 24 layers, 16 heads | s_max 50 | yes | yes | 384 | 384x384x16x16 | (``ghn3xlm16`` |

GHN-1/2/MLP use the reference's 15-op vocabulary (``num_ops=15``) so that their checkpoints stay interchangeable with
ppuda's; GHN-3 variants embed hyperzoo's full vocabulary. The S and L layer/head counts follow the GHN-3 paper's
Table 1 as we read it; only T and XL were checked against the released checkpoints' parameter counts.
Every keyword of :class:`GHN` can be overridden: ``create_ghn("ghn2", num_classes=100)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hyperzoo.ghn.ghn import GHN
from hyperzoo.graphs.vocabulary import PRIMITIVES
from hyperzoo.registry import Registry

__all__ = ["GHNS", "create_ghn", "ghn_config", "list_ghns"]

GHNS: Registry[Callable[..., dict[str, Any]]] = Registry("GHN variant", list_hint="hyperzoo.ghn.list_ghns() lists them")


def _add(name: str, family: str, **config: Any) -> None:
    GHNS.add(name, lambda: dict(config), family=family)


_GHN2 = {"hid": 32, "max_shape": (64, 64, 11, 11), "hypernet": "gatedgnn", "decoder": "conv"}
_add("ghn1", "ghn1", **_GHN2, ve=False, layernorm=False, weight_norm=False)
_add("ghn2", "ghn2", **_GHN2, ve=True, layernorm=True, weight_norm=True)
_add("mlp", "mlp", **{**_GHN2, "hypernet": "mlp"}, ve=True, layernorm=True, weight_norm=True)
for _name, _hid, _layers, _heads in (("t", 64, 3, 8), ("s", 128, 5, 16), ("l", 256, 12, 16), ("xl", 384, 24, 16)):
    _add(
        f"ghn3_{_name}",
        "ghn3",
        hid=_hid,
        max_shape=(_hid, _hid, 16, 16),
        hypernet="graphormer",
        decoder="conv3",
        layers=_layers,
        heads=_heads,
        ve=True,
        layernorm=True,
        weight_norm=True,
        num_ops=len(PRIMITIVES),
    )


def ghn_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The constructor arguments of the named variant, with ``overrides`` (``None`` values dropped) applied."""
    config = GHNS.get(name)()
    config.update({k: v for k, v in overrides.items() if v is not None})
    return config


def create_ghn(name: str = "ghn2", **overrides: Any) -> GHN:
    """A freshly initialised GHN of the named variant (``ghn1``, ``ghn2``, ``mlp``, ``ghn3_t``, ...)."""
    return GHN(**ghn_config(name, **overrides))


def list_ghns(pattern: str = "*") -> list[str]:
    """Registered GHN variant names matching an fnmatch ``pattern``."""
    return GHNS.names(pattern)
