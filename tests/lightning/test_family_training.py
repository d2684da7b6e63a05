"""Long-run pieces: family stores train through GHNModule, length-free schedules, init_from, predicted init."""

from __future__ import annotations

import functools
import random
import warnings

import lightning.pytorch as pl
import pytest
import torch

from hyperzoo.data import CIFAR10DataModule, GraphImageDataModule
from hyperzoo.errors import ConfigError
from hyperzoo.ghn import from_pretrained
from hyperzoo.ghn.checkpoint import save_ghn
from hyperzoo.ghn.variants import create_ghn
from hyperzoo.lightning import GHNModule, ImageClassifier
from hyperzoo.lightning.schedule import ConstantCooldownLR, WarmRestartsLR
from hyperzoo.nets import create_model
from hyperzoo.nets.spaces import SPACES, build_space_network, register_space, resnet_net_args

warnings.filterwarnings("ignore", ".*does not have many workers.*")
TINY_GHN = {"hid": 16, "max_shape": [16, 16, 3, 3]}


def _tiny_resnets(rng: random.Random):
    args = resnet_net_args(rng.choice(["basic", "bottleneck"]), [1, 1, rng.randint(1, 2), 1], base=8)
    return build_space_network(args), args


def _trainer(tmp_path, **kw) -> pl.Trainer:
    args = {"accelerator": "cpu", "logger": False, "enable_progress_bar": False, "enable_model_summary": False,
            "num_sanity_val_steps": 0, "default_root_dir": str(tmp_path), "enable_checkpointing": False}  # fmt: skip
    return pl.Trainer(**{**args, **kw})


def _lrs(make, steps: int) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched, out = make(opt), []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_constant_cooldown_does_not_depend_on_the_total_before_the_cooldown():
    short = _lrs(lambda o: ConstantCooldownLR(o, cooldown_epochs=2, steps_per_epoch=10, total_steps=100), 100)
    long = _lrs(lambda o: ConstantCooldownLR(o, cooldown_epochs=2, steps_per_epoch=10, total_steps=1000), 100)
    assert short[:80] == long[:80] == [1.0] * 80
    assert short[89] == pytest.approx(0.5) and short[99] == pytest.approx(0.0)


@pytest.mark.parametrize("mult", [1, 2])
def test_warm_restarts_are_torchs_sgdr_in_epochs(mult):
    ours = _lrs(
        lambda o: WarmRestartsLR(o, restart_epochs=0.5, restart_mult=mult, steps_per_epoch=10, total_steps=7), 40
    )
    ref = _lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=mult), 40)
    assert ours == pytest.approx(ref, abs=1e-9)


def test_a_family_store_trains_a_ghn_with_a_length_free_schedule(tmp_path):
    from hyperzoo.graphs.generate_space import generate_space

    if "test_tiny_resnets" not in SPACES:
        register_space("test_tiny_resnets", _tiny_resnets)
    store = generate_space("test_tiny_resnets", 4, tmp_path / "fam.h5", progress=False, holdout=False)
    dm = GraphImageDataModule(train_graphs=str(store), val_graphs=str(store), num_val_archs=2, root="sample",
                              batch_size=16, eval_batch_size=32, meta_batch=2, limit=64)  # fmt: skip
    module = GHNModule("ghn2", ghn_kwargs=TINY_GHN, widths=[8, 16], width_rule="reference",
                       lr_scheduler=functools.partial(WarmRestartsLR, restart_epochs=0.5))  # fmt: skip
    before = {k: v.clone() for k, v in module.ghn.state_dict().items()}
    t = _trainer(tmp_path, max_steps=2, limit_val_batches=1, val_check_interval=2)
    t.fit(module, dm)
    assert t.global_step == 2 and torch.isfinite(t.callback_metrics["train/loss"])
    assert 0.0 <= float(t.callback_metrics["val/acc"]) <= 1.0
    assert any(not torch.equal(v, before[k]) for k, v in module.ghn.state_dict().items())


def test_init_from_a_saved_ghn(tmp_path):
    torch.manual_seed(3)
    ghn = create_ghn("ghn2", num_classes=10, **TINY_GHN)
    path = save_ghn(ghn, tmp_path / "g.safetensors", variant="ghn2")
    module = GHNModule("ghn2", ghn_kwargs=TINY_GHN, init_from=str(path))
    for k, v in ghn.state_dict().items():
        torch.testing.assert_close(module.ghn.state_dict()[k], v)
    with pytest.raises(ConfigError, match="does not fit"):
        GHNModule("ghn2", ghn_kwargs={"hid": 8, "max_shape": [16, 16, 3, 3]}, init_from=str(path))


def test_ghn_init_fills_the_prediction_then_fine_tunes(tmp_path):
    module = ImageClassifier("resnet20", ghn_init="ghn2-cifar10", channels_last=False)
    ghn = from_pretrained("ghn2-cifar10").eval()
    expected = create_model("resnet20", num_classes=10)
    with torch.no_grad():
        ghn(expected, bn_train=False)
    got = dict(module.net.named_parameters())
    for name, p in expected.named_parameters():
        torch.testing.assert_close(got[name], p)
    bn = module.net.bn1 if hasattr(module.net, "bn1") else next(
        m for m in module.net.modules() if isinstance(m, torch.nn.BatchNorm2d))  # fmt: skip
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean)) and int(bn.num_batches_tracked) == 0
    t = _trainer(tmp_path, max_steps=2, limit_val_batches=1)
    t.fit(module, datamodule=CIFAR10DataModule(root="sample", batch_size=16, eval_batch_size=64))
    assert t.global_step == 2 and torch.isfinite(t.callback_metrics["train/loss"])


def test_ghn_init_with_default_norms_keeps_the_predicted_function():
    """Weights that feed only a batch norm get the default init's norms; outputs with batch statistics do not move."""
    torch.manual_seed(0)
    predicted = ImageClassifier("resnet20", ghn_init="ghn2-cifar10", channels_last=False).net
    torch.manual_seed(0)
    rescaled = ImageClassifier("resnet20", ghn_init="ghn2-cifar10", ghn_init_norms="default", channels_last=False).net
    torch.manual_seed(0)
    default = create_model("resnet20", num_classes=10)
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rescaled.train()(x), predicted.train()(x), rtol=1e-4, atol=1e-4)
    p, r, d = (dict(m.named_parameters()) for m in (predicted, rescaled, default))
    for name in ("conv1.weight", "layer2.0.conv1.weight", "layer3.2.conv2.weight"):
        torch.testing.assert_close(r[name].norm(), d[name].norm())  # the default init's norm
        assert r[name].norm() > 2 * p[name].norm()  # the prediction's were much smaller (2.7x to 7x here)
    assert torch.equal(r["fc.weight"], p["fc.weight"]) and torch.equal(r["bn1.weight"], p["bn1.weight"])  # untouched
    with pytest.raises(ConfigError, match="ghn_init_norms='default' applies to a predicted init"):
        ImageClassifier("resnet20", ghn_init_norms="default")
    with pytest.raises(ConfigError, match="norms='unit': must be 'predicted' or 'default'"):
        ImageClassifier("resnet20", ghn_init="ghn2-cifar10", ghn_init_norms="unit")


def test_ghn_init_orth_orthogonalizes_the_prediction_for_fine_tuning():
    """GHN-orth: the predicted weights' orthogonal factors, the classifier as predicted; seeded noise repeats."""
    torch.manual_seed(0)
    predicted = ImageClassifier("resnet20", ghn_init="ghn2-cifar10", channels_last=False).net
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        nets.append(
            ImageClassifier(
                "resnet20", ghn_init="ghn2-cifar10", ghn_init_orth=True, ghn_init_noise=1e-3, channels_last=False
            ).net
        )
    p, o, o2 = (dict(m.named_parameters()) for m in (predicted, *nets))
    assert all(torch.equal(o[k], o2[k]) for k in o)  # the noise follows the run's seed
    w = o["layer2.1.conv1.weight"].reshape(32, -1)
    torch.testing.assert_close(w @ w.t(), torch.eye(32), atol=1e-5, rtol=0)
    assert torch.equal(o["fc.weight"], p["fc.weight"])
    assert not torch.equal(o["bn1.weight"], p["bn1.weight"])  # noise reached the norm layers
    with pytest.raises(ConfigError, match="ghn_init_orth=True applies to a predicted init"):
        ImageClassifier("resnet20", ghn_init_orth=True)
