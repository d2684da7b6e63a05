"""Layers that change how a network is parametrized: LAuReL, GCR heads, MixtureGrowth templates.

LAuReL residuals, Grassmann class heads (GCR) with their Riemannian optimizer, and MixtureGrowth template layers.

Owns: those layers and the model names they add, ``<resnet>_laurel_<variant>``, ``resnet<d>_extra_block``,
``<net>_gcr<k>`` and ``mgwrn<d>_<w>`` (registered when their module is imported; the model registry imports them on
its first lookup, see :data:`hyperzoo.nets.factory.MODEL_SOURCES`). Their LightningModules and callbacks are in
:mod:`hyperzoo.lightning` (``gcr``, ``growth``).

May import: the base modules (``errors``, ``registry``, ``io``, ``progress``, ``tables``, ``cli_types``, ``_lazy``,
``_procs``) and ``hyperzoo.nets`` (the networks these layers wrap). ``hyperzoo.nets`` does not import this package.
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
