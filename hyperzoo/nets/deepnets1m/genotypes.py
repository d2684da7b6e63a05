"""Cell genotypes of the DeepNets-1M search space and the random genotype sampler.

A genotype describes the two cell types of a DARTS-style network (Liu et al., "DARTS: Differentiable
Architecture Search", ICLR 2019): a *normal* cell and a *reduction* cell. Each cell has ``steps`` sum nodes;
sum node ``i`` adds two ops, each applied to one earlier state (0 and 1 are the two cell inputs, ``2 + j`` the
``j``-th sum node). The cell output concatenates the states listed in ``*_concat`` along channels.

DeepNets-1M (Knyazev et al., "Parameter Prediction for Unseen Deep Architectures", NeurIPS 2021) samples
genotypes over an extended op set, :data:`PRIMITIVES_DARTS_EXT` (15 ops, including self-attention ``msa`` and
channel squeeze-excitation ``cse``), the way a DARTS supernet with random architecture weights would be
discretised: random scores per (edge, op), each sum node keeps its two best-scoring incoming edges and each
edge its best op.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DARTS",
    "PDARTS",
    "PRIMITIVES_DARTS_EXT",
    "Genotype",
    "ViT",
    "sample_genotype",
]

PRIMITIVES_DARTS_EXT: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "conv_1x1",
    "conv_7x1_1x7",
    "conv_3x3",
    "conv_5x5",
    "conv_7x7",
    "msa",
    "cse",
)

# Ops without learnable parameters come first: ``only_pool`` reduction cells may only use these.
_FIRST_LEARNABLE = PRIMITIVES_DARTS_EXT.index("sep_conv_3x3")

Gene = tuple[tuple[str, int], ...]


def _gene(pairs: Iterable[Sequence[Any]]) -> Gene:
    return tuple((str(op), int(src)) for op, src in pairs)


@dataclass(frozen=True)
class Genotype:
    """The two cell types of a DARTS-style network.

    Behaves like the reference's ``namedtuple('Genotype', 'normal normal_concat reduce reduce_concat')``:
    fields are accessible by name and the object unpacks into these four values. Fields are tuples so a
    genotype is hashable and compares by value.

    Args:
        normal: ``(op_name, input_state)`` pairs of the normal cell, two per sum node.
        normal_concat: the states concatenated into the normal cell's output.
        reduce: the pairs of the reduction cell.
        reduce_concat: the states concatenated into the reduction cell's output.
    """

    normal: Gene
    normal_concat: tuple[int, ...]
    reduce: Gene
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        # accept lists (JSON) and ranges (the reference's PDARTS) and store canonical tuples
        object.__setattr__(self, "normal", _gene(self.normal))
        object.__setattr__(self, "reduce", _gene(self.reduce))
        object.__setattr__(self, "normal_concat", tuple(int(i) for i in self.normal_concat))
        object.__setattr__(self, "reduce_concat", tuple(int(i) for i in self.reduce_concat))
        for name, gene in (("normal", self.normal), ("reduce", self.reduce)):
            if len(gene) % 2:
                raise ValueError(f"genotype.{name} needs two (op, input) pairs per sum node, got {len(gene)}")

    def __iter__(self):  # namedtuple-style unpacking
        return iter((self.normal, self.normal_concat, self.reduce, self.reduce_concat))

    @property
    def steps(self) -> int:
        """Number of sum nodes per cell."""
        return len(self.normal) // 2

    def op_names(self) -> list[str]:
        """Op names of both cells (normal first)."""
        return [op for op, _ in self.normal + self.reduce]

    @property
    def is_vit(self) -> bool:
        """Whether any cell uses self-attention (the network then gets the ViT stem)."""
        return "msa" in self.op_names()

    def to_dict(self) -> dict[str, list]:
        """JSON-friendly form, the layout of DeepNets-1M ``net_args['genotype']``."""
        return {
            "normal": [[op, i] for op, i in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [[op, i] for op, i in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | Genotype) -> Genotype:
        """Inverse of :meth:`to_dict`; also accepts a Genotype or a reference namedtuple."""
        if isinstance(d, Genotype):
            return d
        if not isinstance(d, Mapping):  # namedtuple from the reference
            d = d._asdict()
        return cls(d["normal"], d["normal_concat"], d["reduce"], d["reduce_concat"])


# The cell found by DARTS (second order) on CIFAR-10, as shipped with the reference.
DARTS = Genotype(
    normal=[
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("skip_connect", 0),
        ("dil_conv_3x3", 2),
    ],
    normal_concat=[2, 3, 4, 5],
    reduce=[
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
    ],
    reduce_concat=[2, 3, 4, 5],
)

# Progressive DARTS (Chen et al., ICCV 2019).
PDARTS = Genotype(
    normal=[
        ("skip_connect", 0),
        ("dil_conv_3x3", 1),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 3),
        ("sep_conv_3x3", 0),
        ("dil_conv_5x5", 4),
    ],
    normal_concat=range(2, 6),
    reduce=[
        ("avg_pool_3x3", 0),
        ("sep_conv_5x5", 1),
        ("sep_conv_3x3", 0),
        ("dil_conv_5x5", 2),
        ("max_pool_3x3", 0),
        ("dil_conv_3x3", 1),
        ("dil_conv_3x3", 1),
        ("dil_conv_5x5", 3),
    ],
    reduce_concat=range(2, 6),
)

# A Vision Transformer expressed in the search space: every normal cell is one transformer block reading the
# previous cell, every reduction cell a 3x3 average pooling (the DeepNets-1M "predefined" ViT).
ViT = Genotype(
    normal=[("none", 0), ("msa", 1)],
    normal_concat=[2],
    reduce=[("none", 0), ("avg_pool_3x3", 1)],
    reduce_concat=[2],
)


def _parse_cell(scores: list[list[float]], steps: int, allow_none: bool) -> Gene:
    """Discretises random (edge, op) scores: per sum node its two best edges, per edge its best op.

    Rows of ``scores`` enumerate the candidate edges sum node by sum node (node ``i`` has ``i + 2``).
    """
    none = PRIMITIVES_DARTS_EXT.index("none")
    allowed = [k for k in range(len(PRIMITIVES_DARTS_EXT)) if allow_none or k != none]
    gene: list[tuple[str, int]] = []
    start = 0
    for i in range(steps):
        rows = scores[start : start + i + 2]
        # stable sort on the negated best score: ties keep the lower input index, like the reference
        best_edges = sorted(range(i + 2), key=lambda e: -max(rows[e][k] for k in allowed))[:2]
        for e in best_edges:
            k_best = max(allowed, key=lambda k: (rows[e][k], -k))
            gene.append((PRIMITIVES_DARTS_EXT[k_best], e))
        start += i + 2
    return tuple(gene)


def sample_genotype(
    rng: random.Random,
    steps: int = 1,
    only_pool: bool = False,
    allow_none: bool = True,
    drop_concat: bool = True,
    allow_transformer: bool = False,
) -> Genotype:
    """Samples a random genotype the way DeepNets-1M does.

    Random architecture scores ``N(0, 1)`` per (edge, op) are discretised as DARTS does with its learned
    weights. The reference draws ``1e-3 * randn`` and applies a softmax first; both are monotone, so the
    argmax choices follow the same distribution.

    Args:
        rng: the random stream (never the global one, so a sample is a function of its seed).
        steps: sum nodes per cell.
        only_pool: the reduction cell may only use parameter-free ops (none, pools, skip).
        allow_none: the ``none`` (zero) op may be chosen; it makes sparse cells.
        drop_concat: drop each sum node but the last from the cell output with probability 1/2.
        allow_transformer: ``msa`` may be chosen.

    Returns:
        A genotype whose normal and reduction cells share the same ``concat``.
    """
    n_edges = sum(i + 2 for i in range(steps))
    n_ops = len(PRIMITIVES_DARTS_EXT)
    msa = PRIMITIVES_DARTS_EXT.index("msa")
    forbidden = -float("inf")

    def scores(reduction: bool) -> list[list[float]]:
        rows = [[rng.gauss(0.0, 1.0) for _ in range(n_ops)] for _ in range(n_edges)]
        for row in rows:
            if reduction and only_pool:
                row[_FIRST_LEARNABLE:] = [forbidden] * (n_ops - _FIRST_LEARNABLE)
            if not allow_transformer:
                row[msa] = forbidden
        return rows

    normal = _parse_cell(scores(False), steps, allow_none)
    reduce = _parse_cell(scores(True), steps, allow_none)
    last = steps + 1
    if drop_concat:
        # the last sum node is always kept, otherwise the features of the earlier ones could be lost
        concat = [i for i in range(2, last) if rng.random() > 0.5] + [last]
    else:
        concat = list(range(2, last + 1))
    return Genotype(normal, concat, reduce, concat)
