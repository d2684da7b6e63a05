"""DeepNets-1M genotypes, ops and Network: reference parameter names, shapes and forward passes."""

from __future__ import annotations

import json
import random

import pytest
import torch

from hyperzoo.nets import create_model, list_models
from hyperzoo.nets.deepnets1m import (
    DARTS,
    PDARTS,
    PRIMITIVES_DARTS_EXT,
    Genotype,
    Network,
    ViT,
    build_network,
    sample_genotype,
    skip_init,
)
from hyperzoo.nets.deepnets1m.ops import parse_op
from tests.paths import SHARED

CONFORMANCE = SHARED / "conformance" / "ppuda_ghn2_seed0.json"


@pytest.fixture(scope="module")
def darts_reference() -> dict:
    return json.loads(CONFORMANCE.read_text())["models"]["darts"]


@pytest.mark.conformance
def test_darts_parameter_names_and_shapes_match_reference(darts_reference: dict) -> None:
    net = Network(C=16, num_classes=10, genotype=DARTS, n_cells=8, is_imagenet_input=False)
    ours = [(name, list(p.shape)) for name, p in net.named_parameters()]
    ref = [(name, fp["shape"]) for name, fp in darts_reference["params"].items()]
    assert ours == ref  # same names, shapes and order (module registration order)
    assert sum(p.numel() for p in net.parameters()) == darts_reference["num_params"]
    graph_params = {n for n in darts_reference["param_names"] if n.endswith((".weight", ".bias"))}
    assert graph_params <= {name for name, _ in ours}


def test_registry_darts_is_the_conformance_model() -> None:
    assert {"deepnets1m_darts", "deepnets1m_pdarts", "deepnets1m_vit"} <= set(list_models("deepnets1m*"))
    assert sum(p.numel() for p in create_model("deepnets1m_darts").parameters()) == 246_106


@pytest.mark.parametrize("genotype", [DARTS, PDARTS, ViT], ids=["darts", "pdarts", "vit"])
@pytest.mark.parametrize("stem_type", [0, 1])
def test_forward_cifar(genotype: Genotype, stem_type: int) -> None:
    is_vit = genotype is ViT
    net = Network(
        C=8 if not is_vit else 16,
        num_classes=5,
        genotype=genotype,
        n_cells=4,
        is_imagenet_input=False,
        stem_type=stem_type,
        preproc=not is_vit,
        C_mult=1 if is_vit else 2,
        fc_layers=2,
        fc_dim=12,
    ).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def test_forward_vgg_head_and_auxiliary() -> None:
    net = Network(8, 3, DARTS, n_cells=3, is_imagenet_input=False, glob_avg=False, stem_pool=True, auxiliary=True)
    logits, aux = net(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 3)
    assert net.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_genotype_dict_round_trip_and_unpacking() -> None:
    assert Genotype.from_dict(json.loads(json.dumps(DARTS.to_dict()))) == DARTS
    normal, normal_concat, reduce, _ = PDARTS
    assert normal_concat == (2, 3, 4, 5) and len(normal) == len(reduce) == 8
    assert hash(DARTS) == hash(Genotype.from_dict(DARTS.to_dict()))


def test_parse_op() -> None:
    assert parse_op("sep_conv_5x5") == ("sep_conv", 5)
    assert parse_op("conv_7x1_1x7") == ("conv2", 7)
    assert parse_op("skip_connect") == ("skip_connect", 0)


def test_sample_genotype_is_a_function_of_the_rng() -> None:
    a = sample_genotype(random.Random(3), steps=4, allow_transformer=True)
    b = sample_genotype(random.Random(3), steps=4, allow_transformer=True)
    assert a == b and a.steps == 4 and a.normal_concat[-1] == 5
    for seed in range(50):
        g = sample_genotype(random.Random(seed), steps=2, only_pool=True, allow_none=False)
        reduce_ops = {op for op, _ in g.reduce}
        assert reduce_ops <= {"max_pool_3x3", "avg_pool_3x3", "skip_connect"}
        assert "none" not in g.op_names() and "msa" not in g.op_names()
        assert all(op in PRIMITIVES_DARTS_EXT for op in g.op_names())
        # each sum node reads two different earlier states
        for i in range(g.steps):
            assert g.normal[2 * i][1] != g.normal[2 * i + 1][1] and g.normal[2 * i][1] < i + 2


def test_light_build_skips_init_and_restores_it() -> None:
    args = {"genotype": DARTS.to_dict(), "n_cells": 4, "norm": "bn-track"}
    net = build_network(args, C=8, light=True)
    ref = build_network(args, C=8)
    assert [(n, p.shape) for n, p in net.named_parameters()] == [(n, p.shape) for n, p in ref.named_parameters()]
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
    with skip_init():
        pass
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 2, 3)
    torch.manual_seed(0)
    assert torch.equal(conv.weight, torch.nn.Conv2d(2, 2, 3).weight)  # init is back
    assert build_network(args, C=8, device="meta").cells[0].preprocess1.op[1].weight.is_meta
