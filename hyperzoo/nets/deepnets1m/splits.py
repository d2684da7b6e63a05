"""The DeepNets-1M splits: sizes, generator settings, seeds, and how splits stay disjoint.

| split | size | generator |
|---|---|---|
| train | 1,000,000 | in-distribution (4-18 cells, 1-4 sum nodes, <= 10M params) |
| val, test | 500 each | in-distribution |
| wide | 100 | in-distribution, stored with ``C = 128`` (4x the CIFAR width; use 2x on ImageNet) |
| deep | 100 | 10-36 cells, <= 100M params |
| dense | 100 | 2-10 sum nodes per cell, <= 100M params |
| bnfree | 100 | in-distribution without normalization |
| predefined | 2 | ResNet-50 and the ViT genotype network (``C = 128``, 12 cells) |

**Candidate streams (determinism).** Split ``s`` with base seed ``S`` has a stream of candidates; candidate
``j`` is a pure function of ``(S, s, j)`` (:func:`candidate`), drawn from ``random.Random`` seeded with a
hash of the three. Each split thus has its own seed stream, and a generator can compute candidates in any
order or in parallel, be killed, and resume exactly where it stopped.

**Disjointness (hash partition).** Every architecture has a canonical hash (:func:`arch_hash`: the
``net_args`` that define the computation, widths and bookkeeping excluded, choices that have no effect
normalised away). The hash also picks one of 256 buckets; each evaluation split owns one bucket and
``train`` owns buckets 8-255 (:data:`SPLITS`). A candidate whose bucket is not its split's is rejected, so no
architecture can be in two splits, whatever their seeds and sizes, with no need to know the other splits'
contents (``train`` needs no list of test hashes, and the test split needs no scan of a million train nets).
Because the hash is unrelated to the architecture's properties, the partition thins every split's
distribution uniformly; ``train`` loses the 3% of the space that belongs to the evaluation splits.

**Duplicates within a split** are removed by the writer: the split is the first ``size`` valid candidates
of the stream whose hashes were not seen before (:func:`iter_split`; ``hyperzoo graphs generate`` stores the
hashes so a resumed run keeps deduplicating).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hyperzoo.errors import UnknownNameError
from hyperzoo.nets.deepnets1m.genotypes import Genotype, ViT
from hyperzoo.nets.deepnets1m.network import NET_ARGS_KEYS
from hyperzoo.nets.deepnets1m.sampler import GENERATOR_C, SamplerConfig, check_size, sample_net_args

__all__ = [
    "NUM_BUCKETS",
    "SPLITS",
    "SplitSpec",
    "arch_hash",
    "candidate",
    "canonical_net_args",
    "get_split",
    "hash_bucket",
    "iter_split",
    "predefined_net_args",
    "split_seed",
]

NUM_BUCKETS = 256
_TRAIN_BUCKETS = range(8, NUM_BUCKETS)  # buckets 6 and 7 are reserved for future evaluation splits


@dataclass(frozen=True)
class SplitSpec:
    """One row of the split table.

    Args:
        name: the split name.
        size: number of architectures in the published DeepNets-1M split.
        config: generator ranges (``None`` for ``predefined``).
        buckets: hash buckets (out of :data:`NUM_BUCKETS`) the split owns.
        C: width stored in each net's ``net_args`` (``None``: chosen at training time, as the reference does).
        description: one line for listings.
    """

    name: str
    size: int
    config: SamplerConfig | None
    buckets: frozenset[int] = field(default_factory=frozenset)
    C: int | None = GENERATOR_C
    description: str = ""


_IN_DIST = SamplerConfig()
SPLITS: dict[str, SplitSpec] = {
    s.name: s
    for s in (
        SplitSpec("train", 1_000_000, _IN_DIST, frozenset(_TRAIN_BUCKETS), None, "GHN training nets"),
        SplitSpec("val", 500, _IN_DIST, frozenset({0}), description="in-distribution validation"),
        SplitSpec("test", 500, _IN_DIST, frozenset({1}), description="in-distribution test"),
        SplitSpec("wide", 100, _IN_DIST, frozenset({2}), 4 * GENERATOR_C, "test-like nets, 4x wider"),
        SplitSpec(
            "deep",
            100,
            _IN_DIST.with_(min_layers=10, deep_layers=(18,), max_layers=36, max_params=10**8),
            frozenset({3}),
            description="10-36 cells",
        ),
        SplitSpec(
            "dense",
            100,
            _IN_DIST.with_(min_steps=2, medium_steps=6, max_steps=10, max_params=10**8),
            frozenset({4}),
            description="2-10 sum nodes per cell",
        ),
        SplitSpec("bnfree", 100, _IN_DIST.with_(norm="none"), frozenset({5}), description="no normalization"),
        SplitSpec("predefined", 2, None, frozenset(), description="ResNet-50 and ViT"),
    )
}


def get_split(name: str) -> SplitSpec:
    """The split called ``name``; raises :class:`UnknownNameError` listing the splits otherwise."""
    try:
        return SPLITS[name]
    except KeyError:
        raise UnknownNameError(f"unknown DeepNets-1M split {name!r}; splits: {', '.join(SPLITS)}") from None


def canonical_net_args(net_args: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``net_args`` that defines the computation graph, with ineffective choices normalised.

    Widths (``C``, and ``fc_dim`` of one-layer heads) and bookkeeping (``num_params``, ``num_nodes``) are
    dropped; ``norm`` is ``"bn"`` or ``None``; ViT networks ignore the stem settings (they always use the
    patchify stem) except where the flattened head size depends on them.
    """
    if "model" in net_args:
        return {"model": net_args["model"]}
    args = {k: net_args[k] for k in NET_ARGS_KEYS if k in net_args}
    genotype = Genotype.from_dict(args["genotype"])
    args["genotype"] = genotype.to_dict()
    norm = args.get("norm", "bn-track")  # the Network default
    args["norm"] = None if norm in (None, "", "none") else ("bn-track" if "track" in norm else "bn")
    if args.get("fc_layers", 0) <= 1:
        args.pop("fc_dim", None)
    if args.get("stem_type") == 1:
        args["stem_pool"] = False
    if genotype.is_vit:
        args.pop("ks", None)
        if args.get("glob_avg", True):
            args.pop("stem_type", None)
            args.pop("stem_pool", None)
    return args


def arch_hash(net_args: Mapping[str, Any]) -> str:
    """A 16-hex-digit hash of :func:`canonical_net_args` (the duplicate-removal and partition key)."""
    text = json.dumps(canonical_net_args(net_args), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def hash_bucket(h: str) -> int:
    """The partition bucket of an :func:`arch_hash` value."""
    return int(h[-4:], 16) % NUM_BUCKETS


def split_seed(split: str, base_seed: int = 0, index: int | None = None) -> int:
    """A 64-bit seed for ``split`` (and for its candidate ``index`` when given), derived by hashing."""
    key = f"hyperzoo/deepnets1m/{base_seed}/{split}" + ("" if index is None else f"/{index}")
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")


def candidate(
    split: str, index: int, base_seed: int = 0, check_params: bool = True, max_cells: int | None = None
) -> dict[str, Any] | None:
    """Candidate ``index`` of a split's stream, or ``None`` if the generator rejects it.

    Rejections: genotype rules, a hash bucket owned by another split, the parameter cap (with
    ``check_params``). An accepted candidate carries ``hash``, ``num_params`` and, for evaluation splits,
    ``C``. Graph-level rejection (a disconnected computation graph) is left to the dataset generator.

    Args:
        split: a sampled split.
        index: position in the split's candidate stream.
        base_seed: the base seed.
        check_params: apply the parameter cap.
        max_cells: cap the number of cells (small nets for tests; this changes the stream).
    """
    spec = get_split(split)
    if spec.config is None:
        raise ValueError(f"split {split!r} is not sampled; use predefined_net_args()")
    config = spec.config
    if max_cells is not None:
        config = config.with_(
            max_layers=min(config.max_layers, max_cells), min_layers=min(config.min_layers, max_cells)
        )
    net_args = sample_net_args(random.Random(split_seed(split, base_seed, index)), config)
    if net_args is None:
        return None
    h = arch_hash(net_args)
    if hash_bucket(h) not in spec.buckets:
        return None
    if check_params:
        counts = check_size(net_args, config.max_params)
        if counts is None:
            return None
        net_args["num_params"] = counts
    if spec.C is not None:
        net_args["C"] = spec.C
    net_args["hash"] = h
    return net_args


def iter_split(
    split: str, base_seed: int = 0, start: int = 0, seen: set[str] | None = None, check_params: bool = True
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yields ``(candidate_index, net_args)`` for the split's unique accepted candidates, in stream order.

    Args:
        split: a sampled split.
        base_seed: the base seed.
        start: first candidate index (to resume).
        seen: hashes already in the split (updated in place).
        check_params: apply the parameter cap (slower: builds each candidate twice without init).
    """
    if split == "predefined":
        for j, predefined in enumerate(predefined_net_args()):
            if j >= start:
                yield j, predefined
        return
    seen = set() if seen is None else seen
    j = start
    while True:
        args = candidate(split, j, base_seed, check_params)
        if args is not None and args["hash"] not in seen:
            seen.add(args["hash"])
            yield j, args
        j += 1


def predefined_net_args() -> list[dict[str, Any]]:
    """The ``predefined`` split: torchvision ResNet-50 and the ViT genotype network of the reference."""
    vit = {
        "genotype": ViT.to_dict(),
        "n_cells": 12,
        "C": 128,
        "glob_avg": True,
        "preproc": False,
        "C_mult": 1,
    }
    return [{"model": "resnet50", "hash": arch_hash({"model": "resnet50"})}, {**vit, "hash": arch_hash(vit)}]
