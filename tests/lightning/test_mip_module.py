"""MIP hypernet training: one g per batch or per sample, MIP and default parametrizations."""

from __future__ import annotations

import functools
import warnings

import lightning.pytorch as pl
import pytest
import torch

from hyperzoo.data import CIFAR10DataModule
from hyperzoo.lightning.mip_module import MIPModule, mip_cnn

warnings.filterwarnings("ignore", ".*does not have many workers.*")


def _trainer(tmp_path, **kw):
    args = {"accelerator": "cpu", "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
            "enable_model_summary": False, "default_root_dir": str(tmp_path)}  # fmt: skip
    args.update(kw)
    return pl.Trainer(**args)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"encoding": "none", "residual": False, "optimizer": functools.partial(torch.optim.SGD, lr=0.01)},
        {"per_sample": True},
        {"hypernet": "chunked"},
    ],
)
def test_fast_dev_run(tmp_path, kwargs):
    module = MIPModule(hidden=(8,), **kwargs)
    before = module.hnet.theta0.detach().clone()
    trainer = _trainer(tmp_path, fast_dev_run=True)
    trainer.fit(module, CIFAR10DataModule(root="sample", batch_size=8, val_size=16, limit=32))
    m = trainer.callback_metrics
    assert torch.isfinite(m["train/loss"]) and 0.0 <= float(m["val/acc_g0.5"]) <= 1.0
    if module.hp.residual:
        assert not torch.equal(module.hnet.theta0.detach(), before)  # theta0 is learned


def test_resnet_target_with_kept_norm_layers(tmp_path):
    module = MIPModule(model="resnet8", hidden=(4,), norm="keep", per_sample=True)
    kept = [n for n, p in module.target.named_parameters() if p.requires_grad]
    assert kept and all("bn" in n for n in kept)
    trainer = _trainer(tmp_path, fast_dev_run=True)
    trainer.fit(module, CIFAR10DataModule(root="sample", batch_size=4, val_size=8, limit=16))
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


def test_mip_cnn_size():
    assert sum(p.numel() for p in mip_cnn().parameters()) == 19_466
