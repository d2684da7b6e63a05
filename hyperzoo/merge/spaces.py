"""Channel spaces: a union-find over tensor axes that must be permuted together, with splits.

Every channel-like axis seen while tracing a network gets a *space*. Operations tie spaces together (a conv's
input axis and its weight's axis 1, both operands of a residual sum, ...) by :meth:`Spaces.union`. Some
operations build one space out of others: ``cat`` along channels, or a zero-padding shortcut that embeds a
16-channel stream in the middle of a 32-channel one. Such a space has *parts* (a split): its permutation is
block-diagonal, one block per part. Tying a plain space to a split one makes both split; tying two split
spaces with different boundaries refines both to their common boundaries. After tracing, every space expands
into *leaves* (spaces without parts): a leaf is one permutation group, fixed (never permuted) when it touches
the network's input or output or an operation that is not permutation-equivariant.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate, pairwise

__all__ = ["Label", "Spaces"]


@dataclass(frozen=True)
class Label:
    """The channel space of one tensor dimension.

    A plain label (``outer == inner == 1``) says that index ``c`` of the dimension is unit ``c`` of ``space``.
    A flattened label (after ``flatten`` of ``(C, H, W)``) says that index ``(o * C + c) * inner + i`` is unit
    ``c``: permuting the space permutes blocks of ``inner`` consecutive entries, ``outer`` times over.
    """

    space: int
    outer: int = 1
    inner: int = 1

    @property
    def plain(self) -> bool:
        """Whether the dimension is exactly the space (no flattened factors)."""
        return self.outer == 1 and self.inner == 1


class Spaces:
    """Union-find over channel spaces with sizes, splits (parts), a fixed flag and an active flag.

    A space is *active* once an activation (not only a parameter) carries it; parameter axes that never meet
    an activation (kernel height/width) stay inactive and are never permuted.
    """

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.size: list[int] = []
        self.fixed: list[bool] = []
        self.active: list[bool] = []
        self.parts: dict[int, list[int]] = {}

    def new(self, size: int, fixed: bool = False) -> int:
        """A fresh space of ``size`` units."""
        self.parent.append(len(self.parent))
        self.size.append(int(size))
        self.fixed.append(fixed)
        self.active.append(False)
        return len(self.parent) - 1

    def split(self, sizes: list[int], parts: list[int] | None = None) -> int:
        """A fresh space made of consecutive parts (fresh ones of ``sizes``, or the given ``parts``)."""
        parts = parts if parts is not None else [self.new(s) for s in sizes]
        root = self.new(sum(self.size[self.find(p)] for p in parts))
        self.parts[root] = list(parts)
        return root

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def fix(self, x: int) -> None:
        """Marks ``x`` as never permuted."""
        self.fixed[self.find(x)] = True

    def activate(self, x: int) -> None:
        self.active[self.find(x)] = True

    def leaves(self, x: int) -> list[int]:
        """The leaf roots that make up space ``x``, in order (a leaf may repeat)."""
        out: list[int] = []
        stack = [self.find(x)]
        while stack:  # iterative: splits can nest deeply in long networks
            r = self.find(stack.pop())
            if r in self.parts:
                stack.extend(reversed(self.parts[r]))
            else:
                out.append(r)
        return out

    def _flags(self, x: int) -> tuple[bool, bool]:
        """(fixed, active) of every leaf, inherited from the split spaces above it."""
        return self.fixed[self.find(x)], self.active[self.find(x)]

    def leaf_flags(self) -> dict[int, tuple[bool, bool]]:
        """Fixed and active flags of every leaf, with flags of split spaces pushed down to their leaves."""
        flags: dict[int, list[bool]] = {}
        for x in range(len(self.parent)):
            r = self.find(x)
            if r != x:
                continue
            fixed, active = self._flags(r)
            for leaf in self.leaves(r):
                f = flags.setdefault(leaf, [self.fixed[leaf], self.active[leaf]])
                f[0] |= fixed
                f[1] |= active
        return {k: (v[0], v[1]) for k, v in flags.items()}

    def _sizes(self, leaves: list[int]) -> list[int]:
        return [self.size[leaf] for leaf in leaves]

    def _refine(self, leaf: int, cuts: list[int]) -> None:
        """Splits a leaf at the relative offsets ``cuts`` (strictly inside it)."""
        bounds = [0, *cuts, self.size[leaf]]
        self.parts[leaf] = [self.new(b - a) for a, b in pairwise(bounds)]

    def union(self, a: int, b: int) -> None:
        """Ties spaces ``a`` and ``b`` (same size): they get one permutation."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] != self.size[rb]:
            raise ValueError(f"internal: tying spaces of sizes {self.size[ra]} and {self.size[rb]}")
        pa, pb = ra in self.parts, rb in self.parts
        if pa and not pb:
            ra, rb = rb, ra
            pa, pb = pb, pa
        # now: ra plain or both split; rb keeps its parts when only it is split
        if not pa:
            self.parent[ra] = rb
            self._merge_flags(rb, ra)
            return
        for _ in range(64):  # refine both sides to common leaf boundaries, then tie leaf by leaf
            la, lb = self.leaves(ra), self.leaves(rb)
            ca = list(accumulate(self._sizes(la)))
            cb = list(accumulate(self._sizes(lb)))
            if ca == cb:
                break
            cuts = sorted(set(ca) | set(cb))
            for leaves, ends in ((la, ca), (lb, cb)):
                start = 0
                for leaf, end in zip(leaves, ends, strict=True):
                    inner = [c - start for c in cuts if start < c < end]
                    if inner and leaf not in self.parts:
                        self._refine(self.find(leaf), inner)
                    start = end
        else:
            raise ValueError("internal: channel split refinement did not converge")
        self.parent[rb] = ra
        self._merge_flags(ra, rb)
        for x, y in zip(la, lb, strict=True):
            self.union(x, y)

    def _merge_flags(self, keep: int, gone: int) -> None:
        self.fixed[keep] |= self.fixed[gone]
        self.active[keep] |= self.active[gone]
