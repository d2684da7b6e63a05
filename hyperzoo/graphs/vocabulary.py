"""The node vocabulary of computation graphs.

The first 15 names are the DeepNets-1M primitives of the reference GHN-2 (ppuda ``PRIMITIVES_DEEPNETS1M``) in
their id order: published checkpoints embed op ids through ``nn.Embedding(15, hid)``, so these ids never move.
hyperzoo's extensions cover parameter tensors that the reference cannot map (it leaves them at torch's init);
they are appended after id 14 and are never renumbered.
"""

from __future__ import annotations

import re

from hyperzoo.errors import UnknownNameError

__all__ = [
    "EXTENSIONS",
    "LEGACY_OP_NAMES",
    "NUM_REFERENCE_PRIMITIVES",
    "OP_ID",
    "PRIMITIVES",
    "REFERENCE_PRIMITIVES",
    "canonical_op_name",
    "op_id",
]

REFERENCE_PRIMITIVES: tuple[str, ...] = (
    "max_pool",  # 0
    "avg_pool",  # 1
    "sep_conv",  # 2  grouped conv, dilation 1
    "dil_conv",  # 3  grouped conv, dilation > 1
    "conv",  # 4  dense conv and linear weights
    "msa",  # 5  multi-head self-attention
    "cse",  # 6  channel squeeze-excitation gate (the product)
    "sum",  # 7
    "concat",  # 8
    "input",  # 9
    "bias",  # 10  bias of a conv or linear layer
    "bn",  # 11  batch-norm-like affine (weight and bias in one node)
    "ln",  # 12  layer norm (weight and bias in one node)
    "pos_enc",  # 13  learned positional embedding
    "glob_avg",  # 14
)
NUM_REFERENCE_PRIMITIVES = len(REFERENCE_PRIMITIVES)

EXTENSIONS: tuple[str, ...] = (
    "layer_scale",  # 15  per-channel residual scale (ConvNeXt ``layer_scale``)
    "rel_pos_bias",  # 16  relative position bias tables (Swin, MaxViT)
    "cls_token",  # 17  learned class token (ViT ``class_token``)
    "embedding",  # 18  ``nn.Embedding`` lookup tables
    "logit_scale",  # 19  learned attention temperature (Swin V2 ``logit_scale``)
    "param",  # 20  any other parameter tensor a caller maps explicitly
)

PRIMITIVES: tuple[str, ...] = REFERENCE_PRIMITIVES + EXTENSIONS
OP_ID: dict[str, int] = {name: i for i, name in enumerate(PRIMITIVES)}

# Names found in published DeepNets-1M files (``primitives_ext`` of the meta JSON) -> current names; the same
# fix-ups the reference loader applies when it reads them.
LEGACY_OP_NAMES: dict[str, str] = {
    "conv_1x1": "conv",
    "conv_3x3": "conv",
    "conv_5x5": "conv",
    "conv_7x7": "conv",
    "conv_7x1_1x7": "conv",
    "sep_conv_3x3": "sep_conv",
    "sep_conv_5x5": "sep_conv",
    "sep_conv_7x7": "sep_conv",
    "dil_conv_3x3": "dil_conv",
    "dil_conv_5x5": "dil_conv",
    "max_pool_3x3": "max_pool",
    "avg_pool_3x3": "avg_pool",
    "fc-b": "bias",
}

# Kernel-size suffixes such as ``_3x3`` or ``_7x1_1x7`` that old files appended to op names.
_KERNEL_SUFFIX = re.compile(r"(_\d+x\d+)+$")


def canonical_op_name(name: str) -> str:
    """Map an op name, current or legacy, to its name in :data:`PRIMITIVES`.

    Args:
        name: a primitive name, possibly from an older DeepNets-1M file (``conv_5x5``, ``fc-b``, ...).

    Raises:
        UnknownNameError: if the name is neither a primitive nor a known legacy name.
    """
    if name in OP_ID:
        return name
    if name in LEGACY_OP_NAMES:
        return LEGACY_OP_NAMES[name]
    stripped = _KERNEL_SUFFIX.sub("", name)
    if stripped in OP_ID:
        return stripped
    raise UnknownNameError(
        f"unknown graph op {name!r}; known ops: {', '.join(PRIMITIVES)} (legacy names: {', '.join(LEGACY_OP_NAMES)})"
    )


def op_id(name: str | int) -> int:
    """The vocabulary id of an op given by name (current or legacy) or by id (checked)."""
    if isinstance(name, int):
        if not 0 <= name < len(PRIMITIVES):
            raise UnknownNameError(f"op id {name} is out of range 0..{len(PRIMITIVES) - 1}")
        return name
    return OP_ID[canonical_op_name(name)]
