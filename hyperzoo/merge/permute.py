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

from hyperzoo.errors import ConfigError
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


def _embedded_at(in_leaves: tuple[int, ...], out_leaves: tuple[int, ...]) -> int | None:
    """Where the input's leaves sit, as one consecutive run, among the output's (None: they do not)."""
    n = len(in_leaves)
    for i in range(len(out_leaves) - n + 1):
        if out_leaves[i : i + n] == in_leaves:
            return i
    return None


def channel_offset(module: Any, in_channels: int, out_channels: int) -> int | None:
    """Where a parameter-free channel module puts its input channels among its outputs, at these widths.

    Probes ``module`` (set to ``in_channels``/``out_channels``, then restored) with one pixel whose channel ``c``
    holds ``c + 1``. A zero-padding shortcut returns its left padding (``(out - in) // 2`` for the symmetric
    :class:`~hyperzoo.nets.cifar_resnet.PadShortcut`).

    Returns:
        the output index of input channel 0, or None when the module does not copy its input channels, in
        order and side by side, into ``out_channels`` outputs that are otherwise zero (or fails on the probe).
    """
    saved = (module.in_channels, module.out_channels)
    module.in_channels, module.out_channels = in_channels, out_channels
    x = torch.arange(1, in_channels + 1, dtype=torch.float32).view(1, -1, 1, 1)
    try:
        with torch.no_grad():
            y = module(x)
    except (RuntimeError, ValueError, TypeError, IndexError):
        return None
    finally:
        module.in_channels, module.out_channels = saved
    if not isinstance(y, Tensor) or y.ndim < 2 or y.shape[1] != out_channels:
        return None
    v = y.reshape(y.shape[0], out_channels, -1)[0, :, 0]
    nonzero = v.nonzero().flatten()
    if len(nonzero) != in_channels or in_channels == 0:
        return None
    first = int(nonzero[0])
    if not torch.equal(nonzero, torch.arange(first, first + in_channels)) or not torch.equal(v[nonzero], x.flatten()):
        return None
    return first


def fit_channel_modules(
    model: nn.Module, spec: PermutationSpec, widths: dict[int, int], bounds: dict[int, tuple[int, int]]
) -> dict[int, int]:
    """Widths near ``widths`` at which every channel module places its input where the spec's leaves say.

    A zero-padding shortcut embeds its input (leaves ``I``) between two zero blocks (one leaf ``L`` before,
    one ``R`` after). New widths ``w_L, w_I, w_R`` put the input at offset ``w_L``, but the module decides its
    own offset from ``in``/``out`` alone (``PadShortcut``: ``(w_L + w_R) // 2``), so independent rounding of
    ``w_L`` and ``w_R`` can disagree with it and shift every channel of the shortcut. For each such module
    (in trace order, so nested shortcuts see their inner widths) this picks, among the totals ``w_L + w_R``
    closest to the requested one, the first whose split by the module fits both leaves' bounds. Modules of
    another shape are left to :func:`load_state`'s check.

    Args:
        model: the template network (its channel modules are probed, then restored).
        spec: its spec.
        widths: requested width per leaf.
        bounds: leaf -> (smallest, largest) width allowed; leaves not listed keep their width.

    Returns:
        a copy of ``widths`` with the two zero blocks of each such module adjusted.
    """
    widths = dict(widths)
    for name, in_leaves, out_leaves in spec.channel_modules:
        at = _embedded_at(in_leaves, out_leaves)
        if at != 1 or len(out_leaves) != len(in_leaves) + 2:  # not one zero block on each side
            continue
        left, right = out_leaves[0], out_leaves[-1]
        if left not in bounds or right not in bounds:
            continue
        w_in = _leaf_widths(spec, in_leaves, widths)
        want = _leaf_widths(spec, (left, right), widths)
        (lo_l, hi_l), (lo_r, hi_r) = bounds[left], bounds[right]
        module = model.get_submodule(name)
        for total in sorted(range(lo_l + lo_r, hi_l + hi_r + 1), key=lambda z: (abs(z - want), z)):
            offset = channel_offset(module, w_in, w_in + total)
            if offset is not None and lo_l <= offset <= hi_l and lo_r <= total - offset <= hi_r:
                widths[left], widths[right] = offset, total - offset
                break
    return widths


def _check_channel_modules(model: nn.Module, spec: PermutationSpec, widths: dict[int, int]) -> None:
    """Raises unless every channel module places its input where the leaves of the new widths put it."""
    for name, in_leaves, out_leaves in spec.channel_modules:
        module: Any = model.get_submodule(name)
        at = _embedded_at(in_leaves, out_leaves)
        want = None if at is None else _leaf_widths(spec, out_leaves[:at], widths)
        got = channel_offset(module, module.in_channels, module.out_channels)
        if want is None or got != want:
            where = "cannot be located" if got is None else f"at channel {got}"
            raise ConfigError(
                f"{name} ({type(module).__name__}, {module.in_channels} -> {module.out_channels} channels) places "
                f"its input {where}, but the new widths put it at channel {want}: its channels would be "
                "silently misplaced. Choose another width (PLeaS adjusts zero-padding shortcuts where their "
                "bounds allow), or use projection shortcuts (shortcut='B' for CIFAR ResNets)"
            )


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
        ConfigError: at ``widths`` a channel module would not place its input where the leaves put it (a
            zero-padding shortcut whose two zero blocks got other widths than its own split: see
            :func:`fit_channel_modules`).
    """
    new = resize_to_state(copy.deepcopy(model), state, f"the state for {type(model).__name__}")
    if widths:
        for name, in_leaves, out_leaves in spec.channel_modules:
            shortcut: Any = new.get_submodule(name)
            shortcut.in_channels = _leaf_widths(spec, in_leaves, widths)
            shortcut.out_channels = _leaf_widths(spec, out_leaves, widths)
        _check_channel_modules(new, spec, widths)
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
