"""Layers that change how a network is parametrized: LAuReL, GCR heads, MixtureGrowth templates.

LAuReL residuals, Grassmann class heads (GCR) with their Riemannian optimizer, and MixtureGrowth template layers.

Importing this package (``hyperzoo.nets`` does) registers the model names ``<resnet>_laurel_<variant>``,
``resnet<d>_extra_block``, ``<net>_gcr<k>`` and ``mgwrn<d>_<w>``.
"""

from hyperzoo.layers.grassmann import (
    GrassmannHead,
    GrassmannOptimizer,
    grassmann_dims,
    orthonormality_error,
    replace_head,
    tag_grassmann,
)
from hyperzoo.layers.laurel import VARIANTS, LaurelBlock, LaurelConfig, laurel_param_count, laurelize, parse_variant
from hyperzoo.layers.mixture_growth import (
    POLICIES,
    TemplateBatchNorm2d,
    TemplateConv2d,
    TemplateLinear,
    TemplateWideResNet,
    is_template_network,
)

__all__ = [
    "POLICIES",
    "VARIANTS",
    "GrassmannHead",
    "GrassmannOptimizer",
    "LaurelBlock",
    "LaurelConfig",
    "TemplateBatchNorm2d",
    "TemplateConv2d",
    "TemplateLinear",
    "TemplateWideResNet",
    "grassmann_dims",
    "is_template_network",
    "laurel_param_count",
    "laurelize",
    "orthonormality_error",
    "parse_variant",
    "replace_head",
    "tag_grassmann",
]
