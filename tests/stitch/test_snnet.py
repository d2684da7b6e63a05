"""SN-Net: configuration space, compute per configuration, least-squares initialisation."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from hyperzoo.errors import ConfigError
from hyperzoo.nets import create_model
from hyperzoo.nets.compute import count_macs
from hyperzoo.stitch.snnet import SNNet, StitchingLayer, init_stitches_ls, split_blocks
from tests.merge.conftest import randomize

X = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def _batches() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(8, 3, 16, 16, generator=g) for _ in range(2)]


def test_split_blocks_reproduces_the_model() -> None:
    for model in (randomize(create_model("resnet8")), randomize(create_model("resnet18", num_classes=10))):
        blocks, head = split_blocks(model)
        with torch.no_grad():
            torch.testing.assert_close(head(nn.Sequential(*blocks)(X)), model(X))
    with pytest.raises(ConfigError, match="CIFAR ResNets or torchvision ResNets"):
        split_blocks(nn.Linear(2, 2))


def test_ls_init_reproduces_identical_anchors_exactly() -> None:
    a = randomize(create_model("resnet8", shortcut="B"))
    sn = SNNet([a, copy.deepcopy(a)], window=0, input_size=16)
    init_stitches_ls(sn, _batches(), num_batches=2, ridge=0.0)
    sn.eval()
    with torch.no_grad():
        ref = a(X)
        same = [i for i, c in enumerate(sn.configs) if not c.is_anchor and c.cut == c.entry]
        assert same
        for i in same:  # the least-squares stitch is the identity map on what the anchors compute
            torch.testing.assert_close(sn(X, i), ref, atol=1e-4, rtol=1e-4)


def test_configuration_space_and_compute() -> None:
    small = create_model("resnet8", shortcut="B")
    deep = create_model("resnet20", shortcut="B")
    sn = SNNet([deep, small], window=1, input_size=16)
    assert [c.key for c in sn.configs[:2]] == ["a0", "a1"]  # sorted by cost: resnet8 first
    assert sn.macs[0] < sn.macs[1]
    stitched = [c for c in sn.configs if not c.is_anchor]
    assert stitched and all(c.front == 0 and c.back == 1 for c in stitched)  # Fast-to-Slow
    # 3 stages x (1 vs 3 blocks): every stitch joins maps of equal resolution
    for i, c in enumerate(sn.configs):
        if not c.is_anchor:
            assert sn.shapes[c.front][c.cut][1:] == sn.shapes[c.back][c.entry][1:]
            assert sn.macs[i] > 0
    assert sn.macs[0] == count_macs(sn.anchors[0], torch.zeros(1, 3, 16, 16))
    with pytest.raises(ConfigError, match="does not exist"):
        sn.set_config(len(sn.configs))


def test_stitching_layer_on_tokens() -> None:
    layer = StitchingLayer(4, 6)
    assert layer(torch.randn(2, 5, 4)).shape == (2, 5, 6)
    assert layer(torch.randn(2, 4, 3, 3)).shape == (2, 6, 3, 3)
