"""Tracer handlers for operations that move, merge or split axes: views, permutes, cat, split, pad, indexing.

A mixin of :class:`~hyperzoo.merge.trace.Tracer`; see there for the label conventions. A view that merges a
channel axis with spatial ones gives a flattened label (``outer``/``inner`` factors); a view that splits a
channel axis keeps the label only when it undoes such a flattening, and fixes the channels otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from torch import Tensor

from hyperzoo.merge.spaces import Label, Spaces

__all__ = ["ShapeOps", "call_arg"]

Labels = tuple[Label | None, ...]


def call_arg(args: tuple, kwargs: dict, i: int, name: str, default: Any = None) -> Any:
    """Argument ``i`` (positional) or ``name`` (keyword) of a traced call, else ``default``."""
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


class ShapeOps:
    """Handlers ``_op_<name>`` and ``_reshape`` for axis-moving operations (needs the Tracer's label API)."""

    spaces: Spaces

    def get(self, t: Any) -> Labels:  # provided by Tracer
        raise NotImplementedError

    def set(self, t: Tensor, labels: Labels) -> None:
        raise NotImplementedError

    def fix_label(self, lab: Label | None) -> None:
        raise NotImplementedError

    def fix_all(self, *tensors: Any) -> None:
        raise NotImplementedError

    def tie(self, a: Label | None, b: Label | None) -> Label | None:
        raise NotImplementedError

    def _op_permute(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0]
        dims = (
            args[1:]
            if len(args) > 2 or (len(args) == 2 and isinstance(args[1], int))
            else (args[1] if len(args) > 1 else kwargs["dims"])
        )
        labels = self.get(x)
        self.set(out, tuple(labels[int(d) % x.ndim] for d in dims))

    def _op_transpose(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0]
        d0, d1 = int(call_arg(args, kwargs, 1, "dim0")) % x.ndim, int(call_arg(args, kwargs, 2, "dim1")) % x.ndim
        labels = list(self.get(x))
        labels[d0], labels[d1] = labels[d1], labels[d0]
        self.set(out, tuple(labels))

    _op_swapaxes = _op_transpose

    def _op_t(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        self.set(out, tuple(reversed(self.get(args[0]))))

    def _op_expand(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0]
        labels = self.get(x)
        new = out.ndim - x.ndim
        self.set(
            out,
            (None,) * new + tuple(lab if x.shape[d] == out.shape[new + d] else None for d, lab in enumerate(labels)),
        )

    _op_expand_as = _op_expand

    def _reshape(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0]
        if not isinstance(out, Tensor):
            return
        self.set(out, self._reshape_labels(x, tuple(out.shape)))

    def _reshape_labels(self, x: Tensor, out_shape: tuple[int, ...]) -> Labels:
        """Labels after a view: carried, flattened into a (space, outer, inner) label, or fixed on a split."""
        labels = self.get(x)
        ins = [(d, s) for d, s in enumerate(x.shape) if s > 1]
        outs = [(d, s) for d, s in enumerate(out_shape) if s > 1]
        result: list[Label | None] = [None] * len(out_shape)
        i = j = 0
        while i < len(ins) and j < len(outs):
            gi, gj = [ins[i]], [outs[j]]
            pi, pj = ins[i][1], outs[j][1]
            i, j = i + 1, j + 1
            while pi != pj:
                if pi < pj:
                    gi.append(ins[i])
                    pi *= ins[i][1]
                    i += 1
                else:
                    gj.append(outs[j])
                    pj *= outs[j][1]
                    j += 1
            labelled = [(k, labels[d]) for k, (d, _) in enumerate(gi) if labels[d] is not None]
            if len(gj) == 1 and len(gi) == 1:
                result[gj[0][0]] = labels[gi[0][0]]
            elif len(gj) == 1 and len(labelled) == 1:  # merge: one channel axis among spatial ones
                k, lab = labelled[0]
                assert lab is not None
                outer = math.prod(s for _, s in gi[:k])
                inner = math.prod(s for _, s in gi[k + 1 :])
                result[gj[0][0]] = Label(lab.space, lab.outer * outer, lab.inner * inner)
            elif len(gi) == 1 and len(gj) > 1 and labelled:  # split: only undoing a flatten keeps the label
                lab = labelled[0][1]
                assert lab is not None
                size = self.spaces.size[self.spaces.find(lab.space)]
                acc, found = 1, False
                for d, s in gj:
                    if acc == lab.outer and s == size and acc * s * lab.inner == pj:
                        result[d], found = Label(lab.space), True
                    acc *= s
                if not found:
                    self.fix_label(lab)
            else:
                for _, lab in labelled:
                    self.fix_label(lab)
        return tuple(result)

    def _op_cat(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        tensors = list(call_arg(args, kwargs, 0, "tensors"))
        dim = int(call_arg(args, kwargs, 1, "dim", 0)) % out.ndim
        labels: list[Label | None] = [None] * out.ndim
        for d in range(out.ndim):
            if d == dim:
                parts = []
                for t in tensors:
                    lab = self.get(t)[d]
                    if lab is None or not lab.plain:
                        self.fix_label(lab)
                        lab = Label(self.spaces.new(t.shape[d], fixed=True))
                    parts.append(lab.space)
                labels[d] = Label(self.spaces.split([], parts))
            else:
                cur = None
                for k, t in enumerate(tensors):
                    cur = self.get(t)[d] if k == 0 else self.tie(cur, self.get(t)[d])
                labels[d] = cur
        self.set(out, tuple(labels))

    _op_concat = _op_cat
    _op_concatenate = _op_cat

    def _op_split(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0]
        dim = int(kwargs.get("dim", args[2] if len(args) > 2 else 0)) % x.ndim
        labels = list(self.get(x))
        lab = labels[dim]
        pieces = list(out)
        if lab is not None and len(pieces) > 1:
            if lab.plain:
                split = self.spaces.split([t.shape[dim] for t in pieces])
                self.spaces.union(lab.space, split)
                parts: list[int | None] = list(self.spaces.parts[split])
            else:
                self.fix_label(lab)
                parts = [None] * len(pieces)
        else:
            parts = [lab.space if lab is not None else None] * len(pieces)
        for t, p in zip(pieces, parts, strict=True):
            labels[dim] = Label(p) if p is not None else None
            self.set(t, tuple(labels))

    _op_chunk = _op_split
    _op_split_with_sizes = _op_split
    _op_tensor_split = _op_split

    def _op_pad(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x, pad = args[0], list(call_arg(args, kwargs, 1, "pad"))
        mode = call_arg(args, kwargs, 2, "mode", "constant")
        labels = list(self.get(x))
        for k in range(len(pad) // 2):
            d = x.ndim - 1 - k
            lo, hi = pad[2 * k], pad[2 * k + 1]
            lab = labels[d]
            if lab is None or (lo == 0 and hi == 0):
                continue
            if lo < 0 or hi < 0 or mode != "constant" or not lab.plain:
                self.fix_label(lab)
                labels[d] = None
                continue
            parts = [
                p
                for p in (self.spaces.new(lo) if lo else None, lab.space, self.spaces.new(hi) if hi else None)
                if p is not None
            ]
            labels[d] = Label(self.spaces.split([], parts))
        self.set(out, tuple(labels))

    def _op_getitem(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x, index = args[0], args[1]
        if not isinstance(out, Tensor):
            return
        index = index if isinstance(index, tuple) else (index,)
        if any(isinstance(i, (Tensor, list)) or i is True or i is False for i in index):
            self.fix_all(x)
            self.set(out, (None,) * out.ndim)
            return
        n_real = sum(1 for i in index if i is not None and i is not Ellipsis)
        expanded: list[Any] = []
        for i in index:
            if i is Ellipsis:
                expanded.extend([slice(None)] * (x.ndim - n_real))
            else:
                expanded.append(i)
        labels = self.get(x)
        res: list[Label | None] = []
        d = 0
        for i in expanded:
            if i is None:
                res.append(None)
                continue
            lab = labels[d]
            if isinstance(i, slice):
                if i == slice(None) or slice(*i.indices(x.shape[d])) == slice(0, x.shape[d], 1):
                    res.append(lab)
                else:
                    self.fix_label(lab)
                    res.append(None)
            else:  # an integer: that dim disappears
                self.fix_label(lab)
            d += 1
        res.extend(labels[d:])
        self.set(out, tuple(res))

    def _op_stack(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        tensors = list(call_arg(args, kwargs, 0, "tensors"))
        dim = int(call_arg(args, kwargs, 1, "dim", 0)) % out.ndim
        labels: list[Label | None] = []
        for d in range(tensors[0].ndim):
            cur = None
            for k, t in enumerate(tensors):
                cur = self.get(t)[d] if k == 0 else self.tie(cur, self.get(t)[d])
            labels.append(cur)
        labels.insert(dim, None)
        self.set(out, tuple(labels))
