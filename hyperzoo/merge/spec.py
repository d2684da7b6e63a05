"""Permutation specs derived from the computation graph: which channels of which tensors move together.

A *group* is a set of channel axes (across parameters, buffers and activations) that one permutation must
reorder together for the network's function to stay the same: a conv's output axis, the next BatchNorm's
four vectors, the next conv's input axis, and, through residual sums, every tensor on a residual stream.
:func:`derive_spec` finds them from one traced forward pass (:class:`~hyperzoo.merge.trace.Tracer`); nothing is
written by hand per architecture. Zero-padding shortcuts and ``cat`` make a stream out of several groups
(the permutation is block-diagonal); grouped convolutions and GroupNorm allow permutations only inside their
groups; the input and output axes never move.

Validity is checked the direct way (:func:`hyperzoo.merge.permute.check_spec`): permute every group randomly, run
both networks on the same input, compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.utils._pytree import tree_flatten

from hyperzoo.errors import ConfigError
from hyperzoo.merge.spaces import Label
from hyperzoo.merge.trace import Tracer
from hyperzoo.nets.compute import example_input

__all__ = ["AxisTie", "Leaf", "PermutationSpec", "Site", "derive_spec", "example_input"]


@dataclass(frozen=True)
class AxisTie:
    """Axis ``dim`` of state tensor ``name``: ``outer`` x (the leaves in ``segments``, in order) x ``inner``.

    ``role`` is ``"in"`` for axes a layer reads (conv/linear input channels) and ``"out"`` for per-channel axes
    (conv/linear outputs, norm parameters and statistics, biases).
    """

    name: str
    dim: int
    role: str
    segments: tuple[int, ...]
    outer: int = 1
    inner: int = 1


@dataclass
class Leaf:
    """One permutation group (or a fixed block of channels): its size and the axes it reorders."""

    size: int
    fixed: bool
    members: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The first tensor axis that belongs to the group, e.g. ``layer1.0.conv1.weight:0``."""
        return self.members[0] if self.members else "?"


@dataclass(frozen=True)
class Site:
    """An activation: output axis ``dim`` of module ``module`` is the leaves ``segments`` (for matching)."""

    module: str
    dim: int
    segments: tuple[int, ...]


@dataclass
class PermutationSpec:
    """Everything :mod:`hyperzoo.merge` needs about a network's permutation symmetries.

    Attributes:
        leaves: every channel block; the free ones (``groups``) can be permuted, fixed ones never.
        ties: state-tensor name -> the axes of that tensor tied to leaves.
        shapes: state-tensor name -> shape, to check that another model fits the spec.
        sites: module outputs whose channels belong to groups (activation matching reads them).
        channel_modules: parameter-free modules with ``in_channels``/``out_channels`` attributes (zero-padding
            shortcuts) and the leaves of their input and output channels, to update them when widths change.
        notes: axes left unpermuted because an operation was not understood (``strict=False``).
        input_shape: the traced input shape.
        output_leaves: the leaves of the output axes (logits), fixed; merging models with different label
            spaces keeps them side by side instead of averaging them.
    """

    leaves: list[Leaf]
    ties: dict[str, list[AxisTie]]
    shapes: dict[str, tuple[int, ...]]
    sites: list[Site]
    channel_modules: list[tuple[str, tuple[int, ...], tuple[int, ...]]]
    notes: list[str]
    input_shape: tuple[int, ...]
    output_leaves: tuple[int, ...] = ()

    @property
    def groups(self) -> list[int]:
        """Indices of the leaves that can be permuted."""
        return [i for i, leaf in enumerate(self.leaves) if not leaf.fixed]

    def group_sizes(self) -> dict[int, int]:
        return {g: self.leaves[g].size for g in self.groups}

    def check_compatible(self, state: dict[str, Tensor], what: str = "model B") -> None:
        """Raises ConfigError unless ``state`` has exactly the traced tensors with the traced shapes."""
        missing = [k for k in self.shapes if k not in state]
        extra = [k for k in state if k not in self.shapes and state[k].is_floating_point()]
        if missing or extra:
            raise ConfigError(
                f"{what} is a different architecture: {len(missing)} tensors missing (e.g. {missing[:3]}), "
                f"{len(extra)} unexpected (e.g. {extra[:3]}); merge two instances of the same architecture"
            )
        for k, shape in self.shapes.items():
            if tuple(state[k].shape) != shape:
                raise ConfigError(
                    f"{what} is a different architecture: tensor {k!r} has shape {tuple(state[k].shape)}, "
                    f"expected {shape}; merge two models of the same architecture and width"
                )

    def describe(self) -> str:
        """One line per group: index, size and the first tensor axis in it."""
        lines = [f"{len(self.groups)} permutation groups ({len(self.leaves) - len(self.groups)} fixed blocks)"]
        for g in self.groups:
            leaf = self.leaves[g]
            lines.append(f"  group {g:4d}  size {leaf.size:5d}  {len(leaf.members):3d} axes  e.g. {leaf.name}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def derive_spec(
    model: nn.Module,
    inputs: Tensor | Sequence[Tensor] | None = None,
    input_size: int | None = None,
    strict: bool = True,
) -> PermutationSpec:
    """Derives the permutation groups of ``model`` from one traced forward pass.

    Args:
        model: any network built from the operations :mod:`hyperzoo.merge.trace` knows (convolutions, linear
            layers, norms, pooling, elementwise ops, residual sums, concatenation, reshapes).
        inputs: example input(s); None uses :func:`example_input`.
        input_size: image side for the default input.
        strict: raise on an operation with no permutation rule (naming it and its module) instead of fixing
            the channels it touches.

    Returns:
        The spec; its ``groups`` are the permutable channel blocks.

    Raises:
        ConfigError: ``strict`` and an unsupported operation (e.g. attention) meets permutable channels.
    """
    if inputs is None:
        inputs = example_input(model, input_size)
    args = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    was_training = model.training
    model.eval()
    tracer = Tracer(model, strict=strict)
    handles = list(tracer.hooks())
    try:
        with torch.no_grad(), tracer:
            out = model(*args)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    sp = tracer.spaces
    out_labels = [lab for t in tree_flatten(out)[0] if isinstance(t, Tensor) for lab in tracer.get(t)]
    for lab in out_labels:  # the outputs' axes are part of the function: never permuted
        tracer.fix_label(lab)
    flags = sp.leaf_flags()
    index: dict[int, int] = {}
    leaves: list[Leaf] = []

    def segs(lab: Label) -> tuple[int, ...]:
        out_ids = []
        for r in sp.leaves(lab.space):
            if r not in index:
                fixed, active = flags.get(r, (sp.fixed[r], sp.active[r]))
                index[r] = len(leaves)
                leaves.append(Leaf(sp.size[r], fixed or not active or sp.size[r] == 1))
            out_ids.append(index[r])
        return tuple(out_ids)

    state = dict(model.state_dict(keep_vars=True))
    ties: dict[str, list[AxisTie]] = {}
    for (name, dim), lab in sorted(tracer.state_labels.items()):
        ids = segs(lab)
        tie = AxisTie(name, dim, tracer.roles.get((name, dim), "out"), ids, lab.outer, lab.inner)
        size = sum(leaves[i].size for i in ids) * lab.outer * lab.inner
        if name in state and size != state[name].shape[dim]:
            raise RuntimeError(f"internal: axis {name}:{dim} has {state[name].shape[dim]} entries, spec {size}")
        ties.setdefault(name, []).append(tie)
        for i in set(ids):
            leaves[i].members.append(f"{name}:{dim}")
    sites = []
    for module, dim, lab in tracer.sites:
        ids = segs(lab)
        if any(not leaves[i].fixed for i in ids):
            sites.append(Site(module, dim, ids))
    channel_modules = [
        (name, segs(a), segs(b)) for name, a, b in tracer.channel_attrs if a is not None and b is not None
    ]
    shapes = {k: tuple(v.shape) for k, v in state.items() if v.is_floating_point()}
    outputs = tuple(dict.fromkeys(i for lab in out_labels if lab is not None for i in segs(lab)))
    return PermutationSpec(leaves, ties, shapes, sites, channel_modules, tracer.notes, tuple(args[0].shape), outputs)
