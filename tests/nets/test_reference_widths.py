"""The reference's width rules for GHN training networks (ppuda ``DeepNets1M.__getitem__``) and their use."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from hyperzoo.nets.deepnets1m import REFERENCE_FC_DIMS, REFERENCE_WIDTHS, reference_training_widths


def _args(params: float, n_cells: int = 6, glob_avg: bool = True, op: str = "conv_3x3") -> dict:
    genotype = {"normal": [[op, 0], ["skip_connect", 1]], "reduce": [["max_pool_3x3", 0], ["conv_1x1", 1]]}
    return {"num_params": {"cifar10": int(params * 1e6), "imagenet": 0}, "n_cells": n_cells, "glob_avg": glob_avg,
            "genotype": genotype}  # fmt: skip


def _draws(args: dict, n: int = 400) -> tuple[Counter, Counter]:
    rng = random.Random(0)
    pairs = [reference_training_widths(args, rng) for _ in range(n)]
    return Counter(c for c, _ in pairs), Counter(f for _, f in pairs)


def test_reference_ranges():
    assert REFERENCE_WIDTHS == (32, 48, 64, 80, 96, 112, 128)
    assert REFERENCE_FC_DIMS == (64, 128, 192, 256, 320, 384, 448, 512)
    # large, dense (5x5 / 7x7 conv), without global pooling or deep: the narrowest width only
    for args in (_args(0.9), _args(0.1, op="conv_7x7"), _args(0.1, op="conv_5x5"), _args(0.1, glob_avg=False),
                 _args(0.1, n_cells=13)):  # fmt: skip
        widths, fcs = _draws(args)
        assert set(widths) == {32} and set(fcs) == {64, 128, 192, 256}
    widths, fcs = _draws(_args(0.5))
    assert set(widths) == {32, 48} and set(fcs) == {64, 128, 192, 256}
    assert set(_draws(_args(0.1, n_cells=11))[0]) == {32, 48}
    widths, _ = _draws(_args(0.3))
    assert set(widths) == {32, 48, 64}
    assert set(_draws(_args(0.1, n_cells=9))[0]) == {32, 48, 64}
    # small networks: any width; the classifier gets the full range only with C <= 64
    rng = random.Random(1)
    pairs = [reference_training_widths(_args(0.1), rng) for _ in range(2000)]
    assert {c for c, _ in pairs} == set(REFERENCE_WIDTHS)
    assert {f for c, f in pairs if c <= 64} == set(REFERENCE_FC_DIMS)
    assert {f for c, f in pairs if c > 64} == {64, 128, 192, 256}
    # a function of the stream
    assert reference_training_widths(_args(0.1), random.Random(5)) == reference_training_widths(
        _args(0.1), random.Random(5)
    )


def test_ghn_module_builds_targets_by_the_rule():
    """``GHNModule(width_rule="reference")`` draws fc_dim (and C) per network; ``"uniform"`` keeps the stored ones."""
    from hyperzoo.graphs import graph_from_module
    from hyperzoo.lightning import GHNModule
    from hyperzoo.nets.deepnets1m import build_network

    args = {**_args(0.9), "n_cells": 2, "C_mult": 1, "ks": 3, "stem_type": 0, "fc_layers": 2, "fc_dim": 256,
            "norm": "bn", "preproc": True, "stem_pool": False,
            "genotype": {"normal": [["conv_3x3", 0], ["conv_1x1", 1]], "normal_concat": [2],
                         "reduce": [["max_pool_3x3", 0], ["conv_1x1", 1]], "reduce_concat": [2]}}  # fmt: skip
    graph = graph_from_module(build_network(args, light=True), input_size=32)
    graph.net_args = args
    tiny = {"hid": 16, "max_shape": [16, 16, 3, 3]}
    nets, graphs = GHNModule("ghn2", ghn_kwargs=tiny, width_rule="reference")._targets([graph] * 8, None)
    fc_dims = {net.classifier[0].weight.shape[0] for net in nets}
    assert fc_dims <= {64, 128, 192, 256} and len(fc_dims) > 1  # 0.9 M parameters: C = 32, fc_dim from 64..256
    for net, g in zip(nets, graphs):  # the graphs carry each network's own shapes
        params = dict(net.named_parameters())
        for v, name in enumerate(g.param_names):
            if name in params and params[name].dim() == 4:
                assert int(g.shape[v].prod()) == params[name].numel(), name
        assert int(g.shape[g.param_names.index("classifier.0.weight")][0]) == params["classifier.0.weight"].shape[0]
    uniform = GHNModule("ghn2", ghn_kwargs=tiny)
    assert {n.classifier[0].weight.shape[0] for n in uniform._targets([graph] * 4, None)[0]} == {256}
    with pytest.raises(ValueError, match="width_rule"):
        GHNModule("ghn2", width_rule="random")  # type: ignore[arg-type]
