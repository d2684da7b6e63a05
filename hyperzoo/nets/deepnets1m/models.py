"""Registry entries for named DeepNets-1M networks (``create_model("deepnets1m_darts")``)."""

from __future__ import annotations

from typing import Any

from hyperzoo.nets.deepnets1m.genotypes import DARTS, PDARTS, ViT
from hyperzoo.nets.deepnets1m.network import Network
from hyperzoo.nets.factory import register_model

__all__ = ["deepnets1m_darts", "deepnets1m_pdarts", "deepnets1m_vit"]


@register_model(family="deepnets1m", paper="Knyazev et al., NeurIPS 2021")
def deepnets1m_darts(
    num_classes: int = 10, C: int = 16, n_cells: int = 8, is_imagenet_input: bool = False, **kwargs: Any
) -> Network:
    """The DARTS cell network; the defaults are the GHN-2 conformance model (246,106 parameters)."""
    return Network(C, num_classes, DARTS, n_cells, is_imagenet_input=is_imagenet_input, **kwargs)


@register_model(family="deepnets1m", paper="Chen et al., ICCV 2019")
def deepnets1m_pdarts(
    num_classes: int = 10, C: int = 16, n_cells: int = 8, is_imagenet_input: bool = False, **kwargs: Any
) -> Network:
    """The P-DARTS cell network."""
    return Network(C, num_classes, PDARTS, n_cells, is_imagenet_input=is_imagenet_input, **kwargs)


@register_model(family="deepnets1m", paper="Dosovitskiy et al., ICLR 2021")
def deepnets1m_vit(
    num_classes: int = 10, C: int = 128, n_cells: int = 12, is_imagenet_input: bool = False, **kwargs: Any
) -> Network:
    """The ViT genotype network of the DeepNets-1M ``predefined`` split (no preprocessing, constant width)."""
    kwargs = {"preproc": False, "C_mult": 1, "glob_avg": True, **kwargs}
    return Network(C, num_classes, ViT, n_cells, is_imagenet_input=is_imagenet_input, **kwargs)
