"""Applying a spec: permute, widen or merge state tensors group by group, and load the result into a model.

Every transformation here is a gather along each tied axis. For a group of ``n`` channels an *index* is a
vector of length ``w`` (the new width) whose entries are source channels ``0..n-1`` or ``-1`` (a zero
channel). A permutation is an index of length ``n``; a partial merge uses one index per source model
(:mod:`hyperzoo.merge.pleas`). "out" axes of merged channels are also scaled (0.5 where both models contribute),
"in" axes are not, so that ``W_merged = T_A(W_A) + T_B(W_B)`` is the average on fully merged channels.
:func:`check_spec` tests a spec by applying a random permutation of every group (this module depends on
:mod:`hyperzoo.merge.spec`, never the reverse).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.utils._pytree import tree_flatten

from hyperzoo.merge.spec import AxisTie, PermutationSpec, example_input
from hyperzoo.nets.resize import resize_to_state

__all__ = [
    "axis_index",
    "axis_scale",
    "check_spec",
    "gather_axis",
    "load_state",
    "permute_state",
    "random_permutations",
    "transform_state",
]

Indices = dict[int, Tensor]


def random_permutations(spec: PermutationSpec, generator: torch.Generator | None = None) -> Indices:
    """A uniformly random permutation of every group."""
    return {g: torch.randperm(spec.leaves[g].size, generator=generator) for g in spec.groups}


def _leaf_index(spec: PermutationSpec, leaf: int, idx: Indices) -> Tensor:
    got = idx.get(leaf)
    return got if got is not None else torch.arange(spec.leaves[leaf].size)


def axis_index(tie: AxisTie, spec: PermutationSpec, idx: Indices) -> Tensor:
    """Source positions (``-1`` = zero) along a tied axis, given an index per leaf (identity where absent)."""
    parts, offset = [], 0
    for leaf in tie.segments:
        li = _leaf_index(spec, leaf, idx)
        parts.append(torch.where(li >= 0, li + offset, torch.full_like(li, -1)))
        offset += spec.leaves[leaf].size
    seg = torch.cat(parts)  # (w,) positions in the concatenated leaves of size `offset`
    outer = torch.arange(tie.outer)[:, None, None]
    inner = torch.arange(tie.inner)[None, None, :]
    full = (outer * offset + seg[None, :, None]) * tie.inner + inner  # (outer, w, inner)
    full = torch.where(seg[None, :, None] >= 0, full, torch.full_like(full, -1))
    return rearrange(full, "o w i -> (o w i)")


def axis_scale(tie: AxisTie, spec: PermutationSpec, scale: Indices) -> Tensor:
    """Per-position scale along a tied axis (1 where a leaf has no scale)."""
    parts = []
    for leaf in tie.segments:
        s = scale.get(leaf)
        parts.append(s if s is not None else torch.ones(spec.leaves[leaf].size))
    seg = torch.cat(parts)
    return rearrange(seg[None, :, None].expand(tie.outer, -1, tie.inner), "o w i -> (o w i)")


def gather_axis(t: Tensor, dim: int, index: Tensor) -> Tensor:
    """``t`` gathered along ``dim`` by ``index`` (an :func:`axis_index`); entries ``-1`` give zero slices."""
    if bool((index < 0).any()):
        zero = torch.zeros_like(t.narrow(dim, 0, 1))
        t = torch.cat([t, zero], dim)
        index = torch.where(index >= 0, index, torch.full_like(index, t.shape[dim] - 1))
    return t.index_select(dim, index.to(t.device))


def transform_state(
    spec: PermutationSpec,
    state: dict[str, Tensor],
    idx: Indices,
    scale: Indices | None = None,
) -> dict[str, Tensor]:
    """Gathers every tied axis of every tensor in ``state`` by ``idx``; ``scale`` multiplies "out" axes."""
    out: dict[str, Tensor] = {}
    for name, t in state.items():
        new = t
        for tie in spec.ties.get(name, []):
            if any(leaf in idx for leaf in tie.segments):
                new = gather_axis(new, tie.dim, axis_index(tie, spec, idx))
            if scale is not None and tie.role == "out":
                s = axis_scale(tie, spec, scale).to(new)
                shape = [1] * new.ndim
                shape[tie.dim] = -1
                new = new * s.view(shape)
        out[name] = new
    return out


def permute_state(spec: PermutationSpec, state: dict[str, Tensor], perms: Indices) -> dict[str, Tensor]:
    """``state`` with every group ``g`` reordered by ``perms[g]`` (new channel ``i`` = old ``perms[g][i]``)."""
    return transform_state(spec, state, perms)


def _leaf_widths(spec: PermutationSpec, leaves: tuple[int, ...], widths: dict[int, int]) -> int:
    return sum(widths.get(g, spec.leaves[g].size) for g in leaves)


def load_state(
    model: nn.Module, state: dict[str, Tensor], spec: PermutationSpec, widths: dict[int, int] | None = None
) -> nn.Module:
    """A copy of ``model`` holding ``state``, whose tensors may be wider or narrower than the model's.

    The width surgery is :func:`hyperzoo.nets.resize.resize_to_state`, the one that loads merged zoo entries:
    module attributes that describe widths (``in_channels``, ``out_channels``, ``num_features``, ``in_features``,
    ``out_features``, ``normalized_shape``, ``num_channels``, a depthwise convolution's ``groups``, and
    zero-padding shortcuts through the blocks' ``follow_widths``) are updated, so the copy is a real network of the
    new widths, not tensors behind stale metadata. The spec adds what no tensor says: the channel counts of every
    parameter-free module the tracer saw with ``in_channels``/``out_channels`` (``spec.channel_modules``) follow
    the widths of their leaves, in any traced network, whether or not its blocks have a ``follow_widths`` hook.

    Args:
        model: the template network (not modified).
        state: the new state dict (every tensor of ``model.state_dict()``).
        spec: the template's spec (for parameter-free modules whose behaviour depends on widths).
        widths: new width per leaf (for those modules); None keeps the template's widths.

    Raises:
        DataError: ``state`` does not fit the template's tensors (names, dimensions, kernels), as
            :func:`~hyperzoo.nets.resize.resize_to_state` says.
    """
    new = resize_to_state(copy.deepcopy(model), state, f"the state for {type(model).__name__}")
    if widths:
        for name, in_leaves, out_leaves in spec.channel_modules:
            shortcut: Any = new.get_submodule(name)
            shortcut.in_channels = _leaf_widths(spec, in_leaves, widths)
            shortcut.out_channels = _leaf_widths(spec, out_leaves, widths)
    return new


def check_spec(
    model: nn.Module, spec: PermutationSpec, inputs: Tensor | None = None, seed: int = 0
) -> tuple[float, float]:
    """Permutes every group of ``model`` randomly and measures how much its outputs move.

    Returns:
        ``(max |out - out_permuted|, max |out|)`` on ``inputs`` (default:
        :func:`~hyperzoo.merge.spec.example_input`), eval mode.
    """
    x = inputs if inputs is not None else example_input(model, spec.input_shape[-1])
    perms = random_permutations(spec, torch.Generator().manual_seed(seed))
    permuted = load_state(model, permute_state(spec, model.state_dict(), perms), spec)
    model.eval()
    permuted.eval()
    with torch.no_grad():
        a, b = model(x), permuted(x)
    ta = torch.cat([t.flatten() for t in tree_flatten(a)[0] if isinstance(t, Tensor)])
    tb = torch.cat([t.flatten() for t in tree_flatten(b)[0] if isinstance(t, Tensor)])
    return float((ta - tb).abs().max()), float(ta.abs().max())
