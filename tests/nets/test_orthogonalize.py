"""GHN-orth: orthogonal factors of conv/linear weights, the classifier left alone, noise at the stated scale."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hyperzoo.errors import ConfigError
from hyperzoo.nets import create_model
from hyperzoo.nets.orthogonalize import orthogonal_factor, orthogonalize_


@pytest.mark.parametrize("shape", [(16, 3, 3, 3), (64, 16, 1, 1), (10, 64), (32, 8)])
def test_orthogonal_factor_has_unit_singular_values_and_spans_the_same_space(shape):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    q = orthogonal_factor(w)
    assert q.shape == w.shape and q.dtype == w.dtype
    m, mq = w.reshape(shape[0], -1), q.reshape(shape[0], -1)
    torch.testing.assert_close(torch.linalg.svdvals(mq), torch.ones(min(mq.shape)), atol=1e-5, rtol=0)
    # the tall side's column space is kept: W = Q R with R upper triangular, positive diagonal
    tall, tall_q = (m.t(), mq.t()) if m.shape[0] < m.shape[1] else (m, mq)
    r = tall_q.t() @ tall
    torch.testing.assert_close(r, torch.triu(r), atol=1e-4, rtol=0)
    assert (torch.diagonal(r) > 0).all()


def test_orthogonalize_leaves_the_classifier_and_the_layers_before_from_layer():
    torch.manual_seed(0)
    net = create_model("resnet20")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    done = orthogonalize_(net, from_layer=3)
    convs = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    assert done == [f"{n}.weight" for n in convs[2:]]  # 19 convs, the first two kept; fc (the classifier) kept
    after = net.state_dict()
    for name in (f"{convs[0]}.weight", f"{convs[1]}.weight", "fc.weight", "fc.bias", "bn1.weight"):
        assert torch.equal(after[name], before[name]), name
    w = after["layer3.2.conv2.weight"].reshape(64, -1)
    torch.testing.assert_close(w @ w.t(), torch.eye(64), atol=1e-5, rtol=0)  # 64 x 576: orthonormal rows


def test_noise_is_scaled_by_the_row_correlations_and_reaches_the_norm_layers():
    torch.manual_seed(0)
    net = create_model("resnet20")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    beta = 1e-2
    orthogonalize_(net, from_layer=10**6, noise=beta, generator=torch.Generator().manual_seed(1))  # noise only
    w0 = before["layer1.0.conv1.weight"]
    corr_std = float(torch.corrcoef(w0.reshape(16, -1).double()).std())
    delta = net.state_dict()["layer1.0.conv1.weight"] - w0
    assert float(delta.std()) == pytest.approx(beta * corr_std, rel=0.1)  # 2,304 draws: +-3% at 2 sigma
    bn_delta = net.state_dict()["layer1.0.bn1.bias"] - before["layer1.0.bn1.bias"]
    assert 0 < float(bn_delta.abs().max()) < 5 * beta * corr_std
    assert torch.equal(net.state_dict()["fc.weight"], before["fc.weight"])


def test_bad_arguments_are_refused():
    with pytest.raises(ConfigError, match="from_layer=0"):
        orthogonalize_(create_model("resnet20"), from_layer=0)
    with pytest.raises(ConfigError, match="noise=-1"):
        orthogonalize_(create_model("resnet20"), noise=-1)
    with pytest.raises(ConfigError, match="needs at least one more"):
        orthogonalize_(nn.Sequential(nn.Linear(4, 2)))
