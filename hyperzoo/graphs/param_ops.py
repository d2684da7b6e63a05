"""Which graph op a parameter tensor or an autograd function becomes.

Parameters map by the type of the module that owns them (the reference's ``MODULES`` table, widened from exact
types to ``isinstance`` and to the layers torchvision uses), then by the parameter's own name for the tensors
that modules register directly (class tokens, positional embeddings, relative position tables, layer scales).
Parameter-free autograd functions map by the prefix of their class name (``AddBackward0`` -> ``Add`` -> sum).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

__all__ = ["FUNCTION_OPS", "NAMED_PARAMS", "NORM_OPS", "function_prefix", "param_op"]

# Autograd function prefixes (class name up to "Backward") kept as nodes, as in the reference. Softmax and the
# fused attention kernels are hyperzoo's additions so that transformer graphs get their attention node.
FUNCTION_OPS: dict[str, str] = {
    "Mean": "glob_avg",
    "AdaptiveAvgPool2D": "glob_avg",
    "MaxPool2DWithIndices": "max_pool",
    "AvgPool2D": "avg_pool",
    "Clone": "msa",
    "Softmax": "msa",
    "ScaledDotProductEfficientAttention": "msa",
    "ScaledDotProductFlashAttentionForCpu": "msa",
    "ScaledDotProductFlashAttention": "msa",
    "ScaledDotProductCudnnAttention": "msa",
    "Mul": "cse",
    "Add": "sum",
    "Cat": "concat",
}

# Norm layers are one node for weight and bias together (the bias is predicted with the weight).
NORM_OPS = frozenset({"bn", "ln"})

_BN_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm,
)
_LN_TYPES: tuple[type[nn.Module], ...] = (nn.LayerNorm, *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))

# Parameters registered directly on a module, recognised by their own name.
NAMED_PARAMS: dict[str, str] = {
    "pos_embedding": "pos_enc",
    "pos_embed": "pos_enc",
    "position_embedding": "pos_enc",
    "position_embeddings": "pos_enc",
    "class_token": "cls_token",
    "cls_token": "cls_token",
    "relative_position_bias_table": "rel_pos_bias",
    "layer_scale": "layer_scale",
    "gamma": "layer_scale",
    "logit_scale": "logit_scale",
}


def function_prefix(fn_name: str) -> str:
    """``"AddBackward0"`` -> ``"Add"``: the part of an autograd class name that names the op."""
    i = fn_name.find("Backward")
    return fn_name if i < 0 else fn_name[:i]


def _conv_op(module: nn.Module, leaf: str) -> str:
    if "bias" in leaf:
        return "bias"
    if isinstance(module, nn.modules.conv._ConvNd) and module.groups > 1:
        return "dil_conv" if min(module.dilation) > 1 else "sep_conv"
    return "conv"


def param_op(
    module: nn.Module, leaf: str, full_name: str = "", overrides: Mapping[str, str] | None = None
) -> str | None:
    """The op of the node that stands for parameter ``leaf`` of ``module``, or ``None`` if unknown.

    Args:
        module: the module that registers the parameter directly.
        leaf: the parameter's name inside ``module`` (``"weight"``, ``"in_proj_bias"``, ...).
        full_name: its name in the whole model, looked up in ``overrides`` first.
        overrides: ``{parameter name or fnmatch pattern: op name}`` supplied by the caller.
    """
    if overrides:
        from fnmatch import fnmatchcase

        for pattern, op in overrides.items():
            if full_name == pattern or fnmatchcase(full_name, pattern):
                return op
    if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)) and ("weight" in leaf or "bias" in leaf):
        return _conv_op(module, leaf)  # other tensors of a conv subclass (a weight-standardised conv's gain): below
    if isinstance(module, nn.MultiheadAttention):
        return "bias" if "bias" in leaf else "conv"
    if isinstance(module, _BN_TYPES):
        return "bn"
    if isinstance(module, _LN_TYPES) or type(module).__name__ in ("LayerNorm2d", "LayerNormChannels"):
        return "ln"
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return "embedding"
    if type(module).__name__ == "PosEnc":  # the DeepNets-1M positional encoding module
        return "pos_enc"
    return NAMED_PARAMS.get(leaf)
