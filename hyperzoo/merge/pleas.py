"""PLeaS: partial matching to a target width, then a layer-wise closed-form least-squares refit.

Nasery et al., "PLeaS: Merging Models with Permutations and Least Squares", CVPR 2025. Given two models and
matched channels (``perm[g][i]``: the B channel matched to A channel ``i``, with similarity ``c_i``):

1. **Partial merge.** For a group of ``n`` channels and target width ``w`` in ``[n, 2n]`` keep the ``k = 2n - w``
   most similar pairs merged and the other ``n - k`` channels of each model separate. The merged layer's
   channels are ``[merged pairs | A-only | B-only]``; merged features approximate ``(h_A + h_B) / 2``, separate
   ones are copies. With merge matrices ``M_A, M_B`` (0.5 on a merged pair, 1 on a separate channel) and
   unmerge matrices ``U_A, U_B`` (0/1) every layer starts at ``W = M_A W_A U_A + M_B W_B U_B``
   (:func:`hyperzoo.merge.permute.transform_state`): averaging on merged blocks, copies on separate ones, zero
   between A-only and B-only channels.
2. **Least squares.** Each conv/linear layer is refit on the source models' activations: input
   ``x = M_A x_A + M_B x_B`` (im2col patches for convolutions), target ``y = M_A y_A + M_B y_B``,
   ``W = argmin ||W x - y||^2 + lam ||W - W_init||^2`` in closed form (:class:`~hyperzoo.merge.lstsq.RidgeSolver`,
   not Adam). Every block is free, so the zero blocks are used once they are paid for.
3. **BN reset**: recompute BatchNorm statistics on training batches.

Compute is counted on the network that is stored and run: a dense model of the new widths (the reference
counted the zero blocks as free and reported x2.0 for a model that executes x3.9 the MACs).

Width: ``width`` in ``[1, 2]`` is the per-group width relative to one model (1 = fully merged, 2 = both models
side by side). Different label spaces: the output axes are never averaged; both heads are kept side by side
(``[A's classes | B's classes]``) and refit on their own model's outputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from hyperzoo.errors import ConfigError
from hyperzoo.merge.lstsq import RidgeSolver
from hyperzoo.merge.permute import (
    Indices,
    axis_index,
    axis_scale,
    fit_channel_modules,
    gather_axis,
    load_state,
    transform_state,
)
from hyperzoo.merge.spec import AxisTie, PermutationSpec

__all__ = ["MergePlan", "build_merged", "partial_plan", "refit_least_squares"]


@dataclass
class MergePlan:
    """Where every channel of the merged model comes from.

    Attributes:
        index_a: leaf -> for each merged channel, the A channel it reads (``-1``: none).
        index_b: leaf -> the same for B.
        scale: leaf -> 0.5 on channels both models feed (an average), 1 on separate ones.
        widths: leaf -> merged width.
    """

    index_a: Indices
    index_b: Indices
    scale: Indices
    widths: dict[int, int]

    def merged_fraction(self, spec: PermutationSpec) -> float:
        """Fraction of the groups' channels that are merged pairs (1 = a full merge)."""
        n = sum(spec.leaves[g].size for g in spec.groups)
        merged = sum(int((self.scale[g] == 0.5).sum()) for g in spec.groups)
        return merged / max(1, n)


def partial_plan(
    spec: PermutationSpec,
    perms: Indices,
    similarity: dict[int, Tensor] | None,
    width: float = 1.0,
    label_spaces: str = "same",
    template: nn.Module | None = None,
) -> MergePlan:
    """Chooses, per group, which matched pairs to merge so that its width is ``round(width * n)``.

    Args:
        spec: the architecture's spec.
        perms: matching (B channel for every A channel) per group.
        similarity: cost matrices in B's original basis (rows A, columns B); the pairs with the highest
            ``similarity[g][i, perm[i]]`` are merged first. None merges pairs in channel order.
        width: target width factor in ``[1, 2]``.
        label_spaces: ``"same"`` averages the outputs; ``"different"`` keeps both heads side by side.
        template: the network the spec was derived from. Given, the two zero blocks of each zero-padding
            shortcut get widths that its own (symmetric) split agrees with, a channel or so from
            ``round(width * n)`` where rounding would disagree (:func:`~hyperzoo.merge.permute.fit_channel_modules`);
            without it such a plan is refused when the merged model is built.

    Raises:
        ConfigError: ``width`` outside ``[1, 2]`` or an unknown ``label_spaces``.
    """
    if not 1.0 <= width <= 2.0:
        raise ConfigError(
            f"merge width must be in [1, 2] (1 = fully merged, 2 = both models side by side), got {width}"
        )
    if label_spaces not in ("same", "different"):
        raise ConfigError(f"label_spaces must be 'same' or 'different', got {label_spaces!r}")
    free = {
        g: leaf.size
        for g, leaf in enumerate(spec.leaves)
        if not leaf.fixed and not (g in spec.output_leaves and label_spaces == "different")
    }
    widths = {g: min(2 * n, max(n, int(round(width * n)))) for g, n in free.items()}
    if template is not None:
        widths = fit_channel_modules(template, spec, widths, {g: (n, 2 * n) for g, n in free.items()})
    ia: Indices = {}
    ib: Indices = {}
    scale: Indices = {}
    for leaf_id, leaf in enumerate(spec.leaves):
        n = leaf.size
        ar = torch.arange(n)
        if leaf_id in spec.output_leaves and label_spaces == "different":
            ia[leaf_id] = torch.cat([ar, torch.full((n,), -1)])
            ib[leaf_id] = torch.cat([torch.full((n,), -1), ar])
            scale[leaf_id], widths[leaf_id] = torch.ones(2 * n), 2 * n
            continue
        if leaf.fixed:
            ia[leaf_id], ib[leaf_id], scale[leaf_id], widths[leaf_id] = ar, ar, torch.full((n,), 0.5), n
            continue
        perm = perms.get(leaf_id, ar)
        k = 2 * n - widths[leaf_id]  # merged pairs
        if similarity is not None and leaf_id in similarity:
            matched = similarity[leaf_id][ar, perm]
            order = torch.argsort(matched, descending=True, stable=True)
        else:
            order = ar
        merged = order[:k].sort().values
        sep_a = order[k:].sort().values
        sep_b = perm[sep_a].sort().values
        none = torch.full((n - k,), -1)
        ia[leaf_id] = torch.cat([merged, sep_a, none])
        ib[leaf_id] = torch.cat([perm[merged], none, sep_b])
        scale[leaf_id] = torch.cat([torch.full((k,), 0.5), torch.ones(2 * (n - k))])
    return MergePlan(ia, ib, scale, widths)


def build_merged(model_a: nn.Module, model_b: nn.Module, spec: PermutationSpec, plan: MergePlan) -> nn.Module:
    """The merged network ``M_A W_A U_A + M_B W_B U_B`` at the plan's widths (a copy of A's architecture).

    Tensors with no tied axis are averaged (floating point) or taken from A (integer counters).
    """
    sa, sb = model_a.state_dict(), model_b.state_dict()
    spec.check_compatible(sb)
    ta = transform_state(spec, sa, plan.index_a, plan.scale)
    tb = transform_state(spec, sb, plan.index_b, plan.scale)
    merged: dict[str, Tensor] = {}
    for name, a in sa.items():
        ties = spec.ties.get(name, [])
        if not a.is_floating_point():
            merged[name] = ta[name]
        elif not ties or not any(t.role == "out" for t in ties):
            merged[name] = 0.5 * (ta[name] + tb[name])
        else:
            merged[name] = ta[name] + tb[name]
    model = load_state(model_a, merged, spec, plan.widths)
    try:
        x = torch.zeros(spec.input_shape, device=next(model.parameters()).device)
        model.eval()
        with torch.no_grad():
            model(x)
    except RuntimeError as e:
        raise ConfigError(
            f"the merged {type(model_a).__name__} at these widths does not run ({e}); a parameter-free module "
            "depends on widths in a way hyperzoo cannot update: merge at width 1.0, or use projection shortcuts "
            "(shortcut='B' for CIFAR ResNets)"
        ) from None
    return model


def _merge_activation(
    x_a: Tensor, x_b: Tensor, dim: int, tie: AxisTie, spec: PermutationSpec, plan: MergePlan
) -> Tensor:
    """``M_A x_A + M_B x_B`` along ``dim`` (the channel layout of axis ``tie``)."""
    scale = axis_scale(tie, spec, plan.scale).to(x_a)
    shape = [1] * x_a.ndim
    shape[dim] = -1
    ga = gather_axis(x_a, dim, axis_index(tie, spec, plan.index_a))
    gb = gather_axis(x_b, dim, axis_index(tie, spec, plan.index_b))
    return (ga + gb) * scale.view(shape)


def _fit_layers(merged: nn.Module, spec: PermutationSpec) -> dict[str, tuple[AxisTie, AxisTie]]:
    """Conv (ungrouped) and linear layers of the merged model with their weight's input and output ties."""
    layers = {}
    for name, module in merged.named_modules():
        if isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1):
            ties = {t.dim: t for t in spec.ties.get(f"{name}.weight", [])}
            if 0 in ties and 1 in ties:
                layers[name] = (ties[1], ties[0])
    return layers


def _padding(conv: nn.Conv2d) -> tuple[int, int]:
    """The conv's explicit zero padding; other paddings are refused."""
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ConfigError(
            f"least-squares refit supports zero-padded convolutions with explicit padding, not "
            f"padding={conv.padding!r}, padding_mode={conv.padding_mode!r}"
        )
    return int(conv.padding[0]), int(conv.padding[1])


def _patches(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """im2col rows ``(B * L, C * kh * kw)`` of a conv's input (``F.unfold`` order)."""
    cols = F.unfold(x, conv.kernel_size, dilation=conv.dilation, padding=_padding(conv), stride=conv.stride)
    return rearrange(cols, "b d l -> (b l) d")


def _sampled_patches(x: Tensor, conv: nn.Conv2d, keep: Tensor, out_hw: Sequence[int]) -> Tensor:
    """Rows ``keep`` (flat ``b * L + l`` indices) of :func:`_patches`, gathered without the full im2col.

    A 128-image batch at 32x32 has 131,072 patch rows; the refit keeps 8,192 of them, so gathering only those
    avoids materialising (and then indexing) a matrix 16x larger than what is used.
    """
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv.kernel_size, conv.stride, _padding(conv), conv.dilation
    oh, ow = out_hw
    xp = F.pad(x, (pw, pw, ph, ph))
    pixels = xp.flatten(2).transpose(1, 2)  # (B, Hp * Wp, C): one gather per tap reads a whole channel vector
    b, pos = keep // (oh * ow), keep % (oh * ow)
    rows = (pos // ow * sh)[:, None] + torch.arange(kh, device=x.device)[None, :] * dh  # (N, kh)
    cols = (pos % ow * sw)[:, None] + torch.arange(kw, device=x.device)[None, :] * dw  # (N, kw)
    taps = (rows[:, :, None] * xp.shape[3] + cols[:, None, :]).reshape(keep.shape[0], -1)  # (N, kh * kw)
    patches = pixels[b[:, None], taps]  # (N, kh * kw, C)
    return patches.transpose(1, 2).reshape(keep.shape[0], -1)


@torch.no_grad()
def refit_least_squares(
    merged: nn.Module,
    model_a: nn.Module,
    model_b: nn.Module,
    spec: PermutationSpec,
    plan: MergePlan,
    batches: Iterable[Any],
    num_batches: int = 20,
    ridge: float = 1e-3,
    rows_per_batch: int = 8192,
    seed: int = 0,
) -> dict[str, int]:
    """Refits every ungrouped conv and linear layer of ``merged`` in closed form (PLeaS step 2).

    Each layer is fitted independently: its input and target are the merged source-model activations
    ``M_A h_A + M_B h_B`` at that layer, so the refit needs one pass over ``num_batches`` batches.

    Args:
        merged: the merged model from :func:`build_merged` (modified in place).
        model_a: source model A.
        model_b: source model B.
        spec: the shared spec.
        plan: the partial-merge plan.
        batches: input batches (tensors or ``(x, y)``).
        num_batches: batches to accumulate Gram matrices over.
        ridge: relative ridge strength towards the initial merged weights; with 0 the solve needs as many
            samples (rows) as inputs per output, else it raises DataError.
        rows_per_batch: rows (pixels x images) kept per layer and batch, a random subset.
        seed: seed of that subset.

    Returns:
        The number of rows each layer was fitted on.
    """
    layers = _fit_layers(merged, spec)
    mods_m = dict(merged.named_modules())
    mods = (dict(model_a.named_modules()), dict(model_b.named_modules()))
    solvers: dict[str, RidgeSolver] = {}
    for name in layers:
        m = mods_m[name]
        w = m.weight
        solvers[name] = RidgeSolver(w[0].numel(), w.shape[0], bias=m.bias is not None, ridge=ridge)
    caught, handles = _catch_layer_io(layers, mods)
    was = model_a.training, model_b.training
    model_a.eval()
    model_b.eval()
    gen = torch.Generator().manual_seed(seed)
    device = next(model_a.parameters()).device
    try:
        for i, batch in enumerate(batches):
            if i >= num_batches:
                break
            x = (batch[0] if isinstance(batch, (list, tuple)) else batch).to(device)
            model_a(x)
            model_b(x)
            for name, ties in layers.items():
                rows_x, rows_y = _layer_rows(
                    mods_m[name], caught[0][name], caught[1][name], ties, spec, plan, rows_per_batch, gen
                )
                solvers[name].update(rows_x, rows_y)
    finally:
        for h in handles:
            h.remove()
        model_a.train(was[0])
        model_b.train(was[1])
    return _write_solutions(solvers, mods_m)


def _write_solutions(solvers: dict[str, RidgeSolver], mods_m: dict[str, Any]) -> dict[str, int]:
    """Solves each layer's ridge problem, writes the weights (and biases) into the merged layer in place.

    Returns:
        The number of rows each layer was fitted on.
    """
    counts = {}
    for name, solver in solvers.items():
        m = mods_m[name]
        w, b = solver.solve(m.weight, m.bias)
        m.weight.copy_(w.reshape(m.weight.shape))
        if b is not None and m.bias is not None:
            m.bias.copy_(b)
        counts[name] = solver.n
    return counts


_LayerIO = dict[str, tuple[Tensor, Tensor]]


def _catch_layer_io(
    layers: Iterable[str], mods: tuple[dict[str, nn.Module], dict[str, nn.Module]]
) -> tuple[tuple[_LayerIO, _LayerIO], list[torch.utils.hooks.RemovableHandle]]:
    """Forward hooks that keep the latest (input, output) of each layer of both source models.

    Returns:
        ``caught[side][name]`` (filled on each forward pass of model A (side 0) / B (side 1)), and the hook
        handles to remove.
    """
    caught: tuple[_LayerIO, _LayerIO] = ({}, {})
    handles = []
    for side in (0, 1):
        for name in layers:

            def hook(mod: nn.Module, inp: Any, out: Tensor, name: str = name, side: int = side) -> None:
                caught[side][name] = (inp[0].detach(), out.detach())

            handles.append(mods[side][name].register_forward_hook(hook))
    return caught, handles


def _layer_rows(
    m: nn.Module,
    io_a: tuple[Tensor, Tensor],
    io_b: tuple[Tensor, Tensor],
    ties: tuple[AxisTie, AxisTie],
    spec: PermutationSpec,
    plan: MergePlan,
    rows_per_batch: int,
    gen: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Least-squares rows ``(inputs, targets)`` of merged layer ``m`` from one batch of source activations.

    Inputs and targets are the merged activations ``M_A h_A + M_B h_B`` (im2col patches for convs); at most
    ``rows_per_batch`` rows are kept, a random subset drawn from ``gen``.
    """
    (xa, ya), (xb, yb) = io_a, io_b
    tie_in, tie_out = ties
    cdim = 1 if isinstance(m, nn.Conv2d) else xa.ndim - 1
    xm = _merge_activation(xa, xb, cdim, tie_in, spec, plan)
    ym = _merge_activation(ya, yb, cdim, tie_out, spec, plan)
    conv = isinstance(m, nn.Conv2d)
    rows_y = rearrange(ym, "b c h w -> (b h w) c") if conv else ym.reshape(-1, ym.shape[-1])
    keep = None
    if rows_y.shape[0] > rows_per_batch:
        keep = torch.randperm(rows_y.shape[0], generator=gen)[:rows_per_batch].to(ym.device)
        rows_y = rows_y[keep]
    if isinstance(m, nn.Conv2d):  # only the kept im2col rows are gathered
        rows_x = _patches(xm, m) if keep is None else _sampled_patches(xm, m, keep, ym.shape[2:])
    else:
        rows_x = xm.reshape(-1, xm.shape[-1])
        rows_x = rows_x if keep is None else rows_x[keep]
    return rows_x, rows_y
