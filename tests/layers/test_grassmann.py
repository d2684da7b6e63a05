import copy

import pytest
import torch
import torch.nn.functional as F
import torchvision
from einops import rearrange
from torch import nn

from hyperzoo.errors import ConfigError
from hyperzoo.layers import GrassmannHead, GrassmannOptimizer, orthonormality_error, replace_head, tag_grassmann
from hyperzoo.nets import create_model


def _data(n=64, d=16, c=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(c, d, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    return centers[y] + 0.5 * torch.randn(n, d, generator=g), y


def test_k1_is_gamma_times_abs_cosine():
    torch.manual_seed(0)
    head = GrassmannHead(16, 5, k=1, gamma=25.0)
    x = torch.randn(8, 16)
    expect = 25.0 * F.cosine_similarity(x[:, None, :], head.weight[None, :, :], dim=-1).abs()
    torch.testing.assert_close(head(x), expect, rtol=1e-5, atol=1e-5)


def test_logit_is_norm_of_the_projection_and_bases_start_orthonormal():
    torch.manual_seed(0)
    head = GrassmannHead(32, 4, k=8, gamma=2.0)
    assert orthonormality_error(head.weight, 8) < 1e-5
    x = torch.randn(3, 32)
    s = rearrange(head.weight, "(c k) d -> c d k", k=8)
    expect = 2.0 * torch.linalg.vector_norm(torch.einsum("bd,cdk->bck", F.normalize(x, dim=1), s), dim=-1)
    torch.testing.assert_close(head(x), expect)
    # a logit depends only on the subspace: rotating a basis within its span changes nothing
    q, _ = torch.linalg.qr(torch.randn(8, 8))
    with torch.no_grad():
        head.weight.copy_(rearrange(s @ q, "c d k -> (c k) d"))
    torch.testing.assert_close(head(x), expect, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("base", ["sgd", "adamw"])
def test_bases_stay_orthonormal_over_many_steps_and_the_loss_falls(base):
    torch.manual_seed(0)
    x, y = _data()
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), GrassmannHead(16, 5, k=3, gamma=10.0))
    cls = torch.optim.SGD if base == "sgd" else torch.optim.AdamW
    kw = {"momentum": 0.9, "weight_decay": 1e-4} if base == "sgd" else {"weight_decay": 1e-2}
    opt = GrassmannOptimizer(model.parameters(), base=cls, lr=0.05, lr_factor=2.0, **kw)
    first = None
    for _ in range(300):
        loss = F.cross_entropy(model(x), y)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert orthonormality_error(model[2].weight, 3) < 1e-5
    assert loss.item() < 0.5 * first


def test_geodesic_step_matches_the_projected_gradient_to_first_order():
    torch.manual_seed(0)
    head = GrassmannHead(10, 2, k=3)
    x, y = _data(d=10, c=2)
    F.cross_entropy(head(x), y).backward()
    s = rearrange(head.weight.detach().clone(), "(c k) d -> c d k", k=3)
    g = rearrange(head.weight.grad.clone(), "(c k) d -> c d k", k=3)
    xi = g - s @ (s.transpose(1, 2) @ g)
    for lr in (1e-2, 1e-3):
        with torch.no_grad():
            head.weight.copy_(rearrange(s, "c d k -> (c k) d"))
        GrassmannOptimizer(head.parameters(), lr=lr, momentum=0.0, reorth_every=10**9).step()
        new = rearrange(head.weight.detach(), "(c k) d -> c d k", k=3)
        err = (new - (s - lr * xi)).norm()
        assert err < 5 * lr**2 * xi.norm() ** 2 + 1e-6  # second order in the step


def test_scheduler_scales_both_groups_and_state_round_trips():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), GrassmannHead(8, 3, k=2))
    opt = GrassmannOptimizer(model.parameters(), base=torch.optim.SGD, lr=0.1, lr_factor=0.5, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, 0.05])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5**step)
    x, y = _data(n=16, d=8, c=3)
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.025, 0.0125])
    assert opt.base is not None and opt.base.param_groups[0]["lr"] == pytest.approx(0.025)
    saved, weights = copy.deepcopy(opt.state_dict()), {k: v.clone() for k, v in model.state_dict().items()}

    def step(o):
        o.zero_grad()
        F.cross_entropy(model(x), y).backward()
        o.step()
        return [p.detach().clone() for p in model.parameters()]

    after = step(opt)
    model.load_state_dict(weights)
    other = GrassmannOptimizer(model.parameters(), base=torch.optim.SGD, lr=1.0, lr_factor=1.0, momentum=0.9)
    other.load_state_dict(saved)
    assert [g["lr"] for g in other.param_groups] == pytest.approx([0.025, 0.0125])
    for a, b in zip(step(other), after, strict=True):
        torch.testing.assert_close(a, b)


def test_settings_are_per_instance():
    heads = [GrassmannHead(8, 2, k=2), GrassmannHead(8, 2, k=2)]
    a = GrassmannOptimizer(heads[0].parameters(), lr=0.1, reorth_every=1)
    b = GrassmannOptimizer(heads[1].parameters(), lr=0.2, reorth_every=7)
    assert a.param_groups[0]["reorth_every"] == 1 and b.param_groups[0]["reorth_every"] == 7
    assert a.base is None and a.param_groups[0]["lr"] == 0.1


def test_drop_in_heads_for_cifar_and_torchvision_models():
    net = create_model("resnet8_gcr4")
    assert isinstance(net.fc, GrassmannHead) and net.fc.k == 4 and net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    tv = replace_head(torchvision.models.resnet18(num_classes=7), k=2)
    assert isinstance(tv.fc, GrassmannHead) and tv(torch.randn(1, 3, 64, 64)).shape == (1, 7)
    mb = replace_head(torchvision.models.mobilenet_v3_small(num_classes=5), k=8)
    assert isinstance(mb.classifier[-1], GrassmannHead)
    # k * classes may exceed the feature size (subspaces may overlap, as in the paper's 1000 x 8 > 2048)
    assert GrassmannHead(64, 10, k=8, overlap=True).weight.shape == (80, 64)


def test_bad_inputs():
    with pytest.raises(ConfigError, match="k <= in_features"):
        GrassmannHead(8, 3, k=9)
    with pytest.raises(ConfigError, match=r"10 classes x k=8 = 80 .* exceed the 64 feature .*overlap=True"):
        GrassmannHead(64, 10, k=8)
    with pytest.raises(ConfigError, match="overlap=True"):
        replace_head(create_model("resnet20"), k=8)
    assert create_model("resnet20_gcr8").fc.k == 8  # the registry presets allow overlap, as the paper's heads
    with pytest.raises(ConfigError, match="no Grassmann parameter"):
        GrassmannOptimizer(nn.Linear(3, 3).parameters())
    with pytest.raises(ConfigError, match=r"no nn\.Linear"):
        replace_head(nn.Sequential(nn.Conv2d(3, 3, 1)))
    with pytest.raises(ConfigError, match=r"not an nn\.Linear"):
        replace_head(create_model("resnet8"), name="conv1")
    with pytest.raises(ConfigError, match="shape"):
        tag_grassmann(nn.Parameter(torch.zeros(5, 4)), k=2)
    with pytest.raises(ConfigError, match=r"features \(B, 8\)"):
        GrassmannHead(8, 2, k=2)(torch.zeros(1, 9))
