"""Roles of parameters that the name table (:mod:`hyperzoo.graphs.param_ops`) does not know.

Models from other libraries register parameters under names no table can list in advance (``gamma_1``, ``ls1``,
``q_bias``, ``attention_biases``, ``temperature``, ``alpha``/``beta``, the affine of a new norm layer, ...). Their
role follows from three things the trace sees, checked in this order:

1. **the owning module**: a parameter of a module whose class name says it normalizes (``...Norm...``) and that is
   called ``weight``/``gamma``/``bias``/``beta`` is that norm's affine: ``ln`` (``bn`` for batch/group/instance
   norms), the bias predicted with the weight as for torch's norm layers;
2. **how the traced forward uses it**: the autograd function that consumes it, followed through views, copies,
   concatenations and element-wise unary functions (``sigmoid``, ``exp``, ...) up to the first arithmetic use:

   ========================================================  ==============================================
   use                                                       role (vocabulary op)
   ========================================================  ==============================================
   the bias input of a linear/convolution/``addmm``          ``bias`` (BEiT ``q_bias``/``v_bias``)
   the right operand of a matrix product, 2-D                ``conv`` (a hand-written linear layer)
   added to attention logits (the other operand is a         ``rel_pos_bias`` (LeViT ``attention_biases``)
   matrix product)
   multiplies attention logits / a matrix product            ``logit_scale`` (XCiT ``temperature``)
   multiplies an activation, per channel or per head         ``layer_scale`` (CaiT ``gamma_1``, ResMLP
                                                             ``alpha``, NFNet ``gain``, PoolFormer scales)
   added to an activation, 3-D ``[1, N, C]`` with ``N > 1``  ``pos_enc``
   added to an activation, otherwise                         ``bias`` (ResMLP ``beta``)
   concatenated to the token sequence, ``[1, k, C]``         ``cls_token`` (distillation/register tokens)
   the weight input of a normalization function              ``layer_scale`` (a per-channel gain)
   ========================================================  ==============================================

3. nothing else: such a parameter has no role, and :func:`~hyperzoo.graphs.graph_from_module` reports it (an
   error by default, naming the parameter, its module and the ``param_ops=`` override that maps it).

These rules only run for parameters the name table leaves unmapped, so graphs of models the table already covers
(every reference-conformant GHN-2 graph among them) are unchanged. The ops they give are hyperzoo's extension ops
or ``bias``; a GHN with the reference's 15-op vocabulary cannot embed the extension ops and reports those
parameters as unpredicted (:class:`~hyperzoo.ghn.ghn.UnpredictableLayerError`, or a warning with
``allow_unpredicted=True``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from hyperzoo.graphs.param_ops import function_prefix

__all__ = ["infer_role", "role_hint"]

# Autograd functions a parameter flows through unchanged in role (views, copies, casts, unary maps).
_PASS_THROUGH = frozenset(
    {
        "View", "UnsafeView", "Reshape", "ReshapeAlias", "Expand", "Unsqueeze", "Squeeze", "Permute", "Transpose",
        "T", "Select", "Slice", "Index", "Clone", "ToCopy", "Copy", "Contiguous", "Repeat", "Flatten", "Unflatten",
        "AsStrided", "Sigmoid", "Exp", "Log", "Clamp", "ClampMin", "ClampMax", "Neg", "Abs", "Softplus", "Tanh",
        "Cat", "Stack", "Split", "SplitWithSizes", "Unbind", "Alias", "Detach", "Lift", "Pow", "Sqrt", "Rsqrt",
        "Rsub", "Softmax", "LogSoftmax",
    }
)  # fmt: skip
# A matrix product: its output are attention logits when a parameter joins it.
_MATMUL = frozenset({"Bmm", "Mm", "Matmul", "Baddbmm", "Einsum"})
_LINEAR = frozenset({"Addmm", "Convolution", "Linear", "ConvolutionBackwardOverrideable", "MkldnnConvolution"})
_NORM_FUNCTIONS = frozenset({"NativeBatchNorm", "NativeLayerNorm", "NativeGroupNorm", "CudnnBatchNorm"})
_NORM_WEIGHT = frozenset({"weight", "gamma", "scale"})
_NORM_BIAS = frozenset({"bias", "beta", "shift"})
_MAX_SEARCH = 12  # functions followed from the parameter to its use


def _prefix(fn: Any) -> str:
    """The op of a traced op (:class:`~hyperzoo.graphs.trace_core.OpNode`); ``"AccumulateGrad"`` for a parameter."""
    kind = getattr(fn, "kind", None)
    return "AccumulateGrad" if kind is None else function_prefix(kind)


def _norm_module_op(module: nn.Module | None) -> str | None:
    cls = type(module).__name__.lower()
    if "norm" not in cls:
        return None
    return "bn" if any(k in cls for k in ("batch", "group", "instance")) else "ln"


def _comes_from(fn: Any, kinds: frozenset[str], depth: int = 4) -> bool:
    """Whether ``fn``'s output is (a view of) the output of a function of one of ``kinds``."""
    for _ in range(depth):
        if fn is None:
            return False
        pre = _prefix(fn)
        if pre in kinds:
            return True
        if pre not in _PASS_THROUGH and pre not in ("Mul", "Div"):
            return False
        nxt = [f for f in getattr(fn, "inputs", ()) if f is not None and _prefix(f) != "AccumulateGrad"]
        if not nxt:
            return False
        fn = nxt[0]
    return False


_SLICES = frozenset({"Select", "Index", "Slice", "Unbind", "Split", "SplitWithSizes"})


def _use(chain: list[Any], leaf_fn: Any) -> tuple[Any, int, Any]:
    """The first function up ``chain`` (consumer first) that is not a pass-through, its input slot, its child.

    ``chain[0]`` consumes the parameter leaf ``leaf_fn``; ``chain[i + 1]`` consumes
    ``chain[i]``. Returns ``(use, slot, child)`` where ``child`` is the function feeding the use from the parameter.
    """
    child = leaf_fn
    for fn in chain[:_MAX_SEARCH]:
        slot = next((i for i, f in enumerate(fn.inputs) if f is child), -1)
        pre = _prefix(fn)
        joins = pre in ("Cat", "Stack") and any(
            not _from_params(f) for i, f in enumerate(fn.inputs) if i != slot and f is not None
        )
        if pre not in _PASS_THROUGH or joins:  # a concatenation with activations is a use (a token)
            return fn, slot, child
        child = fn
    return None, -1, child


def _from_params(fn: Any, depth: int = 4) -> bool:
    """Whether ``fn`` computes from parameters only (``torch.cat((q_bias, zeros, v_bias))``), not activations."""
    if _prefix(fn) == "AccumulateGrad":
        return True
    if depth == 0 or _prefix(fn) not in _PASS_THROUGH:
        return False
    return all(_from_params(f, depth - 1) for f in fn.inputs if f is not None)


def _channelwise(shape: tuple[int, ...]) -> bool:
    """At most one dimension larger than 1 (``[C]``, ``[1, 1, C]``, ``[C, 1, 1]``, ``[C, 1, 1, 1]``, a scalar)."""
    return sum(1 for s in shape if s > 1) <= 1


def infer_role(module: nn.Module | None, leaf: str, param: Any, chain: list[Any], leaf_fn: Any) -> str | None:
    """The vocabulary op of a parameter the name table does not know, or ``None`` if no rule applies.

    Args:
        module: the module that registers the parameter.
        leaf: the parameter's name inside ``module``.
        param: the parameter, or anything with its ``shape`` (only the shape is read).
        chain: the traced ops (:class:`~hyperzoo.graphs.trace_core.OpNode`) from the parameter's consumer (first)
            towards the output.
        leaf_fn: the parameter's leaf in the op graph (:class:`~hyperzoo.graphs.trace_core.Param`).
    """
    shape = tuple(int(s) for s in param.shape)
    norm = _norm_module_op(module)
    if norm is not None and leaf in _NORM_WEIGHT | _NORM_BIAS and _channelwise(shape):
        return norm
    use, slot, _child = _use(chain, leaf_fn)
    if use is None:
        return None
    kind = _prefix(use)
    others = [f for i, f in enumerate(use.inputs) if i != slot and f is not None]
    logits = any(_comes_from(f, _MATMUL) for f in others)
    if kind in _LINEAR:
        # addmm(bias, input, weight) / convolution(input, weight, bias): the parameter in the bias slot
        bias_slot = 0 if kind == "Addmm" else 2
        return "bias" if slot == bias_slot and len(shape) <= 1 else None
    if kind in _MATMUL and len(shape) == 2 and slot == 1:
        return "conv"  # ``x @ weight``: a linear layer written by hand
    if kind in _NORM_FUNCTIONS:
        return "layer_scale" if slot == 1 and _channelwise(shape) else None
    if kind == "Addcmul":  # addcmul(self, t1, t2) = self + t1 * t2
        if slot == 0:
            return "bias"
        return "layer_scale" if _channelwise(shape) else None
    # a slice of the parameter is used (``alpha[0] * x``): its rows are the per-channel vectors
    sliced = any(_prefix(f) in _SLICES for f in chain[: chain.index(use)] if f is not None) if use in chain else False
    if kind in ("Mul", "Div"):
        if logits and _channelwise(shape):
            return "logit_scale"
        if _channelwise(shape) or sliced or (len(shape) >= 2 and shape[0] == 1 and _channelwise(shape[1:])):
            return "layer_scale"
        return None
    if kind in ("Add", "Sub"):
        if logits:
            return "rel_pos_bias"
        if len(shape) == 3 and shape[0] == 1 and shape[1] > 1 and shape[2] > 1:
            return "pos_enc"
        if len(shape) == 4 and shape[0] == 1 and shape[1] > 1 and shape[2] * shape[3] > 1:
            return "pos_enc"  # a 2-D positional map [1, C, H, W]
        if len(shape) == 2 and min(shape) > 1:
            return "pos_enc"  # a table [N, C] added to the tokens
        if _channelwise(shape) or (len(shape) >= 2 and shape[0] == 1 and _channelwise(shape[1:])):
            return "bias"
        return None
    if kind in ("Cat", "Stack"):
        return "cls_token" if len(shape) == 3 and shape[0] == 1 else None
    return None


def role_hint(name: str, module_type: str, shape: tuple[int, ...]) -> str:
    """The ``param_ops=`` entry that maps an unmapped parameter, for error messages."""
    guess = "layer_scale" if sum(1 for s in shape if s > 1) <= 1 else "param"
    return f"param_ops={{{name!r}: {guess!r}}}  # {module_type}, shape {list(shape)}"
