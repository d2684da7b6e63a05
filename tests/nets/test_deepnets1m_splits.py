"""DeepNets-1M generator rules and splits: determinism, rejections, disjoint splits, duplicate removal."""

from __future__ import annotations

import random

import pytest

from hyperzoo.errors import UnknownNameError
from hyperzoo.nets.deepnets1m import (
    NUM_BUCKETS,
    SPLITS,
    Genotype,
    SamplerConfig,
    arch_hash,
    build_network,
    candidate,
    canonical_net_args,
    check_size,
    genotype_rejection,
    get_split,
    iter_split,
    predefined_net_args,
    sample_net_args,
    sample_valid_net_args,
    split_seed,
)
from hyperzoo.nets.deepnets1m.splits import hash_bucket


def _draws(n: int, config: SamplerConfig | None = None) -> list[dict]:
    config = config or SamplerConfig()
    return [a for a in (sample_net_args(random.Random(i), config) for i in range(n)) if a is not None]


def test_sampled_net_args_follow_the_generator_rules() -> None:
    draws = _draws(400)
    assert 250 < len(draws) < 400  # some draws are rejected
    for a in draws:
        g = Genotype.from_dict(a["genotype"])
        assert genotype_rejection(g) is None
        assert 4 <= a["n_cells"] <= 18 and 1 <= g.steps <= 4
        assert a["n_cells"] <= 10 or g.steps <= 2  # deep nets have small cells
        assert a["preproc"] or (g.steps == 1 and a["C_mult"] == 1)
        assert a["norm"] == "bn" or (a["n_cells"] <= 5 and g.steps <= 2)
        assert not (a["stem_pool"] and a["stem_type"] == 1)
        assert a["glob_avg"] or not g.is_vit
        if g.steps == 1:
            assert "none" not in g.op_names()
    assert any(Genotype.from_dict(a["genotype"]).is_vit for a in draws)
    assert all(a["norm"] is None for a in _draws(50, SamplerConfig(norm="none")))


def test_rejection_rules() -> None:
    cse_only = Genotype([("cse", 0), ("max_pool_3x3", 1)], [2], [("skip_connect", 0), ("avg_pool_3x3", 1)], [2])
    assert genotype_rejection(cse_only) == "cse without conv"
    two_cse = Genotype([("cse", 0), ("cse", 1)], [2], [("conv_1x1", 0), ("avg_pool_3x3", 1)], [2])
    assert genotype_rejection(two_cse) == "more than one cse in a cell"
    dense = Genotype([("conv_5x5", 0), ("conv_7x7", 1)], [2], [("conv_1x1", 0), ("avg_pool_3x3", 1)], [2])
    assert "dense" in genotype_rejection(dense)
    pools = Genotype([("max_pool_3x3", 0), ("skip_connect", 1)], [2], [("avg_pool_3x3", 0), ("none", 1)], [2])
    assert genotype_rejection(pools) == "no learnable op"


def test_size_cap_and_rebuild() -> None:
    rng = random.Random(5)
    args = sample_valid_net_args(rng, SamplerConfig(max_layers=6))
    net = build_network(args, light=True)
    assert sum(p.numel() for p in net.parameters()) == args["num_params"]["cifar10"]
    assert check_size(args, max_params=args["num_params"]["cifar10"] - 1) is None


def test_candidates_are_pure_functions_of_split_seed_and_index() -> None:
    a = candidate("train", 3, base_seed=7, check_params=False)
    b = candidate("train", 3, base_seed=7, check_params=False)
    assert a == b
    assert split_seed("train", 0) != split_seed("val", 0) != split_seed("val", 1)
    assert split_seed("val", 0, 5) != split_seed("val", 0, 6)


def test_splits_are_disjoint_by_hash_partition() -> None:
    owners = {}
    for name, spec in SPLITS.items():
        for b in spec.buckets:
            assert b not in owners, f"bucket {b} owned by {owners[b]} and {name}"
            owners[b] = name
    assert set(SPLITS) == {"train", "val", "test", "wide", "deep", "dense", "bnfree", "predefined"}
    assert len(SPLITS["train"].buckets) > 0.9 * NUM_BUCKETS
    # the nets a split yields live in its buckets, so no net can be in two splits
    for split in ("val", "test", "bnfree"):
        for _, (_, args) in zip(range(2), iter_split(split, check_params=False)):
            assert hash_bucket(args["hash"]) in SPLITS[split].buckets
            assert hash_bucket(args["hash"]) not in SPLITS["train"].buckets
    assert SPLITS["wide"].C == 4 * SPLITS["val"].C
    with pytest.raises(UnknownNameError, match="splits: train"):
        get_split("tset")


def test_duplicates_are_removed_within_a_split() -> None:
    first = [(j, a["hash"]) for _, (j, a) in zip(range(3), iter_split("train", check_params=False))]
    seen = {first[0][1]}  # as if the first net were already in the split (a resumed run)
    again = [(j, a["hash"]) for _, (j, a) in zip(range(2), iter_split("train", seen=seen, check_params=False))]
    assert again == first[1:] and seen == {h for _, h in first}


def test_canonical_hash_ignores_widths_and_ineffective_choices() -> None:
    args = _draws(1)[0]
    same = {**args, "C": 128, "num_params": {"cifar10": 1}, "num_nodes": 3}
    assert arch_hash(args) == arch_hash(same)
    assert arch_hash(args) != arch_hash({**args, "n_cells": args["n_cells"] + 1})
    vit = predefined_net_args()[1]
    assert arch_hash({**vit, "ks": 7, "stem_type": 1}) == arch_hash(vit)
    assert canonical_net_args({**vit, "norm": "bnorm"})["norm"] == "bn"
    assert [a.get("model") for a in predefined_net_args()] == ["resnet50", None]
